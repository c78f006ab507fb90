"""Structured logs for the runner: one line per event, key=value or JSON, secrets never shown.

`configure(fmt="text"|"json")` installs the formatter on the `deskbot` logger;
`event(log, "action", rule=..., ticket=..., result=...)` logs one line with
fields. A filter masks the values of every credential variable present in the
environment (ZENDESK_API_TOKEN, SLACK_BOT_TOKEN, ...) wherever they appear, and
any field whose name looks secret.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

SECRET_VARIABLES = ("ZENDESK_API_TOKEN", "ZENDESK_OAUTH_TOKEN", "FRESHDESK_API_KEY", "SLACK_BOT_TOKEN",
                    "SLACK_WEBHOOK_URL", "ZENDESK_WEBHOOK_SECRET")
_SECRET_NAMES = ("token", "password", "secret", "api_key", "authorization")
MASK = "***"


def _secrets() -> list[str]:
    return [v for v in (os.environ.get(name, "") for name in SECRET_VARIABLES) if len(v) >= 4]


def redact(text: str, secrets: list[str] | None = None) -> str:
    """Text with every known secret value replaced by ***."""
    for secret in secrets if secrets is not None else _secrets():
        text = text.replace(secret, MASK)
    return text


def _clean(fields: dict[str, Any], secrets: list[str]) -> dict[str, Any]:
    out = {}
    for name, value in fields.items():
        if any(s in name.lower() for s in _SECRET_NAMES):
            out[name] = MASK
        elif isinstance(value, str):
            out[name] = redact(value, secrets)
        else:
            out[name] = value
    return out


def _plain(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=') or "\n" in text:
        return json.dumps(text)
    return text


class KeyValueFormatter(logging.Formatter):
    """`2024-06-10T09:00:00Z INFO action rule=route ticket=zendesk:1 result=done`."""

    def format(self, record: logging.LogRecord) -> str:
        secrets = _secrets()
        fields = _clean(getattr(record, "fields", {}), secrets)
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts = [when, record.levelname, redact(record.getMessage(), secrets)]
        parts += [f"{k}={_plain(v)}" for k, v in fields.items() if v is not None and v != ""]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info), secrets)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, event and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        secrets = _secrets()
        data = {"time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
                "level": record.levelname.lower(), "event": redact(record.getMessage(), secrets)}
        data.update(_clean(getattr(record, "fields", {}), secrets))
        if record.exc_info:
            data["traceback"] = redact(self.formatException(record.exc_info), secrets)
        return json.dumps(data, default=str)


def configure(fmt: str = "text", *, level: int = logging.INFO, stream: TextIO | None = None) -> logging.Logger:
    """Send the `deskbot` logger's records to `stream` (stderr) in the chosen format."""
    logger = logging.getLogger("deskbot")
    for handler in list(logger.handlers):
        if getattr(handler, "_deskbot", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    handler._deskbot = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def event(logger: logging.Logger, name: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event."""
    logger.log(level, name, extra={"fields": fields})


def get_logger(name: str = "") -> logging.Logger:
    """A child of the `deskbot` logger."""
    return logging.getLogger(f"deskbot.{name}" if name else "deskbot")
