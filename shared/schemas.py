"""Base classes for request and response bodies, and the integer type of query parameters."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError


class RequestModel(BaseModel):
    """Request bodies reject unknown fields (422 `validation_failed`, "unknown field")."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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
