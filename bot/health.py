"""An opt-in HTTP port with /healthz (is the runner able to do its job?) and /metrics (Prometheus).

Health is red (503) when the state store cannot write (the runner then refuses
to change tickets) or when no poll has completed for too long; helpdesk
outages show in the body but keep it green, since the bot itself is fine.
Served by werkzeug on 127.0.0.1 only (put a proxy in front to expose it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from bot.runtime.metrics import Metrics
from bot.sandbox.server import RunningServer, SandboxApp


class HealthApp(SandboxApp):
    """/healthz from a status callback, /metrics from a `Metrics`."""

    def __init__(self, status: Callable[[], dict[str, Any]], metrics: Metrics):
        super().__init__()
        self.status = status
        self.metrics = metrics

    def handle(self, request: Request) -> Response:
        """Answer /healthz and /metrics."""
        if request.path == "/healthz":
            body = self.status()
            code = 200 if body.get("healthy") else 503
            return Response(json.dumps(body, default=str), status=code, content_type="application/json")
        if request.path == "/metrics":
            return Response(self.metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")
        return Response("not found: try /healthz or /metrics\n", status=404, content_type="text/plain")

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        response = self.handle(Request(environ))  # no request log: this runs for the bot's whole life
        return response(environ, start_response)


def serve_health(status: Callable[[], dict[str, Any]], metrics: Metrics, *, port: int) -> RunningServer:
    """Start the health server on 127.0.0.1:`port` (0: any free port) in a daemon thread; `.stop()` ends it."""
    return RunningServer(HealthApp(status, metrics), port)
