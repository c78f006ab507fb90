"""Every HTTP call to Freshdesk goes through here: auth, pooling, timeouts, budget, retries, typed errors.

One `requests.Session` (pooled keep-alive connections, no automatic redirects)
carries the API key as Basic auth; `RateBudget` spaces calls so the bot keeps
its share of the account's per-minute credits (learned from the
`X-Ratelimit-*` headers, including what each kind of call costs), and
`RetryPolicy` (bot/retry.py) owns backoff: `Retry-After` on 429, full jitter
on 5xx and timeouts. Failures become `bot.errors` types whose messages say
what to fix and never contain the key.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from bot import __version__
from bot.connectors.base import CallCounter
from bot.connectors.freshdesk_mapping import PLATFORM
from bot.errors import (
    AuthError,
    Conflict,
    ConnectorError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unavailable,
)
from bot.retry import RateBudget, RetryPolicy

log = logging.getLogger("bot.connectors.freshdesk")

USED_HEADER = "X-Ratelimit-Used-CurrentRequest"


class ApiKeyAuth(AuthBase):
    """Freshdesk Basic auth (user = API key, password = X) that never shows the key in a repr."""

    def __init__(self, api_key: str):
        self._header = "Basic " + base64.b64encode(f"{api_key}:X".encode()).decode()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request

    def __repr__(self) -> str:
        return "ApiKeyAuth(<FRESHDESK_API_KEY redacted>)"


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def describe_validation(body: Any) -> tuple[str, list[dict[str, Any]]]:
    """Freshdesk's 400 body as one line naming each field: `status: It should be one of ... (invalid_value)`."""
    if not isinstance(body, Mapping):
        return "no details in the response", []
    errors = [e for e in body.get("errors") or [] if isinstance(e, Mapping)]
    parts = [f"{e.get('field') or '(request)'}: {e.get('message') or 'invalid'} ({e.get('code') or '?'})"
             for e in errors]
    summary = str(body.get("description") or body.get("message") or "Validation failed")
    return (summary + ("; " + "; ".join(parts) if parts else "")), [dict(e) for e in errors]


def error_for(response: requests.Response, method: str) -> ConnectorError:
    """The typed error for a failed response, with a message that says what to do."""
    status = response.status_code
    body = _json(response)
    body = body if isinstance(body, Mapping) else {}
    where = f"{method} {urlsplit(response.url).path}"
    code, message = body.get("code"), body.get("message") or body.get("description") or ""
    common = {"status": status, "platform": PLATFORM}
    if status == 401:
        return AuthError(
            f"FRESHDESK_API_KEY was rejected (401): {str(message or 'invalid credentials').rstrip('.')}. "
            "Copy the key from "
            "Freshdesk (your avatar > Profile settings > View API key) and check that FRESHDESK_DOMAIN "
            "names the same account", **common)
    if status == 403:
        if code == "require_feature":
            return PermissionDenied(f"Freshdesk refused {where} (403 require_feature): the account's plan "
                                    f"lacks this feature. {message}".strip(), **common)
        return PermissionDenied(f"Freshdesk refused {where} (403 {code or 'access_denied'}): the agent "
                                "owning FRESHDESK_API_KEY lacks the permission for it; use the key of an agent "
                                "whose role allows it (listing agents and groups may need an admin)", **common)
    if status == 404:
        return NotFound(f"Freshdesk has no such record: {where} (404)", **common)
    if status == 409:
        return Conflict(f"Freshdesk reported a conflict on {where} (409): {message}".strip(), **common)
    if status in (400, 422):
        summary, errors = describe_validation(body)
        return InvalidRequest(f"Freshdesk refused {where} ({status}): {summary}",
                              details={"errors": errors, "fields": [e.get("field") for e in errors]}, **common)
    if status == 429:
        wait = _retry_after(response)
        return RateLimited(f"Freshdesk rate limit reached on {where} (429); retry after "
                           f"{wait if wait is not None else 'a backoff'}s", retry_after=wait, **common)
    if status >= 500:
        return Unavailable(f"Freshdesk failed on {where} ({status}); deskbot retries with backoff", **common)
    if 300 <= status < 400:
        return ConnectorError(f"Freshdesk redirected {where} to {response.headers.get('Location')!r} ({status}): "
                              "set FRESHDESK_DOMAIN to the account's <name>.freshdesk.com name "
                              "(custom domains do not serve the API)", **common)
    return InvalidRequest(f"Freshdesk refused {where} ({status} {code or ''}): {message or 'no details'}; "
                          "this is a deskbot bug, please report it", **common)


