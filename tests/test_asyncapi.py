"""docs/asyncapi.yaml: a well-formed AsyncAPI 3.0 document whose schemas mean what they say.

Every message the link publishes in the other tests is validated by `broker.Subscriber` (see
`asyncapi.validate_message`); here the document itself and representative payloads.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from asyncapi import _resolve, channel_routes, document, schema_for, validate, validate_message
from broker import make_events

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
    """Keys with no value or non-text descriptions: a comma inside a {flow: mapping} slipped."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if v is None or (k == "description" and not isinstance(v, str)):
                out.append(f"{path}/{k}")
            out += yaml_slips(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += yaml_slips(v, f"{path}[{i}]")
    return out


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

EXAMPLES: list[tuple[str, dict[str, Any]]] = [
    (
        "raised_voice.started",
        {
            "cue": "raised_voice",
            "onset_s": 10.0,
            "at_s": 11.0,
            "duration_s": 1.0,
            "db_above_usual": 9.2,
            "loudness_lufs": -18.1,
            "usual_lufs": -27.3,
            "summary": "+9.2 dB above your usual",
        },
    ),
    (
        "raised_voice.ended",
        {
            "cue": "raised_voice",
            "onset_s": 10.0,
            "at_s": 11.0,
            "end_s": 16.0,
            "duration_s": 6.0,
            "db_above_usual": 9.0,
            "peak_db_above_usual": 12.5,
            "loudness_lufs": -18.3,
            "peak_loudness_lufs": -14.8,
            "usual_lufs": -27.3,
        },
    ),
    ("tense_voice.started", {"onset_s": 38.6, "at_s": 40.6, "duration_s": 2.0,
                             "st_above_usual": 8.8, "db_above_usual": 5.1,
                             "alpha_above_usual_db": 1.2, "rate_sps": 4.8, "cue": "tense_voice",
                             "usual_lufs": -26.0,
                             "summary": "+8.8 semitones, +5 dB, 4.8 syllables/s for 2.0 s"}),
    ("tense_voice.ended", {"onset_s": 38.6, "at_s": 40.6, "end_s": 45.6, "duration_s": 7.0,
                           "st_above_usual": 8.9, "peak_st_above_usual": 9.5,
                           "db_above_usual": 5.0, "peak_db_above_usual": 7.0,
                           "alpha_above_usual_db": 1.0, "peak_alpha_above_usual_db": 3.0,
                           "rate_sps": 4.7, "peak_rate_sps": 5.2, "cue": "tense_voice",
                           "usual_lufs": -26.0,
                           "summary": "pitch back near your usual after 7.0 s"}),
    ("caller.started", {"onset_s": 12.0, "at_s": 14.0, "duration_s": 2.0,
                        "db_above_usual": 11.0, "loudness_lufs": -24.0, "st_above_usual": 0.0,
                        "cue": "caller", "channel": "caller", "usual_lufs": -35.0,
                        "summary": "caller +11.0 dB above the caller's start-of-call level"}),
    ("caller.ended", {"onset_s": 12.0, "at_s": 14.0, "end_s": 16.0, "duration_s": 4.0,
                      "db_above_usual": 11.0, "peak_db_above_usual": 11.5,
                      "loudness_lufs": -24.0, "peak_loudness_lufs": -23.5,
                      "st_above_usual": 0.0, "peak_st_above_usual": 0.0, "cue": "caller",
                      "channel": "caller", "usual_lufs": -35.0,
                      "summary": "caller back near their start-of-call level after 4.0 s"}),
    ("laughter_burst", {"cue": "laughter", "onset_s": 43.4, "at_s": 43.9, "end_s": 44.6,
                        "duration_s": 1.2, "burst_count": 6, "rhythm_hz": 5.0, "score": 0.91,
                        "summary": "laughter-like bursts: 6 at 5.0/s for 1.2 s"}),
    ("call.started", {"call": 3, "start_s": 100.0}),
    (
        "call.ended",
        {
            "call": 3, "start_s": 100.0, "end_s": 410.0, "duration_s": 310.0,
            "agent_talk_s": 130.2, "caller_talk_s": 158.1,
            "agent_talk_share": 0.42, "caller_talk_share": 0.51, "overlap_s": 7.5,
            "cues": {"raised_voice": 1}, "max_level_above_usual_db": 11.0,
            "max_pitch_above_usual_st": None, "short": False,
        },
    ),
    ("snooze", {"minutes": 15.0, "until_s": 960.0, "source": "mqtt"}),
    ("recalibrate", {"warmup_speech_s": 20.0}),
    ("usual_voice_learned", {"usual_lufs": -27.0, "spread_db": 3.1, "speech_s": 20.0}),
    ("fault", {"kind": "audio", "fault": "no audio for 3 s", "active": True}),
    (
        "outbox_dropped",
        {
            "count": 2,
            "reasons": {"max_events": 2},
            "total": 2,
            "ranges": [{"boot_id": "a", "first_seq": 1, "last_seq": 2, "count": 2}],
        },
    ),
    ("config_applied", {"config_hash": "abc123", "changed": ["cues.raised_voice.threshold_db"]}),
]


@pytest.mark.parametrize(("kind", "data"), EXAMPLES, ids=[k for k, _ in EXAMPLES])
def test_every_event_type_validates(kind: str, data: dict[str, Any]) -> None:
    env = STAMPER.stamp(kind, data, stream_s=1.0)
    validate("events", env)
    validate("events", {**env, "replayed": True})


def test_every_event_type_is_documented() -> None:
    documented = set(_resolve("#/components/schemas/Event")["properties"]["type"]["enum"])
    assert documented == {k for k, _ in EXAMPLES}


BAD: list[tuple[str, Any]] = [
    ("events", {**make_events(1)[0], "type": "angry"}),  # a feeling, not a measurement
    ("events", {**make_events(1)[0], "extra": 1}),
    ("events", {**make_events(1)[0], "replayed": False}),
    ("events", {**make_events(1)[0], "seq": 0}),
    ("events", STAMPER.stamp("raised_voice.started", {"onset_s": 1.0}, stream_s=1.0)),
    ("events", STAMPER.stamp("fault", {"fault": "x"}, stream_s=1.0)),
    ("events", STAMPER.stamp("call.ended", {"agent_talk_share": 1.5}, stream_s=1.0)),
    ("status", "maybe"),
    ("info", {"firmware": "1"}),
    ("telemetry", {"uptime_s": 1}),
    ("telemetry", {"ts": 1.0, "outbox": {"depth": -1, "dropped": 0}}),
    ("cmd/snooze", {"txid": "a", "minutes": 1000}),
    ("cmd/snooze", {"minutes": 5}),
    ("cmd/status", {"txid": "a", "x": 1}),
    ("cmd/snooze/result", {"txid": "a", "cmd": "snooze", "ok": True, "ts": 1.0}),
    ("cmd/snooze/result", {"txid": "a", "cmd": "snooze", "ok": False, "ts": 1.0}),
    ("cmd/config", {"txid": "a", "config": "x"}),
]


@pytest.mark.parametrize(("suffix", "payload"), BAD)
def test_off_spec_payloads_fail(suffix: str, payload: Any) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate(suffix, payload)


def test_results_and_commands() -> None:
    validate("cmd/x/result", result_payload("x", None, False, error=("unknown_command", "no")))
    validate("cmd/snooze/result", result_payload("snooze", "t", True, data={"minutes": 5}))
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


def test_telemetry_accepts_the_appliance_status_shape() -> None:
    validate(
        "telemetry",
        {
            "ts": 1.0,
            "display": "ready",
            "fault": None,
            "stream_s": 12.0,
            "usual_lufs": None,
            "learned_speech_s": 3.5,
            "snoozed": False,
            "cues": {"raised_voice": 2},
            "input_overflows": 0,
            "level_lufs": {"agent": -24.0, "caller": -31.2},
            "uptime_s": 13.0,
            "soc_temp_c": None,
            "cpu_load": 0.05,
            "outbox": {"depth": 0, "dropped": 0},
        },
    )
