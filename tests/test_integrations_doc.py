"""docs/integrations.md: the Node-RED flow and the Telegraf config read only what the desk
sends. Every topic they subscribe or publish to is a channel of docs/asyncapi.yaml, every
command payload validates against its schema, every JSON path names a field of the contract,
and what must survive a consumer's absence is read with QoS 1 in a persistent session."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
from asyncapi_check import document, validate

from firmware.contract.desk import Telemetry
from firmware.contract.examples import EXAMPLES, event_example

DOC = Path(__file__).resolve().parent.parent / "docs" / "integrations.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def channel_for(topic: str) -> str:
    """The AsyncAPI channel whose address ``topic`` (a filter with ``+``, or a topic) covers
    level by level: ``+`` only where the address has a parameter; AssertionError if none."""
    levels = topic.split("/")
    for name, channel in document()["channels"].items():
        address = channel["address"].split("/")
        if len(address) != len(levels):
            continue
        # a literal level names itself or fills a parameter; "+" only fills a parameter
        if all(a == t or (a.startswith("{") and t != "#")
               for a, t in zip(address, levels, strict=True)):
            return name
    raise AssertionError(f"{topic!r} is not a channel of docs/asyncapi.yaml")


def suffix(topic: str) -> str:
    return topic.split("/", 3)[3]


def walk(obj: Any, path: str) -> Any:
    for key in path.split("."):
        obj = obj[key]
    return obj


@pytest.fixture(scope="module")
def flow() -> list[dict[str, Any]]:
    (text,) = blocks("json")
    nodes: list[dict[str, Any]] = json.loads(text)
    return nodes


@pytest.fixture(scope="module")
def telegraf() -> dict[str, Any]:
    (text,) = blocks("toml")[1:]  # the first is the desk's own config snippet
    return tomllib.loads(text)


def test_the_desk_config_snippet_is_the_config_model() -> None:
    from firmware.config.settings import Settings

    snippet = tomllib.loads(blocks("toml")[0])
    assert Settings.model_validate({"mqtt": snippet["mqtt"]}).mqtt.home_assistant.enabled


def test_node_red_flow_topics_are_channels(flow: list[dict[str, Any]]) -> None:
    by_id = {n["id"]: n for n in flow}
    mqtt_nodes = [n for n in flow if n["type"] in ("mqtt in", "mqtt out")]
    assert {n["type"] for n in mqtt_nodes} == {"mqtt in", "mqtt out"}
    channels = {channel_for(n["topic"]) for n in mqtt_nodes}
    assert {"state", "status", "events", "identifyCommand"} <= channels
    for node in mqtt_nodes:
        assert by_id[node["broker"]]["type"] == "mqtt-broker"
        assert node["qos"] == "1"
    # the button's payload is a valid command (no txid: the desk makes one)
    for out in (n for n in mqtt_nodes if n["type"] == "mqtt out"):
        assert out["retain"] == "false"
        (inject,) = [n for n in flow if out["id"] in sum(n.get("wires", []), [])]
        payload = json.loads(inject["payload"])
        assert "txid" not in payload
        validate(suffix(out["topic"]), payload)
    # the events read what the envelope has
    dedupe = by_id["dc_dedupe"]["func"]
    for path in re.findall(r"msg\.payload\.([a-z_.]+)", dedupe):
        walk(event_example("raised_voice.started").to_json(), path)


def test_node_red_keeps_a_persistent_session(flow: list[dict[str, Any]]) -> None:
    (broker,) = [n for n in flow if n["type"] == "mqtt-broker"]
    assert broker["clientid"] and broker["cleansession"] is False
    assert int(broker["sessionExpiry"]) > 0 and broker["protocolVersion"] == "5"


def test_telegraf_topics_are_channels_and_paths_are_fields(telegraf: dict[str, Any]) -> None:
    inputs = telegraf["inputs"]["mqtt_consumer"]
    telemetry = EXAMPLES["telemetry"]
    assert isinstance(telemetry, Telemetry)
    samples = {"telemetry": telemetry.to_json(),
               "events": event_example("raised_voice.started").to_json()}
    seen = set()
    for plugin in inputs:
        for topic in plugin["topics"]:
            name = channel_for(topic)
            seen.add(name)
        for parsing in plugin.get("topic_parsing", []):
            assert parsing["topic"] in plugin["topics"]
            assert len(parsing["tags"].split("/")) == len(parsing["topic"].split("/"))
        for spec in plugin.get("json_v2", []):
            (topic,) = plugin["topics"]
            sample = samples[channel_for(topic)]
            for item in spec.get("field", []) + spec.get("tag", []):
                walk(sample, item["path"])  # KeyError: not a field of the contract
        if plugin["qos"] == 1:  # what must not be lost is queued while Telegraf is away
            assert plugin["persistent_session"] and plugin["client_id"]
    assert seen == {"telemetry", "state", "events"}


def test_state_values_map_to_the_contract(telegraf: dict[str, Any]) -> None:
    from firmware.contract.states import CueState

    (enum,) = telegraf["processors"]["enum"]
    mapping = enum["mapping"][0]["value_mappings"]
    assert {CueState(v).root for v in mapping} == {"ON", "OFF"}


def test_every_default_the_page_states_is_the_config_default() -> None:
    """The topic table said telemetry came every 10 s; the desk sends it every 1 s by default,
    so a Telegraf or Home Assistant set up from this page sized for a tenth of the traffic."""
    from firmware.config.mqtt import MqttSettings

    text = DOC.read_text(encoding="utf-8")
    stated = re.findall(r"`mqtt\.(\w+)` \((?:default )?([0-9.]+) s\)", text)
    assert stated
    for key, value in stated:
        assert float(value) == getattr(MqttSettings(), key), key


def test_telegraf_times_events_by_their_ts_and_keeps_their_boot(
        telegraf: dict[str, Any]) -> None:
    """Events come late by design (replayed from the desk's outbox after a broker outage,
    queued by the broker while Telegraf was away): stamped on arrival, as the recipe had them,
    a cue of 10:02 was drawn at 10:40, and a QoS 1 duplicate drew it twice. Read from the
    envelope's ``ts`` (Unix seconds with a fraction: Telegraf's "unix" format), a late event
    lands where it happened and a duplicate overwrites its own point. The page also promises
    gaps by (``boot_id``, ``seq``), so ``boot_id`` must be kept, as a tag to group by."""
    (events,) = [p for p in telegraf["inputs"]["mqtt_consumer"]
                 if channel_for(p["topics"][0]) == "events"]
    (spec,) = events["json_v2"]
    sample = event_example("raised_voice.started").to_json()
    assert isinstance(walk(sample, spec["timestamp_path"]), float)
    assert spec["timestamp_format"] == "unix"
    assert "boot_id" in {t["path"] for t in spec.get("tag", [])}
    assert "seq" in {f["path"] for f in spec.get("field", [])}


def _retained_configs(broker: Any, user: str, password: str, node: str) -> set[str]:
    """Topics of the non-empty discovery configs the broker keeps for ``node``, read as
    ``user``: subscribe, then a marker through the broker; mosquitto sends a new subscription's
    retained messages before it handles that marker."""
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from waiting import HANG_S

    found: set[str] = set()
    done, subscribed = threading.Event(), threading.Event()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == "homeassistant/status":
            done.set()
        elif msg.payload:
            found.add(msg.topic)

    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, password)
    c.on_message = on_message
    c.on_subscribe = lambda *_a: subscribed.set()
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        c.subscribe([(f"homeassistant/+/{node}/+/config", 1), ("homeassistant/status", 1)])
        assert subscribed.wait(HANG_S)
        c.publish("homeassistant/status", "online", qos=1)
        assert done.wait(HANG_S)
    finally:
        c.disconnect()
        c.loop_stop()
    return found


def test_the_clear_discovery_recipe_clears_under_the_generated_acl(tmp_path: Path) -> None:
    """The page's command that removes a desk from Home Assistant, run as written against a
    broker with the ACL `deskcue config acl` writes. Run as a supervisor (Home Assistant's
    account), mosquitto let it read the configs and silently dropped its clears: exit 27, the
    status the page calls success, and the device still there."""
    import shlex
    import subprocess

    from broker import Broker

    from firmware.config.settings import Settings
    from firmware.link.acl import desk_account, mosquitto_acl
    from firmware.link.home_assistant import discovery_messages

    (line,) = [ln for ln in DOC.read_text(encoding="utf-8").splitlines()
               if "--remove-retained" in ln]
    (command,) = re.findall(r"`(mosquitto_sub [^`]*)`", line)
    account = desk_account("deskcue", "site1", "desk1")
    users = {account.username: "desk-pw", "ha": "ha-pw"}
    acl = mosquitto_acl([account], ["ha"], home_assistant=True)
    settings = Settings.model_validate({"mqtt": {"home_assistant": {"enabled": True}}})
    with Broker(tmp_path / "broker", users=users, acl=acl) as broker:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        desk = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        desk.username_pw_set(account.username, users[account.username])
        desk.connect(broker.host, broker.port)
        desk.loop_start()
        for topic, payload in discovery_messages(settings):
            desk.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
        desk.disconnect()
        desk.loop_stop()
        node = account.discovery_node
        assert len(_retained_configs(broker, "ha", "ha-pw", node)) == 11
        argv = shlex.split(command.replace("-h broker", f"-h {broker.host} -p {broker.port}"))
        argv = [users[account.username] if a == "$DESK_PASSWORD" else a for a in argv]
        done = subprocess.run(argv, capture_output=True, timeout=60)
        assert done.returncode == 27, done.stderr  # the page: mosquitto_sub's -W timeout
        assert _retained_configs(broker, "ha", "ha-pw", node) == set()


def table(after: str) -> list[list[str]]:
    """The cells of the rows of the first markdown table from the line starting with ``after``
    on, without its header row."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(after))
    rows = []
    for line in lines[start:]:
        if rows and not line.startswith("|"):
            break
        if line.startswith("|") and not set(line) <= set("|- "):
            rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows[1:]  # without the header


