"""Recurring-issue detection on synthetic streams: quiet on a steady stream, one alert per spike, no re-alert."""

from __future__ import annotations

import itertools
from datetime import timedelta

from bot.model import Target
from bot.notifiers.base import Alert
from bot.reports.spikes import ActiveSpike, SpikeSettings, detect_spikes, spike_plan
from bot.reports.text import terms

from .helpers import NOW, H, ticket

TOPICS = [
    "Password reset link expired", "Invoice shows wrong VAT", "Cannot export report to Excel",
    "Change billing address", "Mobile app crashes on login", "Add a user to our workspace",
    "Refund for duplicate order", "Shipping label not printing", "API key rotation", "Cancel subscription",
    "Two-factor code never arrives", "Dark mode request",
]
SETTINGS = SpikeSettings(channel="#support-leads", window=timedelta(hours=6), baseline=timedelta(days=7),
                         factor=3.0, min_count=5)
_numbers = itertools.count(1)


def steady(start, end, every=timedelta(hours=2)):
    """Every topic once per `every`, staggered: a busy but entirely ordinary queue."""
    tickets = []
    for index, subject in enumerate(TOPICS):
        at = start + every * index / len(TOPICS)
        while at < end:
            n = next(_numbers)
            tickets.append(ticket(n, subject=f"{subject} (ref {n})", created_at=at, tags=["web"]))
            at += every
    return tickets


def burst(start, count, subject="Checkout payment declined with card", every=timedelta(minutes=15), tags=(),
          description=""):
    return [ticket(next(_numbers), subject=f"{subject} #{i}", description=description, created_at=start + every * i,
                   tags=list(tags)) for i in range(count)]


BACKGROUND = steady(NOW - timedelta(days=9), NOW + timedelta(days=2))


def visible(tickets, now):
    return [t for t in tickets if t.created_at <= now]


def test_a_steady_stream_never_alerts_hour_after_hour() -> None:
    memory: dict[str, ActiveSpike] = {}
    for hour in range(48):
        now = NOW + hour * H
        result = detect_spikes(visible(BACKGROUND, now), now, SETTINGS, memory)
        assert result.new == () and result.ongoing == (), f"false alarm at {now}: {result.new}"
        memory = result.memory


def test_a_spike_raises_one_alert_with_count_terms_examples_and_a_suggested_tag() -> None:
    spike = burst(NOW - 3 * H, 12, description="Customer says the card was declined at checkout. Order 4411.")
    result = detect_spikes(visible(BACKGROUND, NOW) + spike, NOW, SETTINGS, {})
    assert len(result.new) == 1
    found = result.new[0]
    assert found.count == 12
    assert found.terms == ("checkout", "payment", "declined", "card", "order"), "subject words first, in order"
    assert found.expected == 0
    assert [e.key for e in found.examples] == [t.key for t in reversed(spike[-3:])], "newest examples first"
    assert found.suggested_tag == "spike_checkout_payment"
    assert found.tickets == {t.key for t in spike}


def test_the_same_spike_is_not_alerted_again_while_it_lasts_but_is_after_it_ends() -> None:
    spike = burst(NOW - 3 * H, 40, every=timedelta(minutes=10))  # keeps going for almost 7 hours
    stream = BACKGROUND + spike
    first = detect_spikes(visible(stream, NOW), NOW, SETTINGS, {})
    assert len(first.new) == 1
    memory = first.memory
    for hour in range(1, 5):
        later = detect_spikes(visible(stream, NOW + hour * H), NOW + hour * H, SETTINGS, memory)
        assert later.new == () and len(later.ongoing) == 1, f"re-alerted {hour}h later"
        memory = later.memory
    quiet = NOW + 20 * H  # the burst ended ~16h ago: out of the window, and quiet for longer than `quiet`
    gone = detect_spikes(visible(stream, quiet), quiet, SETTINGS, memory)
    assert gone.new == () and gone.memory == {}
    again = burst(quiet - 2 * H, 10)
    relapse = detect_spikes(visible(stream, quiet) + again, quiet, SETTINGS, gone.memory)
    assert len(relapse.new) == 1, "a new spike on the same topic after a quiet spell is news"


