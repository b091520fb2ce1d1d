"""What a support engineer greps the journal for says what happened, what it costs and what
to do: audio blocks the analysis could not keep up with (a desk that misses cues because its
CPU throttles), and state files the card no longer takes."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from tone import tone_wav
from waiting import wait_until

from firmware.appliance.assemble import build_appliance
from firmware.config.settings import Settings


def test_dropped_input_blocks_are_logged_once_per_rise(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    settings = Settings.model_validate({
        "device": {"site": "lyon", "desk": "d07", "state_dir": str(tmp_path / "state"),
                   "runtime_dir": str(tmp_path / "run")},
        "audio": {"channels": 1},
        "mqtt": {"enabled": False, "telemetry_interval_s": 1.0},
    })
    app = build_appliance(settings, recording=tone_wav(tmp_path / "call.wav", 60.0),
                          factory=MockFactory(pin_class=MockPWMPin), link=None)
    stop = threading.Event()
    thread = threading.Thread(target=app.run, args=(stop,), daemon=True)
    caplog.set_level(logging.INFO)
    thread.start()
    try:
        source = wait_until(lambda: app.source)
        source.overflows = 7  # as PortAudio's callback counts them: the queue was full

        def said() -> list[str]:
            return [r.getMessage() for r in caplog.records
                    if r.levelno == logging.WARNING and "dropped" in r.getMessage()]

        lines = wait_until(said)
        assert "7 audio block(s)" in lines[0] and source.name in lines[0], lines
        assert "cues may be missed" in lines[0] and "cpu" in lines[0].lower(), lines
        source.overflows = 9  # two more, within the minute: kept for the next line
        app.overflow_log_every_s = 0.0
        app._overflows_next_log = 0.0  # the minute is over: the next line says the two only
        lines = wait_until(lambda: len(said()) >= 2 and said())
        assert "2 audio block(s)" in lines[1] and len(lines) == 2, lines
    finally:
        stop.set()
        thread.join(30)


def test_a_state_file_the_card_cannot_take_is_logged_with_what_a_restart_loses(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`cannot save the usual-voice baseline to X: [Errno 21] ...` said what failed, not what
    it costs (a restart learns the voice afresh) nor what to do (the card)."""
    from firmware.appliance.worker import BASELINE_FILE, Appliance
    from firmware.errors import AudioError

    state = tmp_path / "state"
    settings = Settings.model_validate({
        "device": {"site": "lyon", "desk": "d07", "state_dir": str(state),
                   "runtime_dir": str(tmp_path / "run")},
        "mqtt": {"enabled": False},
    })

    def no_audio() -> None:
        raise AudioError("none in this test")

    app = Appliance(settings, open_source=no_audio, persist=True)
    (state / BASELINE_FILE).mkdir(parents=True)  # a path the desk cannot replace or remove
    with caplog.at_level(logging.WARNING):
        app.save_usual()
    line = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(state / BASELINE_FILE) in line and "restart" in line, line
    assert f"df -h {state}" in line, line
