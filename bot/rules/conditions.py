"""Condition trees: `all` / `any` / `not` over leaves that read like English.

    when:
      all:
        - status: {in: [new, open]}
        - priority: urgent                 # shorthand for {eq: urgent}
        - tags: {lacks: bot_escalated}
        - any:
            - unanswered_for: {over: 2h}
            - subject: {matches: "outage|down", case_sensitive: false}

A mapping with several keys means all of them. `compile_condition` checks the
tree once when the rules file loads and returns a `Condition` with two equal
views: `test(ticket, now)`, one generated Python function for speed, and
`explain(ticket, now)`, a per-leaf trace with the values seen.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from bot.model import Ticket
from bot.rules import fields as field_registry
from bot.rules.fields import Field, Kind
from bot.rules.operators import ALIASES, OPERATORS, RUNTIME, OperatorError, Test, lookup, suggest
from bot.rules.yamlsource import Path, format_path

COMBINATORS = ("all", "any", "not")
_OPTIONS = ("case_sensitive",)
_EPSILON = timedelta(microseconds=1)
# Relative costs for ordering children: a slot read, an inline read, a Python call (ages, SLA clocks);
# a regular expression costs about as much as a call.
_ATTR_READ, _INLINE_READ, _CALL_READ = 1, 2, 8
_OPERATOR_COST = {"matches": 8, "not_matches": 8, "contains": 2, "not_contains": 2, "starts_with": 2}
_WORDS = {
    "eq": "is", "ne": "is not", "in": "is one of", "not_in": "is none of", "has": "has", "lacks": "lacks",
    "has_any": "has any of", "has_all": "has all of", "has_none": "has none of", "contains": "contains",
    "not_contains": "does not contain", "starts_with": "starts with", "matches": "matches",
    "not_matches": "does not match", "gt": "over", "gte": "at least", "lt": "under", "lte": "at most",
    "is_empty": "is empty:", "is_set": "is set:",
}  # fmt: skip


@dataclass
class Problem:
    """One mistake found while compiling, at a document path."""

    path: Path
    message: str
    at_value: bool = False
    position: tuple[int, int] | None = None


@dataclass(frozen=True)
class Verdict:
    """One node of an explanation: what was checked, the value seen, whether it held."""

    path: str
    text: str
    held: bool
    value: Any = None
    children: tuple[Verdict, ...] = ()


class Node:
    """A compiled condition node."""

    path: Path

    @cached_property
    def where(self) -> str:
        """The node's document path as explanations show it (formatted once: explain runs per firing)."""
        return format_path(self.path)

    def explain(self, ticket: Ticket, now: datetime) -> Verdict:
        """The verdict with every sub-verdict (no short-circuit, so all leaves show)."""
        raise NotImplementedError

    def code(self, bind: Callable[[Any], str]) -> str:
        """This node as a Python expression over `t` and `now`."""
        raise NotImplementedError

    def leaves(self) -> list[Leaf]:
        """All leaves below this node."""
        raise NotImplementedError

    def cost(self) -> int:
        """Rough price of evaluating this node, so `all`/`any` can try cheap children first."""
        raise NotImplementedError

    def spans(self, bind: Callable[[Any], str]) -> tuple[str, str]:
        """Two expressions over `t` and `now`: could this node hold, could it fail, whatever time-based
        leaves say? Time-based leaves count as free (either way); every other leaf as it is now."""
        raise NotImplementedError


