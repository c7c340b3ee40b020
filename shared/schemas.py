"""Base classes for request and response bodies, and the integer type of query parameters."""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Any, get_args

from annotated_types import MaxLen
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError


class RequestModel(BaseModel):
    """Request bodies reject unknown fields (422 `validation_failed`, "unknown field").

    Text is taken without its surrounding whitespace, but a string longer than its field's
    `maxLength` is refused as sent (padding does not slip past the documented limit).
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _length_as_sent(cls, value: Any, info: ValidationInfo) -> Any:
        if _has_nul(value):
            # No database text or JSON column holds NUL (PostgreSQL refuses it outright).
            raise PydanticCustomError("string_nul", "Text may not contain the NUL character")
        if isinstance(value, str) and info.field_name is not None:
            limit = _max_length(cls, info.field_name)
            if limit is not None and len(value) > limit:
                raise PydanticCustomError("string_too_long",
                                          "String should have at most {max_length} characters",
                                          {"max_length": limit})
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


@cache
def _max_length(model: type[BaseModel], name: str) -> int | None:
    """The `max_length` of a text field, also when it is Annotated inside `X | None`."""
    field = model.model_fields.get(name)
    if field is None:
        return None
    found = [m.max_length for m in field.metadata if isinstance(m, MaxLen)]
    for arg in get_args(field.annotation):
        for m in getattr(arg, "__metadata__", ()):
            found += [m.max_length] if isinstance(m, MaxLen) else \
                [x.max_length for x in getattr(m, "metadata", ()) if isinstance(x, MaxLen)]
    return min(found) if found else None


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


_DIGITS = re.compile(r"-?[0-9]+")


def _digits(value: Any) -> Any:
    """A query or path value is a string: only digits make an integer ("1.0", "true" do not)."""
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise PydanticCustomError("int_parsing", "Input should be a whole number, e.g. 10")
    if isinstance(value, bool | float):
        raise PydanticCustomError("int_type", "Input should be a whole number, e.g. 10")
    return value


def query_int(*, ge: int, le: int) -> Any:
    """The type of an integer query or path parameter from `ge` to `le`: "10" is 10, "1.5",
    "1.0" and "true" are refused. (Bodies use `Strict()` integers: JSON has a number type.)"""
    # The bounds inside, the digits check around them: OpenAPI keeps minimum and maximum.
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_digits)]
