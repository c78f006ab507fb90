"""Counters and gauges for /metrics, in the Prometheus text format, with no client library needed."""

from __future__ import annotations

import threading
from collections.abc import Mapping

_HELP = {
    "deskbot_cycles_total": ("counter", "Poll cycles completed, by helpdesk."),
    "deskbot_cycle_errors_total": ("counter", "Poll cycles that failed, by helpdesk and error type."),
    "deskbot_actions_total": ("counter", "Helpdesk actions settled, by helpdesk, rule and result."),
    "deskbot_alerts_total": ("counter", "Alerts handled by the notifier, by result."),
    "deskbot_api_calls_total": ("counter", "Helpdesk API calls made, by helpdesk."),
    "deskbot_lag_seconds": ("gauge", "Seconds since the last successful poll, by helpdesk."),
    "deskbot_mirror_tickets": ("gauge", "Open tickets in the local mirror, by helpdesk."),
    "deskbot_outbox_pending": ("gauge", "Alerts waiting for delivery."),
    "deskbot_store_writable": ("gauge", "1 when the state store accepted the last write, else 0."),
    "deskbot_rules_held": ("gauge", "Rules held back by the blast-radius guard."),
}


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in sorted(labels.items()))
    return "{" + inner + "}"


class Metrics:
    """Thread-safe named series; `render()` gives the /metrics body."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._lock = threading.Lock()

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        with self._lock:
            self._values[(name, tuple(sorted(labels.items())))] = float(value)

    def get(self, name: str, **labels: str) -> float:
        """One series' value (0 when never set)."""
        with self._lock:
            return self._values.get((name, tuple(sorted(labels.items()))), 0.0)

    def total(self, name: str) -> float:
        """The sum over every label set of a series."""
        with self._lock:
            return sum(v for (n, _), v in self._values.items() if n == name)

    def render(self) -> str:
        """The Prometheus text exposition of every series."""
        with self._lock:
            items = sorted(self._values.items())
        lines: list[str] = []
        seen: set[str] = set()
        for (name, labels), value in items:
            if name not in seen:
                seen.add(name)
                kind, text = _HELP.get(name, ("gauge", name))
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            number = int(value) if value == int(value) else value
            lines.append(f"{name}{_labels(dict(labels))} {number}")
        return "\n".join(lines) + "\n"
