"""Never lost, never doubled: outages, restarts, 429s and unknown outcomes, over real HTTP.

Time is the test's: `deliver(now)` gets a chosen instant, the pacer a fake clock.
"""

from __future__ import annotations

import random
import socket
import time
from datetime import timedelta

from bot.notifiers.delivery import Pacer
from bot.notifiers.slack import SlackNotifier
from bot.retry import RetryPolicy
from bot.sandbox.server import serve
from bot.sandbox.slack import DEFAULT_TOKEN, SlackSandbox

from .conftest import NOW, make_alert

MIXED = [make_alert(1), make_alert(2, rule="Unassigned", channel="escalations"), make_alert(3, rule="VIP"),
         make_alert(1, rule="VIP"), make_alert(4, rule="Reopened", channel="leads"), make_alert(5, rule="Stale")]


def delivered_keys(slack: SlackSandbox) -> list[str]:
    return [m.payload["metadata"]["event_payload"]["key"] for m in slack.messages]


def seeded_backoff() -> RetryPolicy:
    return RetryPolicy(base=2.0, cap=300.0, rng=random.Random(7))


def test_after_an_outage_of_several_rounds_everything_is_delivered_once_in_order(make_notifier, slack):
    notifier = make_notifier(backoff=seeded_backoff())
    notifier.send(MIXED)
    slack.outage(times=1000)
    now, attempts = NOW, []
    for _ in range(4):
        before = slack.count("/api/")
        report = notifier.deliver(now)
        attempts.append(slack.count("/api/") - before)
        assert report.sent == [] and len(report.retrying) == 1 and report.waiting == len(MIXED) - 1
        quiet = notifier.deliver(now + timedelta(milliseconds=500))  # before the backoff ends: no request at all
        assert quiet.waiting == len(MIXED) and slack.count("/api/") - before == 1
        now = report.next_attempt_at
    assert attempts == [1, 1, 1, 1]  # one failed request per round, not one per alert
    slack.faults.clear()
    report = notifier.deliver(now)
    assert report.sent == [a.key for a in MIXED] and report.all_done
    assert delivered_keys(slack) == [a.key for a in MIXED]
    assert notifier.outbox.pending() == []
    [root] = slack.posts("support-alerts")[:1]
    assert [m.payload["metadata"]["event_payload"]["key"] for m in slack.replies("support-alerts", root.ts)] == [
        MIXED[3].key]


def test_backoff_grows_between_failed_rounds_and_is_capped(make_notifier, slack):
    notifier = make_notifier(backoff=RetryPolicy(base=2.0, cap=300.0, rng=random.Random(3)))
    notifier.send([make_alert(1)])
    slack.outage(times=1000)
    now, waits = NOW, []
    for _ in range(12):
        report = notifier.deliver(now)
        waits.append((report.next_attempt_at - now).total_seconds())
        now = report.next_attempt_at
    assert all(1.0 <= w <= 300.0 for w in waits)
    assert max(waits[8:]) > max(waits[:3])
    assert notifier.outbox.get(make_alert(1).key).attempts == 12


def test_a_new_process_over_the_same_outbox_finishes_the_work(make_notifier, slack, outbox):
    first = make_notifier()
    first.send([make_alert(1)])
    first.deliver(NOW)
    first.send([make_alert(1, rule="VIP"), make_alert(2)])
    slack.ratelimit(times=1)
    assert first.deliver(NOW).retrying == [make_alert(1, rule="VIP").key]
    outbox.mark_sending([make_alert(2).key])  # and then the process died in the middle of a post

    second = make_notifier()  # fresh caches and state; only the outbox survived
    report = second.deliver(NOW + timedelta(minutes=10))
    assert report.sent == [make_alert(1, rule="VIP").key, make_alert(2).key]
    assert report.ambiguous == [make_alert(2).key]
    root, other = slack.posts("support-alerts")
    assert [r.payload["metadata"]["event_payload"]["key"] for r in slack.replies("support-alerts", root.ts)] == [
        make_alert(1, rule="VIP").key]
    assert "may repeat an earlier post" in str(other.blocks)
    assert second.resolve("zendesk:1", "solved", NOW) is True
    second.deliver(NOW + timedelta(minutes=11))
    assert root.blocks[0]["text"]["text"].startswith(":white_check_mark:")