@dataclass
class Leaf(Node):
    """`field operator value`."""

    path: Path
    field: Field
    operator: str
    test: Test

    def value(self, ticket: Ticket, now: datetime) -> Any:
        """The field's value for this ticket at `now`."""
        return self.field.getter(ticket, now)

    def holds(self, ticket: Ticket, now: datetime) -> bool:
        """Whether the comparison holds."""
        return self.test.check(self.field.getter(ticket, now))

    def explain(self, ticket: Ticket, now: datetime) -> Verdict:
        seen = self.value(ticket, now)
        return Verdict(self.where, self.text, self.test.check(seen), seen)

    def code(self, bind: Callable[[Any], str]) -> str:
        read = getattr(bind, "read", None)  # Names: values may be shared within a generated function
        test, const = self.test, bind(self.test.const)
        extra = [bind(item) for item in test.extra]
        if self.field.code is not None:
            value = self.field.code(bind)
        elif self.field.attr:
            value = f"t.{self.field.attr}"
        else:
            value = f"{bind(self.field.getter)}(t, now)"
        if read is not None:
            if test.shared is not None:
                share, over = test.shared
                shared = read(share(value))
                if shared != share(value):
                    return "(" + over(shared, value, const, *extra) + ")"
            if not self.field.attr:
                value = read(value)
        return "(" + test.code(value, const, *extra) + ")"

    def leaves(self) -> list[Leaf]:
        return [self]

    def spans(self, bind: Callable[[Any], str]) -> tuple[str, str]:
        if self.field.time_based:
            return "True", "True"
        held = self.code(bind)
        return held, f"(not {held})"

    @cached_property
    def text(self) -> str:
        """`field operator value`, as explanations and reasons show it."""
        return f"{self.field.name} {_WORDS[self.operator]} {self.test.shown}"

    def cost(self) -> int:
        if self.field.slow:
            read = _CALL_READ
        elif self.field.code is not None:
            read = _INLINE_READ
        else:
            read = _ATTR_READ if self.field.attr else _CALL_READ
        return read + _OPERATOR_COST.get(self.operator, 1)

    def next_change(self, ticket: Ticket, now: datetime) -> datetime | None:
        """The next instant after `now` at which time alone could flip this leaf."""
        if self.field.next_change is not None:
            return self.field.next_change(ticket, now, self.operator, self.test.const)
        if not self.counts_from_start:
            return None
        start = self.field.since(ticket)  # type: ignore[misc]
        if start is None:
            return None
        return next((at for at in (start + offset for offset in self.offsets()) if at > now), None)

    @property
    def counts_from_start(self) -> bool:
        """True for an age compared with a number or duration: it flips at fixed offsets from the age's start."""
        # is_empty / is_set hold a bool; an age's emptiness changes with the ticket, never with time
        return (self.field.next_change is None and self.field.since is not None
                and self.operator not in ("is_empty", "is_set")
                and isinstance(self.test.const, int | float | timedelta) and not isinstance(self.test.const, bool))

    def offsets(self) -> tuple[timedelta, ...]:
        """For an age leaf, the offsets from the age's start at which time alone can flip it.

        The planner sorts these once per rules file instead of asking every leaf for every ticket.
        """
        const = self.test.const
        if self.field.unit is not None:
            const = self.field.unit * const
        if self.operator in ("gt", "lte"):  # true (or false) only once strictly past the boundary
            return (const + _EPSILON,)
        if self.operator in ("gte", "lt"):
            return (const,)
        return (const, const + _EPSILON)  # eq / ne hold at the boundary instant itself and flip back right after


@dataclass
class Group(Node):
    """`all` / `any` of children."""

    path: Path
    kind: str
    children: list[Node] = field(default_factory=list)

    def explain(self, ticket: Ticket, now: datetime) -> Verdict:
        verdicts = tuple(child.explain(ticket, now) for child in self.children)
        combine = all if self.kind == "all" else any
        return Verdict(self.where, self.kind, combine(v.held for v in verdicts), None, verdicts)

    def code(self, bind: Callable[[Any], str]) -> str:
        # Cheapest first (stable, so the file's order breaks ties): every compiled leaf is a total
        # predicate of an immutable ticket, so the order changes what is spent, never the answer.
        joiner = " and " if self.kind == "all" else " or "
        ordered = sorted(self.children, key=in_all_order if self.kind == "all" else _cost)
        return "(" + joiner.join(child.code(bind) for child in ordered) + ")"

    def leaves(self) -> list[Leaf]:
        return [leaf for child in self.children for leaf in child.leaves()]

    def spans(self, bind: Callable[[Any], str]) -> tuple[str, str]:
        ordered = sorted(self.children, key=in_all_order if self.kind == "all" else _cost)
        can_hold, can_fail = zip(*(child.spans(bind) for child in ordered), strict=True)
        if self.kind == "all":
            return conjoin(can_hold), disjoin(can_fail)
        return disjoin(can_hold), conjoin(can_fail)

    def cost(self) -> int:
        return sum(child.cost() for child in self.children)


