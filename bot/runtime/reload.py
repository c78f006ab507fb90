"""Hot reload of the rules file: a good edit takes effect at the next cycle, a bad one is refused.

`RulesFile.current()` is called at the start of every cycle; it re-reads the
file only when its size, mtime or content hash changed. A file with errors is
rejected with exactly the `deskbot check` messages (logged once per distinct
content, and handed to `on_rejected`, e.g. for the admin Slack channel) while
the last good rules keep running.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from bot.config import Config, load_config_text
from bot.errors import ConfigError
from bot.logging_setup import event, get_logger


@dataclass(frozen=True)
class Rejected:
    """A rules file version that failed to load, and why."""

    digest: str
    problems: tuple[str, ...]


class RulesFile:
    """The rules file on disk and the last version of it that loaded cleanly."""

    def __init__(self, path: str, *, loader: Callable[[str, str], Config] = load_config_text,
                 on_loaded: Callable[[Config], None] | None = None,
                 on_rejected: Callable[[Rejected], None] | None = None, logger: logging.Logger | None = None):
        self.path = path
        self.loader = loader
        self.on_loaded = on_loaded
        self.on_rejected = on_rejected
        self.log = logger or get_logger("rules")
        self.config: Config | None = None
        self.digest: str | None = None
        self.rejected: Rejected | None = None
        self._stamp: tuple[int, int] | None = None

    def load(self) -> Config:
        """The first load: errors raise ConfigError (the bot must not start on a broken file)."""
        text, digest, stamp = self._read()
        self.config = self.loader(text, self.path)
        self.digest, self._stamp = digest, stamp
        event(self.log, "rules loaded", path=self.path, summary=self.config.summary())
        return self.config

    def current(self) -> Config:
        """The rules to use now: reloaded if the file changed and loads cleanly, else the last good ones."""
        if self.config is None:
            return self.load()
        try:
            stat = os.stat(self.path)
        except OSError as error:
            self._reject("", [f"{self.path}: cannot read: {error.strerror}; keeping the last good rules"])
            return self.config
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return self.config
        text, digest, stamp = self._read()
        self._stamp = stamp
        if digest == self.digest or (self.rejected and digest == self.rejected.digest):
            return self.config
        try:
            config = self.loader(text, self.path)
        except ConfigError as error:
            self._reject(digest, error.problems)
            return self.config
        self.config, self.digest, self.rejected = config, digest, None
        event(self.log, "rules reloaded", path=self.path, summary=config.summary())
        if self.on_loaded:
            self.on_loaded(config)
        return config

    def _read(self) -> tuple[str, str, tuple[int, int]]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
                stat = os.fstat(handle.fileno())
        except FileNotFoundError:
            raise ConfigError([f"{self.path}: no such file (create it, or pass --config PATH)"]) from None
        except OSError as error:
            raise ConfigError([f"{self.path}: cannot read: {error.strerror}"]) from None
        return text, hashlib.sha256(text.encode()).hexdigest(), (stat.st_mtime_ns, stat.st_size)

    def _reject(self, digest: str, problems: list[str]) -> None:
        rejected = Rejected(digest, tuple(problems))
        if self.rejected == rejected:
            return
        self.rejected = rejected
        event(self.log, "rules rejected; the last good rules keep running", level=logging.ERROR,
              path=self.path, problems="\n".join(problems))
        if self.on_rejected:
            self.on_rejected(rejected)