def test_a_429_holds_only_its_channel_until_retry_after_and_the_sdk_never_sleeps(make_notifier, slack):
    notifier = make_notifier(digest_threshold=50)
    first, second, elsewhere = make_alert(1), make_alert(2), make_alert(3, channel="escalations")
    notifier.send([first, second, elsewhere])
    slack.ratelimit("chat.postMessage", times=1, retry_after=30)
    report = notifier.deliver(NOW)
    assert (report.sent, report.retrying, report.waiting) == ([elsewhere.key], [first.key], 1)
    assert report.next_attempt_at == NOW + timedelta(seconds=30)
    assert "Slack rate limit, retry after 30.0s" in notifier.outbox.get(first.key).error
    posts = slack.count("/api/chat.postMessage")
    assert notifier.deliver(NOW + timedelta(seconds=29)).sent == []
    assert slack.count("/api/chat.postMessage") == posts
    assert notifier.deliver(NOW + timedelta(seconds=30)).sent == [first.key, second.key]
    assert delivered_keys(slack) == [elsewhere.key, first.key, second.key]
    assert not notifier.outbox.get(first.key).ambiguous


def test_a_rate_limited_lookup_is_retried_later_without_pausing_other_channels(make_notifier, slack):
    notifier = make_notifier()
    slack.ratelimit("users.lookupByEmail", times=1, retry_after=5)
    notifier.send([make_alert(1, channel=None, user="ana@example.com"), make_alert(2)])
    report = notifier.deliver(NOW)
    assert report.sent == [make_alert(2).key] and report.next_attempt_at == NOW + timedelta(seconds=5)
    assert notifier.deliver(NOW + timedelta(seconds=5)).sent == [make_alert(1, channel=None,
                                                                            user="ana@example.com").key]


def test_a_post_that_failed_after_slack_handled_it_is_the_one_possible_duplicate(make_notifier, slack):
    notifier = make_notifier()
    notifier.send([make_alert(1)])
    slack.fail_after_handling("chat.postMessage", status=500)
    report = notifier.deliver(NOW)
    assert report.retrying == [make_alert(1).key]
    assert "Slack answered 500" in notifier.outbox.get(make_alert(1).key).error
    assert notifier.outbox.get(make_alert(1).key).ambiguous
    report = notifier.deliver(report.next_attempt_at)
    assert report.sent == report.ambiguous == [make_alert(1).key]
    first, second = slack.posts("support-alerts")
    assert "may repeat" not in str(first.blocks) and "may repeat an earlier post" in str(second.blocks)


def test_a_timed_out_post_is_recorded_as_ambiguous(slack, outbox, clock):
    env = {"SLACK_BOT_TOKEN": DEFAULT_TOKEN, "SLACK_API_URL": slack.api_url}
    notifier = SlackNotifier.from_env(outbox, environ=env, timeout=0.2, pacer=Pacer(clock=clock, sleep=clock.sleep))
    notifier.send([make_alert(1, channel="C0SUPPORT")])
    slack.faults.add(delay=0.6, path="/api/chat.postMessage")
    report = notifier.deliver(NOW)
    assert report.retrying == [make_alert(1, channel="C0SUPPORT").key]
    entry = outbox.get(make_alert(1, channel="C0SUPPORT").key)
    assert entry.ambiguous and "timed out" in entry.error and "may have been posted" in entry.error
    for _ in range(100):  # let the slow server finish the post the client gave up on
        if slack.messages:
            break
        time.sleep(0.02)
    assert len(slack.messages) == 1


def test_slack_unreachable_is_retried_and_is_not_ambiguous(slack, outbox, clock):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/api/"
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    down = SlackNotifier.from_env(outbox, environ={"SLACK_BOT_TOKEN": DEFAULT_TOKEN, "SLACK_API_URL": closed},
                                  pacer=pacer)
    down.send([make_alert(1, channel="C0SUPPORT"), make_alert(2, channel="C0SUPPORT")])
    report = down.deliver(NOW)
    assert len(report.retrying) == 1 and report.waiting == 1
    entry = outbox.get(make_alert(1, channel="C0SUPPORT").key)
    assert "could not reach Slack" in entry.error and not entry.ambiguous
    back = SlackNotifier.from_env(outbox, environ={"SLACK_BOT_TOKEN": DEFAULT_TOKEN, "SLACK_API_URL": slack.api_url},
                                  pacer=pacer)
    report = back.deliver(report.next_attempt_at)
    assert len(report.sent) == 2 and report.ambiguous == []
    assert "may repeat" not in str(slack.messages[0].blocks)


