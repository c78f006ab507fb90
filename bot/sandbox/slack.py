"""A fake Slack Web API (and incoming webhook) for tests, the demo and trying rules safely.

Speaks what slack_sdk sends: every method as POST with a JSON or form body
(GET with a query works too), `Authorization: Bearer <token>` checked, string
`ts`, Slack's `{"ok": false, "error": …}` envelope, 429 `ratelimited` with
`Retry-After`, and Block Kit limits enforced like Slack (`invalid_blocks`,
`msg_blocks_too_long`). Every post is recorded (`messages`, with updates and
thread replies) so tests and `deskbot demo` can read what supervisors would see.

    app = SlackSandbox()
    app.add_channel("billing-alerts"); app.add_user("dee@example.com", "Dee")
    with serve(app) as server:   # SLACK_API_URL = server.url + "/api/"
        ...
        app.ratelimit("chat.postMessage", times=2, retry_after=0)
"""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

from bot.sandbox.server import Fault, SandboxApp, json_response

DEFAULT_TOKEN = "xoxb-sandbox-0000-deskbot"
WEBHOOK_PATH = "/services/T0SANDBOX/B0SANDBOX/sandbox-webhook-secret"
BOT_USER = "U0DESKBOT"
TOTAL_BLOCK_TEXT_MAX = 12_000


@dataclass
class Channel:
    """A conversation: public or private channel, or a DM (`user` set)."""

    id: str
    name: str
    is_private: bool = False
    is_member: bool = True
    is_archived: bool = False
    user: str | None = None


@dataclass
class User:
    """A workspace member."""

    id: str
    email: str
    name: str
    tz: str = "Europe/Berlin"


@dataclass
class UserGroup:
    """A user group, mentioned as <!subteam^ID>."""

    id: str
    handle: str
    name: str
    users: list[str] = field(default_factory=list)


