"""Slack alerts supervisors act on: Block Kit posts, threads per ticket, digests, resolved updates.

Configuration comes from the environment (see docs/slack.md):
`SLACK_BOT_TOKEN` (a bot token: channels by name, DMs, mentions, threads,
updates) or `SLACK_WEBHOOK_URL` (an incoming webhook: one fixed channel, no
threads or updates); `SLACK_API_URL` replaces the API base URL (sandbox,
tests); `SLACK_DEFAULT_CHANNEL` receives alerts whose rule names no target.
slack_sdk's own retries are off: the outbox retries, so a post is never
repeated behind our back. Tokens and webhook URLs never reach logs, errors or
reprs.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from bot.errors import NotifierError, NotifierRateLimited
from bot.notifiers.base import Alert, Outbox
from bot.notifiers.blocks import Resolved, SlackMessage, alert_message, digest_message
from bot.notifiers.delivery import OutboxNotifier, Pacer, Posted
from bot.notifiers.slack_api import Redactor, SlackApi, mention_markup, network_error, sdk_logger
from bot.retry import RetryPolicy

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"
WEBHOOK_DESTINATION = "webhook"


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SlackTransport:
    """Posts and updates Slack messages with a bot token, or posts through an incoming webhook."""

    def __init__(self, *, token: str | None = None, webhook_url: str | None = None, api_url: str | None = None,
                 default_channel: str | None = None, timeout: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        token = (token or "").strip() or None
        webhook_url = (webhook_url or "").strip() or None
        if not token and not webhook_url:
            raise NotifierError("Slack is not configured: set SLACK_BOT_TOKEN (a bot token, xoxb-…) "
                                "or SLACK_WEBHOOK_URL (an incoming webhook URL)")
        self._redact = Redactor([token, webhook_url])
        self.mode = "bot" if token else "webhook"
        self.supports_threads = token is not None
        self.api_url = (api_url or DEFAULT_API_URL) if token else None
        self.default_channel = (default_channel or "").strip() or None
        self.api: SlackApi | None = None
        self.webhook: WebhookClient | None = None
        logger = sdk_logger("bot.notifiers.slack.sdk", self._redact)
        if token:
            client = WebClient(token=token, base_url=self.api_url, timeout=timeout, retry_handlers=[],
                               logger=logger)
            if _is_loopback(self.api_url):
                client.proxy = None  # slack_sdk ignores NO_PROXY; the sandbox is always direct
            self.api = SlackApi(client, self._redact, clock=clock)
        else:
            self.webhook = WebhookClient(webhook_url, timeout=timeout, retry_handlers=[], logger=logger)
            if _is_loopback(webhook_url):
                self.webhook.proxy = None

    def __repr__(self) -> str:
        where = f"api_url={self.api_url!r}" if self.api_url else "webhook_url=[redacted]"
        return f"SlackTransport(mode={self.mode!r}, {where}, credentials=[redacted])"

    def destination(self, alert: Alert) -> str:
        """The channel id for an alert: its channel, its user's DM, or the default channel."""
        if self.api is None:
            return WEBHOOK_DESTINATION
        if alert.channel:
            return self.api.channel_id(alert.channel)
        if alert.user:
            return self.api.dm_channel(alert.user)
        if self.default_channel:
            return self.api.channel_id(self.default_channel)
        raise NotifierError(f"alert {alert.key} has no destination: give the rule's notify a `channel` or "
                            "`user`, or set SLACK_DEFAULT_CHANNEL")

    def mentions(self, alerts: Sequence[Alert]) -> list[str]:
        """Mention markup for the configured mentions of these alerts, in order, without repeats."""
        entries = list(dict.fromkeys(m for a in alerts for m in a.mention))
        if self.api is not None:
            return [self.api.mention(m) for m in entries]
        return [mention_markup(m, lambda _: None, lambda _: None) for m in entries]

    def post_alert(self, channel: str, alert: Alert, *, now: datetime, thread_ts: str | None,
                   repeat: bool) -> Posted:
        """Post one alert, as a thread reply when `thread_ts` is given."""
        message = alert_message(alert, now, mentions=self.mentions([alert]), repeat=repeat)
        return self._post(channel, message, thread_ts, alert.key)

    def post_digest(self, channel: str, alerts: Sequence[Alert], *, now: datetime, repeat: bool) -> Posted:
        """Post one message listing several alerts of the same rule."""
        message = digest_message(alerts, now, mentions=self.mentions(alerts))
        return self._post(channel, message, None, alerts[0].key)

    def update(self, channel: str, ts: str, alerts: Sequence[Alert], resolved: Mapping[str, Resolved], *,
               now: datetime, digest: bool) -> None:
        """Rewrite a posted alert or digest to show its resolved tickets."""
        if self.api is None:
            return
        if digest:
            message = digest_message(alerts, now, resolved=resolved)
        else:
            message = alert_message(alerts[0], now, resolved=resolved.get(alerts[0].ticket_key))
        self.api.call("chat_update", channel=channel, ts=ts, text=message.text, blocks=message.blocks)

    def upload(self, channel: str, filename: str, content: bytes | str, *, title: str | None = None,
               comment: str | None = None, thread_ts: str | None = None) -> dict[str, Any]:
        """Upload a file (a report, a chart) with files_upload_v2; needs a bot token."""
        if self.api is None:
            raise NotifierError("file uploads need SLACK_BOT_TOKEN; incoming webhooks cannot upload files")
        kwargs = {"channel": self.api.channel_id(channel), "filename": filename, "content": content,
                  "title": title or filename, "initial_comment": comment, "thread_ts": thread_ts}
        return self.api.call("files_upload_v2", post=True, **{k: v for k, v in kwargs.items() if v is not None})

    def _post(self, channel: str, message: SlackMessage, thread_ts: str | None, key: str) -> Posted:
        if self.webhook is not None:
            return self._post_webhook(message)
        assert self.api is not None
        data = self.api.call(
            "chat_postMessage", post=True, channel=channel, text=message.text, blocks=message.blocks,
            thread_ts=thread_ts, unfurl_links=False, unfurl_media=False,
            metadata={"event_type": "deskbot_alert", "event_payload": {"key": key}},
        )
        return Posted(str(data.get("channel") or channel), str(data["ts"]))

    def _post_webhook(self, message: SlackMessage) -> Posted:
        assert self.webhook is not None
        what = "Slack incoming webhook"
        try:
            response = self.webhook.send(text=message.text, blocks=message.blocks, unfurl_links=False,
                                         unfurl_media=False)
        except OSError as error:
            raise network_error(error, what, post=True) from None
        body = (response.body or "").strip()
        if response.status_code == 200 and body == "ok":
            return Posted(WEBHOOK_DESTINATION, None)
        code = self._redact(body)[:100] or f"http_{response.status_code}"
        if response.status_code == 429:
            headers = {k.lower(): v for k, v in (response.headers or {}).items()}
            retry = headers.get("retry-after")
            seconds = float(retry[0] if isinstance(retry, list) else retry) if retry else 1.0
            raise NotifierRateLimited(f"{what}: Slack rate limit, retry after {seconds}s", retry_after=seconds)
        if response.status_code >= 500:
            raise NotifierError(f"{what}: Slack answered {response.status_code} {code}; the message may have "
                                "been posted", retryable=True, ambiguous=True)
        revoked = response.status_code in (403, 404) and code.split()[0] in ("invalid_token", "no_service",
                                                                             "action_prohibited")
        hint = ": the webhook was removed or revoked; create one and update SLACK_WEBHOOK_URL" if revoked else ""
        raise NotifierError(f"{what}: Slack refused it ({response.status_code} {code}){hint}", retryable=revoked)


