"""What the agent at the desk sees and feels: the whole desk on real parts (a recording played
in real time, gpiozero mock pins, the snooze button pressed on its pin; no broker)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from synth_voice import level_steps, utterance
from waiting import HANG_S, wait_until
from wav_file import write_pcm16

from firmware.appliance.assemble import build_appliance
from firmware.appliance.worker import Appliance
from firmware.config.settings import Settings

RATE = 16000


def write_wav(path: Path, x: np.ndarray) -> Path:
    """``x`` (mono, float, full scale 1.0) as a 16 kHz 16-bit WAV at ``path``."""
    return write_pcm16(path, np.clip(x, -1.0, 1.0) * 32767, RATE)


def raised_call(path: Path, calm_s: float, raised_s: float, after_s: float) -> Path:
    """Synthetic speech at -26 dBFS, ``calm_s`` s of it, then ``raised_s`` s 12 dB louder
    (one raised passage), then ``after_s`` s calm again."""
    total = calm_s + raised_s + after_s
    speech = utterance(total, level_dbfs=-26.0, seed=3).audio
    return write_wav(path, level_steps(speech, [(calm_s, 12.0), (calm_s + raised_s, 0.0)]))


def shouted_call(path: Path) -> Path:
    """8 s of calm speech (120 Hz, -26 dBFS), 10 s shouted (12 dB louder, 5 semitones
    higher: both the raised- and the tense-voice cue fire), 4 s calm again."""
    return write_wav(path, np.concatenate([
        utterance(8.0, level_dbfs=-26.0, seed=3).audio,
        utterance(10.0, f0_base_hz=160.0, level_dbfs=-14.0, seed=4).audio,
        utterance(4.0, level_dbfs=-26.0, seed=5).audio]))


@contextlib.contextmanager
def running_desk(tmp: Path, wav: Path
                 ) -> Iterator[tuple[Appliance, Any, threading.Thread, list[dict[str, Any]]]]:
    """A desk that learns its usual voice from 5 s of speech, playing ``wav`` in real time;
    yields it, its mock pin factory, its worker (which ends with the recording) and the
    events it publishes."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    settings = Settings.model_validate({
        "device": {"site": "s", "desk": "d", "state_dir": str(tmp / "state"),
                   "runtime_dir": str(tmp / "run")},
        "audio": {"channels": 1}, "mqtt": {"enabled": False},
        "baseline": {"warmup_speech_s": 5.0}})
    factory = MockFactory(pin_class=MockPWMPin)
    app = build_appliance(settings, recording=wav, factory=factory)
    events: list[dict[str, Any]] = []
    app.on_event = events.append
    stop = threading.Event()
    worker = threading.Thread(target=app.run, args=(stop,), daemon=True)
    worker.start()
    try:
        yield app, factory, worker, events
    finally:
        stop.set()
        worker.join(30)


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[Appliance, Any, threading.Thread]]:
    """A desk hearing 8 s of calm speech, then 30 s of it 12 dB louder (a long raised
    passage)."""
    with running_desk(tmp_path, raised_call(tmp_path / "call.wav", 8.0, 30.0, 5.0)) as d:
        yield d[0], d[1], d[2]


def light(app: Appliance, factory: Any) -> tuple[float, float, float]:
    """The RGB LED's three pins as driven now (0-1)."""
    s = app.settings.indicator
    return tuple(float(factory.pin(p).state)  # type: ignore[return-value]
                 for p in (s.red_pin, s.green_pin, s.blue_pin))


def test_a_snooze_pressed_during_a_cue_silences_its_light_at_once(
        desk: tuple[Appliance, Any, threading.Thread]) -> None:
    """The agent presses snooze because the amber light is on: it turns steady blue within
    a fraction of a second, not after the raised passage has ended."""
    app, factory, worker = desk
    wait_until(lambda: app.indicator is not None and app.indicator.current == "raised_voice",
               alive=worker.is_alive)
    assert app.pipeline is not None
    cue_at = app.pipeline.policy.now_s
    button = factory.pin(app.settings.indicator.button_pin)
    button.drive_low()
    button.drive_high()  # a press, released well before the 2 s hold that cancels
    wait_until(lambda: app.pipeline is not None and app.pipeline.policy.snoozed)
    # the passage goes on for another ~25 s: the light must not wait for it (judged on the
    # stream's clock below, not the wall's: a busy machine may take a while either way)
    wait_until(lambda: app.indicator is not None and app.indicator.current == "snoozed",
               alive=worker.is_alive)
    assert app.pipeline.policy.now_s < cue_at + 5.0
    red, green, blue = light(app, factory)
    assert red == 0.0 and green == 0.0 and blue > 0.0


def buzzes(factory: Any, pin: int) -> int:
    """How many times the motor pin went from still to driven."""
    values = [float(st.state) for st in factory.pin(pin).states]
    return sum(1 for a, b in zip(values, values[1:], strict=False) if a == 0.0 and b > 0.0)


def test_one_shouted_passage_buzzes_once(tmp_path: Path) -> None:
    """Louder and higher at once starts both the raised- and the tense-voice cue, a second
    apart: the agent felt two short buzzes, then a long one, for one passage (the light,
    amber throughout, said nothing new)."""
    with running_desk(tmp_path, shouted_call(tmp_path / "call.wav")) as d:
        app, factory, worker, events = d
        worker.join(22.0 + HANG_S)  # the recording's end (22 s, in real time) ends it
        assert not worker.is_alive()
    started = [e["type"] for e in events if e["type"].endswith(".started")
               and not e["type"].startswith("call.")]
    # both still measured and published for the supervisor
    assert started == ["raised_voice.started", "tense_voice.started"]
    assert buzzes(factory, app.settings.indicator.motor_pin) == 2  # the raised pattern's two
