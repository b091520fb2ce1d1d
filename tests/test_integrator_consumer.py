"""What an integrator's consumer sees, built from docs/asyncapi.yaml alone: a real
`deskcue run` on the demo call played through the tap, a real mosquitto, and a plain paho
subscriber (as a Node-RED flow or a Telegraf input would be) that knows nothing of deskcue's
code.

It routes each message to its channel by the document's addresses, parses it as the
channel's message says (JSON, or text for ``status`` and ``state/<name>``), validates it
with jsonschema against the document's schema, and for every event reads only the fields
the document declares for that event's ``type``. Kinds the call does not produce (fault,
outbox_dropped, snooze ...) are taken from the document's own examples, so the consumer
is shown every kind there is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import paho.mqtt.client as mqtt
import pytest
import yaml
from alsa_tap import DEVICE_NAME, AlsaTap
from broker import Broker
from paho.mqtt.enums import CallbackAPIVersion
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from scipy.io import wavfile
from waiting import HANG_S, wait_until

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
DOC = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8"))
URI = "urn:integrator:asyncapi"
REGISTRY = Registry().with_resource(URI, Resource.from_contents(DOC,
                                                                 default_specification=DRAFT7))


def resolve(ref: str) -> Any:
    node: Any = DOC
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def channel(topic: str) -> tuple[str, dict[str, Any]]:
    """The channel whose address (with {parameters}) matches ``topic``, and its message."""
    for name, ch in DOC["channels"].items():
        pattern = re.sub(r"\\\{[a-z]+\\\}", "[^/]+", re.escape(ch["address"]))
        if re.fullmatch(pattern, topic):
            (message,) = ch["messages"].values()
            return name, resolve(message["$ref"])
    raise AssertionError(f"{topic}: no channel in docs/asyncapi.yaml")


def parse(topic: str, payload: bytes) -> tuple[str, Any]:
    """(channel name, payload) as the document says to read it; raises if off-spec."""
    name, message = channel(topic)
    text = payload.decode("utf-8")
    value = text if message.get("contentType", DOC["defaultContentType"]) == "text/plain" \
        else json.loads(text)
    ref = message["payload"]["$ref"]
    jsonschema.Draft7Validator({"$ref": URI + ref}, registry=REGISTRY).validate(value)
    return name, value


def data_schema(kind: str) -> dict[str, Any]:
    """The schema the document gives an event's ``data`` for ``type`` == ``kind``."""
    for rule in resolve("#/components/schemas/EventEnvelope")["allOf"]:
        if rule["if"]["properties"]["type"]["const"] == kind:
            schema: dict[str, Any] = resolve(rule["then"]["properties"]["data"]["$ref"])
            return schema
    raise AssertionError(f"event type {kind!r} is not in docs/asyncapi.yaml")


def handle(event: dict[str, Any]) -> str:
    """What a dashboard would show for an event, from the fields the document declares for
    its type only, each number with the unit its description states."""
    schema = data_schema(event["type"])
    documented = schema["properties"]
    assert set(event["data"]) <= set(documented), event  # nothing undocumented to read
    assert set(schema.get("required", [])) <= set(event["data"]), event
    parts = []
    for key, value in event["data"].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            unit = documented[key]["description"].rstrip(".").rsplit(",", 1)[-1].strip()
            parts.append(f"{key}={value} ({unit})")
    return f"{event['type']} #{event['seq']}: " + ", ".join(parts)


def test_a_plain_consumer_reads_a_real_desk_from_the_document_alone(
        tmp_path: Path, broker: Broker, demo_wav: Path) -> None:
    # The desk reads the demo call from the real tap (ALSA's file plugin, silence after it)
    # and runs until every kind the call produces has arrived: telemetry comes on the wall
    # clock, so a run that ends with its file could finish before the first one.
    tap = AlsaTap(tmp_path, set_env=False)
    rate, samples = wavfile.read(demo_wav)
    tap.load(samples.astype(np.float64) / 32768.0)
    config = tmp_path / "deskcue.toml"
    config.write_text(
        f'[device]\nsite = "site1"\ndesk = "desk1"\nstate_dir = "{tmp_path / "state"}"\n'
        f'runtime_dir = "{tmp_path / "run"}"\n'
        f'[audio]\ndevice = "{DEVICE_NAME}"\nchannels = 2\nrate_hz = {rate}\nqueue_s = 600.0\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\ntelemetry_interval_s = 1.0\n'
        'publish_laughter = true\n[mqtt.home_assistant]\nenabled = true\n')
    got: list[mqtt.MQTTMessage] = []
    lock, subscribed = threading.Lock(), threading.Event()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            got.append(msg)

    def topics() -> set[str]:
        with lock:
            return {m.topic.rsplit("/", 1)[-1] for m in got}

    def call_ended() -> bool:
        with lock:
            return any(m.topic.endswith("/events")
                       and parse(m.topic, m.payload)[1]["type"] == "call.ended" for m in got)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.subscribe([("deskcue/+/+/#", 1), ("homeassistant/#", 1)])
        assert subscribed.wait(HANG_S)
        desk = subprocess.Popen(
            [sys.executable, "-m", "firmware.cli", "run", "--config", str(config), "--pins",
             "mock"], cwd=ROOT, env={**os.environ, "ALSA_CONFIG_PATH": tap.config_path},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: call_ended() and "telemetry" in topics() or desk.poll() is not None)
        finally:
            desk.terminate()
            _, stderr = desk.communicate(timeout=HANG_S)
        assert desk.returncode == 0, stderr
        wait_until(lambda: any(m.topic.endswith("/status") and m.payload == b"offline"
                               for m in list(got)))
    finally:
        client.disconnect()
        client.loop_stop()

    seen: dict[str, list[Any]] = {}
    expiry = DOC["operations"]["sendTelemetry"]["bindings"]["mqtt"]["messageExpiryInterval"]
    for m in got:
        if m.topic.startswith("homeassistant/"):
            continue  # Home Assistant's own format (tests/test_e2e_home_assistant.py)
        assert m.topic.startswith("deskcue/site1/desk1/"), m.topic
        name, value = parse(m.topic, m.payload)
        seen.setdefault(name, []).append(value)
        if name == "telemetry":  # expires as the document says: no stale level on a late read
            assert 0 < m.properties.MessageExpiryInterval <= expiry
    assert {"status", "info", "telemetry", "events", "state"} <= set(seen)
    info = seen["info"][-1]
    assert info["firmware"] and info["channel_map"] == {"agent": "left", "caller": "right"}

    events = seen["events"]
    lines = [handle(e) for e in events]
    kinds = {e["type"] for e in events}
    assert {"usual_voice_learned", "raised_voice.started", "raised_voice.ended",
            "laughter_burst", "call.started", "call.ended"} <= kinds, kinds
    assert len({e["id"] for e in events}) == len(events)  # one id each: a duplicate is droppable
    assert any("db_above_usual=" in line and "(dB)" in line for line in lines), lines
    # every kind the document has, through the same consumer
    (examples,) = [resolve(m["$ref"])["examples"]
                   for m in DOC["channels"]["events"]["messages"].values()]
    for example in examples:
        _, envelope = parse("deskcue/site1/desk1/events", json.dumps(example["payload"]).encode())
        handle(envelope)
    documented = {rule["if"]["properties"]["type"]["const"]
                  for rule in resolve("#/components/schemas/EventEnvelope")["allOf"]}
    assert documented == kinds | {e["payload"]["type"] for e in examples}
