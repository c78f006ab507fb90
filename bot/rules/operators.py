"""Every comparison a condition can make, in one registry.

An operator checks its value once, when the rules file loads (`prepare`), and
returns a `Test`: a plain predicate on the field's value (used by `explain`)
and the same predicate as a Python expression over bound constants (used by the
compiled fast path). The expression only ever contains registry-made code and
constant *names*; values from the rules file are bound as objects, never
pasted into source, so a rules file cannot inject code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from difflib import get_close_matches
from typing import Any

from bot.model import Priority
from bot.rules.durations import DurationError, parse_duration
from bot.rules.fields import Field, Kind


class OperatorError(ValueError):
    """A value that does not suit the operator or the field; the message says what would."""


@dataclass(frozen=True)
class Test:
    """A prepared comparison: `check(value)` and `code(value_expr, const_name)` agree.

    An equality or membership test also gives `keys` and `key_code`: it holds exactly when the value
    read by `key_code(value_expr)` is one of `keys`, so a batch of conditions can look several rules'
    tests up in one table (`bot.rules.batch`) instead of checking them one by one. A text test may
    give `shared`: (read, code) such that `code(read(value_expr), value_expr, const)` is the same
    test, where `read` is what several rules can share (the text case-folded once), so a batch folds
    a field once for all the rules that read it. `extra` are further constants the code names: both
    codes are given their names after `const`'s.
    """

    const: Any
    check: Callable[[Any], bool]
    code: Callable[..., str]
    shown: str
    keys: frozenset | None = None
    key_code: Callable[[str], str] | None = None
    shared: tuple[Callable[[str], str], Callable[..., str]] | None = None
    extra: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Operator:
    """A named comparison, the field kinds it applies to, and how to prepare it."""

    name: str
    doc: str
    example: str
    kinds: frozenset[Kind]
    prepare: Callable[[Field, Any, bool], Test]


OPERATORS: dict[str, Operator] = {}
ALIASES: dict[str, str] = {}


def operator(name: str, kinds: set[Kind], doc: str, example: str, aliases: tuple[str, ...] = ()):
    """Register `prepare(field, value, case_sensitive) -> Test` as operator `name`."""

    def wrap(prepare: Callable[[Field, Any, bool], Test]) -> Callable[[Field, Any, bool], Test]:
        OPERATORS[name] = Operator(name, doc, example, frozenset(kinds), prepare)
        for alias in aliases:
            ALIASES[alias] = name
        return prepare

    return wrap


def lookup(name: str) -> Operator | None:
    """The operator for a name or alias."""
    return OPERATORS.get(ALIASES.get(name, name))


def show(value: Any) -> str:
    """A rules-file value as a coordinator wrote it: [high, urgent], 2h, "refund"."""
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, str) and (not value or any(c in value for c in " ,:[]{}#")):
        return f'"{value}"'
    return str(value).lower() if isinstance(value, bool) else str(value)


def suggest(word: str, choices: list[str]) -> str:
    """"; did you mean 'x'?" for the nearest valid word, or a list of valid words."""
    close = get_close_matches(str(word), choices, n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f" (valid: {', '.join(choices)})" if len(choices) <= 12 else ""


# ---- value checking -------------------------------------------------------------------------

_RANK = {p.value: p.rank for p in Priority}
_RANK_OF = {**{p: p.rank for p in Priority}, None: -1}


def _scalar(field: Field, value: Any, case_sensitive: bool) -> Any:
    """Check one comparison value against the field's kind and normalise it."""
    if isinstance(value, list | dict):
        raise OperatorError(f"expects a single value, got {type(value).__name__}")
    if field.kind is Kind.CHOICE:
        text = str(value).strip().lower().replace(" ", "_").replace("-", "_")
        if text == "hold":
            text = "on_hold"
        if text not in field.choices:
            raise OperatorError(f"'{value}' is not a {field.name}{suggest(text, list(field.choices))}")
        return text
    if field.kind is Kind.DURATION:
        try:
            return parse_duration(value)
        except DurationError as error:
            raise OperatorError(str(error)) from None
    if field.kind is Kind.NUMBER:
        if isinstance(value, str) and value.strip().endswith("%"):  # `elapsed: 75%`
            try:
                return float(value.strip()[:-1])
            except ValueError:
                raise OperatorError(f"'{value}' is not a percentage") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OperatorError(f"'{value}' is not a number")
        return value
    if field.kind is Kind.BOOL:
        if not isinstance(value, bool):
            raise OperatorError(f"'{value}' is not true or false")
        return value
    if value is None:
        return None
    if field.kind in (Kind.TEXT, Kind.TAGS) or isinstance(value, str):
        text = str(value)
        return text if case_sensitive or field.kind is Kind.TAGS else text.casefold()
    return value


