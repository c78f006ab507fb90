"""Many compiled conditions as one generated function, with rules looked up by value instead of tried in turn.

The planner tests every rule of a file on a ticket. Written out one after the
other, each rule costs at least its cheapest failing test, and most rules fail:
a file routing four teams and six statuses tests `status is new` and `group is
billing` dozens of times per ticket. So the batch is built like a
discrimination tree (the alpha network of production rule engines): rules that
require a plain field to equal one of some values (`status: new`,
`group: {in: [billing, accounts]}`) are grouped by that field, the ticket's
value is read once and looked up in a table, and only the rules filed under it
run, each without the test the lookup already made. Inside a group the same
happens again on another field, a few levels deep. Rules that require no such
value (an `any`, a `not`, a custom field) are tested as before.

The answer is the same as testing every condition in file order: a rule's
conjuncts are pure predicates of an immutable ticket (so order and skipping
change what is spent, never the result), and the numbers that hold are sorted
before they are returned. Lookups are used only for ticket attributes of text
or choice kind, whose values are always hashable, so `value in keys` is exactly
the rule's `==` or `in` test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.model import Ticket
from bot.rules.conditions import Group, Leaf, Names, Node, code_namespace, conjoin, disjoin, in_all_order
from bot.rules.fields import Kind

#: Fewest rules sharing a field that make a lookup worth its call; how many lookups may nest.
MIN_SHARED, MAX_DEPTH = 3, 4
_counter = itertools.count()


def compile_batch(roots: Sequence[tuple[int, Node]]) -> Callable[[Ticket, datetime], list[int]]:
    """Several compiled conditions as one function: the numbers of those that hold, in order.

    `roots` pairs each condition with the number to report (an int from the caller, never from the
    rules file).
    """
    return _Builder(with_open=False).build(roots)  # type: ignore[return-value]


def compile_verdicts(roots: Sequence[tuple[int, Node]]) -> Callable[[Ticket, datetime], tuple[list[int], list[int]]]:
    """`compile_batch`, also answering which conditions time alone could still flip on the ticket.

    A condition is open on a ticket when, with every time-based leaf free to go either way and every
    other leaf as it is (those change only with the ticket), it could still hold and could still fail
    (Kleene's three-valued logic, so it errs towards open). An assigned ticket is not open on a rule
    `status is new and age > 2h`: that rule waits for the ticket to change, not for the clock, and
    the planner asks only open conditions when a ticket's verdicts next change. The second list is
    in no particular order.
    """
    return _Builder(with_open=True).build(roots)  # type: ignore[return-value]


@dataclass(frozen=True)
class _Rule:
    """One condition as the conjuncts that must all hold (nested `all`s flattened)."""

    number: int
    conjuncts: tuple[Node, ...]

    def without(self, leaf: Leaf) -> _Rule:
        return _Rule(self.number, tuple(c for c in self.conjuncts if c is not leaf))


def _conjuncts(node: Node) -> list[Node]:
    if isinstance(node, Group) and node.kind == "all":
        return [part for child in node.children for part in _conjuncts(child)]
    return [node]


def _time_based(node: Node) -> bool:
    return any(leaf.field.time_based for leaf in node.leaves())


def _lookup_leaf(node: Node) -> Leaf | None:
    """The node, if it is a test a table lookup can answer: a plain text or choice attribute `==`/`in` values."""
    if not isinstance(node, Leaf) or node.test.keys is None or node.test.key_code is None:
        return None
    field = node.field
    if field.attr is None or field.code is not None or field.time_based or field.kind not in (Kind.TEXT, Kind.CHOICE):
        return None
    return node


@dataclass
class _Branch:
    """Rules tested one by one, and tables that file further rules under the value of one read."""

    rules: list[_Rule]
    tables: list[tuple[str, dict[Any, _Branch]]]


def _plan(rules: list[_Rule], settled: frozenset[str], depth: int) -> _Branch:
    """Take out, while it pays, the rules that most share a lookup; the rest are tested one by one."""
    tables: list[tuple[str, dict[Any, _Branch]]] = []
    while depth < MAX_DEPTH and (chosen := _choose(rules, settled)) is not None:
        read, filed = chosen
        buckets: dict[Any, list[_Rule]] = {}
        for rule in rules:
            if rule.number in filed:
                leaf = filed[rule.number]
                for value in sorted(leaf.test.keys, key=repr):  # type: ignore[arg-type]
                    buckets.setdefault(value, []).append(rule.without(leaf))
        tables.append((read, {value: _plan(members, settled | {read}, depth + 1)
                              for value, members in buckets.items()}))
        rules = [rule for rule in rules if rule.number not in filed]
    return _Branch(rules, tables)


def _choose(rules: list[_Rule], settled: frozenset[str]) -> tuple[str, dict[int, Leaf]] | None:
    """The value read that the most rules look up (at least MIN_SHARED), and each such rule's leaf."""
    by_read: dict[str, dict[int, Leaf]] = {}
    for rule in rules:
        for conjunct in rule.conjuncts:
            leaf = _lookup_leaf(conjunct)
            if leaf is None:
                continue
            read = leaf.test.key_code(f"t.{leaf.field.attr}")  # type: ignore[misc]
            if read not in settled:
                by_read.setdefault(read, {}).setdefault(rule.number, leaf)
    if not by_read:
        return None
    read, filed = max(by_read.items(), key=lambda item: len(item[1]))
    return (read, filed) if len(filed) >= MIN_SHARED else None


class _Shared(Names):
    """Names for one generated function that also share value reads among its rules.

    A first pass counts the reads; in the second, a value read twice or more is a local computed
    the first time a rule needs it (`_unset` until then), so rules that never get that far do not
    pay for it and the others do not pay again.
    """

    def __init__(self, base: Names, shared: dict[str, str] | None = None) -> None:
        super().__init__(base.namespace)
        self.names = base.names  # the same constants keep the same names
        self.shared = shared or {}
        self.counts: dict[str, int] = {}

    def read(self, expr: str) -> str:
        name = self.shared.get(expr)
        if name is None:
            self.counts[expr] = self.counts.get(expr, 0) + 1
            return expr
        return f"({name} if {name} is not _unset else ({name} := {expr}))"


class _Builder:
    """Writes the source of one batch: a main function and one function per looked-up value."""

    def __init__(self, with_open: bool) -> None:
        self.with_open = with_open
        self.namespace, self.names = code_namespace()
        self.sources: list[str] = []
        self.tables: list[tuple[dict[Any, Any], dict[Any, str]]] = []  # filled with functions after exec

    def build(self, roots: Sequence[tuple[int, Node]]) -> Callable[..., Any]:
        branch = _plan([_Rule(int(number), tuple(_conjuncts(root))) for number, root in roots], frozenset(), 0)
        name = self._function(branch, top=True)
        exec(compile("\n\n".join(self.sources) + "\n", "<rules:batch>", "exec"), self.namespace)  # registry-made
        for table, names in self.tables:
            table.update({value: self.namespace[function] for value, function in names.items()})
        return self.namespace[name]

    def _function(self, branch: _Branch, top: bool = False) -> str:
        lookups = []
        for read, buckets in branch.tables:
            table: dict[Any, Any] = {}
            self.tables.append((table, {value: self._function(sub) for value, sub in buckets.items()}))
            lookups.append((read, table))
        counting = _Shared(self.names)
        self._body(branch.rules, lookups, counting)
        shared = {expr: f"_s{i}" for i, expr in enumerate(e for e, n in counting.counts.items() if n > 1)}
        body = self._body(branch.rules, lookups, _Shared(self.names, shared))
        name = f"_batch_{next(_counter)}"
        found = ", _o" if self.with_open else ""
        head = [f"def {name}(t, now):", "    _m = []", *(["    _o = []"] if self.with_open else [])] if top \
            else [f"def {name}(t, now, _m{found}):"]
        if shared:
            head.append(f"    {' = '.join(shared.values())} = _unset")
        tail = []
        if top:
            tail = [*(["    _m.sort()"] if branch.tables else []), f"    return _m{found}"]
        self.sources.append("\n".join([*head, *body, *tail] if body or tail or shared else [*head, "    pass"]))
        return name

    def _body(self, rules: list[_Rule], lookups: list[tuple[str, dict[Any, Any]]], names: _Shared) -> list[str]:
        lines = [line for rule in rules for line in self._rule(rule, names)]
        for read, table in lookups:
            key = read if read.startswith("t.") else names.read(read)
            lines += [f"    _f = {names(table)}.get({key})",
                      f"    if _f is not None: _f(t, now, _m{', _o' if self.with_open else ''})"]
        return lines

    def _rule(self, rule: _Rule, bind: Names) -> list[str]:
        """Statements for one rule: append its number to `_m` when it holds, to `_o` when time could flip it."""
        number = rule.number
        timeless = sorted((c for c in rule.conjuncts if not _time_based(c)), key=in_all_order)
        timed = sorted((c for c in rule.conjuncts if _time_based(c)), key=in_all_order)
        guard = conjoin([c.code(bind) for c in timeless])
        inner: list[str] = []
        if timed and self.with_open:
            spans = [c.spans(bind) for c in timed]
            still_open = conjoin([conjoin([held for held, _ in spans]), disjoin([failed for _, failed in spans])])
            inner += _when(still_open, f"_o.append({number})")
        inner += _when(conjoin([c.code(bind) for c in timed]), f"_m.append({number})")
        if guard == "False" or not inner:
            return []
        if guard == "True":
            return [f"    {line}" for line in inner]
        return [f"    if {guard}:", *(f"        {line}" for line in inner)]


def _when(condition: str, statement: str) -> list[str]:
    """`if condition: statement`, folded when the condition is a constant."""
    if condition == "False":
        return []
    if condition == "True":
        return [statement]
    return [f"if {condition}:", f"    {statement}"]
