"""The JSON Schema (draft 2020-12) of an action's params: what a journey engine may send.

Pure: built from the loaded ``ActionDefinition``, no I/O. It says what the worker
checks (``core/template.py``, ``core/payload.py``):

- each variable is a property; ``optional: false`` ones are ``required``, and so is
  every path variable (a path segment cannot be left out);
- ``nullable: true`` adds ``"null"`` to the type (sent as null). An optional,
  non-nullable variable given as null is left out by the worker; the schema asks
  for it to be left out;
- ``dateTime`` is ``format: date-time`` (RFC 3339; the worker also reads the other
  ISO 8601 forms Python's ``datetime.fromisoformat`` does), ``dateOnly`` is
  ``format: date``;
- lists are arrays whose items may be null (the worker strips null items);
- a header value cannot hold control characters; a path segment is a string or an
  integer and not ``""``, ``.`` or ``..``.

``x-actionrelay-type`` keeps the action file's own type name for palettes.
"""

from __future__ import annotations

from typing import Any

from actionrelay.core.action import ActionDefinition
from actionrelay.core.template import VarSpec, element_type, variables_of

DIALECT = "https://json-schema.org/draft/2020-12/schema"
TYPE_KEY = "x-actionrelay-type"
# core.action.HEADER_VALUE as an ECMA-262 pattern: tab, printable ASCII, Latin-1.
HEADER_PATTERN = "^[\\t\\x20-\\x7e\\x80-\\xff]*$"
DATE_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
SCALARS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "decimal": {"type": "number"},
    "boolean": {"type": "boolean"},
    "dateTime": {"type": "string", "format": "date-time"},
    "dateOnly": {"type": "string", "format": "date", "pattern": DATE_PATTERN},
    "object": {"type": "object"},
}
PATH_SEGMENT: dict[str, Any] = {"type": ["string", "integer"], "not": {"enum": ["", ".", ".."]}}


def params_schema(action: ActionDefinition) -> dict[str, Any]:
    """The schema of the ``params`` object of a step event for ``action``."""
    header_vars = {s.name for s in action.compiled_headers.values() if isinstance(s, VarSpec)}
    path_vars = set(action.path_vars)
    properties = {
        name: variable_schema(
            spec, in_header=name in header_vars, in_path=name in path_vars, action=action
        )
        for name, spec in action.variables.items()
    }
    required = [
        name for name, spec in action.variables.items() if not spec.optional or name in path_vars
    ]
    return {
        "$schema": DIALECT,
        "title": f"params of {action.name} (version {action.version})",
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": True,  # the worker ignores params no placeholder uses
    }


def variable_schema(
    spec: VarSpec, *, in_header: bool, in_path: bool, action: ActionDefinition
) -> dict[str, Any]:
    """One variable's schema, with the constraints of every place it goes."""
    item = element_type(spec.type)
    if item is not None:
        items = _nullable(dict(SCALARS[item]))
        if in_header and item == "string":
            items["pattern"] = HEADER_PATTERN
        schema: dict[str, Any] = {"type": "array", "items": items}
    elif in_path and _declared_only_in_path(spec, action):
        schema = dict(PATH_SEGMENT)
    else:
        schema = dict(SCALARS[spec.type])
        if in_header and spec.type == "string":
            schema["pattern"] = HEADER_PATTERN
        if in_path:
            schema["not"] = PATH_SEGMENT["not"]
    if spec.nullable and not in_path:
        schema = _nullable(schema)
    if spec.description:
        schema["description"] = spec.description
    schema[TYPE_KEY] = spec.type
    return schema


def _declared_only_in_path(spec: VarSpec, action: ActionDefinition) -> bool:
    """A path variable with no placeholder elsewhere: a string or an integer."""
    placeholders = [*action.compiled_query.values(), *action.compiled_headers.values()]
    elsewhere = {s.name for s in placeholders if isinstance(s, VarSpec)}
    if action.compiled_body is not None:
        elsewhere |= {s.name for s in variables_of(action.compiled_body)}
    return spec.name not in elsewhere


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema["type"]
    kinds = kind if isinstance(kind, list) else [kind]
    return {**schema, "type": [*kinds, "null"]}


EXAMPLE_VALUES: dict[str, Any] = {
    "string": "text",
    "integer": 1,
    "decimal": 1.5,
    "boolean": True,
    "dateTime": "2026-11-27T12:00:00Z",
    "dateOnly": "2026-11-27",
    "object": {},
}


def example_params(action: ActionDefinition) -> dict[str, Any]:
    """Params that fit the action: one made-up value per variable, lists of one."""
    params: dict[str, Any] = {}
    for name, spec in action.variables.items():
        item = element_type(spec.type)
        value = [EXAMPLE_VALUES[item]] if item else EXAMPLE_VALUES[spec.type]
        params[name] = name if name in action.path_vars and not item else value
    return params
