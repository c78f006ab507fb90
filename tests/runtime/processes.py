"""Real processes for crash drills: the sandbox (`python -m bot.sandbox serve`) and `deskbot run --once`."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

RULES = """\
version: 1
mode: live
settings: {blast_radius: 1.0, digest_threshold: 100}
teams:
  billing: {group: Billing, slack_channel: "#support-alerts"}
rules:
  - name: route billing
    when:
      all:
        - subject: {matches: "(?i)refund|invoice|charge|billing|payment"}
        - group: {is_empty: true}
    then: [{set_group: {team: billing}}, {add_tags: [bot_routed]}]
  - name: assign billing
    when:
      all: [{group: Billing}, {assignee: {is_empty: true}}, {status: {in: [new, open]}}]
    then: [{assign: {team: billing, strategy: round_robin}}]
  - name: escalate urgent
    when:
      all: [{priority: urgent}, {tags: {lacks: bot_escalated}}, {status: {not_in: [solved, closed]}}]
    then:
      - add_tags: [bot_escalated]
      - add_note: "Escalated by deskbot"
      - notify: {channel: "#escalations", message: "Urgent #{{ id }}: {{ subject }}"}
  - name: vip high
    when:
      all: [{tags: {has: vip}}, {priority: {in: [low, normal]}}]
    then: [{set_priority: high}]
"""


class Sandbox:
    """The fake Zendesk + Slack in a child process that outlives any bot process."""

    def __init__(self, workdir: Path, *, seed: int = 3, tickets: int = 40):
        self.workdir = workdir
        port_file = workdir / "ports.json"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.sandbox", "serve", "--zendesk", "--slack", "--port-file", str(port_file),
             "--seed", str(seed), "--tickets", str(tickets)], cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        for _ in range(300):
            if port_file.exists():
                break
            if self.process.poll() is not None:
                raise RuntimeError("sandbox died: " + self.process.stderr.read().decode())  # type: ignore[union-attr]
            time.sleep(0.05)
        self.ports: dict[str, Any] = json.loads(port_file.read_text())

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a bot process needs to talk to this sandbox (and nothing else)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ZENDESK_", "FRESHDESK_", "SLACK_"))}
        env.update(ZENDESK_URL=self.ports["zendesk"], ZENDESK_EMAIL=self.ports["zendesk_email"],
                   ZENDESK_API_TOKEN=self.ports["zendesk_token"], SLACK_BOT_TOKEN=self.ports["slack_token"],
                   SLACK_API_URL=self.ports["slack_api"], DESKBOT_STATE_PATH=str(self.workdir / "state.sqlite3"))
        env.pop("DESKBOT_CRASH_AT", None)
        env.update(extra)
        return env

    def control(self, path: str, **params: Any) -> Any:
        """Call the sandbox's control port."""
        query = "&".join(f"{k}={urllib.request.quote(str(v))}" for k, v in params.items())
        request = urllib.request.Request(f"{self.ports['control']}{path}?{query}", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def snapshot(self) -> dict[str, Any]:
        """Tickets and Slack messages as they are now."""
        with urllib.request.urlopen(f"{self.ports['control']}/snapshot", timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        """Shut the sandbox down."""
        with contextlib.suppress(OSError):
            self.control("/shutdown")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_once(sandbox: Sandbox, rules: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """One `deskbot run --once` process against the sandbox."""
    return subprocess.run([sys.executable, "-m", "bot", "run", "--once", "--config", str(rules)], cwd=ROOT,
                          env=sandbox.env(**env), capture_output=True, text=True, timeout=120)


def messages(snapshot: dict[str, Any]) -> Counter:
    """Slack messages as a multiset of (channel, text)."""
    return Counter((m["channel"], m["text"]) for m in snapshot["messages"])
