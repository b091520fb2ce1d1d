"""docs/field-tech.md §8 "Retire a desk": the commands it gives clear everything a desk keeps
retained on the broker, run as written (mosquitto_pub and mosquitto_sub) with the desk's own
account against a real mosquitto under the ACL `deskcue config acl` generates."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from broker import Broker, Subscriber, site_acl
from paho.mqtt.enums import CallbackAPIVersion
from waiting import wait_until

from firmware.config.settings import Settings
from firmware.contract.examples import EXAMPLES
from firmware.link.home_assistant import discovery_messages
from firmware.link.states import STATE_NAMES

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "field-tech.md").read_text()
SITE = """\
[device]
site = "lyon"
[mqtt]
host = "127.0.0.1"
publish_laughter = true
[mqtt.home_assistant]
enabled = true
[desks.d07]
[audio]
channels = 2
"""
USERS = {"lyon-d07": "desk-pw", "ops": "ops-pw"}
BASE = "deskcue/lyon/d07"


def retire_block() -> str:
    section = GUIDE[GUIDE.index("### Retire a desk"):GUIDE.index("## Where things are")]
    (block,) = re.findall(r"```sh\n(.*?)```", section, re.S)
    return block


def retained_topics() -> dict[str, str]:
    """Every topic a desk of SITE keeps retained, with a payload as the desk sends it: its
    status and info, each state, and each Home Assistant discovery config."""
    desk = Settings.model_validate({
        "device": {"site": "lyon", "desk": "d07"}, "audio": {"channels": 2},
        "mqtt": {"publish_laughter": True, "home_assistant": {"enabled": True}}})
    topics = {f"{BASE}/status": "offline", f"{BASE}/info": json.dumps(EXAMPLES["info"].to_json())}
    topics.update({f"{BASE}/state/{name}": "OFF" for name in STATE_NAMES})
    topics.update({t: p for t, p in discovery_messages(desk) if p})
    return topics


@pytest.mark.skipif(not (shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub")),
                    reason="mosquitto-clients is not installed")
def test_the_retire_commands_clear_every_retained_message_of_the_desk(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker", users=dict(USERS),
                    acl=site_acl(tmp_path, SITE, "ops")).start()
    try:
        desk = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        desk.username_pw_set("lyon-d07", USERS["lyon-d07"])
        desk.connect(broker.host, broker.port)
        desk.loop_start()
        topics = retained_topics()
        assert len(topics) > len(STATE_NAMES) + 2  # Home Assistant's among them
        for topic, payload in topics.items():
            desk.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
        seen = Subscriber(broker, "#", username="ops", password=USERS["ops"],
                          check_schema=False).connect()
        wait_until(lambda: {m.topic for m in seen.messages} == set(topics))
        seen.close()

        script = "\n".join(line for line in retire_block().splitlines()
                           if not line.lstrip().startswith("sudo "))
        script = script.replace("-h broker.lyon", f"-h {broker.host} -p {broker.port}")
        script = script.replace("THE-PASSWORD", USERS["lyon-d07"])
        run = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path)
        assert run.returncode in (0, 27), run.stderr  # 27: mosquitto_sub's -W timeout

        # What a supervisor subscribing now gets: retained messages come at the subscription,
        # before a message published after it, so once that one is in, nothing else is left.
        after = Subscriber(broker, "#", username="ops", password=USERS["ops"],
                           check_schema=False).connect()
        desk.publish(f"{BASE}/selftest", "marker", qos=1).wait_for_publish(5)
        wait_until(lambda: any(m.topic == f"{BASE}/selftest" for m in after.messages))
        assert [m.topic for m in after.messages] == [f"{BASE}/selftest"]
        after.close()
        desk.loop_stop()
        desk.disconnect()
    finally:
        broker.stop()
