"""Custom action definitions: the file format, validated and compiled at load.

Pure: no I/O (the catalog module reads the files).
"""

from __future__ import annotations

import re
import string
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)
from yarl import URL

from actionrelay.core.auth import AuthSpec, NoAuth
from actionrelay.core.delay import MAX_DELAY_SECONDS
from actionrelay.core.form import FormLists, check_form_template
from actionrelay.core.signing import SigningSpec
from actionrelay.core.template import (
    SCALAR_TYPES,
    VAR_NAME,
    Node,
    VarSpec,
    compile_template,
    element_type,
    parse_var,
    variables_of,
)

ACTION_NAME = re.compile(r"^[A-Za-z0-9_]{1,30}$")
# RFC 7230 token: the characters a header field name may use.
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
HEADER_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")
RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "idempotency-key"})
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
BodyFormat = Literal["json", "form", "multipart"]
BODYLESS_METHODS = frozenset({"GET", "DELETE"})
Scalar = str | int | float | bool


class RetrySpec(BaseModel):
    """How often and when a transient failure is tried again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=4, ge=1, le=20, description="Attempts in all.")
    schedule_seconds: list[float] = Field(
        default_factory=lambda: [1.0, 5.0, 30.0],
        min_length=1,
        description="Wait before attempt 2, 3, …; the last value repeats.",
    )
    jitter: float = Field(default=0.2, ge=0, le=1, description="± fraction of each wait.")
    on: list[str] | None = Field(
        default=None,
        description="Retry only these: timeout, connection, or HTTP codes/classes "
        "like 503 or 5xx. Default: the built-in retryable set.",
    )

    @field_validator("schedule_seconds")
    @classmethod
    def _non_negative(cls, value: list[float]) -> list[float]:
        if any(delay < 0 for delay in value):
            raise ValueError("delays must be ≥ 0")
        if any(delay > MAX_DELAY_SECONDS for delay in value):
            raise ValueError(
                f"delays must be at most {MAX_DELAY_SECONDS:.0f} s (29 h), the delay ladder's reach"
            )
        return value

    @field_validator("on")
    @classmethod
    def _known_classes(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if item not in ("timeout", "connection") and not RETRY_CODE.match(item):
                raise ValueError(
                    f"{item!r} is not timeout, connection, an HTTP status (503) or class (5xx)"
                )
        return value


RETRY_CODE = re.compile(r"^[1-5]([0-9]{2}|xx)$")


class TlsSpec(BaseModel):
    """Client certificate (mTLS) and server verification for one action's endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_cert: Path | None = Field(default=None, description="PEM client certificate.")
    client_key: Path | None = Field(default=None, description="PEM private key.")
    ca_bundle: Path | None = Field(default=None, description="PEM CAs to trust instead.")
    verify: bool = Field(default=True, description="false turns verification off (logged).")

    @model_validator(mode="after")
    def _pair(self) -> TlsSpec:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together")
        return self


class ResponseSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: list[str] | None = Field(
        default=None, description="Top-level keys of a JSON response kept in the result."
    )


def _compile_param(where: str, raw: Any) -> VarSpec | str:
    """A query parameter or header: a constant, or a scalar/list placeholder."""
    if isinstance(raw, dict):
        spec = parse_var(raw, where)
        base = element_type(spec.type) or spec.type
        if base not in SCALAR_TYPES:
            raise ValueError(f"{where}: type {spec.type} cannot go in a {where.split('.')[0]}")
        return spec
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str | int | float):
        return str(raw)
    raise ValueError(f"{where}: expected a constant or {{$var: name, type: …}}")