def test_a_rejected_token_keeps_alerts_until_an_operator_fixes_it(make_notifier, slack, outbox):
    wrong = make_notifier(environ={"SLACK_BOT_TOKEN": "xoxb-wrong-token-123", "SLACK_API_URL": slack.api_url})
    wrong.send([make_alert(1, channel="C0SUPPORT")])
    report = wrong.deliver(NOW)
    assert report.retrying and not report.dead
    assert outbox.get(make_alert(1, channel="C0SUPPORT").key).error == (
        "Slack chat.postMessage: Slack refused it (invalid_auth): check SLACK_BOT_TOKEN")
    fixed = make_notifier()
    assert fixed.deliver(report.next_attempt_at).sent


def test_posts_to_one_channel_are_paced_under_one_per_second(make_notifier, slack, clock):
    slack.pace, slack.clock = 1.0, clock  # the fake answers 429 to a second post within 1 s
    notifier = make_notifier(digest_threshold=50)
    notifier.send([make_alert(i) for i in range(1, 4)] + [make_alert(9, channel="escalations")])
    report = notifier.deliver(NOW)
    assert len(report.sent) == 4 and not report.retrying
    assert clock.slept == [1.0, 1.0]  # the other channel did not wait


def test_without_pacing_slacks_per_channel_limit_answers_429(make_notifier, slack, clock):
    slack.pace, slack.clock = 1.0, clock
    notifier = make_notifier(digest_threshold=50, pacer=Pacer(interval=0.0, clock=clock, sleep=clock.sleep))
    notifier.send([make_alert(1), make_alert(2)])
    report = notifier.deliver(NOW)
    assert report.sent == [make_alert(1).key] and report.retrying == [make_alert(2).key]
    assert report.next_attempt_at == NOW + timedelta(seconds=1)


def test_pacing_never_holds_a_round_longer_than_max_wait(make_notifier, slack, clock):
    notifier = make_notifier(digest_threshold=50, max_wait=1.5)
    notifier.send([make_alert(i) for i in range(1, 5)])
    report = notifier.deliver(NOW)
    assert len(report.sent) == 2 and report.waiting == 2 and not report.retrying
    assert sum(clock.slept) == 1.0
    assert notifier.outbox.get(make_alert(3).key).attempts == 0  # deferred, not failed
    clock.t += 5
    assert len(notifier.deliver(NOW).sent) == 2
    assert delivered_keys(slack) == [make_alert(i).key for i in range(1, 5)]


def test_slack_down_by_stopped_server_then_back_on_the_same_port(outbox, clock):
    app = SlackSandbox()
    server = serve(app)
    port, pacer = server.port, Pacer(clock=clock, sleep=clock.sleep)
    notifier = SlackNotifier.from_env(outbox, environ={"SLACK_BOT_TOKEN": DEFAULT_TOKEN, "SLACK_API_URL": app.api_url},
                                      pacer=pacer)
    notifier.send([make_alert(1)])
    notifier.deliver(NOW)
    server.stop()
    notifier.send([make_alert(2, rule="VIP"), make_alert(1, rule="VIP")])
    now = NOW
    for _ in range(3):
        report = notifier.deliver(now)
        assert report.sent == [] and report.retrying
        now = report.next_attempt_at
    with serve(app, port=port):
        report = notifier.deliver(now)
    assert report.sent == [make_alert(2, rule="VIP").key, make_alert(1, rule="VIP").key]
    assert [m.payload["metadata"]["event_payload"]["key"] for m in app.messages] == [
        make_alert(1).key, make_alert(2, rule="VIP").key, make_alert(1, rule="VIP").key]


def test_an_unexpected_answer_is_retried_later_and_never_escapes_deliver(make_notifier, slack, caplog):
    notifier = make_notifier()
    notifier.send([make_alert(1)])
    slack.faults.add(status=200, body='{"ok": true}', path="/api/chat.postMessage")  # no ts in the answer
    report = notifier.deliver(NOW)
    assert report.retrying == [make_alert(1).key]
    assert notifier.outbox.get(make_alert(1).key).error == "unexpected KeyError (see the log)"
    assert "unexpected error delivering" in caplog.text
    assert notifier.deliver(report.next_attempt_at).sent == [make_alert(1).key]
