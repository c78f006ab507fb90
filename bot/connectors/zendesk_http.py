"""How deskbot talks HTTP to Zendesk: credentials, the zenpy client, and one requests Session.

zenpy 2.0.57 sleeps on 429 in one-second steps (and crashes on a fractional
Retry-After), retries 503 in a urllib3 adapter, and turns errors into untyped
`APIException`s. To keep `bot.retry` the one owner of backoff, zenpy gets our
`ZendeskSession`: it spends the `RateBudget` before each request, counts calls
by kind, and raises a typed `bot.errors` error for every non-2xx answer before
zenpy sees it, so zenpy's own 429 loop never runs. The session also refuses to
send credentials to any host but the configured one. A custom base URL
(`ZENDESK_URL`, used for the sandbox) is set per client through zenpy's own
`subdomain`/`domain`/`protocol`, never through process-wide environment
variables such as `ZENPY_FORCE_NETLOC`.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.auth
from requests.adapters import HTTPAdapter
from zenpy import Zenpy
from zenpy.lib.api import BaseApi

from bot.errors import (
    AuthError,
    ConfigError,
    Conflict,
    ConnectorError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
)
from bot.retry import RateBudget

log = logging.getLogger("bot.connectors.zendesk")

PLATFORM = "zendesk"
DEFAULT_INCLUDE = ("users", "groups", "organizations", "metric_sets", "slas")


@dataclass(frozen=True)
class ZendeskConfig:
    """Where the account is, how to authenticate, and how gently to use it.

    Secrets are excluded from `repr`, so a config can be logged safely.
    """

    subdomain: str
    email: str | None = None
    api_token: str | None = field(default=None, repr=False)
    oauth_token: str | None = field(default=None, repr=False)
    url: str | None = None  # replaces https://{subdomain}.zendesk.com (sandbox, tests)
    per_page: int = 1000
    include: tuple[str, ...] = DEFAULT_INCLUDE
    rate_limit_per_minute: int = 400  # until the account's headers tell us better
    budget_share: float = 0.5  # the rest of the account's budget is left to humans
    export_per_minute: int = 10  # incremental export's own limit (30 with High Volume)
    directory_ttl: timedelta = timedelta(hours=1)
    backfill_overlap: timedelta = timedelta(hours=1)
    job_poll_interval: float = 1.0
    job_poll_limit: int = 120
    timeout: float = 30.0

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError(problems)

    def problems(self) -> list[str]:
        """Everything wrong with the settings, each saying what to set."""
        problems = []
        if not self.subdomain and not self.url:
            problems.append("ZENDESK_SUBDOMAIN is not set: set it to your account's subdomain "
                            "(acme for https://acme.zendesk.com)")
        if not self.oauth_token and not self.api_token:
            problems.append("no Zendesk credentials: set ZENDESK_EMAIL and ZENDESK_API_TOKEN "
                            "(Admin Center > Apps and integrations > Zendesk API), or ZENDESK_OAUTH_TOKEN")
        elif self.api_token and not self.oauth_token and not self.email:
            problems.append("ZENDESK_EMAIL is not set: API token authentication needs the email of the "
                            "agent who owns ZENDESK_API_TOKEN")
        if self.url and urlsplit(self.url).scheme not in ("http", "https"):
            problems.append(f"ZENDESK_URL must start with http:// or https://, got {self.url!r}")
        elif self.url and "." not in (urlsplit(self.url).hostname or ""):
            problems.append(f"ZENDESK_URL host must contain a dot (use 127.0.0.1, not localhost): {self.url!r}")
        if not 1 <= self.per_page <= 1000:
            problems.append(f"per_page must be between 1 and 1000, got {self.per_page}")
        return problems

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ZendeskConfig:
        """Settings from ZENDESK_* environment variables (credentials never come from files)."""
        env = os.environ if env is None else env
        return cls(
            subdomain=env.get("ZENDESK_SUBDOMAIN", "").strip(),
            email=env.get("ZENDESK_EMAIL", "").strip() or None,
            api_token=env.get("ZENDESK_API_TOKEN", "").strip() or None,
            oauth_token=env.get("ZENDESK_OAUTH_TOKEN", "").strip() or None,
            url=env.get("ZENDESK_URL", "").strip().rstrip("/") or None,
            **overrides,
        )

    @property
    def base_url(self) -> str:
        """The account's root, e.g. `https://acme.zendesk.com`."""
        return self.url.rstrip("/") if self.url else f"https://{self.subdomain}.zendesk.com"

    @property
    def agent_url(self) -> str:
        """Prefix of a ticket's page in the agent workspace."""
        return f"{self.base_url}/agent/tickets/"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs, errors or reprs."""
        return tuple(s for s in (self.api_token, self.oauth_token) if s)

    @property
    def credential_name(self) -> str:
        """The environment variable holding the credential in use, for error messages."""
        return "ZENDESK_OAUTH_TOKEN" if self.oauth_token else "ZENDESK_API_TOKEN"


_KINDS: tuple[tuple[str, str, str], ...] = (
    ("GET", r"/incremental/tickets", "export"),
    ("GET", r"/search/export", "search_export"),
    ("GET", r"/tickets/show_many", "show_many"),
    ("PUT", r"/tickets/update_many", "update_many"),
    ("", r"/tickets/\d+/tags", "tags"),
    ("GET", r"/tickets/\d+(\.json)?$", "show"),
    ("PUT", r"/tickets/\d+(\.json)?$", "update"),
    ("GET", r"/job_statuses", "job_status"),
    ("GET", r"/group_memberships", "group_memberships"),
    ("GET", r"/users", "users"),
    ("GET", r"/groups", "groups"),
    ("GET", r"/ticket_fields", "ticket_fields"),
)


def call_kind(method: str, path: str) -> str:
    """The endpoint family of a request, as counted in `CallCounter` (export, update_many, ...)."""
    for verb, pattern, kind in _KINDS:
        if (not verb or verb == method.upper()) and re.search(pattern, path):
            return kind
    return "other"


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds; Zendesk sends integers, but fractions must not crash us (they crash zenpy)."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _payload(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def platform_message(body: Any) -> str:
    """The human part of a Zendesk error body: details' descriptions, else description, else error."""
    if not isinstance(body, Mapping):
        return ""
    details = body.get("details")
    if isinstance(details, Mapping):
        texts = [str(item.get("description") or item.get("error") or "")
                 for items in details.values() for item in (items if isinstance(items, list) else [items])
                 if isinstance(item, Mapping)]
        texts = [t for t in texts if t]
        if texts:
            return "; ".join(texts)
    error = body.get("error")
    if isinstance(error, Mapping):  # {"error": {"title": ..., "message": ...}}
        return str(error.get("message") or error.get("title") or "")
    return str(body.get("description") or error or "")


