"""`deskcue config ack` on a desk whose appliance runs: the red blink of a refused config ends
when the tech acknowledges it (docs/field-tech.md), not at the next restart."""

from __future__ import annotations

import json
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from broker import HANG_S, wait_until

from firmware.appliance.assemble import build_appliance
from firmware.cli.main import main as deskcue
from firmware.config.load import load_settings
from firmware.platform.control_socket import appliance_state

FAULT = {"source": "card", "message": "card config deskcue.toml refused: 1 problem(s)",
         "at": "2026-01-01T00:00:00Z", "clock_synced": True, "problems": []}


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A desk (mock pins, no broker) with a refused card config pending, playing 120 s of
    quiet noise in real time; its config directory and runtime directory."""
    etc, state, run = tmp_path / "etc", tmp_path / "state", tmp_path / "run"
    etc.mkdir()
    state.mkdir()
    (etc / "deskcue.toml").write_text(
        f'[device]\nstate_dir = "{state}"\nruntime_dir = "{run}"\n[mqtt]\nenabled = false\n')
    (state / "config-fault.json").write_text(json.dumps(FAULT))
    wav = tmp_path / "quiet.wav"
    x = (np.random.default_rng(0).standard_normal(16000 * 120) * 0.001 * 32767).astype("<i2")
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(x.tobytes())
    app = build_appliance(load_settings(etc / "deskcue.toml"), recording=wav, pins="mock",
                          config_path=etc / "deskcue.toml")
    stop = threading.Event()
    th = threading.Thread(target=app.run, args=(stop,), daemon=True)
    th.start()
    try:
        wait_until(lambda: (appliance_state(run)[1] or {}).get("stream_s", 0) > 0,
                   alive=th.is_alive)
        yield etc, run
    finally:
        stop.set()
        th.join(HANG_S)


def live_status(run: Path) -> dict:
    status = appliance_state(run, timeout=HANG_S)[1]
    assert status is not None
    return status


def test_ack_ends_the_fault_the_running_appliance_shows(
    desk: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The record was removed and "config fault cleared" printed, while the desk went on
    blinking red with the fault in `deskcue status` until someone restarted it."""
    etc, run = desk
    before = live_status(run)
    assert before["display"] == "fault" and FAULT["message"] in before["fault"]
    assert deskcue(["config", "ack", "--etc", str(etc)]) == 0
    assert capsys.readouterr().out == ("config fault cleared\n"
                                       "the desk's light no longer shows it\n")
    after = live_status(run)
    assert after["fault"] is None and after["display"] != "fault"
