"""Ticket text reduced to comparable terms: lowercase, no numbers or ids, no stopwords, simple stems.

"Payment declined for order #48213" and "payments DECLINING on checkout"
share the terms `payment` and `declin`, which is what grouping recurring issues
and spotting same-topic repeat contacts need. Stemming is a small suffix
stripper (plural, -ing, -ed, final -e/-y), predictable rather than clever.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_URL_OR_EMAIL = re.compile(r"https?://\S+|www\.\S+|\S+@\S+")
_TOKEN = re.compile(r"[a-z0-9][a-z0-9_'’-]*")
_VOWELS = set("aeiouy")
_MAX_TOKEN = 25
DESCRIPTION_CHARS = 300  # the opening of a message says what it is about; signatures come later

_STOPWORD_TEXT = """
a about above after again against all also am an and any are aren as at be because been before being below
between both but by can cannot could did didn do does doesn doing don down during each either else even ever
every few for from further get gets getting got had has hasn have haven having he her here hers herself him
himself his how however i if in into is isn it its itself just let me might more most much must my myself no
nor not now of off on once only or other our ours ourselves out over own per please same shall she should so
some still such than that the their theirs them themselves then there these they this those though through to
too under until up upon us very via was wasn we were weren what when where whether which while who whom whose
why will with within without won would you your yours yourself yourselves
hi hello hey dear thanks thank thx regards best cheers kind sincerely team support help helpdesk ticket tickets
issue issues problem problems question questions request requests re fw fwd urgent asap today tomorrow yesterday
morning afternoon evening week day days hour hours minute minutes time since ago able unable need needs needed
want wants wanted like see seen know let lets make made use used using work works working try tried trying
sent send sending received receive one two three new old via customer customers client account say says said
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def stem(word: str) -> str:
    """A crude stem: `payments`→`payment`, `failing`/`failed`→`fail`, `replies`/`reply`→`repli`."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "i"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        base = word[: -len(suffix)]
        if word.endswith(suffix) and len(base) >= 4 and _VOWELS & set(base):
            word = base
            if word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    if len(word) > 3 and word.endswith("y"):
        word = word[:-1] + "i"
    return word


def words(text: str) -> Iterator[tuple[str, str]]:
    """(stem, word) for every meaningful word: no URLs, emails, numbers, ids, stopwords or tiny words."""
    for token in _TOKEN.findall(_URL_OR_EMAIL.sub(" ", text.lower())):
        token = token.replace("’", "'").removesuffix("'s").strip("'-_")
        if len(token) < 3 or len(token) > _MAX_TOKEN or any(c.isdigit() for c in token) or token in STOPWORDS:
            continue
        stemmed = stem(token)
        if len(stemmed) >= 3 and stemmed not in STOPWORDS:
            yield stemmed, token


def terms(subject: str, description: str = "") -> frozenset[str]:
    """The stems of a ticket's subject and the opening of its description."""
    return frozenset(s for s, _ in words(f"{subject}\n{description[:DESCRIPTION_CHARS]}"))


def similarity(first: frozenset[str], second: frozenset[str]) -> float:
    """Jaccard similarity of two term sets (0 when either is empty)."""
    if not first or not second:
        return 0.0
    return len(first & second) / len(first | second)
