"""Builders for test data: a ticket with only the fields a test cares about, a config from YAML text."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from typing import Any

from bot.config import Config, load_config_text
from bot.model import Ticket
from bot.rules.testing import ticket_from_dict

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


def make_ticket(**fields: Any) -> Ticket:
    """A ticket with defaults for every field not given; times may be '3h ago'."""
    fields.setdefault("platform", "zendesk")
    return ticket_from_dict(fields, NOW)


def make_config(rules_yaml: str, *, teams: str = "") -> Config:
    """A config with the given `rules:` body (and optional `teams:` body)."""
    text = "version: 1\n"
    if teams:
        text += "teams:\n" + textwrap.indent(textwrap.dedent(teams), "  ")
    text += "rules:\n" + textwrap.indent(textwrap.dedent(rules_yaml), "  ")
    return load_config_text(text, "rules.yaml")
