"""The fast SLA clocks (epoch microseconds, compiled policies, one reading per ticket) equal the plain ones.

`tests/sla_reference.py` is the clock code as it was, in datetimes and Fractions; every value a
clock, a threshold crossing or an `sla.*` field gives must be the same, for random tickets, status
histories, policies and calendars (DST zones, holidays, overnight and split shifts).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

import bot.rules.sla_fields  # noqa: F401  (registers the `sla.` family)
import tests.sla_reference as reference
from bot.calendar import Calendar, from_us
from bot.model import Priority, SlaDeadlines, Status, Ticket
from bot.rules.conditions import compile_condition
from bot.rules.sla_fields import MEASURES
from bot.sla import TARGETS, CalendarSpec, SlaPolicySpec, StatusChange, build_calendars, clocks, next_change_at
from tests.test_calendar import calendars as random_calendars

BASE = datetime(2024, 3, 25, 9, tzinfo=UTC)  # a week with London's spring-forward Sunday and Easter after it
CALENDAR_SPECS = {
    "office": CalendarSpec(timezone="UTC", hours={"weekdays": "09:00-17:00"}),
    "london": CalendarSpec.model_validate({"timezone": "Europe/London",
                                           "hours": {"weekdays": ["08:00-12:30", "13:30-18:00"], "sat": "22:00-06:00"},
                                           "holidays": {"country": "GB", "subdivision": "ENG"}}),
    "new_york_nights": CalendarSpec(timezone="America/New_York", hours={"daily": "22:00-02:30"}),
}
TARGETS_SPEC = {"first_reply": {"urgent": "30m", "high": "2h", "normal": "4h", "low": "1d"},
                "next_reply": {"normal": "3h", "high": "1h", "business_hours": False},
                "resolution": {"urgent": "8h", "high": "2d", "normal": "3d", "low": "5d"}}
POLICIES = [
    SlaPolicySpec.model_validate({"name": "vip", "calendar": "london", "applies_to": {"tags": ["vip"]},
                                  "pause_when": ["on_hold"], "targets": TARGETS_SPEC}),
    SlaPolicySpec.model_validate({"name": "platform", "calendar": "office", "source": "platform",
                                  "applies_to": {"groups": ["billing"]}, "pause_when": ["pending"],
                                  "targets": {"first_reply": "2h"}}),
    SlaPolicySpec.model_validate({"name": "nights", "calendar": "new_york_nights",
                                  "applies_to": {"types": ["incident"]},
                                  "pause_when": ["pending", "on_hold"], "targets": TARGETS_SPEC}),
    SlaPolicySpec.model_validate({"name": "office", "calendar": "office",
                                  "applies_to": {"priorities": ["low", "normal"]},
                                  "pause_when": ["pending", "on_hold"], "targets": TARGETS_SPEC}),
    SlaPolicySpec.model_validate({"name": "around the clock", "targets": TARGETS_SPEC}),
]
RULES_FILE = SimpleNamespace(calendars=CALENDAR_SPECS, sla_policies=POLICIES)
CALENDARS = build_calendars(CALENDAR_SPECS)

instants = st.integers(-3 * 24 * 60, 12 * 24 * 60).map(lambda m: BASE + timedelta(minutes=m)) | st.datetimes(
    datetime(2024, 3, 20), datetime(2024, 4, 10), timezones=st.just(UTC))
maybe = st.none() | instants


@st.composite
def tickets(draw: st.DrawFn) -> Ticket:
    deadlines = SlaDeadlines(draw(maybe), draw(maybe), draw(maybe))
    return Ticket("zendesk", 1, status=draw(st.sampled_from(list(Status))),
                  priority=draw(st.sampled_from(list(Priority))), created_at=draw(instants | st.none()),
                  updated_at=draw(maybe), type=draw(st.sampled_from([None, "incident"])),
                  tags=frozenset(draw(st.sets(st.sampled_from(["vip", "bug"])))),
                  group=draw(st.sampled_from([None, "Billing", "Support"])), first_responded_at=draw(maybe),
                  last_agent_update_at=draw(maybe), last_customer_update_at=draw(maybe),
                  status_changed_at=draw(maybe), solved_at=draw(maybe), sla=deadlines)


histories = st.none() | st.lists(st.builds(StatusChange, instants, st.sampled_from(list(Status))), max_size=5)
percents = st.integers(0, 150) | st.floats(0, 150, allow_nan=False) | st.sampled_from([100 / 3, 12.5])
durations = st.integers(0, 3 * 24 * 60).map(lambda m: timedelta(minutes=m)) | st.timedeltas(timedelta(0),
                                                                                           timedelta(days=3))


def _same(fast, slow: dict) -> None:
    for name, value in slow.items():
        if name != "timeline":
            assert getattr(fast, name) == value, name


@settings(max_examples=300, deadline=None)
@given(tickets(), instants, st.sampled_from(POLICIES), histories)
def test_clocks_equal_the_plain_computation(ticket: Ticket, now: datetime, policy: SlaPolicySpec,
                                            history: list[StatusChange] | None) -> None:
    fast, slow = clocks(ticket, now, policy, CALENDARS, history), reference.clocks(ticket, now, policy, CALENDARS,
                                                                                   history)
    assert fast.keys() == slow.keys()
    for target in fast:
        _same(fast[target], slow[target])
        assert fast[target].elapsed_percent == reference.field_value(slow[target], "elapsed")


@settings(max_examples=300, deadline=None)
@given(tickets(), instants, st.sampled_from(POLICIES), histories, st.none() | percents, st.none() | durations,
       st.none() | durations, st.none() | st.booleans(), st.booleans())
def test_threshold_crossings_equal_the_plain_computation(ticket, now, policy, history, percent, remaining,
                                                         breached_for, breach, after) -> None:
    fast, slow = clocks(ticket, now, policy, CALENDARS, history), reference.clocks(ticket, now, policy, CALENDARS,
                                                                                   history)
    for target in fast:
        asked = dict(breach=breach, percent=percent, remaining=remaining, breached_for=breached_for, after=after)
        assert next_change_at(fast[target], now, **asked) == reference.next_change_at(slow[target], now, **asked)


@settings(max_examples=150, deadline=None)
@given(random_calendars(), tickets(), instants, histories, percents, durations)
def test_clocks_on_any_calendar_equal_the_plain_computation(calendar: Calendar, ticket, now, history, percent,
                                                            remaining) -> None:
    policy = SlaPolicySpec.model_validate({"name": "any", "calendar": "random", "pause_when": ["pending"],
                                           "targets": TARGETS_SPEC})
    known = {"random": calendar}
    fast, slow = clocks(ticket, now, policy, known, history), reference.clocks(ticket, now, policy, known, history)
    assert fast.keys() == slow.keys()
    for target in fast:
        _same(fast[target], slow[target])
        for after in (False, True):
            assert (next_change_at(fast[target], now, percent=percent, remaining=remaining, after=after)
                    == reference.next_change_at(slow[target], now, percent=percent, remaining=remaining, after=after))


COMPARISONS = {"remaining": [("lt", "1h"), ("gte", "30m"), ("lte", "0m"), ("in", ["1h", "2h"])],
               "elapsed": [("gte", 75), ("gt", 50), ("lt", 100 / 3), ("eq", 90)],
               "breached": [("eq", True), ("eq", False)],
               "breached_for": [("gt", "1h"), ("gte", "4h"), ("lte", "1d")],
               "deadline": [("is_set", True)], "running": [("eq", True)]}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(tickets(), instants), min_size=1, max_size=4))
def test_sla_fields_read_and_announce_what_the_plain_clocks_say(cases: list[tuple[Ticket, datetime]]) -> None:
    """Several tickets and instants in a row: the one-ticket memo never leaks a reading into the next."""
    from bot.rules.durations import parse_duration

    for ticket, now in cases:
        policy = next((p for p in POLICIES if p.covers(ticket)), None)
        slow = {} if policy is None else reference.clocks(ticket, now, policy, CALENDARS)
        for target in TARGETS:
            for measure in MEASURES:
                for operator, const in COMPARISONS[measure]:
                    name = f"sla.{target}.{measure}"
                    problems: list = []
                    leaf = compile_condition({name: {operator: const}}, ("when",), problems, RULES_FILE)
                    assert not problems and leaf is not None
                    consts = const if isinstance(const, list) else [const]
                    consts = [parse_duration(c) if isinstance(c, str) else c for c in consts]
                    assert leaf.explain(ticket, now).value == reference.field_value(slow.get(target), measure)
                    expected = reference.field_next_change(slow.get(target), measure, now, operator, consts)
                    assert leaf.next_change(ticket, now) == expected, (name, operator, const)


@settings(max_examples=150, deadline=None)
@given(tickets(), instants, st.data())
def test_asking_several_comparisons_at_once_gives_the_earliest_of_asking_each(ticket: Ticket, now: datetime,
                                                                             data: st.DataObject) -> None:
    """The planner asks a target once per ticket for all comparisons of its measures (`Field.announce_many`)."""
    measures = ("remaining", "elapsed", "breached", "breached_for")
    for target in TARGETS:
        chosen = data.draw(st.lists(st.sampled_from([(m, *c) for m in measures for c in COMPARISONS[m]]),
                                    min_size=1, max_size=5))
        leaves = []
        for measure, operator, const in chosen:
            problems: list = []
            condition = compile_condition({f"sla.{target}.{measure}": {operator: const}}, ("when",), problems,
                                          RULES_FILE)
            assert not problems and condition is not None
            leaves.append(condition.time_leaves[0])
        assert len({id(leaf.field.announce_many) for leaf in leaves}) == 1  # one question per target
        one_by_one = [at for leaf in leaves if (at := leaf.next_change(ticket, now)) is not None]
        ask = leaves[0].field.announce_many([(lf.field.name, lf.operator, lf.test.const) for lf in leaves])
        together = ask(ticket, now)  # epoch microseconds
        assert (None if together is None else from_us(together)) == (min(one_by_one) if one_by_one else None), \
            (target, chosen)
