"""What the desk keeps about an agent, and that forgetting it forgets it on the card too.

The whole desk on real parts: a recording played in real time, gpiozero mock pins, the MQTT
link to a real mosquitto and a supervisor subscribed to the desk's subtree.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from broker import Broker, Subscriber
from tone import tone_wav
from waiting import wait_until

from firmware.appliance.assemble import build_appliance
from firmware.appliance.pipeline import make_usual_voice
from firmware.appliance.worker import BASELINE_FILE, SNOOZE_FILE, Appliance
from firmware.cli.main import main as deskcue
from firmware.config.settings import Settings
from firmware.errors import AudioError

BASE = "deskcue/lyon/d07"


def desk_settings(tmp: Path, broker: Broker, **baseline: Any) -> Settings:
    return Settings.model_validate({
        "device": {"site": "lyon", "desk": "d07", "state_dir": str(tmp / "state"),
                   "runtime_dir": str(tmp / "run")},
        "audio": {"channels": 1}, "baseline": baseline,
        "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1,
                 "reconnect_max_s": 0.5}})


def previous_agents_voice(state_dir: Path, usual_lufs: float = -27.0) -> dict[str, Any]:
    """A learned usual voice (30 s of speech at ``usual_lufs``), saved in ``state_dir`` as a
    desk saves it: what the agent who sat here before left on the card."""
    usual = make_usual_voice(Settings())
    for _ in range(600):
        usual.offer(np.full(5, usual_lufs), np.ones(5, dtype=bool))
    data = usual.to_dict()
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / BASELINE_FILE).write_text(json.dumps(data))
    return data


@pytest.fixture
def running(tmp_path: Path, broker: Broker, request: pytest.FixtureRequest
            ) -> Iterator[Appliance]:
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    settings: Settings = request.param(tmp_path, broker)
    app = build_appliance(settings, recording=tone_wav(tmp_path / "call.wav", 300.0),
                          factory=MockFactory(pin_class=MockPWMPin))
    stop = threading.Event()
    worker = threading.Thread(target=app.run, args=(stop,), daemon=True)
    worker.start()
    try:
        yield app
    finally:
        stop.set()
        worker.join(30)


def _previous_agent_no_periodic_save(tmp: Path, broker: Broker) -> Settings:
    previous_agents_voice(tmp / "state")
    # the periodic save an hour away: only what recalibrate itself does can remove the file
    return desk_settings(tmp, broker, save_interval_s=3600.0)


@pytest.mark.parametrize("running", [_previous_agent_no_periodic_save], indirect=True)
def test_recalibrate_forgets_the_usual_voice_on_the_card_at_once(
        tmp_path: Path, broker: Broker, running: Appliance) -> None:
    """A desk changes hands: the supervisor (or Home Assistant's button) recalibrates it. The
    previous agent's usual voice stayed in ``baseline.json`` until the next periodic save (a
    minute by default, up to an hour): a power cut in between, and the new agent's desk came
    back with the previous agent's voice, cueing the new agent against it."""
    state = tmp_path / "state"
    with Subscriber(broker, f"{BASE}/#") as sub:
        wait_until(lambda: running.pipeline is not None and sub.on("status"))
        assert running.usual.learned  # the previous agent's voice was restored
        sub.client.publish(f"{BASE}/cmd/recalibrate", json.dumps({"txid": "r1"}), qos=1)
        (result,) = wait_until(lambda: sub.on("cmd/recalibrate/result"))
        assert result.json()["ok"]
        assert not (state / BASELINE_FILE).exists(), (
            "the previous agent's usual voice is still on the card after recalibrate")

    def no_source() -> Any:
        raise AudioError("no audio in this test")

    # what a restart after a power cut would start from
    after = Appliance(desk_settings(tmp_path, broker), open_source=no_source)
    assert not after.usual.learned


def _desk(tmp: Path, broker: Broker) -> Settings:
    return desk_settings(tmp, broker)


