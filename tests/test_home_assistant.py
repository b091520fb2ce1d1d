"""Home Assistant discovery and the retained states, as built and as a real broker carries
them under the generated ACL (the end-to-end run on a whole desk is in
test_e2e_home_assistant.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asyncapi_check import validate
from broker import Broker, Subscriber, settings_for
from waiting import wait_until

from firmware.config.checks import check_file
from firmware.config.settings import Settings
from firmware.contract.home_assistant import HaBinarySensor, HaButton, HaSensor
from firmware.link.acl import desk_account
from firmware.link.home_assistant import discovery_configs, discovery_messages
from firmware.link.mqtt_client import MqttLink
from firmware.link.states import state_names

ROOT = Path(__file__).resolve().parent.parent
USERS = {"lyon-d01": "pw1", "lyon-d02": "pw2", "ha": "pw3"}
SITE = """\
[device]
site = "lyon"
[mqtt]
host = "127.0.0.1"
[mqtt.home_assistant]
enabled = true
[desks.d01]
[desks.d02]
"""


def settings(**mqtt: Any) -> Settings:
    return Settings.model_validate({"device": {"site": "lyon-2", "desk": "d01"},
                                    "mqtt": {"home_assistant": {"enabled": True}, **mqtt}})


def test_off_by_default_publishes_nothing() -> None:
    assert Settings().mqtt.home_assistant.enabled is False
    assert discovery_configs(Settings()) == {}
    assert discovery_configs(settings(enabled=False)) == {}


def test_every_config_points_at_the_desks_own_topics() -> None:
    s = settings()
    configs = discovery_configs(s)
    node = desk_account("deskcue", "lyon-2", "d01").discovery_node
    assert node == "deskcue_lyon_2_d01"  # what the broker ACL lets this desk write
    base = "deskcue/lyon-2/d01"
    assert len({c.unique_id for c in configs.values() if c}) == len(configs) == 11
    for topic, config in configs.items():
        assert config is not None
        prefix, component, topic_node, object_id, last = topic.split("/")
        assert (prefix, component, topic_node, last) == ("homeassistant", config.platform,
                                                         node, "config")
        assert config.unique_id == f"{node}_{object_id}"
        assert config.availability_topic == f"{base}/status"
        if isinstance(config, HaBinarySensor):
            assert config.state_topic == f"{base}/state/{object_id}"
            validate(f"state/{object_id}", config.payload_on)
            validate(f"state/{object_id}", config.payload_off)
        elif isinstance(config, HaSensor):
            assert config.state_topic == f"{base}/telemetry"
            assert config.expire_after == s.mqtt.telemetry_expiry_s
        else:
            assert isinstance(config, HaButton)
            command = config.command_topic.removeprefix(base + "/")
            payload = json.loads(config.payload_press)
            assert "txid" not in payload  # the desk makes one: pressed again, run again
            validate(command, payload)


def test_what_the_desk_does_not_have_is_removed() -> None:
    s = settings(publish_laughter=False).model_copy(
        update={"audio": Settings().audio.model_copy(update={"channels": 1})})
    messages = dict(discovery_messages(s))
    removed = sorted(t.split("/")[3] for t, p in messages.items() if p == "")
    # no caller analysed: neither the caller's level nor a caller escalation that cannot fire
    assert removed == ["caller", "caller_level", "laughter"]
    ignored = settings().model_copy(update={"audio": Settings().audio.model_copy(
        update={"caller_channel": "none"})})  # stereo, the caller's channel not analysed
    for entity in ("/caller_level/", "/caller/"):
        assert dict(discovery_messages(ignored))[next(
            t for t, _ in messages.items() if entity in t)] == ""
    assert "laughter" not in state_names(s.mqtt)
    assert "laughter" in state_names(Settings().mqtt)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Broker, Settings]]:
    path = tmp_path / "site.toml"
    path.write_text(SITE)
    out = tmp_path / "acl"
    proc = subprocess.run([sys.executable, "-m", "firmware.cli", "config", "acl", str(path),
                           "--supervisor", "ha", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "topic read homeassistant/#" in out.read_text()
    result = check_file(path)
    desk = result.configs["d01"]
    b = Broker(tmp_path / "broker", users=dict(USERS), acl=out.read_text()).start()
    yield b, desk
    b.stop()


def test_the_desk_announces_itself_and_its_states_under_its_acl(
        site: tuple[Broker, Settings], tmp_path: Path) -> None:
    broker, desk = site
    creds = tmp_path / "d01.credentials"
    creds.write_text('username = "lyon-d01"\npassword = "pw1"\n')
    creds.chmod(0o600)
    announce = discovery_messages(desk)
    link = MqttLink(settings_for(broker, credentials_file=creds), site="lyon", desk="d01",
                    state_dir=tmp_path / "state", states=state_names(desk.mqtt),
                    announce=announce)
    link.set_state("raised_voice", True)  # before it ever connected: sent at connect
    link.set_state("nonsense", True)  # not one of its states: ignored
    link.start()
    try:
        # the command subscription is answered after what the desk sends at connect
        wait_until(lambda: link.commands_ready)
        ha = Subscriber(broker, "homeassistant/#", qos=1, username="ha",
                        password=USERS["ha"]).connect()
        states = Subscriber(broker, "deskcue/lyon/d01/state/#", qos=1, username="ha",
                            password=USERS["ha"]).connect()
        try:
            wait_until(lambda: len(ha.messages) == len(announce))
            assert all(m.retain for m in ha.messages)  # a late Home Assistant gets them
            assert {m.topic: m.payload.decode() for m in ha.messages} == dict(announce)
            def latest() -> dict[str, bytes]:
                return {m.topic.rsplit("/", 1)[1]: m.payload for m in states.messages}

            wait_until(lambda: len(latest()) == 5)
            assert latest() == {"raised_voice": b"ON", "tense_voice": b"OFF", "caller": b"OFF",
                                "laughter": b"OFF", "call": b"OFF"}
            link.set_state("raised_voice", False)
            wait_until(lambda: latest()["raised_voice"] == b"OFF")
        finally:
            ha.close()
            states.close()
        # A broker that lost everything (restarted without persistence) has it all again as
        # soon as the desk reconnects: the states and configs are re-sent at every connect.
        link.set_state("call", True)
        broker.stop()
        wait_until(lambda: not link.connected)
        broker.start()
        wait_until(lambda: link.commands_ready)
        late = Subscriber(broker, "#", qos=1, username="ha", password=USERS["ha"]).connect()
        wait_until(lambda: len([m for m in late.messages if m.retain]) >= 5 + len(announce))
        retained = {m.topic: m.payload for m in late.messages if m.retain}
        assert retained["deskcue/lyon/d01/state/raised_voice"] == b"OFF"
        assert retained["deskcue/lyon/d01/state/call"] == b"ON"
        assert {t: p.decode() for t, p in retained.items()
                if t.startswith("homeassistant/")} == dict(announce)
        late.close()
    finally:
        link.stop(drain_s=0.0)


def test_a_mono_source_on_a_stereo_config_removes_the_callers_level(
        broker: Broker, tmp_path: Path) -> None:
    """A desk configured for a stereo tap (audio.channels = 2) that opens a mono source
    analyses the agent alone: info's channel_map says caller none, and no caller level ever
    arrives. Home Assistant must not keep a "Caller level" entity for it: once the source is
    open, its discovery config is removed (an empty retained payload), the agent's stays."""
    from tone import tone_wav

    state, run = tmp_path / "state", tmp_path / "run"
    live = tmp_path / "deskcue.toml"
    live.write_text(f'[device]\nsite = "lyon"\ndesk = "d01"\nstate_dir = "{state}"\n'
                    f'runtime_dir = "{run}"\n[audio]\nchannels = 2\n'
                    f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
                    '[mqtt.home_assistant]\nenabled = true\n')
    node = desk_account("deskcue", "lyon", "d01").discovery_node
    caller = f"homeassistant/sensor/{node}/caller_level/config"
    agent = f"homeassistant/sensor/{node}/agent_level/config"
    ha = Subscriber(broker, "homeassistant/#", qos=1).connect()
    desk = Subscriber(broker, "deskcue/lyon/d01/info", qos=1).connect()  # checks the schema
    try:
        done = subprocess.run(
            [sys.executable, "-m", "firmware.cli", "run", "--config", str(live), "--source",
             str(tone_wav(tmp_path / "mono.wav", 1.0)), "--pins", "mock", "--fast"],
            cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        wait_until(lambda: any(m.json()["audio_device"] for m in desk.messages))
        wait_until(lambda: [m.payload for m in ha.messages if m.topic == caller][-1:] == [b""])
    finally:
        ha.close()
        desk.close()
    assert [m.json()["channel_map"] for m in desk.messages if m.json()["audio_device"]][-1] \
        == {"agent": "mono", "caller": "none"}
    late = Subscriber(broker, "homeassistant/#", qos=1).connect()
    try:
        wait_until(lambda: any(m.topic == agent for m in late.messages))
        retained = {m.topic for m in late.messages if m.retain}
    finally:
        late.close()
    assert agent in retained and caller not in retained, sorted(retained)


def test_the_device_is_the_same_across_upgrades_and_its_own_per_desk() -> None:
    """Home Assistant keys a device and its entities by ``identifiers`` and ``unique_id``: an
    upgrade (another firmware version) or a restart must keep them, or it shows a second
    device with a fresh set of entities beside the old one; another desk must have others.
    Only the version shown changes."""
    s = settings()
    before = discovery_configs(s, "0.1.0")
    after = discovery_configs(s, "0.1.1.dev700+g0123abcd")
    assert before.keys() == after.keys()
    for topic, old in before.items():
        new = after[topic]
        assert old is not None and new is not None
        assert new.device.sw_version == new.origin.sw_version == "0.1.1.dev700+g0123abcd"
        assert new.model_copy(update={"device": old.device, "origin": old.origin}) == old
        assert new.device.identifiers == old.device.identifiers == ["deskcue_lyon_2_d01"]
    other = discovery_configs(Settings.model_validate(
        {"device": {"site": "lyon-2", "desk": "d02"},
         "mqtt": {"home_assistant": {"enabled": True}}}))
    ids = {c.unique_id for c in before.values() if c}
    assert not ids & {c.unique_id for c in other.values() if c}
    assert {tuple(c.device.identifiers) for c in other.values() if c} == {("deskcue_lyon_2_d02",)}