def error_for(response: requests.Response, kind: str, config: ZendeskConfig) -> ConnectorError:
    """The typed error for a non-2xx answer, with a message that says what to fix."""
    status = response.status_code
    body = _payload(response)
    said = redact(platform_message(body), config.secrets)  # a proxy or a fake may echo what it was sent
    what = f"Zendesk {kind} call"
    common: dict[str, Any] = {"status": status, "platform": PLATFORM}
    if status == 401:
        return AuthError(f"{config.credential_name} was rejected (401): check the token"
                         + (" and that token access is enabled" if not config.oauth_token else
                            " has not expired or been revoked")
                         + (f" and that ZENDESK_EMAIL ({config.email}) owns it" if config.email and
                            not config.oauth_token else ""), **common)
    if status == 403:
        hint = " (the incremental export needs an admin)" if kind == "export" else ""
        return PermissionDenied(f"{what} was forbidden (403): the agent behind {config.credential_name} "
                                f"needs the right to do this{hint}" + (f"; Zendesk said: {said}" if said else ""),
                                **common)
    if status == 404:
        return NotFound(f"{what} found nothing (404) at {urlsplit(response.url).path}"
                        + (f"; Zendesk said: {said}" if said else ""), **common)
    if status == 409:
        return Conflict(f"{what} conflicted (409): the ticket changed since it was read"
                        + (f"; Zendesk said: {said}" if said else ""), **common)
    if status == 429:
        wait = retry_after_seconds(response.headers)
        return RateLimited(f"{what} was rate limited (429)" + (f"; retry after {wait:g}s" if wait is not None
                                                               else ""), retry_after=wait, **common)
    if status >= 500:
        return Unavailable(f"{what} failed on Zendesk's side ({status}); it will be retried", **common)
    details = body.get("details") if isinstance(body, Mapping) and isinstance(body.get("details"), dict) else {}
    return InvalidRequest(f"Zendesk refused the {kind} call ({status}): {said or response.reason}",
                          details=details, **common)


