"""Which helpdesks to watch and how to reach them, Slack included, from the rules file and environment.

The rules file's `helpdesks:` list wins; when it is empty, every platform whose
credentials are in the environment is watched. With none, the error names the
exact variables to set. Credentials come from the environment only.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any

from bot.config import Config
from bot.connectors import CONNECTORS
from bot.connectors.base import Connector
from bot.errors import ConfigError, ConnectorError

CREDENTIALS: dict[str, tuple[tuple[str, ...], ...]] = {
    # any one tuple of variables fully present means "configured"
    "zendesk": (("ZENDESK_SUBDOMAIN", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN"),
                ("ZENDESK_SUBDOMAIN", "ZENDESK_OAUTH_TOKEN"),
                ("ZENDESK_URL", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN"),
                ("ZENDESK_URL", "ZENDESK_OAUTH_TOKEN")),
    "freshdesk": (("FRESHDESK_DOMAIN", "FRESHDESK_API_KEY"), ("FRESHDESK_URL", "FRESHDESK_API_KEY")),
}

HOW_TO = ("no helpdesk is configured: set ZENDESK_SUBDOMAIN, ZENDESK_EMAIL and ZENDESK_API_TOKEN (or "
          "ZENDESK_OAUTH_TOKEN) for Zendesk, and/or FRESHDESK_DOMAIN and FRESHDESK_API_KEY for Freshdesk; "
          "or list them under 'helpdesks:' in the rules file")


def configured(environ: Mapping[str, str]) -> list[str]:
    """Platforms whose credentials are present in the environment."""
    return [name for name, options in CREDENTIALS.items()
            if any(all(environ.get(v, "").strip() for v in option) for option in options)]


def choose(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """The helpdesks to watch: the rules file's list, else those with credentials; ConfigError if none."""
    environ = os.environ if environ is None else environ
    wanted = list(config.spec.helpdesks) or configured(environ)
    if not wanted:
        raise ConfigError([HOW_TO])
    return wanted


def connector_class(platform: str) -> Any:
    """The connector class registered for a platform."""
    module, _, name = CONNECTORS[platform].partition(":")
    return getattr(importlib.import_module(module), name)


def build_connectors(platforms: list[str], config: Config, environ: Mapping[str, str] | None = None,
                     **options: Any) -> dict[str, Connector]:
    """One connector per platform from the environment; every missing variable is reported at once."""
    environ = os.environ if environ is None else environ
    out: dict[str, Connector] = {}
    problems: list[str] = []
    share = config.spec.settings.api_share
    for platform in platforms:
        cls = connector_class(platform)
        try:
            if platform == "zendesk":
                from bot.connectors.zendesk_http import ZendeskConfig

                out[platform] = cls(ZendeskConfig.from_env(environ, budget_share=share), **options)
            elif platform == "freshdesk":
                out[platform] = cls.from_env(environ, human_share=1 - share, **options)
            else:
                out[platform] = cls.from_env(environ, **options)
        except ConfigError as error:
            problems += error.problems
        except ConnectorError as error:
            problems.append(str(error))
    if problems:
        raise ConfigError(problems)
    return out


def build_notifier(outbox: Any, config: Config, environ: Mapping[str, str] | None = None,
                   *, console: Callable[[str], None] | None = None, **options: Any) -> Any:
    """Slack when SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL is set, else the console notifier."""
    environ = os.environ if environ is None else environ
    threshold = config.spec.settings.digest_threshold
    if environ.get("SLACK_BOT_TOKEN") or environ.get("SLACK_WEBHOOK_URL"):
        from bot.notifiers.slack import SlackNotifier

        return SlackNotifier.from_env(outbox, environ=environ, digest_threshold=threshold, **options)
    try:
        from bot.notifiers.console import ConsoleNotifier
    except ImportError:  # pragma: no cover - console notifier not installed
        return None
    try:
        return ConsoleNotifier(outbox=outbox, digest_threshold=threshold, **options)
    except TypeError:
        return ConsoleNotifier(outbox)
