"""`python -m bot.sandbox serve`: the fake Zendesk and Slack in their own process, outliving any bot.

    python -m bot.sandbox serve --zendesk --slack --port-file ports.json --seed 3 --tickets 40

writes `ports.json` once listening: {"zendesk": url, "zendesk_email", "zendesk_token", "slack_api": url,
"slack_token", "control": url}. The control port (tests, crash drills) answers GET /snapshot (every
ticket's fields and private notes, every Slack message), POST /human_update?id=N&field=value...,
POST /add_ticket?subject=...&priority=..., POST /fault?target=zendesk|slack&status=503&times=N&path=...,
and POST /shutdown. Runs until SIGTERM/SIGINT or /shutdown.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from bot.sandbox import seed as seeding
from bot.sandbox.server import SandboxApp, json_response, serve
from bot.sandbox.slack import DEFAULT_TOKEN, SlackSandbox
from bot.sandbox.zendesk import ZendeskSandbox


class ControlApp(SandboxApp):
    """Reads and scripts the sandboxes from another process."""

    def __init__(self, zendesk: ZendeskSandbox | None, slack: SlackSandbox | None, stop: threading.Event):
        super().__init__()
        self.zendesk, self.slack, self.stop = zendesk, slack, stop

    def handle(self, request: Request) -> Response:
        """Route the control calls."""
        args = dict(request.args)
        if request.path == "/snapshot":
            return json_response(self.snapshot())
        if request.path == "/shutdown":
            self.stop.set()
            return json_response({"ok": True})
        if request.path == "/human_update" and self.zendesk is not None:
            ticket_id = int(args.pop("id"))
            if "tags" in args:
                args["tags"] = [t for t in args["tags"].split(",") if t]  # type: ignore[assignment]
            return json_response({"ticket": self.zendesk.human_update(ticket_id, **args)})
        if request.path == "/add_ticket" and self.zendesk is not None:
            return json_response({"id": self.zendesk.add_ticket(args.pop("subject", "Help"), **args)})
        if request.path == "/fault":
            target = self.slack if args.pop("target", "zendesk") == "slack" else self.zendesk
            if target is None:
                return json_response({"error": "no such sandbox"}, status=404)
            fault = target.faults.add(status=int(args.get("status", 503)), times=int(args.get("times", 1)),
                                      path=args.get("path", ""), retry_after=float(args["retry_after"])
                                      if "retry_after" in args else None)
            return json_response({"ok": True, "times": fault.times})
        return json_response({"error": f"unknown control path {request.path}"}, status=404)

    def snapshot(self) -> dict[str, Any]:
        """Everything a test compares between runs."""
        out: dict[str, Any] = {}
        if self.zendesk is not None:
            tickets = {}
            for ticket_id in sorted(self.zendesk.tickets):
                data = self.zendesk.ticket(ticket_id)
                tickets[str(ticket_id)] = {
                    "status": data.get("status"), "priority": data.get("priority"), "group_id": data.get("group_id"),
                    "assignee_id": data.get("assignee_id"), "tags": sorted(data.get("tags") or ()),
                    "notes": self.zendesk.private_notes(ticket_id),
                }
            out["tickets"] = tickets
            out["zendesk_requests"] = len(self.zendesk.requests)
            out["zendesk_writes"] = sum(1 for r in list(self.zendesk.requests) if r.method in ("PUT", "POST"))
        if self.slack is not None:
            out["messages"] = [{"channel": m.channel, "text": m.text, "thread_ts": m.thread_ts}
                               for m in list(self.slack.messages)]
        return out


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve until stopped."""
    parser = argparse.ArgumentParser(prog="python -m bot.sandbox", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("serve", help="serve the fake Zendesk and/or Slack")
    cmd.add_argument("--zendesk", action="store_true")
    cmd.add_argument("--slack", action="store_true")
    cmd.add_argument("--port-file", required=True)
    cmd.add_argument("--seed", type=int, default=7)
    cmd.add_argument("--tickets", type=int, default=120)
    cmd.add_argument("--job-polls", type=int, default=0, help="job_statuses polls before a bulk job completes")
    cmd.add_argument("--channels", default="", help="extra Slack channels, comma-separated")
    args = parser.parse_args(argv)
    stop = threading.Event()
    servers = []
    zendesk = slack = None
    ports: dict[str, Any] = {}
    if args.zendesk:
        queue = seeding.generate(args.seed, tickets=args.tickets, now=datetime.now(UTC).replace(second=0))
        zendesk = ZendeskSandbox(queue, clock=lambda: datetime.now(UTC), job_polls=args.job_polls)
        servers.append(serve(zendesk))
        ports.update(zendesk=servers[-1].url, zendesk_email=zendesk.email, zendesk_token=zendesk.api_token)
    if args.slack:
        slack = SlackSandbox()
        for name in filter(None, args.channels.split(",")):
            slack.add_channel(name.strip().lstrip("#"))
        servers.append(serve(slack))
        ports.update(slack_api=slack.api_url, slack_token=DEFAULT_TOKEN)
    control = serve(ControlApp(zendesk, slack, stop))
    servers.append(control)
    ports["control"] = control.url
    ports["pid"] = os.getpid()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(ports, handle)
    os.replace(tmp, args.port_file)  # readers never see a half-written file
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    for server in servers:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