class ZendeskSession(requests.Session):
    """The only way deskbot's Zendesk traffic leaves the process: budgeted, counted, typed."""

    def __init__(self, config: ZendeskConfig, budget: RateBudget, export_budget: RateBudget,
                 count: Callable[[str], None]):
        super().__init__()
        self._config = config
        self._budget = budget
        self._export_budget = export_budget
        self._count = count
        self._origin = _origin(config.base_url)
        self._local = threading.local()
        # No hidden retries: RetryPolicy decides what is retried, and when.
        self.mount("https://", HTTPAdapter(max_retries=0))
        self.mount("http://", HTTPAdapter(max_retries=0))

    def __repr__(self) -> str:
        return f"ZendeskSession({self._origin})"

    @property
    def last_json(self) -> Any:
        """The decoded body of this thread's last successful response (zenpy returns objects)."""
        return getattr(self._local, "json", None)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Send one request within budget; raise a typed error for anything but 2xx."""
        if _origin(url) != self._origin:
            hint = " (ZENPY_FORCE_NETLOC/ZENPY_FORCE_SCHEME are set; unset them)" if (
                os.environ.get("ZENPY_FORCE_NETLOC") or os.environ.get("ZENPY_FORCE_SCHEME")) else ""
            raise ConnectorError(f"refused to send Zendesk credentials to {_origin(url)}, "
                                 f"expected {self._origin}{hint}", platform=PLATFORM)
        kind = call_kind(method, urlsplit(url).path)
        if kind == "export":
            self._export_budget.acquire()
        self._budget.acquire()
        self._count(kind)
        kwargs["timeout"] = self._config.timeout
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.Timeout:
            raise Unavailable(f"Zendesk {kind} call timed out after {self._config.timeout:g}s; "
                              "it will be retried", platform=PLATFORM)
        except requests.ConnectionError as error:
            raise Unavailable(f"cannot reach {self._origin} for a {kind} call ({type(error).__name__}); "
                              "check ZENDESK_SUBDOMAIN/ZENDESK_URL and the network", platform=PLATFORM)
        self._budget.observe(response.headers)
        if not 200 <= response.status_code < 300:
            error = error_for(response, kind, self._config)
            log.debug("Zendesk %s %s -> %s", method, urlsplit(url).path, response.status_code)
            raise error
        self._local.json = _payload(response)
        return response


class BearerAuth(requests.auth.AuthBase):
    """`Authorization: Bearer <token>`, with a repr that does not show the token."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth([redacted])"


class TokenAuth(requests.auth.HTTPBasicAuth):
    """Basic auth as `{email}/token:{token}`, with a repr that does not show the token."""

    def __repr__(self) -> str:
        return f"TokenAuth({self.username!r}, [redacted])"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def build_client(config: ZendeskConfig, session: ZendeskSession) -> Zenpy:
    """A real zenpy client that sends everything through `session` to `config.base_url`."""
    parts = urlsplit(config.base_url)
    if config.url:
        # zenpy builds https://{subdomain}.{domain}/api/v2; split our host so that it builds ours.
        subdomain, _, domain = parts.netloc.partition(".")
    else:
        subdomain, domain = config.subdomain, "zendesk.com"
    if config.oauth_token:
        client = Zenpy(subdomain=subdomain, domain=domain, oauth_token=config.oauth_token, session=session,
                       disable_cache=True, timeout=config.timeout)
        # An auth object (not zenpy's default header) so requests never swaps in ~/.netrc credentials.
        session.headers.pop("Authorization", None)
        session.auth = BearerAuth(config.oauth_token)
    else:
        client = Zenpy(subdomain=subdomain, domain=domain, email=config.email, token=config.api_token,
                       session=session, disable_cache=True, timeout=config.timeout)
        session.auth = TokenAuth(f"{config.email}/token", config.api_token or "")
    prefix = "/".join(p for p in (parts.path.strip("/"), "api/v2") if p)
    for api in vars(client).values():
        if isinstance(api, BaseApi):
            api.protocol = parts.scheme
            api.api_prefix = prefix
    return client


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret replaced, for messages built from foreign strings."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
