"""What the agent at the desk sees and feels around a snooze: the whole desk on real parts (a
recording played in real time, gpiozero mock pins, the snooze button pressed on its pin, the
control socket `deskcue snooze` and `deskcue status` use; no broker)."""

from __future__ import annotations

import threading
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from broker import wait_until
from synth_voice import level_steps, utterance

from firmware.appliance.assemble import build_appliance
from firmware.appliance.worker import Appliance
from firmware.config.settings import Settings

RATE = 16000


def raised_call(path: Path, calm_s: float, raised_s: float, after_s: float) -> Path:
    """A 16 kHz mono WAV of synthetic speech at -26 dBFS, ``calm_s`` s of it, then
    ``raised_s`` s 12 dB louder (one raised passage), then ``after_s`` s calm again."""
    total = calm_s + raised_s + after_s
    speech = utterance(total, level_dbfs=-26.0, seed=3).audio
    speech = level_steps(speech, [(calm_s, 12.0), (calm_s + raised_s, 0.0)])
    x = (np.clip(speech, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(x.tobytes())
    return path


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[Appliance, Any]]:
    """A desk that learns its usual voice from 5 s of speech, then hears 8 s of calm speech
    and 30 s of it 12 dB louder (a long raised passage)."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    settings = Settings.model_validate({
        "device": {"site": "s", "desk": "d", "state_dir": str(tmp_path / "state"),
                   "runtime_dir": str(tmp_path / "run")},
        "audio": {"channels": 1}, "mqtt": {"enabled": False},
        "baseline": {"warmup_speech_s": 5.0}})
    factory = MockFactory(pin_class=MockPWMPin)
    wav = raised_call(tmp_path / "call.wav", 8.0, 30.0, 5.0)
    app = build_appliance(settings, recording=wav, factory=factory)
    stop = threading.Event()
    worker = threading.Thread(target=app.run, args=(stop,), daemon=True)
    worker.start()
    try:
        yield app, factory
    finally:
        stop.set()
        worker.join(30)


def light(app: Appliance, factory: Any) -> tuple[float, float, float]:
    """The RGB LED's three pins as driven now (0-1)."""
    s = app.settings.indicator
    return tuple(float(factory.pin(p).state)  # type: ignore[return-value]
                 for p in (s.red_pin, s.green_pin, s.blue_pin))


def test_a_snooze_pressed_during_a_cue_silences_its_light_at_once(
        desk: tuple[Appliance, Any]) -> None:
    """The agent presses snooze because the amber light is on: it turns steady blue within
    a fraction of a second, not after the raised passage has ended."""
    app, factory = desk
    alive = threading.main_thread().is_alive
    wait_until(lambda: app.indicator is not None and app.indicator.current == "raised_voice",
               alive=alive)
    assert app.pipeline is not None
    cue_at = app.pipeline.policy.now_s
    button = factory.pin(app.settings.indicator.button_pin)
    button.drive_low()
    button.drive_high()  # a press, released well before the 2 s hold that cancels
    wait_until(lambda: app.pipeline is not None and app.pipeline.policy.snoozed)
    # the passage goes on for another ~25 s: the light must not wait for it
    wait_until(lambda: app.indicator is not None and app.indicator.current == "snoozed",
               timeout=1.0)
    assert app.pipeline.policy.now_s < cue_at + 5.0
    red, green, blue = light(app, factory)
    assert red == 0.0 and green == 0.0 and blue > 0.0