def channel_suffixes() -> set[str]:
    return {c["address"].split("{desk}/", 1)[1] for c in document()["channels"].values()}


def test_the_topic_table_lists_every_channel_of_the_contract() -> None:
    """The page's table is where an integrator learns which topics a desk has. It left out
    `info` (retained: firmware version, config hash, channel map), which the same page then
    tells consumers to read at connect, and `cmd/config`, which it mentions below."""
    listed = set()
    for topic, what, *_ in table("Everything here reads the topics"):
        (first, *rest) = re.findall(r"`([^`]+)`", topic)
        names = re.findall(r"`([a-z_]+)`", what) if "<name>" in first else []
        for t in [first, *rest]:
            if "<name>" in t and t.startswith("cmd/"):
                listed |= {t.replace("<name>", n) for n in names}
            else:
                listed.add(t.replace("<name>", "{name}"))
    assert listed == channel_suffixes() - {"cmd/{name}/result"}
    from firmware.contract.desk import Info

    (info,) = [what for topic, what, *_ in table("Everything here reads the topics")
               if topic == "`info`"]
    assert set(re.findall(r"`([a-z_]+)`", info)) <= set(Info.model_fields)


def test_every_mosquitto_example_is_a_channel_and_a_valid_payload() -> None:
    """Each `mosquitto_pub` line on the page, as an integrator would paste it: the topic is a
    channel of the contract and the payload (``-m``) validates against its schema."""
    text = DOC.read_text(encoding="utf-8")
    commands = re.findall(r"mosquitto_pub [^`\n]*", text)
    assert len(commands) >= 5
    for command in commands:
        argv = shlex.split(command.split(" #", 1)[0])
        topic = argv[argv.index("-t") + 1]
        channel_for(topic)
        if "-m" in argv:
            validate(suffix(topic), json.loads(argv[argv.index("-m") + 1]))
        else:
            assert "-n" in argv and "-r" in argv, command  # clearing a retained message