class FreshdeskHttp:
    """A pooled, budgeted, retrying JSON client for one Freshdesk account."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy | None = None,
        budget: RateBudget | None = None,
        calls: CallCounter | None = None,
        session: requests.Session | None = None,
        pool_size: int = 8,
    ):
        self.base_url = base_url.rstrip("/")
        origin = urlsplit(self.base_url)
        self._origin = (origin.scheme, origin.netloc)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.budget = budget or RateBudget(50, share=0.5)
        self.calls = calls or CallCounter()
        self.costs: dict[str, int] = {}
        self.session = session or requests.Session()
        self.session.auth = ApiKeyAuth(api_key)
        # What a server (or proxy) might echo back into an error body; never let it reach a message.
        self._secrets = tuple(x for x in (api_key, base64.b64encode(f"{api_key}:X".encode()).decode()) if x)
        self.session.headers.update({"Accept": "application/json", "User-Agent": f"deskbot/{__version__}"})
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def __repr__(self) -> str:
        return f"FreshdeskHttp(base_url={self.base_url!r}, api_key=<redacted>)"

    def url(self, target: str) -> str:
        """An absolute URL for `/api/v2/...`, or a Link-header URL checked to be on our own host."""
        if target.startswith("/"):
            return self.base_url + target
        parts = urlsplit(target)
        if (parts.scheme, parts.netloc) != self._origin:
            raise ConnectorError(f"Freshdesk sent a link to {parts.scheme}://{parts.netloc}, not to "
                                 f"{self.base_url}; refusing to send the API key there", platform=PLATFORM)
        return target

    def request(self, kind: str, method: str, target: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, retry: bool = True) -> requests.Response:
        """One API call (retried unless `retry=False`); returns the 2xx response or raises a typed error."""
        url = self.url(target)
        if not retry:
            return self._send(kind, method, url, params, json)

        def on_retry(attempt: int, error: Exception, wait: float) -> None:
            log.warning("Freshdesk %s %s failed (%s); attempt %d in %.1fs", method, urlsplit(url).path,
                        error, attempt + 1, wait)

        return self.retry.call(lambda: self._send(kind, method, url, params, json), on_retry=on_retry)

    def get_json(self, kind: str, target: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET and decode the JSON body."""
        return self.request(kind, "GET", target, params=params).json()

    def paginate(self, kind: str, target: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every item of a list endpoint, following `Link: <...>; rel="next"` to the last page."""
        items: list[Any] = []
        next_target: str | None = target
        while next_target:
            response = self.request(kind, "GET", next_target, params=params)
            page = response.json()
            items.extend(page if isinstance(page, list) else [page])
            next_target, params = self.next_link(response), None
        return items

    def next_link(self, response: requests.Response) -> str | None:
        """The `rel="next"` URL of a list response (validated to be ours), or None on the last page."""
        url = response.links.get("next", {}).get("url")
        return self.url(url) if url else None

    def _scrubbed(self, error: ConnectorError) -> ConnectorError:
        """The error with any echo of the key replaced, in its message and its details."""
        def scrub(value: Any) -> Any:
            if isinstance(value, str):
                for secret in self._secrets:
                    value = value.replace(secret, "<redacted>")
                return value
            if isinstance(value, Mapping):
                return {k: scrub(v) for k, v in value.items()}
            if isinstance(value, list):
                return [scrub(v) for v in value]
            return value

        error.args = tuple(scrub(arg) for arg in error.args)
        if isinstance(error, InvalidRequest):
            error.details = scrub(error.details)
        return error

    def _acquire(self, kind: str) -> None:
        for _ in range(self.costs.get(kind, 1)):
            self.budget.acquire()

    def _send(self, kind: str, method: str, url: str, params: Mapping[str, Any] | None,
              json: Any) -> requests.Response:
        self._acquire(kind)
        self.calls.add(kind)
        path = urlsplit(url).path
        try:
            response = self.session.request(method, url, params=params, json=json, timeout=self.timeout,
                                            allow_redirects=False)
        except requests.Timeout as error:
            unavailable = Unavailable(f"Freshdesk did not answer {method} {path} in time ({type(error).__name__}, "
                                      f"timeout {self.timeout}s); deskbot retries with backoff", platform=PLATFORM)
            unavailable.maybe_applied = not isinstance(error, requests.ConnectTimeout)  # type: ignore[attr-defined]
            raise unavailable from None
        except requests.ConnectionError as error:
            raise Unavailable(f"cannot reach Freshdesk at {self.base_url} ({type(error).__name__}); check "
                              "FRESHDESK_DOMAIN (or FRESHDESK_URL) and the network", platform=PLATFORM) from None
        except requests.RequestException as error:
            raise ConnectorError(f"Freshdesk {method} {path} failed: {type(error).__name__}",
                                 platform=PLATFORM) from None
        self.budget.observe(response.headers)
        used = response.headers.get(USED_HEADER)
        if used and used.isdigit() and int(used) > 0:
            self.costs[kind] = int(used)
        log.debug("Freshdesk %s %s -> %d (used %s)", method, path, response.status_code, used)
        if response.status_code >= 300:
            error = self._scrubbed(error_for(response, method))
            error.maybe_applied = response.status_code >= 500  # type: ignore[attr-defined]
            raise error
        return response
