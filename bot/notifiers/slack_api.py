"""slack_sdk at arm's length: typed errors, secret redaction, and cached name/email lookups.

Every Web API call goes through `SlackApi.call`, which turns slack_sdk and
urllib failures into `NotifierError`s that say what to fix and whether a retry
can help (`retryable`) or a message may already be posted (`ambiguous`).
"""

from __future__ import annotations

import http.client
import logging
import re
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.errors import NotifierError, NotifierRateLimited

log = logging.getLogger(__name__)

_AUTH_ERRORS = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
                "no_permission", "missing_scope", "not_allowed_token_type", "ekm_access_denied"}
_SERVER_ERRORS = {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
_HINTS = {
    "channel_not_found": "check the channel name or id in the rules file; private channels need the bot invited",
    "not_in_channel": "invite the bot to the channel (/invite @deskbot) or grant it chat:write.public",
    "is_archived": "the channel is archived; point the rule at another channel",
    "users_not_found": "no Slack user has that email; fix `user:` in the rules file",
    "user_not_found": "no Slack user has that email; fix `user:` in the rules file",
    "missing_scope": "add the scope Slack names to the app and reinstall it",
    "invalid_auth": "check SLACK_BOT_TOKEN",
    "token_revoked": "the token was revoked; install the app again and update SLACK_BOT_TOKEN",
    "invalid_blocks": "a message broke Block Kit rules (a deskbot bug; please report it)",
}
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{6,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{6,}$")
_SPECIAL = {"here": "<!here>", "channel": "<!channel>", "everyone": "<!everyone>"}


class Redactor(logging.Filter):
    """Replaces secrets (token, webhook URL) in text and in log records of the SDK's logger."""

    def __init__(self, secrets: Iterable[str | None]):
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self(record.getMessage())
        record.args = None
        return True


def sdk_logger(name: str, redactor: Redactor) -> logging.Logger:
    """A logger for slack_sdk whose records pass through `redactor` (the SDK logs URLs and bodies)."""
    logger = logging.getLogger(name)
    for old in [f for f in logger.filters if isinstance(f, Redactor)]:
        logger.removeFilter(old)
    logger.addFilter(redactor)
    return logger


def network_error(error: BaseException, what: str, *, post: bool) -> NotifierError:
    """A transport failure: refused/DNS means nothing was sent; anything else may have reached Slack."""
    reason = getattr(error, "reason", error)
    never_sent = isinstance(reason, ConnectionRefusedError | socket.gaierror)
    ambiguous = post and not never_sent
    kind = "timed out" if isinstance(reason, TimeoutError) else "could not reach Slack"
    return NotifierError(f"{what}: {kind} ({type(reason).__name__})"
                         + ("; the message may have been posted" if ambiguous else ""),
                         retryable=True, ambiguous=ambiguous)


def api_error(error: SlackApiError, what: str, *, post: bool) -> NotifierError:
    """Map a Slack API error response to a typed error with the fix in its message."""
    response = error.response
    status = getattr(response, "status_code", 200)
    data = response.data if isinstance(getattr(response, "data", None), dict) else {}
    code = str(data.get("error") or "")
    if not re.fullmatch(r"[a-z0-9_.]{1,60}", code):  # e.g. an HTML error page from Slack's edge
        code = f"http_{status}"
    if status == 429 or code in ("ratelimited", "rate_limited"):
        headers = {k.lower(): v for k, v in (response.headers or {}).items()}
        retry_after = _seconds(headers.get("retry-after"))
        return NotifierRateLimited(f"{what}: Slack rate limit, retry after {retry_after}s", retry_after=retry_after)
    if status >= 500 or code in _SERVER_ERRORS:
        return NotifierError(f"{what}: Slack answered {status}" + (f" ({code})" if code != f"http_{status}" else "")
                             + ("; the message may have been posted" if post else ""),
                             retryable=True, ambiguous=post)
    hint = _HINTS.get(code, "")
    if code == "missing_scope" and data.get("needed"):
        hint = f"add the {data['needed']} scope to the Slack app and reinstall it"
    message = f"{what}: Slack refused it ({code})" + (f": {hint}" if hint else "")
    # Credential problems are fixed by an operator; keep the alerts until then.
    return NotifierError(message, retryable=code in _AUTH_ERRORS)


def _seconds(value: Any) -> float:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 1.0


class SlackApi:
    """A WebClient plus caches for channel names, user emails, DMs and user-group handles."""

    def __init__(self, client: WebClient, redactor: Redactor, *, refresh_every: float = 300.0,
                 clock: Callable[[], float] = time.monotonic):
        self.client = client
        self.redact = redactor
        self.refresh_every = refresh_every
        self.clock = clock
        self._channels: dict[str, str] = {}
        self._channels_at: float | None = None
        self._users: dict[str, str | None] = {}
        self._dms: dict[str, str] = {}
        self._groups: dict[str, str] = {}
        self._groups_at: float | None = None

    def call(self, method: str, *, post: bool = False, **kwargs: Any) -> dict[str, Any]:
        """Call a Web API method; raises NotifierError (never slack_sdk or urllib errors)."""
        what = f"Slack {method.replace('_', '.', 1)}"
        try:
            response = getattr(self.client, method)(**kwargs)
        except SlackApiError as error:
            raise api_error(error, what, post=post) from None
        except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets
            raise network_error(error, what, post=post) from None
        except SlackClientError as error:
            raise NotifierError(self.redact(f"{what}: {error}")) from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    def _stale(self, loaded_at: float | None) -> bool:
        return loaded_at is None or self.clock() - loaded_at >= self.refresh_every

    def channel_id(self, name_or_id: str) -> str:
        """A channel id from `#name`, `name` or an id; names are listed once and cached."""
        wanted = name_or_id.strip().lstrip("#")
        if _CHANNEL_ID.match(wanted):
            return wanted
        key = wanted.lower()
        if key not in self._channels and self._stale(self._channels_at):
            self._load_channels()
        if key not in self._channels:
            raise NotifierError(f"Slack channel '#{wanted}' not found: {_HINTS['channel_not_found']}")
        return self._channels[key]

    def _load_channels(self) -> None:
        found: dict[str, str] = {}
        cursor = None
        while True:
            data = self.call("conversations_list", types="public_channel,private_channel",
                             exclude_archived=True, limit=200, cursor=cursor)
            found.update({c["name"].lower(): c["id"] for c in data.get("channels", [])})
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        self._channels, self._channels_at = found, self.clock()

    def user_id(self, email: str) -> str | None:
        """The Slack user with this email (cached, misses too); None when there is none."""
        key = email.strip().lower()
        if key not in self._users:
            try:
                data = self.call("users_lookupByEmail", email=email.strip())
                self._users[key] = (data.get("user") or {}).get("id")
            except NotifierError as error:
                if error.retryable:
                    raise
                self._users[key] = None
        return self._users[key]

    def dm_channel(self, email: str) -> str:
        """The direct-message channel with the user who has this email."""
        user = self.user_id(email)
        if user is None:
            raise NotifierError(f"no Slack user has the email {email!r} (`user:` in the rules file)")
        if user not in self._dms:
            data = self.call("conversations_open", users=user)
            self._dms[user] = data["channel"]["id"]
        return self._dms[user]

    def group_id(self, handle: str) -> str | None:
        """A user group's id from its handle (cached; the list is reloaded when stale)."""
        key = handle.lower()
        if key not in self._groups and self._stale(self._groups_at):
            data = self.call("usergroups_list", include_users=False)
            self._groups = {g["handle"].lower(): g["id"] for g in data.get("usergroups", [])}
            self._groups_at = self.clock()
        return self._groups.get(key)

    def mention(self, entry: str) -> str:
        """One configured mention as Slack markup: email -> <@U…>, @handle -> <!subteam^S…>, @here."""
        return mention_markup(entry, self.user_id, self.group_id)


def mention_markup(entry: str, user_id: Callable[[str], str | None],
                   group_id: Callable[[str], str | None]) -> str:
    """Mention markup for a trusted config entry; unknown ones degrade to inert text."""
    from bot.notifiers.mrkdwn import trusted

    entry = entry.strip()
    bare = entry.lstrip("@!")
    if bare.lower() in _SPECIAL:
        return _SPECIAL[bare.lower()]
    if _USER_ID.match(bare):
        return f"<@{bare}>"
    if _GROUP_ID.match(bare):
        return f"<!subteam^{bare}>"
    if "@" in entry[1:]:
        found = user_id(entry)
        if found:
            return f"<@{found}>"
    elif (found := group_id(bare)) is not None:
        return f"<!subteam^{found}>"
    log.warning("mention %r matches no Slack user or user group; shown as text", entry)
    return trusted(entry if "@" in entry else f"@{entry}")
