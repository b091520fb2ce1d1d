"""The base of every payload model: frozen, unknown keys refused, absent fields left out.

A field typed ``X | Absent = None`` is *optional*: it is left out of the JSON when None (and
its JSON Schema does not allow null). A field typed ``X | None`` with no default is
*nullable*: always present, possibly ``null``. That is the whole serialisation rule, so the
published JSON is exactly what the model holds.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer
from pydantic.json_schema import SkipJsonSchema

Absent = SkipJsonSchema[None]
"""Marks an optional field: ``float | Absent = None`` is a number or not there at all."""


class Payload(BaseModel):
    """A JSON payload the desk publishes or accepts.

    Frozen, ``extra="forbid"`` and strict (no string-to-number coercion: what the JSON Schema
    allows is what validates). Build one with keyword arguments, publish `to_json`, parse a
    received one with ``Model.model_validate_json(raw)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True,
                              validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True)

    @model_serializer(mode="wrap")
    def _leave_out_absent(self, handler: SerializerFunctionWrapHandler) -> Any:
        out = handler(self)
        if isinstance(out, dict):
            for name, field in type(self).model_fields.items():
                key = field.alias or name
                if not field.is_required() and field.default is None and out.get(key, 0) is None:
                    del out[key]
        return out

    def to_json(self) -> dict[str, Any]:
        """The payload as JSON-ready Python objects (what goes on the wire, in field order)."""
        return self.model_dump(mode="json")