def test_the_home_assistant_table_is_what_the_desk_announces() -> None:
    """Every entity the page promises (name, kind, topic) is one the desk's discovery
    configs have, and every config the desk publishes is on the page."""
    from firmware.config.settings import Settings
    from firmware.contract.home_assistant import HaBinarySensor, HaButton, HaSensor
    from firmware.link.home_assistant import discovery_configs

    settings = Settings.model_validate(
        {"device": {"site": "site1", "desk": "desk1"},
         "mqtt": {"publish_laughter": True, "home_assistant": {"enabled": True}}})
    base = "deskcue/site1/desk1/"
    configs = {c.name: c for c in discovery_configs(settings).values() if c is not None}
    kinds = {"binary sensor": HaBinarySensor, "sensor": HaSensor, "button": HaButton}
    promised = set()
    for names, kind, topics in table("| entity | kind |"):
        on_page = set(re.findall(r"`([^`{]+)`", topics))
        model = kinds[next(k for k in sorted(kinds, key=len, reverse=True) if kind.startswith(k))]
        for name in re.sub(r"\([^)]*\)", "", names).split(","):
            name = name.strip()
            promised.add(name)
            config = configs[name]  # KeyError: the page promises an entity the desk lacks
            assert isinstance(config, model), (name, kind)
            topic = (config.command_topic if isinstance(config, HaButton)
                     else config.state_topic).removeprefix(base)
            assert topic in on_page, (name, topic, on_page)
            if isinstance(config, HaButton):
                pressed = json.loads(config.payload_press)
                validate(topic, pressed)
                # where the row says what a press sends, it is what the button sends
                stated = [json.loads(p) for p in re.findall(r"`(\{[^`]*\})`", topics)]
                assert not stated or pressed in stated, (name, pressed, stated)
    assert promised == set(configs)
