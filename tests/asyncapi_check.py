"""Validate MQTT payloads against docs/asyncapi.yaml (for any test that sees published messages).

docs/asyncapi.yaml is generated from the models in firmware/contract. Each payload is checked
twice: with jsonschema against the document's draft-07 schemas (what a consumer in any
language would use, so the generated document itself is tested), and by parsing it with the
contract model the schema was generated from (what the Python consumers do); both must accept.

    from asyncapi_check import validate
    validate("events", envelope)             # raises jsonschema.ValidationError if off-spec
    validate("cmd/snooze/result", result)
    validate("status", b"online")
    validate_message(topic, payload_bytes)   # full topic, raw payload (what a subscriber gets)

The topic suffix (after ``<prefix>/<site>/<desk>/``) picks the channel from the document's
channel addresses, so the document, not this file, says which payload goes where.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.yaml"
_URI = "urn:deskcue:asyncapi"


@functools.lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The parsed AsyncAPI document."""
    return yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _registry() -> Registry:
    return Registry().with_resource(
        _URI, Resource.from_contents(document(), default_specification=DRAFT7)
    )


def _resolve(ref: str) -> Any:
    node: Any = document()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


@functools.lru_cache(maxsize=1)
def channel_routes() -> list[tuple[re.Pattern[str], str, str]]:
    """(suffix regex, channel name, payload schema ref) for every channel in the document."""
    routes = []
    for name, channel in document()["channels"].items():
        address = channel["address"]
        suffix = address.split("{desk}/", 1)[1]
        regex = re.compile("^" + re.sub(r"\\\{[a-z]+\\\}", "[^/]+", re.escape(suffix)) + "$")
        (message,) = channel["messages"].values()
        payload_ref = _resolve(message["$ref"])["payload"]["$ref"]
        routes.append((regex, name, payload_ref))
    return routes


@functools.lru_cache(maxsize=1024)
def schema_for(topic_suffix: str) -> str:
    """The payload schema ref for ``topic_suffix``; KeyError if no channel has that address."""
    for regex, _name, ref in channel_routes():
        if regex.match(topic_suffix):
            return ref
    raise KeyError(f"no channel in {DOC_PATH.name} for topic suffix {topic_suffix!r}")


@functools.lru_cache(maxsize=64)
def _validator(ref: str) -> jsonschema.protocols.Validator:
    return jsonschema.Draft7Validator(
        {"$ref": f"{_URI}{ref}"},
        registry=_registry(),
        format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER,
    )


@functools.lru_cache(maxsize=64)
def model_for(ref: str) -> Any:
    """The contract model a payload schema ref was generated from."""
    import importlib

    name = ref.rsplit("/", 1)[1]
    for module in ("base", "commands", "desk", "events", "states"):
        found = getattr(importlib.import_module(f"firmware.contract.{module}"), name, None)
        if found is not None:
            return found
    raise LookupError(f"no contract model named {name}")


def validate(topic_suffix: str, payload: Any) -> None:
    """Check ``payload`` (parsed JSON, or bytes/str for text payloads such as ``status``):
    jsonschema.ValidationError if the schema refuses it, pydantic.ValidationError if only the
    model does."""
    if isinstance(payload, bytes | bytearray):
        payload = payload.decode("utf-8")
    ref = schema_for(topic_suffix)
    text = _resolve(ref).get("type") == "string"
    if isinstance(payload, str) and not text:
        payload = json.loads(payload)
    _validator(ref).validate(payload)
    model = model_for(ref)
    if text:
        model.model_validate(payload)
    else:
        model.model_validate_json(json.dumps(payload))


def validate_message(topic: str, payload: bytes) -> None:
    """Check a message as received: full topic ``<prefix>/<site>/<desk>/<suffix>``."""
    parts = topic.split("/")
    for i in range(3, len(parts)):  # longest suffix first: the prefix has one level or more
        suffix = "/".join(parts[i:])
        try:
            schema_for(suffix)
        except KeyError:
            continue
        validate(suffix, payload)
        return
    raise KeyError(f"no channel for topic {topic!r}")
