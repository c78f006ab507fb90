"""Alert.from_action reads the engine's notify params; alerts survive a trip through JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.notifiers.base import Alert, SlaClock

from .conftest import NOW, make_alert, notify_action


def test_from_action_reads_every_param():
    alert = make_alert(1042, mention=["@oncall", "ana@example.com"], user="cara@example.com")
    assert alert.key == "First reply overdue/zendesk:1042/notify/1"
    assert alert.ticket_key == "zendesk:1042"
    assert alert.rule == "First reply overdue"
    assert alert.severity == "critical"
    assert (alert.channel, alert.user) == ("#support-alerts", "cara@example.com")
    assert alert.mention == ("@oncall", "ana@example.com")
    assert alert.ticket.subject == "Refund not received for order 1042"
    assert alert.ticket.tags == ("refund", "vip")
    assert alert.values["requester"] == "Zoe Park"
    assert alert.occurrence == 1
    assert alert.sla == SlaClock("first_reply", NOW - timedelta(minutes=125), -7500.0, "Europe/Berlin")


def test_from_action_refuses_other_actions():
    action = replace(notify_action(), kind="assign")
    with pytest.raises(ValueError, match="needs a 'notify' action, got 'assign'"):
        Alert.from_action(action)


def test_unknown_severity_falls_back_to_warning_and_missing_sla_is_none():
    alert = make_alert(severity="PANIC", sla=None)
    assert alert.severity == "warning"
    assert alert.sla is None


def test_sla_without_any_time_is_ignored_and_deadline_wins_over_remaining_seconds():
    assert SlaClock.from_params({"target": "first_reply", "timezone": "UTC"}) is None
    sla = SlaClock.from_params({"target": "x", "deadline": "2024-06-04T13:00:00Z", "remaining_seconds": 5})
    assert sla is not None and sla.remaining_at(NOW) == 3600


def test_channel_and_user_become_two_deliveries_with_distinct_keys():
    alert = make_alert(user="ana@example.com")
    to_channel, to_user = alert.deliveries()
    assert (to_channel.channel, to_channel.user, to_channel.key) == ("#support-alerts", None, alert.key)
    assert (to_user.channel, to_user.user, to_user.key) == (None, "ana@example.com", alert.key + "/dm")
    assert make_alert().deliveries() == (make_alert(),)


def test_alert_round_trips_through_json():
    alert = make_alert(mention=["@oncall"])
    assert Alert.from_dict(json.loads(json.dumps(alert.to_dict()))) == alert
    resolution = Alert.resolution("zendesk:1", "solved", NOW)
    assert Alert.from_dict(json.loads(json.dumps(resolution.to_dict()))) == resolution


def test_the_teams_time_zone_is_kept_and_used_by_an_sla_without_its_own():
    alert = make_alert(timezone="Asia/Tokyo", sla={"target": "first_reply", "remaining_seconds": 60})
    assert alert.timezone == "Asia/Tokyo" and alert.sla.timezone == "Asia/Tokyo"
    assert make_alert(sla=None).timezone == "UTC"