def _fold(field: Field, case_sensitive: bool) -> bool:
    """Whether values read from the ticket must be case-folded before comparing."""
    return field.kind in (Kind.TEXT, Kind.ANY) and not case_sensitive


def _read(fold: bool) -> Callable[[Any], Any]:
    if not fold:
        return lambda v: v
    return lambda v: v.casefold() if isinstance(v, str) else v


def _read_code(fold: bool, v: str) -> str:
    # inline, not a call: `_v` is a local of the generated function, assigned before it is read
    return fold_read(v) if fold else v


def fold_read(v: str) -> str:
    """The value `v` reads, case-folded when it is text (any other value as it is)."""
    return f"(_v.casefold() if isinstance(_v := {v}, str) else _v)"


def fold_text(v: str) -> str:
    """The text `v` reads, case-folded; "" when it is not text (no test text is found in "")."""
    return f'(_v.casefold() if isinstance(_v := {v}, str) else "")'


def as_text(v: str) -> str:
    """The text `v` reads; "" when it is not text."""
    return f'(_v if isinstance(_v := {v}, str) else "")'


def ascii_lower(v: str) -> str:
    """The text `v` reads in lower case when it is ASCII text (where that is exact case-blindness), else None."""
    return f"(_v.lower() if isinstance(_v := {v}, str) and _v.isascii() else None)"


def _equality_code(symbol: str, fold: bool, const: Any) -> Callable[[str, str], str]:
    """`v == c`; against null, `is None` (the same answer for every value a field reads, without a call)."""
    if const is None:
        return lambda v, c: f"{v} {'is' if symbol == '==' else 'is not'} None"
    return lambda v, c: f"{_read_code(fold, v)} {symbol} {c}"


def _over_folded(symbol: str, const: Any) -> Callable[[str, str, str], str]:
    """`_equality_code` over a value already folded (`fold_read`)."""
    equality = _equality_code(symbol, False, const)
    return lambda h, v, c: equality(h, c)


EQUALITY = {Kind.TEXT, Kind.CHOICE, Kind.NUMBER, Kind.BOOL, Kind.ANY, Kind.DURATION}
ORDERING = {Kind.NUMBER, Kind.DURATION, Kind.CHOICE, Kind.ANY}
TEXTUAL = {Kind.TEXT, Kind.ANY}


@operator("eq", EQUALITY, "Equals (text is compared ignoring case).", "priority: {eq: urgent}", ("is",))
def _eq(field: Field, value: Any, case_sensitive: bool) -> Test:
    const, read = _scalar(field, value, case_sensitive), _read(_fold(field, case_sensitive))
    fold = _fold(field, case_sensitive)
    keys = None if const is None else frozenset((const,))
    return Test(const, lambda v: read(v) == const, _equality_code("==", fold, const), show(value), keys,
                lambda v: _read_code(fold, v), (fold_read, _over_folded("==", const)) if fold else None)


@operator("ne", EQUALITY, "Does not equal.", "status: {ne: pending}", ("is_not",))
def _ne(field: Field, value: Any, case_sensitive: bool) -> Test:
    const, read = _scalar(field, value, case_sensitive), _read(_fold(field, case_sensitive))
    fold = _fold(field, case_sensitive)
    return Test(const, lambda v: read(v) != const, _equality_code("!=", fold, const), show(value),
                shared=(fold_read, _over_folded("!=", const)) if fold else None)


def _members(field: Field, value: Any, case_sensitive: bool) -> frozenset:
    if not isinstance(value, list) or not value:
        raise OperatorError("expects a list, e.g. [high, urgent]")
    return frozenset(_scalar(field, item, case_sensitive) for item in value)


