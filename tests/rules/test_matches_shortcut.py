"""`matches` ignoring case skips the regular expression for ASCII text lacking its plain words, and answers the same."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.rules.batch import compile_verdicts
from bot.rules.conditions import Problem, compile_condition
from bot.rules.operators import _required_texts
from tests.factories import NOW, make_ticket

PATTERNS = ["refund|chargeback|money back", "cancel .*subscription", "@(gmail|yahoo|outlook)\\.", "^(re|fwd?):",
            "order #?\\d{5}", "a|b", "Stra(ss|ß)e", "(?-i:REFUND)|invoice", "pass(word)?", "k[a-z]t", "[0-9]+",
            "SUB|sub", "x", "(?x) money \\  back"]
# ASCII and the characters that ignoring case treats specially (long s, Kelvin sign, dotted and dotless i)
TEXTS = st.text(st.sampled_from("abcdefghikmnoprstuvwxyzKS ._@#:1234567890-ſKİıßé\n"), max_size=40) | st.sampled_from(
    ["Refund please", "MONEY BACK", "re: thanks", "FWD: x", "Cancel my Subscription", "me@Gmail.com", "order #12345",
     "paſsword", "Kat", "Straße", "REFUND", "refund"])


def test_the_words_are_the_longest_plain_run_of_each_alternative():
    assert _required_texts(re.compile("refund|chargeback|money back", re.I)) == ("refund", "chargeback", "money back")
    assert _required_texts(re.compile("cancel .*subscription", re.I)) == ("subscription",)
    assert _required_texts(re.compile("@(gmail|yahoo)\\.", re.I)) == ("@",)
    assert _required_texts(re.compile("[0-9]+", re.I)) is None  # no plain word: always run
    assert _required_texts(re.compile("Stra(ss|ß)e|straße", re.I)) is None  # a non-ASCII word: always run


def compiled(pattern: str, field: str = "subject"):
    problems: list[Problem] = []
    condition = compile_condition({field: {"matches": pattern}}, ("when",), problems)
    assert not problems, problems
    return condition


@settings(max_examples=400, deadline=None)
@given(pattern=st.sampled_from(PATTERNS), subject=TEXTS, description=TEXTS)
def test_the_shortcut_never_changes_the_answer(pattern, subject, description):
    expected = re.compile(pattern, re.IGNORECASE).search(subject) is not None
    condition = compiled(pattern)
    ticket = make_ticket(subject=subject, description=description)
    assert condition.test(ticket, NOW) is expected
    assert condition.explain(ticket, NOW).held is expected
    # in a batch the lower-cased text is shared between rules reading the same field
    rules = [compiled(pattern).root, compiled("refund|invoice").root, compiled(pattern, "description").root,
             compiled("Money", "description").root]
    held, _ = compile_verdicts(list(enumerate(rules)))(ticket, NOW)
    assert held == [i for i, root in enumerate(rules) if root.explain(ticket, NOW).held]