@pytest.mark.parametrize("running", [_desk], indirect=True)
def test_a_delivered_event_leaves_no_copy_on_the_card(
        tmp_path: Path, broker: Broker, running: Appliance) -> None:
    """The outbox keeps an event until the broker has it. SQLite deleted the row but left
    its bytes in the database's free pages and in its write-ahead log, where `strings
    outbox.db-wal` read every event the desk ever sent (cue measurements, the agent's usual
    pitch) long after delivery: on a card that leaves the site, or for whoever reads it."""
    with Subscriber(broker, f"{BASE}/#") as sub:
        wait_until(lambda: running.pipeline is not None and sub.on("status"))
        for i, (name, args) in enumerate([("snooze", {"minutes": 5}), ("recalibrate", {}),
                                          ("snooze", {"minutes": 0})]):
            sub.client.publish(f"{BASE}/cmd/{name}", json.dumps({"txid": f"t{i}", **args}),
                               qos=1)
        events = wait_until(lambda: len(sub.events()) >= 3 and sub.events())
    ids = [e["id"].encode() for e in events]
    wait_until(lambda: (depth := running.status().outbox) is not None and depth.depth == 0)
    state = tmp_path / "state"
    for f in state.iterdir():
        if f.is_file():
            raw = f.read_bytes()
            assert not [i for i in ids if i in raw], f"delivered events still in {f.name}"


@pytest.mark.parametrize("running", [_previous_agent_no_periodic_save], indirect=True)
def test_deskcue_recalibrate_at_the_desk_forgets_the_usual_voice(
        tmp_path: Path, broker: Broker, running: Appliance,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A tech handing a desk to a new agent may have no supervisor's broker account: the
    desk itself forgets the previous agent's usual voice, in memory and on the card."""
    with Subscriber(broker, f"{BASE}/#") as sub:
        wait_until(lambda: running.pipeline is not None and sub.on("status"))
        assert running.usual.learned
        capsys.readouterr()
        assert deskcue(["recalibrate", "--runtime-dir", str(tmp_path / "run")]) == 0
        assert "forgotten" in capsys.readouterr().out
        assert not running.usual.learned
        assert not (tmp_path / "state" / BASELINE_FILE).exists()
        wait_until(lambda: [e for e in sub.events() if e["type"] == "recalibrate"])


def test_deskcue_recalibrate_with_the_desk_stopped_removes_the_saved_voice(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    previous_agents_voice(state)
    args = ["recalibrate", "--state-dir", str(state), "--runtime-dir", str(tmp_path / "run")]
    assert deskcue(args) == 0
    assert f"removed {state / BASELINE_FILE}" in capsys.readouterr().out
    assert not (state / BASELINE_FILE).exists()
    assert deskcue(args) == 0  # nothing left to forget is no error
    assert "no usual voice kept" in capsys.readouterr().out


def _desk_with_a_snooze_from_an_earlier_boot(tmp: Path, broker: Broker) -> Settings:
    state = tmp / "state"
    state.mkdir(parents=True, exist_ok=True)
    (state / SNOOZE_FILE).write_text(json.dumps({"boot_id": "an-earlier-boot",
                                                 "until_mono": 1e9}))
    return desk_settings(tmp, broker)


@pytest.mark.parametrize("running", [_desk_with_a_snooze_from_an_earlier_boot], indirect=True)
def test_a_snooze_that_ended_is_not_kept_on_the_card(
        tmp_path: Path, running: Appliance, capsys: pytest.CaptureFixture[str]) -> None:
    """``snooze.json`` is kept while a snooze runs, so that a restart does not end it early;
    "none kept when not snoozed". But it stayed after the snooze ran out, and one from an
    earlier boot (ended by the reboot) stayed for good: its time stamp said when the agent
    last snoozed, for anyone reading the card."""
    snooze = tmp_path / "state" / SNOOZE_FILE
    wait_until(lambda: running.pipeline is not None)
    status = ["status", "--runtime-dir", str(tmp_path / "run"), "--state-dir",
              str(tmp_path / "state"), "--json"]

    def local_status() -> dict[str, Any]:
        capsys.readouterr()
        deskcue(status)
        got = json.loads(capsys.readouterr().out)["appliance"]["status"]
        return got if isinstance(got, dict) else {}

    wait_until(lambda: "snoozed" in local_status())
    # the state files go to the card from a thread of their own: waited for, not assumed
    wait_until(lambda: not snooze.exists())  # a snooze ended by a reboot leaves the card
    capsys.readouterr()
    assert deskcue(["snooze", "--runtime-dir", str(tmp_path / "run"), "--minutes", "0.1"]) == 0
    wait_until(snooze.exists)  # kept while it runs (6 s of audio)
    wait_until(lambda: local_status().get("snoozed") is False)
    wait_until(lambda: not snooze.exists())  # and gone once it ran out