@operator("in", EQUALITY, "Is one of a list.", "priority: {in: [high, urgent]}", ("one_of",))
def _in(field: Field, value: Any, case_sensitive: bool) -> Test:
    const, fold = _members(field, value, case_sensitive), _fold(field, case_sensitive)
    read = _read(fold)
    return Test(const, lambda v: read(v) in const, lambda v, c: f"{_read_code(fold, v)} in {c}", show(value),
                const, lambda v: _read_code(fold, v), (fold_read, lambda h, v, c: f"{h} in {c}") if fold else None)


@operator("not_in", EQUALITY, "Is none of a list.", "status: {not_in: [pending, on_hold]}", ("none_of",))
def _not_in(field: Field, value: Any, case_sensitive: bool) -> Test:
    const, fold = _members(field, value, case_sensitive), _fold(field, case_sensitive)
    read = _read(fold)
    return Test(const, lambda v: read(v) not in const, lambda v, c: f"{_read_code(fold, v)} not in {c}",
                show(value), shared=(fold_read, lambda h, v, c: f"{h} not in {c}") if fold else None)


@operator("has", {Kind.TAGS}, "The ticket has this tag.", "tags: {has: vip}", ("includes",))
def _has(field: Field, value: Any, case_sensitive: bool) -> Test:
    const = _scalar(field, value, True)
    return Test(const, lambda v: const in v, lambda v, c: f"{c} in {v}", show(value))


@operator("lacks", {Kind.TAGS}, "The ticket does not have this tag.", "tags: {lacks: bot_routed}",
          ("excludes",))
def _lacks(field: Field, value: Any, case_sensitive: bool) -> Test:
    const = _scalar(field, value, True)
    return Test(const, lambda v: const not in v, lambda v, c: f"{c} not in {v}", show(value))


@operator("has_any", {Kind.TAGS}, "The ticket has at least one of these tags.",
          "tags: {has_any: [vip, enterprise]}")
def _has_any(field: Field, value: Any, case_sensitive: bool) -> Test:
    const = _members(field, value, True)
    return Test(const, lambda v: not const.isdisjoint(v), lambda v, c: f"not {c}.isdisjoint({v})", show(value))


@operator("has_all", {Kind.TAGS}, "The ticket has every one of these tags.",
          "tags: {has_all: [vip, outage]}")
def _has_all(field: Field, value: Any, case_sensitive: bool) -> Test:
    const = _members(field, value, True)
    return Test(const, lambda v: const <= v, lambda v, c: f"{c} <= {v}", show(value))


@operator("has_none", {Kind.TAGS}, "The ticket has none of these tags.", "tags: {has_none: [spam, test]}")
def _has_none(field: Field, value: Any, case_sensitive: bool) -> Test:
    const = _members(field, value, True)
    return Test(const, lambda v: const.isdisjoint(v), lambda v, c: f"{c}.isdisjoint({v})", show(value))


def _text(value: Any, case_sensitive: bool) -> str:
    if not isinstance(value, str) or not value:
        raise OperatorError("expects some text")
    return value if case_sensitive else value.casefold()


@operator("contains", TEXTUAL, "The text contains this (ignoring case unless case_sensitive: true).",
          'subject: {contains: "refund"}')
def _contains(field: Field, value: Any, case_sensitive: bool) -> Test:
    const = _text(value, case_sensitive)
    if case_sensitive:
        return Test(const, lambda v: isinstance(v, str) and const in v,
                    lambda v, c: f"(isinstance(_v := {v}, str) and {c} in _v)", show(value),
                    shared=(as_text, lambda h, v, c: f"{c} in {h}"))
    return Test(const, lambda v: isinstance(v, str) and const in v.casefold(),
                lambda v, c: f"(isinstance(_v := {v}, str) and {c} in _v.casefold())", show(value),
                shared=(fold_text, lambda h, v, c: f"{c} in {h}"))


