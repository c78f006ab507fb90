"""Message templates: `{{ field }}` placeholders and nothing else.

    message: "{{ priority }} ticket #{{ id }} from {{ requester }} waits for {{ unanswered_for }}"

A placeholder names a registered field (`subject`, `custom.plan`, `since_created`,
...) or one of `url`, `rule`, `team`. There are no expressions, filters, attribute
access or calls: a template cannot evaluate code, and a typo is a load-time error
with a suggestion. Values are rendered as plain text; each notifier escapes them
for its medium through `render(..., escape=...)`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from bot.model import Ticket
from bot.rules import fields as field_registry
from bot.rules.durations import format_duration
from bot.rules.operators import suggest

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[A-Za-z0-9_ -]+)*$")
EXTRA_NAMES = ("url", "rule", "team")


class TemplateError(ValueError):
    """A template names something that is not a field, or uses syntax templates don't have."""


@dataclass(frozen=True)
class Template:
    """A checked template: literal text and field names, in order."""

    text: str
    names: tuple[str, ...]
    fields: tuple[Any, ...] = ()

    def values(self, ticket: Ticket, now: datetime, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
        """The plain-text value of every placeholder for this ticket."""
        out: dict[str, str] = {}
        for name, field in zip(self.names, self.fields, strict=True):
            if extra and name in extra:
                out[name] = format_value(extra[name])
            elif name == "url":
                out[name] = ticket.url
            else:
                out[name] = format_value(field.getter(ticket, now) if field else None)
        return out

    def render(self, values: Mapping[str, str], escape: Callable[[str], str] = lambda s: s) -> str:
        """The text with each placeholder replaced by its escaped value."""
        return render(self.text, values, escape)


def parse(text: str, context: Any = None) -> Template:
    """Check a template; raise TemplateError naming the first bad placeholder."""
    if not isinstance(text, str):
        raise TemplateError("a message template is text")
    names: list[str] = []
    found: dict[str, Any] = {}
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1).strip()
        if not _NAME.match(name) or any(part.startswith("_") for part in name.split(".")):
            raise TemplateError(f"'{{{{{match.group(1)}}}}}' is not a placeholder: write {{{{ field }}}} "
                                "with a field name only (no expressions or filters)")
        try:
            field = None if name in EXTRA_NAMES else field_registry.resolve(name, context)
        except ValueError as error:
            raise TemplateError(str(error)) from None
        if name not in EXTRA_NAMES and field is None:
            valid = [*EXTRA_NAMES, *field_registry.FIELDS]
            raise TemplateError(f"unknown field '{name}' in template{suggest(name, valid)}")
        if name not in found:
            names.append(name)
            found[name] = field
    leftover = _PLACEHOLDER.sub("", text)
    if "{{" in leftover or "}}" in leftover:
        raise TemplateError("unbalanced '{{' or '}}' in template")
    return Template(text, tuple(names), tuple(found[n] for n in names))


def render(text: str, values: Mapping[str, str], escape: Callable[[str], str] = lambda s: s) -> str:
    """Replace `{{ name }}` with `escape(values[name])`; template text itself is left as written."""
    return _PLACEHOLDER.sub(lambda m: escape(str(values.get(m.group(1).strip(), ""))), text)


def format_value(value: Any) -> str:
    """Plain text for a field value: durations short, times in UTC, tag sets sorted."""
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, frozenset | set | list | tuple):
        return ", ".join(sorted(str(v) for v in value))
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)
