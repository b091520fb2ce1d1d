"""Home Assistant MQTT discovery on a real desk: ALSA file plugin -> PyAudio -> analyzer ->
policy -> gpiozero mock pins and a real mosquitto, with ``mqtt.home_assistant`` on.

What Home Assistant would do is done here by hand, on the broker: read the retained discovery
configs, follow each state topic they name, and press each button by publishing its
``payload_press`` to its ``command_topic``.
"""

from __future__ import annotations

import json
import math
import re
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from appliance_harness import appliance_settings, running_on_tap
from asyncapi_check import validate
from broker import Broker, Subscriber
from waiting import wait_until

from firmware.config.settings import Settings
from firmware.contract.commands import CommandResult
from firmware.contract.home_assistant import HaBinarySensor, HaButton, HaSensor
from firmware.demo.recording import build_call, demo_script
from firmware.link.home_assistant import discovery_configs
from firmware.link.supervisor_client import SupervisorClient

pytestmark = pytest.mark.e2e
RED_PIN = Settings().indicator.red_pin
BASE = "deskcue/test/d1"
NODE = "deskcue_test_d1"
MODELS: dict[str, type[HaBinarySensor | HaSensor | HaButton]] = {
    "binary_sensor": HaBinarySensor, "sensor": HaSensor, "button": HaButton}


def payloads(sub: Subscriber, topic: str) -> list[str]:
    return [m.payload.decode() for m in sub.messages if m.topic == topic]


def lit_phases(changes: list[tuple[float, float]], after: float) -> int:
    """How many times the pin went from dark to lit after monotonic time ``after``."""
    phases, lit = 0, False
    for t, v in changes:
        if t > after and v > 0 and not lit:
            phases += 1
        lit = v > 0
    return phases


def template_path(template: str) -> list[str]:
    """``value_json.a.b`` in a Home Assistant value template -> ["a", "b"]."""
    match = re.search(r"value_json((?:\.[a-z_]+)+)", template)
    assert match, template
    return match.group(1).strip(".").split(".")


def test_home_assistant_sees_a_desk_its_cues_and_can_press_its_buttons(
        tmp_path: Path, broker: Broker) -> None:
    settings = appliance_settings(tmp_path, broker, mqtt={
        "home_assistant": {"enabled": True}, "telemetry_interval_s": 1.0})
    expected = discovery_configs(settings)
    assert len(expected) == 11 and all(c is not None for c in expected.values())
    call = build_call(demo_script(raised=True))
    desk = Subscriber(broker, f"{BASE}/#", qos=1).connect()  # checks every payload's schema
    ha = Subscriber(broker, "homeassistant/#", qos=1).connect()
    try:
        with running_on_tap(tmp_path, broker, call.samples, settings=settings) as run:
            # The desk announces itself: every config, parsed by its model.
            wait_until(lambda: len({m.topic for m in ha.messages}) == len(expected))
            configs: dict[str, Any] = {}
            for m in ha.messages:
                kind = m.topic.split("/")[1]
                configs[m.topic] = MODELS[kind].model_validate_json(m.payload)
            assert set(configs) == set(expected)
            # The build's version, as its package metadata has it (every build said 0.1.0),
            # in the retained info and on the Home Assistant device alike.
            wait_until(lambda: desk.on("info"))
            firmware = desk.on("info")[-1].json()["firmware"]
            assert firmware == version("deskcue") == run.app.info().firmware
            for topic, config in configs.items():
                object_id = topic.split("/")[3]
                assert topic == f"homeassistant/{config.platform}/{NODE}/{object_id}/config"
                assert config.availability_topic == f"{BASE}/status"
                assert config.device.identifiers == [NODE]
                assert config.device.sw_version == config.origin.sw_version == firmware
            assert len({c.unique_id for c in configs.values()}) == len(configs)

            # A cue drives its binary sensor ON, then OFF; the call likewise.
            raised = next(c for c in configs.values() if c.unique_id == f"{NODE}_raised_voice")
            wait_until(lambda: payloads(desk, raised.state_topic)[-2:] == ["ON", "OFF"])
            assert payloads(desk, raised.state_topic) == ["OFF", "ON", "OFF"]
            types = [e["type"] for e in run.events]
            assert types.count("raised_voice.started") == types.count("raised_voice.ended") == 1
            wait_until(lambda: payloads(desk, f"{BASE}/state/call")[-2:] == ["ON", "OFF"])
            wait_until(lambda: desk.on("telemetry"))
            assert payloads(desk, f"{BASE}/status")[-1] == "online"

            # Every state topic a config names is one the desk publishes, and it carries
            # what the config reads.
            for config in configs.values():
                if isinstance(config, HaBinarySensor):
                    got = payloads(desk, config.state_topic)
                    assert got and set(got) <= {config.payload_on, config.payload_off}
                elif isinstance(config, HaSensor):
                    assert config.state_topic == f"{BASE}/telemetry"
                    reading: Any = desk.on("telemetry")[-1].json()
                    for key in template_path(config.value_template):
                        reading = reading[key]
                    assert isinstance(reading, float) and math.isfinite(reading)
                    assert config.expire_after >= settings.mqtt.telemetry_interval_s

            # Pressing identify makes the light blink: several lit phases of the red leg
            # (white), where the ready light keeps it dark.
            buttons = {c.unique_id.removeprefix(f"{NODE}_"): c for c in configs.values()
                       if isinstance(c, HaButton)}
            assert set(buttons) == {"identify", "recalibrate", "snooze", "snooze_cancel"}
            pressed = time.monotonic()
            with SupervisorClient(settings.mqtt) as supervisor:
                supervisor.connect()
                identify = buttons.pop("identify")
                validate(identify.command_topic.removeprefix(BASE + "/"),
                         json.loads(identify.payload_press))
                supervisor.publish(identify.command_topic, identify.payload_press)
                wait_until(lambda: lit_phases(run.pin_changes(RED_PIN), pressed) >= 3)
                # ... and answers, as each other button does, every time it is pressed
                for button in [identify, *buttons.values(), identify]:
                    supervisor.publish(button.command_topic, button.payload_press)
                wait_until(lambda: len(desk.on("result")) == 6)
            results = f"{identify.command_topic}/result"
            answers = [CommandResult.model_validate_json(m.payload) for m in desk.on("result")]
            assert all(a.ok for a in answers), answers
            assert [m.topic for m in desk.on("result")].count(results) == 3
            assert len({a.txid for a in answers}) == 6  # no press taken for a repeat
        # Stopped: offline by hand (Home Assistant shows every entity unavailable).
        wait_until(lambda: payloads(desk, f"{BASE}/status")[-1] == "offline")
    finally:
        desk.close()
        ha.close()

    # Retained: a Home Assistant that starts later gets every config, and every state.
    late = Subscriber(broker, "homeassistant/#", qos=1).connect()
    states = Subscriber(broker, f"{BASE}/state/#", qos=1).connect()
    try:
        wait_until(lambda: len(late.messages) == len(expected))
        assert all(m.retain for m in late.messages)
        assert {m.topic: m.payload for m in late.messages} == {
            t: json.dumps(c.to_json(), separators=(",", ":")).encode()
            for t, c in expected.items() if c is not None}
        wait_until(lambda: len(states.messages) == 5)
        assert all(m.retain and m.payload == b"OFF" for m in states.messages)
    finally:
        late.close()
        states.close()