class SlackNotifier(OutboxNotifier):
    """The Slack `Notifier`: alerts go to the outbox first, `deliver(now)` posts them."""

    transport: SlackTransport

    @classmethod
    def from_env(cls, outbox: Outbox | None = None, *, environ: Mapping[str, str] | None = None,
                 digest_threshold: int = 5, pacer: Pacer | None = None, max_wait: float = 10.0,
                 timeout: float = 10.0, backoff: RetryPolicy | None = None) -> SlackNotifier:
        """Build from SLACK_BOT_TOKEN / SLACK_WEBHOOK_URL / SLACK_API_URL / SLACK_DEFAULT_CHANNEL."""
        env = os.environ if environ is None else environ
        transport = SlackTransport(token=env.get("SLACK_BOT_TOKEN"), webhook_url=env.get("SLACK_WEBHOOK_URL"),
                                   api_url=env.get("SLACK_API_URL") or None,
                                   default_channel=env.get("SLACK_DEFAULT_CHANNEL"), timeout=timeout)
        return cls(transport, outbox, digest_threshold=digest_threshold, pacer=pacer, max_wait=max_wait,
                   backoff=backoff)

    def upload(self, channel: str, filename: str, content: bytes | str, **kwargs: Any) -> dict[str, Any]:
        """Upload a file right away (reports); not queued in the outbox."""
        return self.transport.upload(channel, filename, content, **kwargs)

    def __repr__(self) -> str:
        return f"SlackNotifier({self.transport!r}, digest_threshold={self.digest_threshold})"
