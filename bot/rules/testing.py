"""`deskbot test`: rule test files a coordinator writes beside the rules file.

    # config/tests/routing.yaml
    now: 2026-03-02T10:00:00Z            # optional; every case may set its own
    cases:
      - name: a refund request goes to billing
        tickets:
          - {id: 1, subject: "Refund for order 1234", status: new, created_at: 10m ago}
        expect:
          - {ticket: 1, rule: Route billing questions, actions: [set_group, add_tags]}
        not_fired:
          - {ticket: 1, rule: Escalate unassigned urgent}
        already_fired:                   # optional memory: rules that fired before
          - {ticket: 1, rule: Welcome}

Tickets give only the fields that matter; the rest take defaults. Times are ISO
8601 or relative to `now` ("3h ago", "in 30m").
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bot.config import Config
from bot.model import Firing, Priority, SlaDeadlines, Status, Ticket
from bot.rules.durations import DurationError, parse_duration
from bot.rules.engine import plan

DEFAULT_NOW = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)  # a Monday morning
_TIME_FIELDS = {f.name for f in fields(Ticket) if f.name.endswith("_at")}
_SLA_FIELDS = {f.name for f in fields(SlaDeadlines)}


class CaseError(ValueError):
    """A test file that cannot be read as cases."""


def parse_time(value: Any, now: datetime) -> datetime:
    """ISO 8601 (UTC if no zone), or relative to now: '3h ago', 'in 30m', '-2d'."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    try:
        if text.endswith(" ago"):
            return now - parse_duration(text.removesuffix(" ago"))
        if text.startswith("in "):
            return now + parse_duration(text.removeprefix("in "))
        if text[:1] in "+-":
            return now + parse_duration(text)
    except DurationError:
        raise CaseError(f"'{value}' is neither a time nor a relative time like '3h ago'") from None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CaseError(f"'{value}' is neither a time nor a relative time like '3h ago'") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def ticket_from_dict(data: Mapping[str, Any], now: datetime = DEFAULT_NOW) -> Ticket:
    """A Ticket from partial fields, defaults for the rest (platform test, created now)."""
    known = {f.name for f in fields(Ticket) if f.init}
    values: dict[str, Any] = {"platform": "test", "id": 1, "created_at": now, "updated_at": now}
    sla: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SLA_FIELDS:
            sla[key] = parse_time(value, now) if value is not None else None
        elif key == "sla" and isinstance(value, Mapping):
            sla.update({k: parse_time(v, now) for k, v in value.items() if v is not None})
        elif key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            raise CaseError(f"unknown ticket field '{key}'" + (f"; did you mean '{close[0]}'?" if close else ""))
        elif key in _TIME_FIELDS and value is not None:
            values[key] = parse_time(value, now)
        elif key == "status":
            values[key] = Status("on_hold" if value == "hold" else value)
        elif key == "priority":
            values[key] = Priority(value)
        elif key == "tags":
            values[key] = frozenset([value] if isinstance(value, str) else value or [])
        elif key in ("custom", "raw"):
            values[key] = dict(value or {})
        else:
            values[key] = value
    if sla:
        values["sla"] = SlaDeadlines(**sla)
    return Ticket(**values)


@dataclass
class CaseResult:
    """The outcome of one case: passed, or the differences found."""

    file: str
    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when the plan matched every expectation."""
        return not self.problems


def run_file(path: Path, config: Config) -> list[CaseResult]:
    """Run every case of one test file against the loaded rules."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        return [CaseResult(str(path), "(file)", [f"YAML syntax: {error}"])]
    if not isinstance(document, dict) or not isinstance(document.get("cases"), list):
        return [CaseResult(str(path), "(file)", ["a test file is a mapping with a 'cases' list"])]
    file_now = document.get("now")
    results = []
    for index, case in enumerate(document["cases"]):
        name = str(case.get("name", f"case {index + 1}")) if isinstance(case, dict) else f"case {index + 1}"
        try:
            results.append(run_case(case, config, file_now, str(path), name))
        except (CaseError, ValueError, TypeError) as error:
            results.append(CaseResult(str(path), name, [str(error)]))
    return results