def in_all_order(node: Node) -> int:
    """Sort key of a test inside `all`: cheapest first, a negative test (`lacks`, `ne`, `not_in`...)
    counted twice its cost, as it nearly always holds (a guard such as `tags: {lacks: done}`) and so
    rarely ends the `all` early, where a positive test of about the same cost usually does."""
    cost = node.cost()
    return 2 * cost if isinstance(node, Leaf) and node.operator in _NEGATIVE else cost


def _cost(node: Node) -> int:
    return node.cost()


_NEGATIVE = frozenset({"ne", "not_in", "lacks", "has_none", "not_contains", "not_matches"})


@dataclass
class Not(Node):
    """`not` of one child."""

    path: Path
    child: Node

    def explain(self, ticket: Ticket, now: datetime) -> Verdict:
        inner = self.child.explain(ticket, now)
        return Verdict(self.where, "not", not inner.held, None, (inner,))

    def code(self, bind: Callable[[Any], str]) -> str:
        return f"(not {self.child.code(bind)})"

    def leaves(self) -> list[Leaf]:
        return self.child.leaves()

    def spans(self, bind: Callable[[Any], str]) -> tuple[str, str]:
        can_hold, can_fail = self.child.spans(bind)
        return can_fail, can_hold

    def cost(self) -> int:
        return self.child.cost()


@dataclass
class Condition:
    """A compiled `when`: fast `test`, traced `explain`, and time-based leaves for scheduling."""

    root: Node
    test: Callable[[Ticket, datetime], bool]
    source: str
    time_leaves: tuple[Leaf, ...]

    def explain(self, ticket: Ticket, now: datetime) -> Verdict:
        """Every leaf's value and verdict."""
        return self.root.explain(ticket, now)

    def next_change(self, ticket: Ticket, now: datetime) -> datetime | None:
        """Earliest instant after `now` at which time alone could change the verdict."""
        best = None
        for leaf in self.time_leaves:
            at = leaf.next_change(ticket, now)
            if at is not None and (best is None or at < best):
                best = at
        return best


_counter = itertools.count()


def compile_condition(raw: Any, path: Path, problems: list[Problem], context: Any = None) -> Condition | None:
    """Check and compile a condition tree; mistakes are appended to `problems`.

    `context` (the rules file being compiled) is handed to field families that need it.
    """
    before = len(problems)
    root = _node(raw, path, problems, context)
    if root is None or len(problems) > before:
        return None
    namespace, bind = code_namespace()

    expression = root.code(bind)
    name = f"_when_{next(_counter)}"
    source = f"def {name}(t, now):\n    return {expression}\n"
    exec(compile(source, f"<rules:{format_path(path)}>", "exec"), namespace)  # registry-made code only
    leaves = tuple(leaf for leaf in root.leaves() if leaf.field.time_based)
    return Condition(root, namespace[name], source, leaves)


def code_namespace() -> tuple[dict[str, Any], Names]:
    """A namespace for generated code (the runtime helpers only) and `bind`, which names a constant in it."""
    namespace: dict[str, Any] = dict(RUNTIME)
    return namespace, Names(namespace)


class Names:
    """`bind(obj)`: the name of a constant in generated code's namespace (the same object, the same name).

    `read(expr)` gives the expression a leaf should use for a value it reads; here the value itself,
    while `bot.rules.batch` answers with a local its function computes once and shares among rules.
    """

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.names: dict[int, str] = {}

    def __call__(self, obj: Any) -> str:
        key = id(obj)
        name = self.names.get(key)
        if name is None:
            name = self.names[key] = f"_c{len(self.names)}"
            self.namespace[name] = obj
        return name

    def read(self, expr: str) -> str:
        """The expression to use for the value `expr` reads (pure in `t` and `now`)."""
        return expr


