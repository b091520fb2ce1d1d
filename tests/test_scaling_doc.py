"""docs/scaling.md: the site broker's bridge to a central one, run as written on two real
mosquittos (only the central address, its TLS files and credentials changed for loopback),
carries everything a desk publishes to the centre and the centre's commands to the desk."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from broker import Broker, Subscriber, make_events, settings_for
from paho.mqtt.enums import CallbackAPIVersion
from waiting import wait_until

from firmware.contract.examples import EXAMPLES, STATUS
from firmware.contract.states import STATE_NAMES
from firmware.link.commands import Command
from firmware.link.mqtt_client import MqttLink

DOC = Path(__file__).resolve().parent.parent / "docs" / "scaling.md"
BASE = "deskcue/lyon/d01"
# What only the real centre has: its address, its CA and the bridge's own credentials.
SITE_ONLY = ("bridge_cafile", "bridge_certfile", "bridge_keyfile", "remote_username",
             "remote_password")


def bridge_config(central: Broker) -> str:
    """The page's bridge block, pointed at ``central`` on loopback, otherwise as written."""
    (block,) = [b for b in re.findall(r"```\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
                if "connection central" in b]
    lines = []
    for line in block.splitlines():
        key = line.split(" ", 1)[0]
        if key == "address":
            line = f"address {central.host}:{central.port}"
        elif key in SITE_ONLY:
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


@dataclass
class SiteBroker(Broker):
    """A broker whose config ends with a bridge section."""

    bridge: str = ""

    def _write_config(self) -> None:
        super()._write_config()
        with self.config_path.open("a") as f:
            f.write(self.bridge)


def test_the_bridge_carries_every_desk_channel_both_ways(tmp_path: Path) -> None:
    """mosquitto reads no comment after a value: the page's `remote_clientid bridge-lyon  #
    ...` made a client id of the whole line, which the centre refused, so nothing crossed;
    and the bridge had no `state/+`, so the centre's dashboards had no cue or call states."""
    central = Broker(tmp_path / "central").start()
    site = SiteBroker(tmp_path / "site", bridge=bridge_config(central)).start()
    executed: list[Command] = []
    link: MqttLink | None = None
    sub = Subscriber(central, "deskcue/#").connect()
    try:
        # the bridge is up once a message published at the site reaches the centre
        probe = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        probe.connect(site.host, site.port)
        probe.loop_start()
        probe.publish("deskcue/lyon/probe/status", "online", qos=1).wait_for_publish(10)
        wait_until(lambda: sub.on("status"))

        def handle(cmd: Command) -> None:
            executed.append(cmd)
            assert link is not None
            link.publish_command_result(cmd, True, data=STATUS)

        link = MqttLink(settings_for(site), site="lyon", desk="d01", state_dir=tmp_path / "st",
                        on_command=handle, states=STATE_NAMES)
        link.set_info(EXAMPLES["info"])  # type: ignore[arg-type]
        link.start()
        link.set_state("raised_voice", True)
        for event in make_events(2):
            link.publish_event(event)
        wait_until(lambda: len(sub.on("events")) == 2 and sub.on("state/raised_voice")
                   and any(m.payload == b"online" for m in sub.on("status")
                           if m.topic.startswith(BASE)))
        assert {m.topic for m in sub.messages if "/state/" in m.topic} == {
            f"{BASE}/state/{name}" for name in STATE_NAMES}
        assert sub.on("state/raised_voice")[-1].payload == b"ON" and sub.on("info")
        # a command sent at the centre reaches the desk, and its answer comes back
        probe.disconnect()
        probe.loop_stop()
        boss = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        boss.connect(central.host, central.port)
        boss.loop_start()
        boss.publish(f"{BASE}/cmd/status", json.dumps({"txid": "c1"}), qos=1)
        wait_until(lambda: sub.on("cmd/status/result"))
        assert [c.txid for c in executed] == ["c1"]
        assert sub.on("cmd/status/result")[0].json()["txid"] == "c1"
        boss.disconnect()
        boss.loop_stop()
    finally:
        if link is not None:
            link.stop(drain_s=0.0)
        sub.close()
        site.stop()
        central.stop()
