"""Typed placeholders and the JSON templates they live in.

Pure: no I/O. A template is compiled once when an action file loads and
rendered once per step event; rendering collects every problem with the
event's params instead of stopping at the first, so one result tells the
journey author everything to fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

VarType = Literal[
    "string",
    "integer",
    "decimal",
    "boolean",
    "dateTime",
    "dateOnly",
    "object",
    "listString",
    "listInteger",
    "listDecimal",
    "listBoolean",
    "listObject",
]
VAR_TYPES: tuple[str, ...] = get_args(VarType)
SCALAR_TYPES = frozenset({"string", "integer", "decimal", "boolean", "dateTime", "dateOnly"})
VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


class Omit:
    """Marker for an optional value that is left out of the request."""

    def __repr__(self) -> str:
        return "OMIT"


OMIT = Omit()


class VarSpec(BaseModel):
    """``{$var: phone, type: string, optional: true, nullable: false}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(alias="$var", pattern=VAR_NAME.pattern)
    type: VarType = "string"
    optional: bool = False
    nullable: bool = False
    description: str = ""


def parse_var(raw: Mapping[str, Any], where: str) -> VarSpec:
    """A placeholder; the ValueError says where it is, not only which of its keys is bad."""
    try:
        return VarSpec.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{where}: {problems}") from exc


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_decimal(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_int(value)


def _is_datetime(value: Any) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": _is_int,
    "decimal": _is_decimal,
    "boolean": lambda v: isinstance(v, bool),
    "dateTime": _is_datetime,
    "dateOnly": _is_date,
    "object": lambda v: isinstance(v, dict),
}
_EXPECTED = {
    "string": "a string",
    "integer": "an integer",
    "decimal": "a number",
    "boolean": "true or false",
    "dateTime": "an ISO 8601 date-time string such as 2026-11-27T12:00:00Z",
    "dateOnly": "an ISO 8601 date string such as 2026-11-27",
    "object": "a JSON object",
}


def json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def element_type(var_type: str) -> str | None:
    """``listInteger`` -> ``integer``; ``listObject`` -> ``object``; scalars -> None."""
    if var_type.startswith("list"):
        return var_type[4].lower() + var_type[5:]
    return None


def check_value(spec: VarSpec, value: Any, action: str) -> tuple[Any, str | None]:
    """Validate one present, non-null value; return (value to send, problem)."""
    item_type = element_type(spec.type)
    if item_type is None:
        if _CHECKS[spec.type](value):
            return value, None
        return value, _mistyped(spec, action, _EXPECTED[spec.type], value)
    if not isinstance(value, list):
        return value, _mistyped(spec, action, f"a list of {item_type} values", value)
    for index, item in enumerate(value):
        if item is not None and not _CHECKS[item_type](item):
            expected = f"a list of {item_type} values (item {index} is {json_type_name(item)})"
            return value, _mistyped(spec, action, expected, value)
    return [item for item in value if item is not None], None


def _mistyped(spec: VarSpec, action: str, expected: str, value: Any) -> str:
    got = json_type_name(value)
    return f"variable '{spec.name}' for action {action} must be {expected}, got {got}"


def resolve(spec: VarSpec, params: Mapping[str, Any], action: str, problems: list[str]) -> Any:
    """The value to send for ``spec``, OMIT, or None; problems are appended."""
    value = params.get(spec.name)
    if value is None:
        if spec.nullable:
            return None
        if not spec.optional:
            problems.append(f"missing variable '{spec.name}' for action {action}")
        return OMIT
    checked, problem = check_value(spec, value, action)
    if problem is not None:
        problems.append(problem)
        return OMIT
    return checked


# --- JSON body templates -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Const:
    value: Any


@dataclass(frozen=True, slots=True)
class Var:
    spec: VarSpec


@dataclass(frozen=True, slots=True)
class Obj:
    items: tuple[tuple[str, Node], ...]


@dataclass(frozen=True, slots=True)
class Arr:
    items: tuple[Node, ...]


Node = Const | Var | Obj | Arr


def compile_template(raw: Any, where: str = "body") -> Node:
    """Turn a JSON template into nodes; raise ValueError naming the bad place."""
    if isinstance(raw, dict):
        if "$var" in raw:
            return Var(parse_var(raw, where))
        items = []
        for key, child in raw.items():
            if not isinstance(key, str) or "." in key or key.startswith("$"):
                raise ValueError(
                    f"{where}: field name {key!r} is not allowed "
                    "(no '.', must not start with '$'; placeholders are {$var: name, type: …})"
                )
            items.append((key, compile_template(child, f"{where}.{key}")))
        return Obj(tuple(items))
    if isinstance(raw, list):
        return Arr(tuple(compile_template(c, f"{where}[{i}]") for i, c in enumerate(raw)))
    if raw is None or isinstance(raw, str | int | float | bool):
        return Const(raw)
    raise ValueError(f"{where}: {type(raw).__name__} is not a JSON value")


def variables_of(node: Node) -> list[VarSpec]:
    if isinstance(node, Var):
        return [node.spec]
    if isinstance(node, Obj):
        return [spec for _, child in node.items for spec in variables_of(child)]
    if isinstance(node, Arr):
        return [spec for child in node.items for spec in variables_of(child)]
    return []


def render(node: Node, params: Mapping[str, Any], action: str, problems: list[str]) -> Any:
    """Fill ``node`` from params. Omitted optionals vanish; nulls inside lists are dropped."""
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Var):
        return resolve(node.spec, params, action, problems)
    if isinstance(node, Obj):
        out = {}
        for key, child in node.items:
            value = render(child, params, action, problems)
            if value is not OMIT:
                out[key] = value
        return out
    rendered = (render(child, params, action, problems) for child in node.items)
    return [value for value in rendered if value is not OMIT and value is not None]
