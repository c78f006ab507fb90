"""Every error deskbot raises on purpose, so callers can catch by meaning.

    DeskbotError
    ├── ConfigError            the rules file is wrong (carries every problem at once)
    ├── ConnectorError         a helpdesk call failed
    │   ├── AuthError          credentials rejected (401)
    │   ├── PermissionDenied   credentials lack a right (403)
    │   ├── NotFound           the record does not exist (404)
    │   ├── Conflict           the record changed under us (409)
    │   ├── InvalidRequest     the helpdesk refused the values (400/422), with its message
    │   ├── RateLimited        429; carries `retry_after` seconds
    │   └── Unavailable        5xx, timeouts, connection failures (worth retrying)
    ├── NotifierError          a Slack (or other) delivery failed
    │   └── NotifierRateLimited
    └── StateError             the state store cannot record (disk full, locked)

Messages say what to fix, never contain secrets.
"""

from __future__ import annotations


class DeskbotError(Exception):
    """Base of every deliberate deskbot error."""


class ConfigError(DeskbotError):
    """The rules file has problems; `problems` lists each as a compiler-style line."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ConnectorError(DeskbotError):
    """A helpdesk API call failed."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, platform: str | None = None):
        self.status = status
        self.platform = platform
        super().__init__(message)


class AuthError(ConnectorError):
    """The helpdesk rejected the credentials (401)."""


class PermissionDenied(ConnectorError):
    """The credentials are valid but lack a permission or plan feature (403)."""


class NotFound(ConnectorError):
    """The ticket, user or group does not exist (404)."""


class Conflict(ConnectorError):
    """The record changed since it was read (409, safe update)."""


class InvalidRequest(ConnectorError):
    """The helpdesk refused the request's values (400/422); the message is the platform's."""

    def __init__(self, message: str, *, details: dict | None = None, **kwargs):
        self.details = details or {}
        super().__init__(message, **kwargs)


class Unavailable(ConnectorError):
    """A transient failure: 5xx, timeout, connection refused."""

    retryable = True


class RateLimited(Unavailable):
    """429 from the helpdesk; wait `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class NotifierError(DeskbotError):
    """A notification could not be delivered."""

    def __init__(self, message: str, *, retryable: bool = False, ambiguous: bool = False):
        self.retryable = retryable
        self.ambiguous = ambiguous
        super().__init__(message)


class NotifierRateLimited(NotifierError):
    """Slack answered 429; wait `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(message, retryable=True)


class StateError(DeskbotError):
    """The state store cannot record, so nothing may be changed that it cannot remember."""