class ActionDefinition(BaseModel):
    """One custom action, as written by a technical user."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=ACTION_NAME.pattern, description="Letters, digits, _; ≤ 30.")
    version: int = Field(default=1, ge=1)
    description: str = ""
    method: Method = "POST"
    url: str = Field(description="Static part: scheme, host, optional port and path.")
    path: str | None = Field(default=None, description="Dynamic suffix with {var} segments.")
    query: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, Any] = Field(default_factory=dict)
    body: Any = None
    body_format: BodyFormat = Field(
        default="json", description="json, form (x-www-form-urlencoded) or multipart/form-data."
    )
    form_lists: FormLists | None = Field(
        default=None, description="How a form repeats a list: repeat (default), brackets, indexed."
    )
    response: ResponseSpec = Field(default_factory=ResponseSpec)
    timeout_seconds: float = Field(default=30.0, ge=1.0, le=30.0)
    retry: RetrySpec = Field(default_factory=RetrySpec)
    auth: AuthSpec = Field(default_factory=NoAuth)
    tls: TlsSpec = Field(default_factory=TlsSpec)
    signing: SigningSpec | None = Field(
        default=None, description="Sign each request (Standard Webhooks)."
    )
    max_age_seconds: float | None = Field(
        default=None, gt=0, description="Deadline from first receipt when the event has none."
    )

    _query: dict[str, VarSpec | str] = PrivateAttr(default_factory=dict)
    _headers: dict[str, VarSpec | str] = PrivateAttr(default_factory=dict)
    _body: Node | None = PrivateAttr(default=None)
    _path_vars: tuple[str, ...] = PrivateAttr(default=())
    _variables: dict[str, VarSpec] = PrivateAttr(default_factory=dict)
    _base_url: URL = PrivateAttr()

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        url = URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("must be an absolute http:// or https:// URL with a host")
        if url.query_string or url.fragment:
            raise ValueError("must not carry a query or fragment; declare them under 'query'")
        return value

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        if "?" in value or "#" in value:
            raise ValueError("must not contain '?' or '#'; declare query parameters under 'query'")
        for _, field, spec, _ in string.Formatter().parse(value):
            if field is not None and (not VAR_NAME.fullmatch(field) or spec):
                raise ValueError(f"placeholder {{{field}}} must be a plain variable name")
        return value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, raw in value.items():
            if not HEADER_NAME.fullmatch(name) or name[0] in ".$":
                raise ValueError(f"header name {name!r} is not a valid RFC 7230 token")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name} is set by actionrelay and cannot be defined")
            if isinstance(raw, str) and not HEADER_VALUE.fullmatch(raw):
                raise ValueError(f"header {name}: value contains control characters")
        return value

    @model_validator(mode="after")
    def _compile(self) -> ActionDefinition:
        if self.method in BODYLESS_METHODS and self.body is not None:
            raise ValueError(f"{self.method} sends no body; remove 'body' or use POST/PUT/PATCH")
        self._query = {k: _compile_param(f"query.{k}", v) for k, v in self.query.items()}
        self._headers = {k: _compile_param(f"headers.{k}", v) for k, v in self.headers.items()}
        self._body = None if self.body is None else compile_template(self.body)
        self._check_form()
        if self.path:
            fields = string.Formatter().parse(self.path)
            self._path_vars = tuple(f for _, f, _, _ in fields if f is not None)
        base = URL(self.url)
        self._base_url = base.with_path(base.path.rstrip("/")) if self.path else base
        self._variables = self._check_variable_types()
        return self

    def _check_form(self) -> None:
        if self.body_format == "json":
            if self.form_lists is not None:
                raise ValueError("form_lists applies to body_format form or multipart")
            return
        if self._body is not None:
            check_form_template(self._body, self.lists)

    @property
    def lists(self) -> FormLists:
        return self.form_lists or "repeat"

    def _check_variable_types(self) -> dict[str, VarSpec]:
        seen: dict[str, VarSpec] = {}
        for spec in self.variable_specs():
            other = seen.setdefault(spec.name, spec)
            if other.type != spec.type:
                raise ValueError(
                    f"variable '{spec.name}' is declared as {other.type} and as {spec.type}"
                )
        return seen

    def variable_specs(self) -> list[VarSpec]:
        """Every placeholder, in file order (path, query, headers, body)."""
        specs = [s for s in self._query.values() if isinstance(s, VarSpec)]
        specs += [s for s in self._headers.values() if isinstance(s, VarSpec)]
        if self._body is not None:
            specs += variables_of(self._body)
        declared = {spec.name for spec in specs}
        # A path variable is a string unless the action declares it elsewhere.
        path_specs = [
            VarSpec.model_validate({"$var": name, "type": "string"})
            for name in dict.fromkeys(self._path_vars)
            if name not in declared
        ]
        return path_specs + specs

    @cached_property
    def variables(self) -> dict[str, VarSpec]:
        """The variables a journey maps, by name.

        Cached properties: reading a pydantic private attribute costs microseconds,
        and these are read for every event.
        """
        return self._variables

    @cached_property
    def compiled_query(self) -> dict[str, VarSpec | str]:
        return self._query

    @cached_property
    def compiled_headers(self) -> dict[str, VarSpec | str]:
        return self._headers

    @cached_property
    def compiled_body(self) -> Node | None:
        return self._body

    @cached_property
    def path_vars(self) -> tuple[str, ...]:
        return self._path_vars

    @cached_property
    def base_url(self) -> URL:
        return self._base_url
