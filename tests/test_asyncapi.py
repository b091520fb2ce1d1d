"""docs/asyncapi.yaml: generated from firmware/contract, current, a well-formed AsyncAPI 3.0
document whose schemas mean what the models mean.

Every message the link publishes in the other tests is validated by `broker.Subscriber` (see
`asyncapi.validate_message`); here the document itself and representative payloads.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pydantic
import pytest
from asyncapi_check import (
    _resolve,
    channel_routes,
    document,
    model_for,
    schema_for,
    validate,
    validate_message,
)
from broker import make_events

from firmware.config.mqtt import MqttSettings
from firmware.contract import asyncapi as generator
from firmware.contract.events import EVENT_DATA
from firmware.contract.examples import EVENT_EXAMPLES, EXAMPLES, RESULT_EXAMPLES
from firmware.link.commands import COMMAND_NAMES, result_payload
from firmware.link.envelope import EventStamper


def walk_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in walk_refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in walk_refs(v)]
    return []


def yaml_slips(node: Any, path: str = "") -> list[str]:
    """Keys with no value or non-text descriptions: a comma inside a {flow: mapping} slipped
    (example payloads may hold a real null)."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "examples":
                continue
            if v is None or (k == "description" and not isinstance(v, str)):
                out.append(f"{path}/{k}")
            out += yaml_slips(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += yaml_slips(v, f"{path}[{i}]")
    return out


def test_the_committed_document_is_generated_from_the_models() -> None:
    """Fails when a model changed and docs/asyncapi.yaml was not regenerated."""
    assert generator.DOC_PATH.read_text(encoding="utf-8") == generator.render(), (
        "docs/asyncapi.yaml is stale: run python -m firmware.contract.asyncapi --write"
    )
    assert generator.main(["--check"]) == 0


def test_commands_are_request_reply_operations() -> None:
    doc = document()
    for name in COMMAND_NAMES:
        op = doc["operations"][f"receive{name.capitalize()}"]
        assert op["action"] == "receive"
        reply = _resolve(op["reply"]["channel"]["$ref"])
        assert reply["address"] == f"deskcue/{{site}}/{{desk}}/cmd/{name}/result"
        for message in op["reply"]["messages"]:
            _resolve(message["$ref"])


def test_every_message_has_an_example_that_validates() -> None:
    doc = document()
    for name, channel in doc["channels"].items():
        suffix = channel["address"].split("{desk}/", 1)[1].replace("{name}", "x")
        (message,) = channel["messages"].values()
        examples = _resolve(message["$ref"])["examples"]
        assert examples, name
        for example in examples:
            validate(suffix, example["payload"])


def test_telemetry_expiry_in_the_document_is_the_configs_default() -> None:
    assert MqttSettings().telemetry_expiry_s == generator.TELEMETRY_EXPIRY_S


def test_document_structure() -> None:
    doc = document()
    assert yaml_slips(doc) == []
    assert doc["asyncapi"] == "3.0.0"
    assert {"title", "version", "description"} <= set(doc["info"])
    for ref in walk_refs(doc):
        _resolve(ref)  # every $ref resolves inside the document
    for name, channel in doc["channels"].items():
        assert channel["address"].startswith("deskcue/{site}/{desk}/"), name
        for message in channel["messages"].values():
            assert "payload" in _resolve(message["$ref"])
    for name, op in doc["operations"].items():
        assert op["action"] in ("send", "receive"), name
        _resolve(op["channel"]["$ref"])
    for name, schema in doc["components"]["schemas"].items():
        jsonschema.Draft7Validator.check_schema(schema), name
    # Every built-in command is documented (extra_commands, e.g. config, may add more).
    documented = {
        r[0].pattern.split("/")[1].rstrip("$") for r in channel_routes() if r[1].endswith("Command")
    }
    assert documented >= set(COMMAND_NAMES)


def test_qos_and_retain_as_designed() -> None:
    ops = document()["operations"]
    mqtt = {name: op.get("bindings", {}).get("mqtt", {}) for name, op in ops.items()}
    assert mqtt["sendStatus"] == {"qos": 1, "retain": True}
    assert mqtt["sendInfo"] == {"qos": 1, "retain": True}
    assert mqtt["sendEvent"] == {"qos": 1, "retain": False}
    assert mqtt["sendTelemetry"]["qos"] == 0 and "messageExpiryInterval" in mqtt["sendTelemetry"]


STAMPER = EventStamper(boot_id="f" * 32, wall_clock=lambda: 1_767_225_600.0)

EXAMPLES_BY_TYPE = list(EVENT_EXAMPLES.items())


@pytest.mark.parametrize(("kind", "data"), EXAMPLES_BY_TYPE, ids=[k for k, _ in EXAMPLES_BY_TYPE])
def test_every_event_type_validates(kind: str, data: Any) -> None:
    env = STAMPER.stamp(kind, data, stream_s=1.0).to_json()
    validate("events", env)
    validate("events", {**env, "replayed": True})


def test_every_event_type_is_documented() -> None:
    documented = set(_resolve("#/components/schemas/EventEnvelope")["properties"]["type"]["enum"])
    assert documented == set(EVENT_DATA) == set(EVENT_EXAMPLES)


GOOD = make_events(1)[0]

BAD: list[tuple[str, Any]] = [
    ("events", {**GOOD, "type": "angry"}),  # a feeling, not a measurement
    ("events", {**GOOD, "extra": 1}),
    ("events", {**GOOD, "replayed": False}),
    ("events", {**GOOD, "seq": 0}),
    ("events", {**GOOD, "data": {"onset_s": 1.0}}),
    ("events", {**GOOD, "type": "fault", "data": {"fault": "x"}}),
    ("events", {**GOOD, "type": "call.ended",
                "data": {**EVENT_EXAMPLES["call.ended"].to_json(), "agent_talk_share": 1.5}}),
    ("events", {**GOOD, "type": "tense_voice.started",  # the monitor once read this name
                "data": {**EVENT_EXAMPLES["tense_voice.started"].to_json(),
                         "semitones_above_usual": 4.2}}),
    ("events", {**GOOD, "data": {**GOOD["data"], "db_above_usual": "9"}}),  # no coercion
    ("status", "maybe"),
    ("info", {"firmware": "1"}),
    ("telemetry", {"uptime_s": 1}),
    ("telemetry", {**EXAMPLES["telemetry"].to_json(), "outbox": {"depth": -1, "dropped": 0}}),
    # the monitor once read these; the desk never sent them
    ("telemetry", {**EXAMPLES["telemetry"].to_json(), "fault": None}),
    # sent only with mqtt.publish_snooze, and then a boolean
    ("telemetry", {**EXAMPLES["telemetry"].to_json(), "snoozed": "yes"}),
    ("cmd/snooze", {"txid": "a", "minutes": 1000}),
    ("cmd/snooze", {"txid": "", "minutes": 5}),
    ("cmd/snooze", {"txid": "two words"}),
    ("cmd/status", {"txid": "a", "x": 1}),
    ("cmd/snooze/result", {"txid": "a", "cmd": "snooze", "ok": True, "ts": 1.0}),
    ("cmd/snooze/result", {"txid": "a", "cmd": "snooze", "ok": False, "ts": 1.0}),
    ("cmd/snooze/result", {"txid": "a", "cmd": "snooze", "ok": True, "ts": 1.0,
                           "data": {"minutes": 5}}),
    ("cmd/config", {"txid": "a", "config": "x"}),
]


@pytest.mark.parametrize(("suffix", "payload"), BAD)
def test_off_spec_payloads_fail(suffix: str, payload: Any) -> None:
    """The generated schema refuses each (and so does the model: `validate` checks both)."""
    with pytest.raises(jsonschema.ValidationError):
        validate(suffix, payload)
    model = model_for(schema_for(suffix))
    with pytest.raises(pydantic.ValidationError):
        if isinstance(payload, str):
            model.model_validate(payload)
        else:
            model.model_validate_json(json.dumps(payload))


def test_results_and_commands() -> None:
    validate("cmd/x/result", result_payload("x", None, False, error=("unknown_command", "no")))
    validate("cmd/snooze/result", result_payload("snooze", "t", True,
                                                 data=RESULT_EXAMPLES["snooze"].data))
    validate("cmd/identify", {"txid": "t", "seconds": 5, "ts": 1.0})
    validate("cmd/config", {"txid": "t", "issued": 5, "config": "[mqtt]\n", "signature": "AA=="})
    validate(
        "cmd/config/result",
        result_payload(
            "config", "t", False, error=("bad_signature", "refused"), data={"problems": []}
        ),
    )
    validate_message("deskcue/s/d/cmd/status", b'{"txid": "t"}')
    validate_message("site/prefix/s/d/status", b"online")
    with pytest.raises(KeyError):
        schema_for("cmd/a/b/c")


def test_a_result_off_the_contract_is_refused_where_it_is_made() -> None:
    with pytest.raises(pydantic.ValidationError):
        result_payload("snooze", "t", True, data={"minutes": 5})  # no until_s, no source


# A unit (or a scale: 0-1, Unix seconds, a count), or an ordinal that is no quantity.
UNIT = re.compile(r"(\b(s|dB|LUFS|Hz|semitones|minutes|degrees Celsius|count|Unix)\b|\b0-[1n]\b"
                  r"|per second|\bs of audio\b)")
ORDINAL = re.compile(r"\b(number|version|line|1, 2, 3)\b", re.I)


def numbers(node: Any, path: str) -> list[tuple[str, str]]:
    """(path, description) of every number or integer property under ``node``; a map of
    numbers is described by its own property."""
    out = []
    for key, prop in node.get("properties", {}).items():
        types = {prop.get("type")} | {a.get("type") for a in prop.get("anyOf", [])}
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict):
            types.add(extra.get("type"))
        if types & {"number", "integer"}:
            out.append((f"{path}.{key}", prop.get("description", "")))
        out += numbers(prop, f"{path}.{key}")
    return out


def test_every_number_in_the_document_states_its_unit() -> None:
    """A Node-RED or Grafana integrator reads units from the document: every number says
    its unit (s, dB, LUFS, semitones, Hz ...), its scale (0-1, Unix seconds) or that it is a
    count; an ordinal (a sequence number, a line) says so."""
    found = [n for name, schema in document()["components"]["schemas"].items()
             for n in numbers(schema, name)]
    assert len(found) > 100
    missing = [(p, d) for p, d in found if not (UNIT.search(d) or ORDINAL.search(d))]
    assert missing == []
