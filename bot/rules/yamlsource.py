"""Reading YAML while keeping where each value came from, so errors name line and column.

`load_with_marks(text, filename)` returns the plain Python data and a `Marks`
table from document paths (tuples of keys and indexes) to (line, column) of
the key (for mapping entries) or of the item. Duplicate keys, which PyYAML
silently overwrites, are reported as problems.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[Any, ...]


@dataclass
class Marks:
    """Line/column (1-based) per document path, with a parent fallback."""

    filename: str
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    value_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    duplicates: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Sequence[Any], *, value: bool = False) -> tuple[int, int]:
        """The position of `path` (its value when `value`), else of its nearest ancestor."""
        path = tuple(path)
        while True:
            if value and path in self.value_positions:
                return self.value_positions[path]
            if path in self.positions:
                return self.positions[path]
            if not path:
                return (1, 1)
            path = path[:-1]

    def where(self, path: Sequence[Any], *, value: bool = False) -> str:
        """`file:line:col` for a path."""
        line, column = self.locate(path, value=value)
        return f"{self.filename}:{line}:{column}"


def format_path(path: Sequence[Any]) -> str:
    """`rules[3].when.all[1]` from ('rules', 3, 'when', 'all', 1)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


class YamlSyntaxError(ValueError):
    """The text is not valid YAML; `line` and `column` are 1-based."""

    def __init__(self, message: str, line: int, column: int):
        self.line, self.column = line, column
        super().__init__(message)


def load_with_marks(text: str, filename: str) -> tuple[Any, Marks, list[tuple[Path, str]]]:
    """Parse one YAML document into data, its marks, and (path, problem) pairs for duplicate keys."""
    marks = Marks(filename)
    problems: list[tuple[Path, str]] = []
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(str(part) for part in (error.context, error.problem) if part)
        raise YamlSyntaxError(message or "not valid YAML", line, column) from None
    if node is None:
        return None, marks, problems
    constructor = yaml.SafeLoader(text)  # only for scalar resolution
    data = _convert(node, (), marks, problems, constructor)
    constructor.dispose()
    return data, marks, problems


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _convert(node: yaml.Node, path: Path, marks: Marks, problems: list, loader: yaml.SafeLoader) -> Any:
    marks.value_positions.setdefault(path, _pos(node))
    marks.positions.setdefault(path, _pos(node))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                key = str(key)
            child = (*path, key)
            if key in result:
                first_line = marks.positions[child][0]
                marks.duplicates[child] = _pos(key_node)
                problems.append((child, f"'{key}' appears twice in the same mapping (first on line {first_line})"))
                continue
            marks.positions[child] = _pos(key_node)
            marks.value_positions[child] = _pos(value_node)
            result[key] = _convert(value_node, child, marks, problems, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            marks.positions[child] = _pos(item)
            items.append(_convert(item, child, marks, problems, loader))
        return items
    return loader.construct_object(node, deep=True)