@operator("not_contains", TEXTUAL, "The text does not contain this.", 'subject: {not_contains: "test"}')
def _not_contains(field: Field, value: Any, case_sensitive: bool) -> Test:
    inner = _contains(field, value, case_sensitive)
    read, code = inner.shared  # type: ignore[misc]
    return Test(inner.const, lambda v: not inner.check(v), lambda v, c: f"not {inner.code(v, c)}", show(value),
                shared=(read, lambda h, v, c: f"not {code(h, v, c)}"))


@operator("starts_with", TEXTUAL, "The text starts with this.", 'subject: {starts_with: "[outage]"}')
def _starts_with(field: Field, value: Any, case_sensitive: bool) -> Test:
    const, fold = _text(value, case_sensitive), not case_sensitive
    read = _read(fold)
    fold_code = ".casefold()" if fold else ""
    return Test(const, lambda v: isinstance(v, str) and read(v).startswith(const),
                lambda v, c: f"(isinstance(_v := {v}, str) and _v{fold_code}.startswith({c}))", show(value),
                shared=(fold_text if fold else as_text, lambda h, v, c: f"{h}.startswith({c})"))


@operator("matches", TEXTUAL, "A regular expression finds a match (ignoring case unless case_sensitive).",
          'subject: {matches: "refund|chargeback"}')
def _matches(field: Field, value: Any, case_sensitive: bool) -> Test:
    if not isinstance(value, str) or not value:
        raise OperatorError("expects a regular expression")
    try:
        pattern = re.compile(value, 0 if case_sensitive else re.IGNORECASE)
    except re.error as error:
        raise OperatorError(f"'{value}' is not a valid regular expression: {error}") from None
    search = pattern.search
    required = _required_texts(pattern) if pattern.flags & re.IGNORECASE else None
    if not required:
        return Test(pattern, lambda v: isinstance(v, str) and search(v) is not None,
                    lambda v, c: f"(isinstance(_v := {v}, str) and {c}.search(_v) is not None)", show(value))

    def code(v: str, c: str, *texts: str) -> str:
        present = " or ".join(f"{text} in {'(_l := _v.lower())' if i == 0 else '_l'}" for i, text in enumerate(texts))
        return f"(isinstance(_v := {v}, str) and (not _v.isascii() or {present}) and {c}.search(_v) is not None)"

    def over_lower(h: str, v: str, c: str, *texts: str) -> str:
        present = " or ".join(f"{text} in _l" for text in texts)
        return f"(((_l := {h}) is None or {present}) and isinstance(_v := {v}, str) and {c}.search(_v) is not None)"

    return Test(pattern, lambda v: isinstance(v, str) and search(v) is not None, code, show(value),
                shared=(ascii_lower, over_lower), extra=required)


def _required_texts(pattern: re.Pattern[str]) -> tuple[str, ...] | None:
    """Lower-case ASCII texts one of which every match of a case-insensitive pattern contains.

    Per top-level alternative, its longest run of plain characters (`refund|money back` gives both,
    `cancel .*subscription` gives `subscription`). In ASCII text, ignoring case means exactly that the
    lower-cased text contains the lower-cased run, so ASCII text containing none of them cannot match
    and the regular expression (the slow part, ignoring case) need not run. None when an alternative
    has no such run or the pattern is beyond this reading (it is then always run).
    """
    try:
        from re import _constants, _parser  # the standard library's own reading of the pattern

        tree = list(_parser.parse(pattern.pattern, pattern.flags))
        branches = [tree]
        if len(tree) == 1 and tree[0][0] is _constants.BRANCH:
            branches = [list(branch) for branch in tree[0][1][1]]
        texts = []
        for branch in branches:
            longest, run = "", []
            for op, arg in [*branch, (None, None)]:
                if op is _constants.LITERAL:
                    run.append(chr(arg))
                    continue
                if len(run) > len(longest):
                    longest = "".join(run)
                run = []
            if not longest or not longest.isascii():
                return None
            texts.append(longest.lower())
        return tuple(dict.fromkeys(texts))
    except Exception:  # a private module, or a form it reads differently: no shortcut, the same answers
        return None