def run_case(case: Mapping[str, Any], config: Config, file_now: Any, file: str, name: str) -> CaseResult:
    """Plan the case's tickets and compare with its expectations."""
    now = parse_time(case.get("now", file_now), DEFAULT_NOW) if case.get("now", file_now) else DEFAULT_NOW
    tickets = [ticket_from_dict(t, now) for t in case.get("tickets") or []]
    by_id = {t.id: t for t in tickets}
    known_rules = {r.name for r in config.rules}
    result = CaseResult(file, name)
    memory: dict[tuple[str, str], Firing] = {}
    for entry in case.get("already_fired") or []:
        ticket, rule = _ref(entry, by_id, known_rules, result)
        if ticket and rule:
            memory[(rule, ticket.key)] = Firing(True, 1, now)
    actual: dict[tuple[int, str], list[Any]] = {}
    for match in plan(tickets, now, config, memory).matches:
        ticket_id = int(match.ticket_key.split(":", 1)[1])
        actual[(ticket_id, match.rule)] = [_describe(a.kind, a.params) for a in match.actions]
    expected: dict[tuple[int, str], Any] = {}
    for entry in case.get("expect") or []:
        ticket, rule = _ref(entry, by_id, known_rules, result)
        if ticket and rule:
            expected[(ticket.id, rule)] = entry.get("actions")
    for entry in case.get("not_fired") or []:
        ticket, rule = _ref(entry, by_id, known_rules, result)
        if ticket and rule and (ticket.id, rule) in actual:
            result.problems.append(f"rule '{rule}' fired on ticket {ticket.id} but must not")
    for key, want in expected.items():
        got = actual.get(key)
        if got is None:
            result.problems.append(f"rule '{key[1]}' did not fire on ticket {key[0]}")
        elif want is not None and not _same(want, got):
            diff = difflib.unified_diff(_lines(want), _lines(_display(got)), "expected", "planned", lineterm="")
            result.problems.append(f"rule '{key[1]}' on ticket {key[0]} planned other actions:\n" + "\n".join(diff))
    if case.get("only_expected", True):
        for key in actual.keys() - expected.keys():
            if not any(key == (e.get("ticket"), e.get("rule")) for e in case.get("not_fired") or []):
                result.problems.append(f"rule '{key[1]}' also fired on ticket {key[0]} (add it to expect, or "
                                       "set only_expected: false)")
    return result


def _ref(entry: Any, by_id: Mapping[int, Ticket], rules: set[str], result: CaseResult) -> tuple[Any, Any]:
    if not isinstance(entry, Mapping):
        result.problems.append(f"expected {{ticket: ID, rule: NAME}}, got {entry!r}")
        return None, None
    ticket = by_id.get(entry.get("ticket"))
    rule = entry.get("rule")
    if ticket is None:
        result.problems.append(f"no ticket with id {entry.get('ticket')!r} in this case")
    if rule not in rules:
        close = difflib.get_close_matches(str(rule), sorted(rules), n=1)
        result.problems.append(f"no rule named '{rule}'" + (f"; did you mean '{close[0]}'?" if close else ""))
        rule = None
    return ticket, rule


def _describe(kind: str, params: Mapping[str, Any]) -> Any:
    interesting = {k: v for k, v in params.items() if k in ("agent", "team", "group", "priority", "status",
                                                           "tags", "body", "channel", "user", "message")}
    return {kind: interesting}


def _same(want: Any, got: list[Any]) -> bool:
    """Expected actions are verbs (`[notify, add_tags]`) or verbs with the params that matter."""
    if not isinstance(want, list) or len(want) != len(got):
        return False
    for w, g in zip(want, got, strict=True):
        (kind, params), = g.items()
        if isinstance(w, str):
            if w != kind:
                return False
        elif isinstance(w, Mapping) and len(w) == 1:
            (wkind, wparams), = w.items()
            if wkind != kind:
                return False
            if isinstance(wparams, Mapping):
                if any(params.get(k) != v for k, v in wparams.items()):
                    return False
            elif wparams is not None and wparams not in params.values():
                return False
        else:
            return False
    return True


def _display(actions: list[Any]) -> list[Any]:
    """Planned actions in the shape expectations are written in: {add_tags: [x]}, {set_priority: high}."""
    shown = []
    for action in actions:
        (kind, params), = action.items()
        shown.append({kind: next(iter(params.values()))} if len(params) == 1 else action)
    return shown


def _lines(value: Any) -> list[str]:
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False).splitlines()
