"""Turning pydantic's errors into sentences a coordinator can act on.

`validate(model, data, path, problems)` runs pydantic and appends one `Problem`
per error, phrased in plain words ("'x' is not an option of 'notify'; did you
mean 'channel'?", "'assign' needs 'team'") at the document path of the mistake.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bot.rules.conditions import Problem
from bot.rules.operators import suggest
from bot.rules.yamlsource import Path

M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any, path: Path, problems: list[Problem], label: str | None = None) -> M | None:
    """The validated model, or None with the reasons appended to `problems`."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        for item in error.errors():
            problems.append(_problem(model, item, path, label))
        return None


def _parent_name(path: Path, label: str | None) -> str:
    if path and isinstance(path[-1], int) and label:
        return label
    names = [part for part in path if isinstance(part, str)]
    return names[-1] if names else (label or "the file")


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Valid keys of the (nested) model that owns `loc`'s last element."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        info = getattr(current, "model_fields", {}).get(part)
        if info is None:
            return []
        current = _model_of(info.annotation)
    if current is None or not hasattr(current, "model_fields"):
        return []
    return [info.alias or name for name, info in current.model_fields.items()]


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _problem(model: type[BaseModel], item: dict[str, Any], path: Path, label: str | None) -> Problem:
    loc = tuple(part for part in item["loc"] if not (isinstance(part, str) and "[" in part))
    where = (*path, *loc)
    kind = item["type"]
    if kind == "extra_forbidden":
        key = loc[-1]
        owner = _parent_name((*path, *loc[:-1]), label)
        hint = suggest(str(key), _fields_at(model, loc))
        return Problem(where, f"'{key}' is not an option of '{owner}'{hint}")
    if kind == "missing":
        owner = _parent_name((*path, *loc[:-1]), label)
        return Problem(where[:-1], f"'{owner}' needs '{loc[-1]}'")
    if kind in ("literal_error", "enum"):
        expected = item.get("ctx", {}).get("expected", "")
        choices = [c.strip(" '") for c in expected.replace(" or ", ",").split(",") if c.strip(" '")]
        return Problem(where, f"'{item.get('input')}' is not one of: {', '.join(choices)}"
                              f"{suggest(str(item.get('input')), choices) if choices else ''}", at_value=True)
    message = item["msg"]
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return Problem(where, message, at_value=True)