@operator("not_matches", TEXTUAL, "A regular expression finds no match.", 'subject: {not_matches: "^re:"}')
def _not_matches(field: Field, value: Any, case_sensitive: bool) -> Test:
    inner = _matches(field, value, case_sensitive)
    shared = None
    if inner.shared is not None:
        read, over = inner.shared
        shared = (read, lambda h, v, c, *texts: f"not {over(h, v, c, *texts)}")
    return Test(inner.const, lambda v: not inner.check(v), lambda v, c, *texts: f"not {inner.code(v, c, *texts)}",
                show(value), shared=shared, extra=inner.extra)


def _ordering(symbol: str, compare: Callable[[Any, Any], bool]):
    def prepare(field: Field, value: Any, case_sensitive: bool) -> Test:
        if field.kind is Kind.CHOICE:
            if not field.ordered:
                raise OperatorError(f"'{field.name}' has no order; use eq, ne, in or not_in")
            rank = _RANK[_scalar(field, value, case_sensitive)]
            return Test(rank, lambda v: compare(_RANK_OF.get(v, -1), rank),
                        lambda v, c: f"_rank[{v}] {symbol} {c}", show(value))
        if field.kind is Kind.ANY:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise OperatorError(f"'{value}' is not a number")
            const = value
            return Test(const, lambda v: isinstance(v, int | float) and not isinstance(v, bool) and compare(v, const),
                        lambda v, c: f"(isinstance(_v := {v}, _number) and not isinstance(_v, bool) "
                                     f"and _v {symbol} {c})", show(value))
        const = _scalar(field, value, case_sensitive)

        def code(v: str, c: str) -> str:
            if _SIMPLE.match(v):  # a plain attribute read is cheaper to repeat than to name
                return f"({v} is not None and {v} {symbol} {c})"
            return f"((_v := {v}) is not None and _v {symbol} {c})"

        return Test(const, lambda v: v is not None and compare(v, const), code, show(value))

    return prepare


_SIMPLE = re.compile(r"^t\.[a-z_]+$")
operator("gt", ORDERING, "Greater than (for priority: higher than).", "hours_since_created: {gt: 4}",
         ("over", "above", "more_than"))(_ordering(">", lambda a, b: a > b))
operator("gte", ORDERING, "Greater than or equal.", "priority: {gte: high}",
         ("at_least",))(_ordering(">=", lambda a, b: a >= b))
operator("lt", ORDERING, "Less than.", "since_updated: {under: 30m}",
         ("under", "below", "less_than"))(_ordering("<", lambda a, b: a < b))
operator("lte", ORDERING, "Less than or equal.", "priority: {at_most: normal}",
         ("at_most",))(_ordering("<=", lambda a, b: a <= b))


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, frozenset | set | list | tuple) and not value)


@operator("is_empty", set(Kind), "The field is empty (true) or not (false).", "assignee: {is_empty: true}")
def _is_empty(field: Field, value: Any, case_sensitive: bool) -> Test:
    if not isinstance(value, bool):
        raise OperatorError("expects true or false")
    if value:
        return Test(True, _empty, lambda v, c: _empty_code(v), "true")
    return Test(False, lambda v: not _empty(v), lambda v, c: f"not {_empty_code(v)}", "false")


def _empty_code(v: str) -> str:
    """`_empty(v)` inline (a call per leaf is most of its cost); a true value is never empty, and the
    usual value (a name, a group) is decided by its truth alone."""
    return f'(not (_v := {v}) and (_v is None or _v == "" or isinstance(_v, _collection)))'


@operator("is_set", set(Kind), "The field has a value (true) or not (false).", "group: {is_set: true}")
def _is_set(field: Field, value: Any, case_sensitive: bool) -> Test:
    if not isinstance(value, bool):
        raise OperatorError("expects true or false")
    return _is_empty(field, not value, case_sensitive)


#: Names the compiled expressions may use; nothing else is in their namespace. Comparisons are
#: written inline (a Python call per leaf would cost more than the comparison itself).
RUNTIME: dict[str, Any] = {
    "_rank": _RANK_OF,
    "_number": (int, float),
    "_collection": (frozenset, set, list, tuple),
    "_unset": object(),  # a shared value not read yet (bot.rules.batch)
    "timedelta": timedelta,
}  # fmt: skip