def conjoin(parts: Sequence[str]) -> str:
    """`a and b ...` with constants folded."""
    if "False" in parts:
        return "False"
    parts = [part for part in parts if part != "True"]
    return "(" + " and ".join(parts) + ")" if parts else "True"


def disjoin(parts: Sequence[str]) -> str:
    """`a or b ...` with constants folded."""
    if "True" in parts:
        return "True"
    parts = [part for part in parts if part != "False"]
    return "(" + " or ".join(parts) + ")" if parts else "False"


def _node(raw: Any, path: Path, problems: list[Problem], context: Any) -> Node | None:
    if not isinstance(raw, dict) or not raw:
        problems.append(Problem(path, "a condition is a mapping such as {priority: urgent} or "
                                      "{all: [...]}, {any: [...]}, {not: ...}"))
        return None
    nodes = [n for n in (_entry(key, value, (*path, key), problems, context) for key, value in raw.items()) if n]
    if len(nodes) != len(raw):
        return None
    return nodes[0] if len(nodes) == 1 else Group(path, "all", nodes)


def _entry(key: Any, value: Any, path: Path, problems: list[Problem], context: Any) -> Node | None:
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            problems.append(Problem(path, f"'{key}' needs a list of conditions"))
            return None
        children = [_node(item, (*path, index), problems, context) for index, item in enumerate(value)]
        if any(child is None for child in children):
            return None
        return Group(path, key, children)  # type: ignore[arg-type]
    if key == "not":
        child = _node(value, path, problems, context)
        return Not(path, child) if child else None
    try:
        field = field_registry.resolve(str(key), context)
    except ValueError as error:
        problems.append(Problem(path, str(error)))
        return None
    if field is None:
        valid = [*COMBINATORS, *field_registry.FIELDS]
        problems.append(Problem(path, f"unknown field '{key}'{suggest(str(key), valid)}"))
        return None
    return _leaf(field, value, path, problems)


def _leaf(field: Field, spec: Any, path: Path, problems: list[Problem]) -> Node | None:
    if not isinstance(spec, dict):
        if isinstance(spec, list):
            if field.kind is Kind.TAGS:
                problems.append(Problem(path, "for several tags write {has_any: [...]} or {has_all: [...]}",
                                        at_value=True))
                return None
            spec = {"in": spec}
        else:
            spec = {"has" if field.kind is Kind.TAGS else field.shorthand or "eq": spec}
    case_sensitive = spec.get("case_sensitive", False)
    if not isinstance(case_sensitive, bool):
        problems.append(Problem((*path, "case_sensitive"), "case_sensitive is true or false"))
        return None
    comparisons = [(k, v) for k, v in spec.items() if k not in _OPTIONS]
    if not comparisons:
        problems.append(Problem(path, f"'{field.name}' needs an operator, e.g. {field.example}"))
        return None
    leaves: list[Node] = []
    for name, value in comparisons:
        operator = lookup(str(name))
        where = (*path, name)
        if operator is None:
            valid = [*OPERATORS, *ALIASES]
            problems.append(Problem(where, f"unknown operator '{name}'{suggest(str(name), valid)}"))
            continue
        if field.kind not in operator.kinds:
            usable = [op.name for op in OPERATORS.values() if field.kind in op.kinds]
            problems.append(Problem(where, f"'{name}' does not apply to '{field.name}' ({field.kind}); "
                                           f"use one of: {', '.join(usable)}"))
            continue
        try:
            test = operator.prepare(field, value, case_sensitive)
        except OperatorError as error:
            problems.append(Problem(where, str(error), at_value=True))
            continue
        leaves.append(Leaf(where, field, operator.name, test))
    if len(leaves) != len(comparisons):
        return None
    return leaves[0] if len(leaves) == 1 else Group(path, "all", leaves)
