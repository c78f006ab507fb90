"""Building a `Runner` from the command line's options and the environment (credentials never from files)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from bot.logging_setup import configure
from bot.runner import Runner, RunOptions, utcnow
from bot.runtime.helpdesks import build_connectors, build_notifier, choose
from bot.runtime.reload import RulesFile
from bot.sandbox.server import RunningServer
from bot.state.sqlite import SqliteStore


def build_runner(options: RunOptions, *, environ: Mapping[str, str] | None = None, log_format: str | None = None,
                 clock: Callable[[], datetime] = utcnow, connector_options: Mapping[str, Any] | None = None,
                 platforms: list[str] | None = None) -> tuple[Runner, RunningServer | None]:
    """Rules, store, connectors, notifier and (optionally) the health port, wired together."""
    environ = os.environ if environ is None else environ
    rules = RulesFile(options.config_path)
    config = rules.load()
    configure(log_format or config.spec.settings.log_format)
    platforms = platforms or choose(config, environ)
    connectors = build_connectors(platforms, config, environ, **dict(connector_options or {}))
    path = options.state_path or environ.get("DESKBOT_STATE_PATH") or config.spec.settings.state_path
    store = SqliteStore(path, clock=clock)
    notifier = build_notifier(store, config, environ)
    runner = Runner(rules, store, connectors, notifier, options=options, clock=clock)
    health = None
    if options.health_port is not None:
        from bot.health import serve_health

        health = serve_health(runner.status_checked, runner.metrics, port=options.health_port)
    return runner, health
