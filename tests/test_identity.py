"""Two boxes with one identity (a config copied from one desk to the next) notice it, say so and
back off instead of taking over each other's session without end. Real mosquitto, mock pins,
a WAV recording as the audio."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from broker import Broker, Subscriber, settings_for
from tone import tone_wav
from waiting import wait_until

from firmware.appliance.assemble import build_appliance
from firmware.appliance.worker import Appliance
from firmware.config.settings import Settings
from firmware.contract.desk import ChannelMap, Info
from firmware.link.mqtt_client import MqttLink

BASE = "deskcue/lyon/d07"
BACKOFF_MIN_S = 2.0
BACKOFF_MAX_S = 4.0
WINDOW_S = 8.0  # longer than any connection can last while the other box is still there




Running = list[tuple[Appliance, threading.Event, threading.Thread]]


@pytest.fixture
def running() -> Iterator[Running]:
    apps: Running = []
    yield apps
    for _app, stop, thread in apps:
        stop.set()
        thread.join(30)


def box(tmp: Path, broker: Broker, name: str, audio: Path, running: Running) -> Appliance:
    """One box configured as lyon/d07 (the same config on every box), its own state dir."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    settings = Settings.model_validate({
        "device": {"site": "lyon", "desk": "d07", "state_dir": str(tmp / name / "state"),
                   "runtime_dir": str(tmp / name / "run")},
        "audio": {"channels": 1},
        "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1,
                 "reconnect_max_s": 0.5, "keepalive_s": 5,
                 "identity_window_s": WINDOW_S, "identity_backoff_min_s": BACKOFF_MIN_S,
                 "identity_backoff_max_s": BACKOFF_MAX_S},
    })
    app = build_appliance(settings, recording=audio, factory=MockFactory(pin_class=MockPWMPin))
    stop = threading.Event()
    thread = threading.Thread(target=app.run, args=(stop,), daemon=True)
    thread.start()
    running.append((app, stop, thread))
    return app


def conflicts(app: Appliance) -> int:
    link: Any = app.link
    return int(link.stats()["identity_conflicts"])


def test_two_boxes_with_one_desk_id_report_it_and_stop_flapping(tmp_path, broker, running):
    audio = tone_wav(tmp_path / "call.wav", 600.0)
    with Subscriber(broker, f"{BASE}/#") as sub:
        a = box(tmp_path, broker, "a", audio, running)
        b = box(tmp_path, broker, "b", audio, running)

        # Both notice: the identity fault, the light's fault pattern, the status line.
        wait_until(lambda: "identity" in a.faults and "identity" in b.faults)
        for app in (a, b):
            assert "another device" in app.faults["identity"]
            wait_until(lambda app=app: app.status().display == "fault")
            assert "identity" in (app.status().fault or "")

        # ... and the supervisor hears it from each box (its own boot id), on its events topic.
        def raised_by() -> set[str]:
            return {e["boot_id"] for e in sub.events() if e["type"] == "fault"
                    and e["data"]["kind"] == "identity" and e["data"]["active"]}

        boots = {a.stamper.boot_id, b.stamper.boot_id}
        wait_until(lambda: raised_by() >= boots)

        # They back off instead of flapping: over the next two conflicts of each box, every
        # takeover (each one a will: `offline`) costs a growing wait; without the backoff the
        # two take over each other every reconnect_min_s..reconnect_max_s.
        def offline() -> int:
            return sum(1 for m in sub.on("status") if m.payload == b"offline")

        c0, t0, off0 = (conflicts(a), conflicts(b)), time.monotonic(), offline()
        wait_until(lambda: conflicts(a) >= c0[0] + 2 and conflicts(b) >= c0[1] + 2)
        elapsed, takeovers = time.monotonic() - t0, offline() - off0
        renewed = conflicts(a) - c0[0] + conflicts(b) - c0[1]
        # a conflict costs at most two takeovers: the returning box's, and the other's reply
        assert takeovers <= 2 * renewed + 2, (takeovers, renewed)
        # each box waited out at least one whole backoff between its two conflicts, so the
        # takeovers come at most about one a second (flapping: several a second)
        assert elapsed >= BACKOFF_MIN_S, elapsed
        assert takeovers / elapsed <= 1.5, (takeovers, elapsed)

        # The second box is unplugged: the first one keeps its identity, the fault clears
        # and the supervisor hears that too.
        _, stop_b, thread_b = running[1]
        stop_b.set()
        thread_b.join(30)
        wait_until(lambda: "identity" not in a.faults)
        wait_until(lambda: any(e["type"] == "fault" and e["data"]["kind"] == "identity"
                               and not e["data"]["active"] and e["boot_id"] == a.stamper.boot_id
                               for e in sub.events()))
        assert a.link is not None and a.link.connected  # type: ignore[attr-defined]


def info(boot_id: str) -> Info:
    return Info(firmware="test", config_hash="0" * 8, boot_id=boot_id, audio_device=None,
                channel_map=ChannelMap(agent="mono", caller="none"), config_apply=None)


def test_another_boot_id_in_the_desks_own_info_is_a_conflict(tmp_path, broker):
    """Two boxes with distinct client ids but one desk id: each sees the other's ``info``."""
    links = [MqttLink(settings_for(broker, client_id=f"box-{n}", identity_window_s=WINDOW_S,
                                   identity_backoff_min_s=BACKOFF_MIN_S,
                                   identity_backoff_max_s=BACKOFF_MAX_S),
                      site="lyon", desk="d07", state_dir=tmp_path / f"box{n}")
             for n in (1, 2)]
    try:
        for n, link in enumerate(links):
            link.set_info(info(f"{n}" * 32))
            link.start()
            wait_until(lambda link=link: link.commands_ready)
        wait_until(lambda: all(link.identity_conflict for link in links))
        assert all("publishes this desk's info" in (link.identity_conflict or "")
                   for link in links)
    finally:
        for link in links:
            link.stop(drain_s=0.0)


def test_a_desk_restarting_is_not_a_conflict(tmp_path, broker):
    """A new boot finds its previous boot's info retained: that is no other device."""
    for boot in ("1" * 32, "2" * 32):
        link = MqttLink(settings_for(broker, identity_window_s=WINDOW_S), site="lyon",
                        desk="d07", state_dir=tmp_path / "state")
        link.set_info(info(boot))
        link.start()
        with Subscriber(broker, f"{BASE}/info") as sub:
            wait_until(lambda boot=boot: any(m.json()["boot_id"] == boot
                                             for m in sub.on("info")))
            link.set_info(info(boot).model_copy(update={"audio_device": "again"}))
            wait_until(lambda: any(m.json()["audio_device"] == "again" for m in sub.on("info")))
            assert link.identity_conflict is None and link.connected
        link.stop(drain_s=0.0)
