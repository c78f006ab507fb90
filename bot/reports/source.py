"""The thin adapter: reads the state store and the ticket history, runs the pure reports, keeps their memory.

Nothing here calls a helpdesk API: reports, spikes and requester facts come
from the mirror, the history beside it (`bot.reports.history`) and the audit
log. The runner calls, each cycle:

    record_snapshot(store, fetched_tickets, now)                 # bot.reports.history
    facts = requester_facts(requester_universe(store, now), now) # once per evaluation pass
    tickets = attach_facts(tickets, facts)                       # per chunk, before engine.plan
    alert_recurring(store, config, now, mode)                    # recurring-issue alerts
    run_due_reports(store, config, now, poster)                  # scheduled Slack reports
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.calendar import Calendar, always
from bot.model import Ticket
from bot.reports.history import HistoryStore
from bot.reports.metrics import ReportSettings, Scope, build_report
from bot.reports.records import TicketRecord, merge_snapshots
from bot.reports.report import SLA_TARGETS, Kind, Period, Report
from bot.reports.schedule import RecurringIssuesSpec, ReportSchedule, due_reports, resolve_schedules
from bot.reports.sla_stats import Measurement, Measurer, platform_measurer
from bot.reports.slack import PostedReport, ReportPoster, post_report
from bot.reports.spikes import ActiveSpike, detect_spikes, spike_plan
from bot.rules import requester_fields
from bot.state import Mode, RecordedPlan, StateStore

log = logging.getLogger(__name__)
LAST_RUN_KEY = "reports.last_run"
SPIKES_KEY = "reports.spikes"
_AUDIT_LIMIT = 1_000_000


# -- what the rules file says ----------------------------------------------------------------------


def calendars_of(spec: Any) -> dict[str, Calendar]:
    """Every calendar the rules file defines (`calendars:`), plus the built-in 24x7."""
    found: dict[str, Calendar] = {"24x7": always()}
    for name, calendar_spec in (getattr(spec, "calendars", None) or {}).items():
        found[name] = calendar_spec.build(name)
    return found


def team_calendar(spec: Any, name: str, calendars: Mapping[str, Calendar]) -> Calendar:
    """A team's calendar: its `calendar:`, else its group's SLA policy calendar, else 24x7."""
    team = spec.teams.get(name)
    own = getattr(team, "calendar", None)
    if own in calendars:
        return calendars[own]
    group = (getattr(team, "group", "") or "").casefold()
    for policy in getattr(spec, "sla_policies", None) or []:
        applies = getattr(policy, "applies_to", None)
        groups = [g.casefold() for g in getattr(applies, "groups", None) or []]
        if group and group in groups and policy.calendar in calendars:
            return calendars[policy.calendar]
    return always()


def describe(calendars: Iterable[Calendar]) -> str:
    """How ages are measured, for the report header."""
    distinct = {id(c): c for c in calendars}.values()
    if all(c.always_open for c in distinct):
        return "calendar time (24x7)"
    if len(distinct) == 1:
        return f"business time ({next(iter(distinct)).name})"
    return "business time (each team's calendar)"


def scopes_and_calendars(spec: Any, team: str | None, calendar: str | None = None
                         ) -> tuple[list[Scope], Callable[[Ticket], Calendar]]:
    """The report's scopes (the team, or overall then every team) and each ticket's calendar."""
    calendars = calendars_of(spec)
    if calendar is not None and calendar not in calendars:
        raise ValueError(f"unknown calendar '{calendar}' (known: {', '.join(calendars)})")
    by_team = {name: calendars[calendar] if calendar else team_calendar(spec, name, calendars) for name in spec.teams}
    by_group = {t.group.casefold(): by_team[name] for name, t in spec.teams.items()}
    fallback = calendars[calendar] if calendar else always()

    def calendar_for(ticket: Ticket) -> Calendar:
        return by_group.get((ticket.group or "").casefold(), fallback)

    def scope(name: str) -> Scope:
        spec_team = spec.teams[name]
        return Scope(name, frozenset({spec_team.group.casefold()}), tuple(spec_team.members),
                     describe([by_team[name]]))

    if team is not None:
        if team not in spec.teams:
            raise ValueError(f"unknown team '{team}' (teams: {', '.join(spec.teams) or 'none defined'})")
        return [scope(team)], calendar_for
    members = tuple(dict.fromkeys(m for t in spec.teams.values() for m in t.members))
    overall = Scope("all teams", None, members, describe([*by_team.values(), fallback]))
    return [overall, *(scope(name) for name in spec.teams)], calendar_for


def measurer_for(spec: Any, calendar_for: Callable[[Ticket], Calendar]) -> Measurer:
    """deskbot's SLA policies when the rules file has them, else the helpdesk's own deadlines."""
    policies = getattr(spec, "sla_policies", None) or []
    platform = platform_measurer(calendar_for)
    if not policies:
        return platform
    try:
        from bot.sla import StatusChange, ticket_clocks
    except ImportError:  # pragma: no cover - the SLA module ships with the rules engine
        return platform
    calendars = calendars_of(spec)

    def measure(record: TicketRecord, now: datetime) -> dict[str, Measurement]:
        history = [StatusChange(c.at, c.status) for c in record.changes]
        try:
            found = ticket_clocks(record.ticket, now, policies, calendars, history)
        except ValueError:
            return dict(platform(record, now))
        return {t: Measurement(t, c.started_at, c.stopped_at, c.deadline, c.elapsed, c.goal, c.breached)
                for t, c in found.items() if t in SLA_TARGETS}

    return measure


# -- reports -------------------------------------------------------------------------------------


def load_records(store: StateStore, now: datetime, since: datetime,
                 history: HistoryStore | None = None) -> tuple[list[TicketRecord], datetime | None]:
    """Ticket records relevant since `since` (history merged with the fresher mirror) and when history began."""
    history = history or HistoryStore.for_store(store)
    records = merge_snapshots(history.records(since), store.mirror().values(), now)
    return records, history.since()


def make_report(store: StateStore, config: Any, kind: Kind, now: datetime, *, team: str | None = None,
                calendar: str | None = None, settings: ReportSettings | None = None,
                history: HistoryStore | None = None) -> Report:
    """Build a daily or weekly report ending `now` from the store alone."""
    settings = settings or ReportSettings()
    spec = config.spec
    scopes, calendar_for = scopes_and_calendars(spec, team, calendar)
    period = Period.ending(kind, now)
    lookback = timedelta(days=settings.trend_days) + timedelta(weeks=settings.normal_weeks)
    since = min(period.start - settings.repeat_window, now - lookback)
    records, history_since = load_records(store, now, since, history)
    notes = []
    if history_since is None:
        notes.append("no ticket history recorded yet: solved and reopened counts, the backlog normal and the trend "
                     "need the runner to call record_snapshot each cycle")
        history_since = now
    elif history_since > period.start:
        notes.append(f"ticket history starts {history_since:%Y-%m-%d %H:%M} UTC: earlier events are not counted")
    audit = store.audit_log(since=period.start, limit=_AUDIT_LIMIT)
    return build_report(records, audit, period, scopes, calendar_for=calendar_for,
                        measurer=measurer_for(spec, calendar_for), history_since=history_since, settings=settings,
                        notes=notes, team=team)


def schedules_of(config: Any) -> list[ReportSchedule]:
    """The rules file's `reports:` with team defaults filled in (empty when the section is absent)."""
    return resolve_schedules(getattr(config.spec, "reports", None) or [], config.spec.teams)


