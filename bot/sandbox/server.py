"""A local HTTP server with fault injection, shared by the fake Zendesk, Freshdesk and Slack.

Each fake is a werkzeug WSGI app built on `SandboxApp`; `serve(app)` runs it
on a free 127.0.0.1 port in a background thread. Faults are queued on demand
(`app.faults.add(status=429, retry_after=1, times=2, path="/api/v2/incremental")`)
and every request is logged, so tests can count calls exactly.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


@dataclass
class Fault:
    """One injected failure: matched by method and path prefix, used `times` times."""

    status: int | None = None
    retry_after: float | None = None
    body: str | None = None
    content_type: str = "application/json"
    delay: float = 0.0
    path: str = ""
    method: str | None = None
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, request: Request) -> bool:
        """True if this fault applies to the request."""
        if self.method and request.method.upper() != self.method.upper():
            return False
        return request.path.startswith(self.path)


class Faults:
    """A thread-safe queue of faults the server applies before handling requests."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, **kwargs: Any) -> Fault:
        """Queue a fault, e.g. `add(status=503, times=3)` or `add(delay=2.0)`."""
        fault = Fault(**kwargs)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self._faults.clear()

    def take(self, request: Request) -> Fault | None:
        """The first fault matching the request, consuming one use of it."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


@dataclass(frozen=True)
class LoggedRequest:
    """What the server saw, for assertions on call counts and payloads."""

    method: str
    path: str
    query: str
    status: int
    body: bytes
    headers: dict[str, str]


class SandboxApp:
    """Base WSGI app: fault injection, request log, JSON helpers. Subclasses implement `handle`."""

    def __init__(self) -> None:
        self.faults = Faults()
        self.requests: list[LoggedRequest] = []
        self.base_url = "http://127.0.0.1"
        self.lock = threading.RLock()

    def handle(self, request: Request) -> Response:
        """Answer one request (subclasses)."""
        raise NotImplementedError

    def fault_response(self, fault: Fault) -> Response:
        """The response an injected fault produces; subclasses may adapt the body shape."""
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["Retry-After"] = str(int(fault.retry_after) if fault.retry_after == int(fault.retry_after)
                                         else fault.retry_after)
        body = fault.body if fault.body is not None else json.dumps({"error": f"injected {fault.status}"})
        return Response(body, status=fault.status or 500, headers=headers, content_type=fault.content_type)

    def count(self, path_prefix: str = "", method: str | None = None) -> int:
        """How many logged requests match a path prefix (and method)."""
        return sum(
            1
            for r in list(self.requests)
            if r.path.startswith(path_prefix) and (method is None or r.method == method.upper())
        )

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        body = request.get_data(cache=True)
        fault = self.faults.take(request)
        if fault and fault.delay:
            time.sleep(fault.delay)
        if fault and fault.status:
            response = self.fault_response(fault)
        else:
            try:
                with self.lock:
                    response = self.handle(request)
            except Exception as error:  # the fake must never hang a client
                response = Response(f"<html><body>sandbox error: {error!s}</body></html>", status=500,
                                    content_type="text/html")
        self.requests.append(
            LoggedRequest(request.method, request.path, request.query_string.decode(), response.status_code,
                          body, dict(request.headers))
        )
        return response(environ, start_response)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with the given status and headers."""
    return Response(json.dumps(payload, default=str), status=status, headers=headers or {},
                    content_type="application/json; charset=utf-8")


class _QuietHandler(WSGIRequestHandler):
    """Keeps the sandbox from printing a line per request into test and demo output."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class RunningServer:
    """A sandbox app served on 127.0.0.1 in a daemon thread; a context manager."""

    def __init__(self, app: SandboxApp, port: int = 0):
        self.app = app
        self._server: BaseWSGIServer = make_server("127.0.0.1", port, app, threaded=True,
                                                        request_handler=_QuietHandler)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        app.base_url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"sandbox-{self.port}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(app: SandboxApp, port: int = 0) -> RunningServer:
    """Start `app` on a free loopback port (or `port`) and return the running server."""
    return RunningServer(app, port)