@dataclass
class Message:
    """A message as Slack stores it; `payload` is the request as received (token removed)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    via: str = "api"
    payload: dict[str, Any] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)


def block_problem(blocks: Any) -> tuple[str, str] | None:
    """(error code, detail) if Slack would refuse these blocks, else None."""
    if not isinstance(blocks, list):
        return "invalid_blocks_format", "blocks must be an array"
    if len(blocks) > 50:
        return "invalid_blocks", "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"
    total = 0

    def text(obj: Any, pointer: str, limit: int, types: tuple[str, ...] = ("plain_text", "mrkdwn")) -> str | None:
        nonlocal total
        if not isinstance(obj, dict) or obj.get("type") not in types:
            return f"[ERROR] must be a text object of type {'/'.join(types)} [json-pointer:{pointer}]"
        value = obj.get("text")
        if not isinstance(value, str) or not value:
            return f"[ERROR] must be more than 0 characters [json-pointer:{pointer}/text]"
        if len(value) > limit:
            return f"[ERROR] must be less than {limit + 1} characters [json-pointer:{pointer}/text]"
        total += len(value)
        return None

    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        kind = block.get("type") if isinstance(block, dict) else None
        problem = None
        if kind == "header":
            problem = text(block.get("text"), f"{at}/text", 150, ("plain_text",))
        elif kind == "section":
            fields = block.get("fields") or []
            if "text" not in block and not fields:
                problem = f"[ERROR] must provide text or fields [json-pointer:{at}]"
            elif len(fields) > 10:
                problem = f"[ERROR] no more than 10 items allowed [json-pointer:{at}/fields]"
            else:
                problem = ("text" in block and text(block["text"], f"{at}/text", 3000)) or None
                for j, item in enumerate(fields):
                    problem = problem or text(item, f"{at}/fields/{j}", 2000)
        elif kind == "context":
            elements = block.get("elements") or []
            if not elements or len(elements) > 10:
                problem = f"[ERROR] must have 1 to 10 elements [json-pointer:{at}/elements]"
            for j, item in enumerate(elements):
                problem = problem or text(item, f"{at}/elements/{j}", 3000)
        elif kind not in ("divider", "actions", "image", "rich_text", "markdown", "file", "input"):
            problem = f"[ERROR] unsupported type: {kind} [json-pointer:{at}/type]"
        if problem:
            return "invalid_blocks", problem
    if total > TOTAL_BLOCK_TEXT_MAX:
        return "msg_blocks_too_long", f"{total} characters of block text"
    return None


class SlackSandbox(SandboxApp):
    """The fake Slack server; seeded with a few channels, users and user groups."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, seed: bool = True, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self._seed, self._initial_clock = seed, clock
        self.token = token
        self.clock = clock
        self.pace: float | None = None  # e.g. 1.0: a second post to a channel within 1 s gets 429
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, User] = {}
        self.usergroups: dict[str, UserGroup] = {}
        self.messages: list[Message] = []
        self.uploads: dict[str, dict[str, Any]] = {}
        self.webhook_channel = "C0SUPPORT"
        self._after: list[Fault] = []
        self._last_post: dict[str, float] = {}
        self._ids = itertools.count(1)
        self._ts = itertools.count(1)
        if seed:
            self.add_channel("support-alerts", id="C0SUPPORT")
            self.add_channel("escalations", id="C0ESCALAT")
            self.add_channel("general", id="C0GENERAL")
            self.add_channel("leads", id="G0LEADSXX", private=True)
            self.add_channel("old-alerts", id="C0ARCHIVE", archived=True)
            self.add_channel("outsiders", id="C0OUTSIDE", member=False)
            ana = self.add_user("ana@example.com", "Ana Lima", id="U0ANALIMA")
            ben = self.add_user("ben@example.com", "Ben Okafor", id="U0BENOKAF")
            cara = self.add_user("cara@example.com", "Cara Diaz", id="U0CARADIA", tz="America/New_York")
            self.add_usergroup("oncall", [ana, ben], name="Support on-call", id="S0ONCALLX")
            self.add_usergroup("support-leads", [cara], name="Support leads", id="S0LEADSXX")

    def reset(self) -> None:
        """Forget every message, fault and addition, back to the seeded workspace (same server)."""
        base_url = self.base_url
        with self.lock:
            self.__init__(self.token, seed=self._seed, clock=self._initial_clock)  # type: ignore[misc]
        self.base_url = base_url

    # ---- seeding -------------------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}0SBX{next(self._ids):05d}"

    def add_channel(self, name: str, *, id: str | None = None, private: bool = False, member: bool = True,
                    archived: bool = False) -> str:
        """Add a channel; returns its id."""
        channel = Channel(id or self._new_id("G" if private else "C"), name.lstrip("#"), private, member, archived)
        self.channels[channel.id] = channel
        return channel.id

    def add_user(self, email: str, name: str | None = None, *, id: str | None = None,
                 tz: str = "Europe/Berlin") -> str:
        """Add a member; returns its id."""
        user = User(id or self._new_id("U"), email, name or email.split("@")[0], tz)
        self.users[user.id] = user
        return user.id

    def add_usergroup(self, handle: str, users: list[str] | tuple[str, ...] = (), *, name: str | None = None,
                      id: str | None = None) -> str:
        """Add a user group; returns its id."""
        group = UserGroup(id or self._new_id("S"), handle, name or handle, list(users))
        self.usergroups[group.id] = group
        return group.id

    # ---- faults and reading back ------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        """What SLACK_API_URL should be."""
        return f"{self.base_url}/api/"

    @property
    def webhook_url(self) -> str:
        """What SLACK_WEBHOOK_URL should be."""
        return f"{self.base_url}{WEBHOOK_PATH}"

    def ratelimit(self, method: str | None = None, *, times: int = 1, retry_after: float = 0) -> Fault:
        """Answer the next `times` calls (of `method`, or any) with 429 ratelimited."""
        path = WEBHOOK_PATH if method == "webhook" else f"/api/{method or ''}"
        return self.faults.add(status=429, retry_after=retry_after, times=times, path=path)

    def outage(self, *, times: int = 1, status: int = 503) -> Fault:
        """Fail the next `times` requests of any kind with `status` before handling them."""
        return self.faults.add(status=status, times=times)

    def fail_after_handling(self, method: str, *, status: int = 500, times: int = 1) -> None:
        """Handle the next `times` calls of `method` (a post happens), then answer `status`: an ambiguous post."""
        self._after.append(Fault(status=status, times=times, path=f"/api/{method}"))

    def channel(self, name_or_id: str) -> Channel | None:
        """A channel by id or name (with or without '#')."""
        wanted = name_or_id.lstrip("#")
        return self.channels.get(wanted) or next((c for c in self.channels.values() if c.name == wanted), None)

    def posts(self, channel: str | None = None) -> list[Message]:
        """Top-level messages, optionally in one channel (name or id)."""
        found = self.channel(channel) if channel else None
        return [m for m in self.messages if m.thread_ts is None and (found is None or m.channel == found.id)]

    def replies(self, channel: str, ts: str) -> list[Message]:
        """Thread replies under one message."""
        found = self.channel(channel)
        return [m for m in self.messages if m.thread_ts == ts and found and m.channel == found.id]

    def fault_response(self, fault: Fault) -> Response:
        """Slack-shaped bodies for injected faults: JSON `ratelimited`, an HTML 5xx page."""
        if fault.body is None and fault.status == 429 and fault.path == WEBHOOK_PATH:
            fault.body, fault.content_type = "rate_limited", "text/plain"
        elif fault.body is None and fault.status == 429:
            fault.body = json.dumps({"ok": False, "error": "ratelimited"})
        elif fault.body is None and (fault.status or 500) >= 500:
            fault.body, fault.content_type = "<html><body>Slack is having trouble</body></html>", "text/html"
        return super().fault_response(fault)

    # ---- HTTP --------------------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        """Route one request."""
        if request.path == WEBHOOK_PATH:
            return self._webhook(request)
        if request.path.startswith("/upload/v1/"):
            return self._upload(request)
        if not request.path.startswith("/api/"):
            return Response("not found", status=404)
        method = request.path[len("/api/"):]
        params = self._params(request)
        supplied = (request.headers.get("Authorization") or "").removeprefix("Bearer ").strip() or params.pop(
            "token", "")
        params.pop("token", None)
        if not supplied:
            return self._error("not_authed")
        if supplied != self.token:
            return self._error("invalid_auth")
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return self._error("unknown_method", status=404)
        response = handler(params)
        for fault in list(self._after):
            if request.path.startswith(fault.path):
                fault.times -= 1
                if fault.times <= 0:
                    self._after.remove(fault)
                return super().fault_response(Fault(status=fault.status, body="<html>upstream error</html>",
                                                    content_type="text/html"))
        return response

    @staticmethod
    def _params(request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.args.items())
        if request.is_json:
            params.update(request.get_json(silent=True) or {})
        else:
            params.update(request.form.items())
        for name in ("blocks", "metadata", "files", "attachments"):
            if isinstance(params.get(name), str):
                with contextlib.suppress(ValueError):
                    params[name] = json.loads(params[name])
        return params

    @staticmethod
    def _ok(**data: Any) -> Response:
        return json_response({"ok": True, **data})

    @staticmethod
    def _error(code: str, status: int = 200, **extra: Any) -> Response:
        return json_response({"ok": False, "error": code, **extra}, status=status)

    def _next_ts(self) -> str:
        n = next(self._ts)
        return f"{1_700_000_000 + n}.{n % 1_000_000:06d}"

    def _target(self, value: str) -> Channel | None:
        if value in self.users:
            return self._dm(value)
        return self.channel(value)

    def _dm(self, user_id: str) -> Channel:
        found = next((c for c in self.channels.values() if c.user == user_id), None)
        if found is None:
            found = Channel("D" + user_id[1:], user_id, is_private=True, user=user_id)
            self.channels[found.id] = found
        return found

    def _postable(self, params: dict[str, Any]) -> tuple[Channel | None, Response | None]:
        channel = self._target(str(params.get("channel") or ""))
        if channel is None:
            return None, self._error("channel_not_found")
        if channel.is_archived:
            return None, self._error("is_archived")
        if not channel.is_member and channel.user is None:
            return None, self._error("not_in_channel")
        if not params.get("text") and not params.get("blocks"):
            return None, self._error("no_text")
        if params.get("blocks") is not None and (problem := block_problem(params["blocks"])):
            return None, self._error(problem[0], errors=[problem[1]])
        return channel, None

    # ---- Web API methods (m_<method with dots as underscores>) ----------------------------------------------
    def m_auth_test(self, params: dict[str, Any]) -> Response:
        return self._ok(url="https://sandbox.slack.com/", team="Sandbox", user="deskbot", team_id="T0SANDBOX",
                        user_id=BOT_USER, bot_id="B0DESKBOT")

    def m_chat_postMessage(self, params: dict[str, Any]) -> Response:
        channel, problem = self._postable(params)
        if problem:
            return problem
        assert channel is not None
        thread_ts = params.get("thread_ts") or None
        if thread_ts and not any(m.channel == channel.id and m.ts == thread_ts for m in self.messages):
            return self._error("thread_not_found")
        if self.pace is not None:
            last = self._last_post.get(channel.id)
            if last is not None and self.clock() - last < self.pace:
                return json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(int(self.pace))})
            self._last_post[channel.id] = self.clock()
        message = Message(channel.id, self._next_ts(), str(params.get("text") or ""), params.get("blocks") or [],
                          thread_ts, payload=dict(params))
        self.messages.append(message)
        return self._ok(channel=channel.id, ts=message.ts,
                        message={"type": "message", "subtype": "bot_message", "bot_id": "B0DESKBOT",
                                 "text": message.text, "ts": message.ts, "blocks": message.blocks})

    def m_chat_update(self, params: dict[str, Any]) -> Response:
        channel = self.channels.get(str(params.get("channel") or ""))
        if channel is None:
            return self._error("channel_not_found")
        found = next((m for m in self.messages if m.channel == channel.id and m.ts == params.get("ts")), None)
        if found is None:
            return self._error("message_not_found")
        if params.get("blocks") is not None and (problem := block_problem(params["blocks"])):
            return self._error(problem[0], errors=[problem[1]])
        found.updates.append(dict(params))
        found.text = str(params.get("text") or found.text)
        found.blocks = params.get("blocks") if params.get("blocks") is not None else found.blocks
        return self._ok(channel=channel.id, ts=found.ts, text=found.text,
                        message={"text": found.text, "blocks": found.blocks})

    def m_users_lookupByEmail(self, params: dict[str, Any]) -> Response:
        email = str(params.get("email") or "").lower()
        user = next((u for u in self.users.values() if u.email.lower() == email), None)
        if user is None:
            return self._error("users_not_found")
        return self._ok(user={"id": user.id, "team_id": "T0SANDBOX", "name": user.email.split("@")[0],
                              "real_name": user.name, "deleted": False, "is_bot": False, "tz": user.tz,
                              "profile": {"email": user.email, "display_name": user.name}})

    def m_conversations_list(self, params: dict[str, Any]) -> Response:
        types = set(str(params.get("types") or "public_channel").split(","))
        exclude_archived = str(params.get("exclude_archived", "")).lower() in ("1", "true")
        channels = [c for c in self.channels.values() if c.user is None
                    and ("private_channel" if c.is_private else "public_channel") in types
                    and not (exclude_archived and c.is_archived)]
        start = int(params.get("cursor") or 0)
        limit = max(1, min(int(params.get("limit") or 100), 1000))
        page = channels[start:start + limit]
        more = start + limit < len(channels)
        return self._ok(channels=[{"id": c.id, "name": c.name, "is_channel": not c.is_private,
                                   "is_private": c.is_private, "is_archived": c.is_archived,
                                   "is_member": c.is_member} for c in page],
                        response_metadata={"next_cursor": str(start + limit) if more else ""})

    def m_conversations_open(self, params: dict[str, Any]) -> Response:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if len(users) != 1 or users[0] not in self.users:
            return self._error("user_not_found")
        return self._ok(channel={"id": self._dm(users[0]).id})

    def m_usergroups_list(self, params: dict[str, Any]) -> Response:
        include = str(params.get("include_users", "")).lower() in ("1", "true")
        return self._ok(usergroups=[{"id": g.id, "handle": g.handle, "name": g.name, "user_count": len(g.users),
                                     **({"users": g.users} if include else {})} for g in self.usergroups.values()])

    def m_files_getUploadURLExternal(self, params: dict[str, Any]) -> Response:
        if not params.get("filename") or not str(params.get("length") or "").isdigit():
            return self._error("invalid_arguments")
        file_id = self._new_id("F")
        self.uploads[file_id] = {"id": file_id, "name": params["filename"], "length": int(params["length"]),
                                 "data": None}
        return self._ok(upload_url=f"{self.base_url}/upload/v1/{file_id}", file_id=file_id)

    def _upload(self, request: Request) -> Response:
        upload = self.uploads.get(request.path.rsplit("/", 1)[-1])
        if upload is None:
            return Response("not found", status=404)
        upload["data"] = request.get_data()
        return Response(f"OK - {len(upload['data'])}", content_type="text/plain")

    def m_files_completeUploadExternal(self, params: dict[str, Any]) -> Response:
        files = params.get("files") or []
        if not files or any(self.uploads.get(f.get("id"), {}).get("data") is None for f in files):
            return self._error("invalid_arguments")
        described = [{"id": f["id"], "title": f.get("title") or self.uploads[f["id"]]["name"],
                      "name": self.uploads[f["id"]]["name"], "size": len(self.uploads[f["id"]]["data"])}
                     for f in files]
        if params.get("channel_id"):
            channel = self.channels.get(str(params["channel_id"]))
            if channel is None:
                return self._error("channel_not_found")
            self.messages.append(Message(channel.id, self._next_ts(), str(params.get("initial_comment") or ""),
                                         [], params.get("thread_ts") or None, payload=dict(params),
                                         files=described))
        return self._ok(files=described)

    def _webhook(self, request: Request) -> Response:
        try:
            payload = json.loads(request.get_data() or b"{}")
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return Response("invalid_payload", status=400, content_type="text/plain")
        if not payload.get("text") and not payload.get("blocks"):
            return Response("no_text", status=400, content_type="text/plain")
        if payload.get("blocks") is not None and block_problem(payload["blocks"]):
            return Response("invalid_blocks", status=400, content_type="text/plain")
        self.messages.append(Message(self.webhook_channel, self._next_ts(), str(payload.get("text") or ""),
                                     payload.get("blocks") or [], via="webhook", payload=payload))
        return Response("ok", content_type="text/plain")
