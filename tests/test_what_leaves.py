"""What leaves the desk in a whole call, as a supervisor subscribed to everything receives it.

The whole desk on real parts: the demo call (an agent, a caller who gets louder, a laugh-like
burst, a raised passage) played through the appliance, gpiozero mock pins, the MQTT link to a
real mosquitto, and a subscriber on ``#``. docs/privacy.md names these tests beside its claims.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

from broker import Broker, Subscriber
from waiting import wait_until

from firmware.appliance.assemble import build_appliance
from firmware.appliance.worker import SNOOZE_FILE
from firmware.config.settings import Settings
from firmware.platform.host import boot_id

BASE = "deskcue/lyon/d07"
# Words for feelings and states of mind, which no payload may use: the desk measures sound.
FEELINGS = re.compile(r"\b(ang(er|ry)|stress\w*|happ(y|iness)|emotion\w*|mood|calm\w*|upset|"
                      r"frustrat\w*|amused|sad(ness)?|fear\w*|aggress\w*|hostil\w*|annoy\w*|"
                      r"irritat\w*|nervous\w*|anxi\w*|joy\w*|feel\w*|sentiment)\b", re.I)


def run_call(tmp: Path, broker: Broker, wav: Path, **mqtt: Any) -> tuple[Subscriber, float]:
    """Play ``wav`` through a desk (as fast as it goes) with ``mqtt`` settings on top of the
    test's; the subscriber that heard everything, and how long the run took (s)."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    settings = Settings.model_validate({
        "device": {"site": "lyon", "desk": "d07", "state_dir": str(tmp / "state"),
                   "runtime_dir": str(tmp / "run")},
        "mqtt": {"host": broker.host, "port": broker.port, "telemetry_interval_s": 1.0,
                 **mqtt}})
    app = build_appliance(settings, recording=wav, fast=True,
                          factory=MockFactory(pin_class=MockPWMPin))
    sub = Subscriber(broker, "#").connect()
    began = time.monotonic()
    assert app.run(threading.Event()) == 0
    took = time.monotonic() - began
    wait_until(lambda: any(m.payload == b"offline" for m in sub.on("status")))
    sub.close()
    return sub, took


def numbers_in_a_row(value: Any) -> int:
    """The longest JSON array of numbers anywhere in ``value``."""
    if isinstance(value, dict):
        return max((numbers_in_a_row(v) for v in value.values()), default=0)
    if isinstance(value, list):
        own = len(value) if value and all(isinstance(v, (int, float)) for v in value) else 0
        return max([own, *(numbers_in_a_row(v) for v in value)])
    return 0


def test_a_call_publishes_measurements_not_a_recording_nor_a_track_nor_a_feeling(
        tmp_path: Path, broker: Broker, demo_wav: Path) -> None:
    """Every publishing option on (laughter, snooze, Home Assistant discovery): every message
    is on the desk's own topics or its discovery entities; none is big enough to carry audio,
    none holds a series of numbers (a pitch or level track), telemetry comes at most once a
    `telemetry_interval_s`, and no payload names a feeling."""
    sub, took = run_call(tmp_path, broker, demo_wav, publish_laughter=True,
                         publish_snooze=True, home_assistant={"enabled": True})
    types = {e["type"] for e in sub.events()}
    assert {"usual_voice_learned", "raised_voice.started", "laughter_burst",
            "call.ended"} <= types, types  # the call was heard: a real test
    for m in sub.messages:
        assert m.topic.startswith((f"{BASE}/", "homeassistant/")), m.topic
        if m.topic.startswith("homeassistant/"):
            assert "/deskcue_lyon_d07/" in m.topic, m.topic
        assert len(m.payload) < 2048, (m.topic, len(m.payload))
        text = m.payload.decode("utf-8")
        assert not FEELINGS.search(text), (m.topic, text)
        if text.startswith(("{", "[")):
            assert numbers_in_a_row(json.loads(text)) <= 2, (m.topic, text)
    assert len(sub.on("telemetry")) <= took / 1.0 + 2
    # and what stays on the card is the usual voice and the outbox, no recording
    kept = {f.name: f.stat().st_size for f in (tmp_path / "state").iterdir()}
    assert set(kept) <= {"baseline.json", "outbox.db", "outbox.db-wal", "outbox.db-shm",
                         "outbox.db.lock"}, kept
    assert sum(kept.values()) < 256 * 1024, kept  # the call's audio alone is 5 MB


def test_a_private_snooze_hides_no_loud_passage_from_the_call_summary(
        tmp_path: Path, broker: Broker, demo_wav: Path) -> None:
    """What remains inferable (docs/privacy.md): with the agent's snooze private (the
    default) and running through the whole call, no cue and no snooze is published, yet the
    call's summary still gives the loudest passage against the agent's usual voice, above the
    raised-voice threshold: a supervisor who knows no cue was cooling down can tell a cue
    was held back."""
    state = tmp_path / "state"
    state.mkdir()
    # an agent's snooze kept across a restart of the service, ten minutes left
    (state / SNOOZE_FILE).write_text(json.dumps(
        {"boot_id": boot_id(), "until_mono": time.monotonic() + 600.0}))
    sub, _ = run_call(tmp_path, broker, demo_wav)
    events = sub.events()
    assert not [e for e in events if e["data"].get("cue") or e["type"] == "snooze"], events
    assert not any(b"snooze" in m.payload for m in sub.messages)
    (ended,) = [e for e in events if e["type"] == "call.ended"]
    assert ended["data"]["cues"] == {}
    assert ended["data"]["max_level_above_usual_db"] >= Settings().cues.raised_voice.threshold_db