def last_runs(store: StateStore) -> dict[str, datetime]:
    """When each schedule last ran (its slot), from the store's meta table."""
    raw = json.loads(store.get_meta(LAST_RUN_KEY) or "{}")
    return {name: datetime.fromisoformat(at) for name, at in raw.items()}


def run_due_reports(store: StateStore, config: Any, now: datetime, poster: ReportPoster) -> list[PostedReport]:
    """Post every scheduled report whose slot has come; a failed post is retried next cycle (within grace)."""
    posted = []
    runs = last_runs(store)
    for due in due_reports(schedules_of(config), runs, now):
        schedule = due.schedule
        if schedule.channel is None:
            log.warning("report %s has no channel; skipped", schedule.name)
            continue
        report = make_report(store, config, schedule.kind, now, team=schedule.team, calendar=schedule.calendar)
        posted.append(post_report(poster, report, schedule.channel, chart=schedule.chart))
        runs[schedule.name] = due.scheduled_at
        store.set_meta(LAST_RUN_KEY, json.dumps({k: v.isoformat() for k, v in sorted(runs.items())}))
    return posted


# -- recurring issues and repeat contacts --------------------------------------------------------


def alert_recurring(store: StateStore, config: Any, now: datetime, mode: Mode = Mode.LIVE,
                    history: HistoryStore | None = None) -> RecordedPlan | None:
    """Detect recurring-issue spikes and record their alerts (and the spike memory) in one transaction."""
    spec: RecurringIssuesSpec | None = getattr(config.spec, "recurring_issues", None)
    if spec is None or not spec.enabled:
        return None
    settings = spec.settings()
    records, history_since = load_records(store, now, now - settings.window - settings.baseline, history)
    memory = {a.key: a for a in (ActiveSpike.from_dict(d) for d in json.loads(store.get_meta(SPIKES_KEY) or "[]"))}
    result = detect_spikes([r.ticket for r in records], now, settings, memory, history_since or now)
    with store.transaction():
        store.set_meta(SPIKES_KEY, json.dumps([a.to_dict() for a in result.memory.values()]))
        return store.record_plan(spike_plan(result.new, settings), now=now, mode=mode)


def requester_universe(store: StateStore, now: datetime, history: HistoryStore | None = None) -> list[Ticket]:
    """Every ticket the repeat-contact facts may count: the mirror plus history as far back as rules look."""
    horizon = max(requester_fields.longest_window(), timedelta(days=1))
    records, _ = load_records(store, now, now - horizon, history)
    return [r.ticket for r in records]


def attach_requester_facts(store: StateStore, tickets: Sequence[Ticket], now: datetime,
                           history: HistoryStore | None = None) -> list[Ticket]:
    """The tickets about to be planned, with repeat-contact facts from the mirror and recent history."""
    return requester_fields.with_requester_facts(tickets, requester_universe(store, now, history), now)
