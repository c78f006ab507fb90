"""Clock steps and skew: no missed or doubled firings when the machine's clock jumps back or forward."""

from __future__ import annotations

from datetime import timedelta

from bot.runtime.clock import SteadyClock
from bot.state.memory import MemoryStore
from tests.fakes import T0, FakeConnector
from tests.runtime.test_runner import OLD_ALERT, Clock, make_runner, tickets


def alerts(runner):
    return sorted(e.key for e in runner.store.pending())


def test_a_step_back_does_not_make_an_age_rule_fire_twice(tmp_path):
    clock = Clock(T0 + timedelta(minutes=10))
    zd = FakeConnector(tickets())
    runner = make_runner(tmp_path, OLD_ALERT, {"zendesk": zd}, clock)
    runner.poll("zendesk")
    clock.advance(minutes=51)
    runner.poll("zendesk")
    fired = alerts(runner)
    assert len(fired) == 5
    clock.advance(minutes=-15)  # NTP correction: the wall clock is now before the hour again
    zd.change(1, tags=frozenset({"touched"}))  # a human edit makes ticket 1 be evaluated while the clock is back
    runner.poll("zendesk")
    runner.tick()
    clock.advance(minutes=30)
    runner.tick()
    runner.poll("zendesk")
    assert alerts(runner) == fired


def test_a_forward_jump_fires_what_fell_due_once(tmp_path):
    clock = Clock(T0 + timedelta(minutes=10))
    runner = make_runner(tmp_path, OLD_ALERT, {"zendesk": FakeConnector(tickets())}, clock)
    runner.poll("zendesk")
    clock.advance(hours=5)
    runner.tick()
    runner.poll("zendesk")
    runner.tick()
    runner.poll("zendesk")
    assert len(alerts(runner)) == 5


def test_a_restart_on_a_slow_clock_keeps_the_latest_time_seen(tmp_path):
    store = MemoryStore(clock=lambda: T0)
    fast = SteadyClock(lambda: T0 + timedelta(hours=2), store)
    assert fast() == T0 + timedelta(hours=2)
    slow = SteadyClock(lambda: T0 + timedelta(hours=1), store)  # a new process, its clock an hour behind
    assert slow() == T0 + timedelta(hours=2)
    later = SteadyClock(lambda: T0 + timedelta(hours=3), store)
    assert later() == T0 + timedelta(hours=3)