def test_a_rare_topic_below_the_minimum_count_is_not_a_spike() -> None:
    few = burst(NOW - 2 * H, SETTINGS.min_count - 1, subject="Zebra integration webhook failing")
    assert detect_spikes(visible(BACKGROUND, NOW) + few, NOW, SETTINGS, {}).new == ()


def test_a_usual_topic_must_triple_before_it_counts() -> None:
    # "Password reset link expired" arrives 3 times per 6h window; 5 more make 8 < 3 x 3
    more = burst(NOW - 2 * H, 5, subject="Password reset link expired again")
    assert detect_spikes(visible(BACKGROUND, NOW) + more, NOW, SETTINGS, {}).new == ()
    lots = burst(NOW - 2 * H, 7, subject="Password reset link expired again", every=timedelta(minutes=5))
    assert len(detect_spikes(visible(BACKGROUND, NOW) + lots, NOW, SETTINGS, {}).new) == 1


def test_a_spike_of_one_tag_with_varied_subjects_is_named_after_the_tag() -> None:
    subjects = ["Site down?", "Cannot reach dashboard", "502 errors everywhere", "Timeouts on save",
                "Nothing loads", "Is there an outage", "Blank page after update", "Error when opening projects"]
    outage = [ticket(next(_numbers), subject=s, created_at=NOW - H + timedelta(minutes=5 * i), tags=["outage"])
              for i, s in enumerate(subjects)]
    found = detect_spikes(visible(BACKGROUND, NOW) + outage, NOW, SETTINGS, {}).new
    assert [(s.key, s.tags, s.suggested_tag) for s in found] == [("tag:outage", ("outage",), "spike_outage")]


def test_no_alert_until_the_history_covers_a_full_window_of_baseline() -> None:
    spike = burst(NOW - 3 * H, 12)
    young = detect_spikes(visible(BACKGROUND, NOW) + spike, NOW, SETTINGS, {}, history_since=NOW - 8 * H)
    assert young.new == ()
    enough = detect_spikes(visible(BACKGROUND, NOW) + spike, NOW, SETTINGS, {}, history_since=NOW - 13 * H)
    assert len(enough.new) == 1


def test_ignored_terms_and_tags_never_group_tickets() -> None:
    spike = burst(NOW - 3 * H, 12, subject="Acme checkout payment declined", tags=["web"])
    settings = SpikeSettings(**{**SETTINGS.__dict__, "ignore_terms": frozenset({"acme"}),
                                "ignore_tags": frozenset({"web"})})
    found = detect_spikes(visible(BACKGROUND, NOW) + spike, NOW, settings, {}).new
    assert len(found) == 1 and "acme" not in found[0].terms and found[0].tags == ()


def test_a_new_spike_becomes_one_notify_action_the_notifier_understands() -> None:
    result = detect_spikes(visible(BACKGROUND, NOW) + burst(NOW - 3 * H, 12), NOW, SETTINGS, {})
    plan = spike_plan(result.new, SETTINGS)
    (action,) = plan.actions
    assert action.kind == "notify" and action.target is Target.NOTIFIER and action.rule == "recurring_issues"
    assert action.key == f"recurring_issues/spike:{result.new[0].key}/20260302T100000/0:notify"
    alert = Alert.from_action(action)
    assert alert.channel == "#support-leads" and alert.severity == "warning"
    assert alert.message.startswith("Recurring issue: 12 new tickets about")
    assert "Suggested tag: spike_" in alert.message and "Checkout payment declined with card #11" in alert.message
    assert alert.ticket.tags == (result.new[0].suggested_tag,)


def test_spike_memory_survives_a_json_round_trip() -> None:
    result = detect_spikes(visible(BACKGROUND, NOW) + burst(NOW - 3 * H, 12), NOW, SETTINGS, {})
    (active,) = result.memory.values()
    assert ActiveSpike.from_dict(active.to_dict()) == active


def test_terms_strip_numbers_ids_stopwords_and_stem() -> None:
    assert terms("Payments DECLINED for order #48213 (id 3f2a-99aa)", "Hi team, please help") == {
        "payment", "declin", "order"}
    assert terms("Login failing", "") == terms("login failed", "") == {"login", "fail"}
