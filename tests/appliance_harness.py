"""Runs the whole appliance in-process on real parts: a recording fed through ALSA's file plugin
into PyAudio, gpiozero mock pins, and the MQTT link to a real mosquitto.

The file-plugin device is not paced (it delivers as fast as it is read), so timing is judged
the way the appliance itself sees it: the stream position the worker had been handed when a
pin changed, plus the wall-clock delay from the worker taking that block to the pin. The
harness learns both by watching the audio source it hands the appliance (`TimedSource`), not
from bookkeeping inside the appliance.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from alsa_tap import DEVICE_NAME, AlsaTap
from scipy.signal import resample_poly
from waiting import HANG_S, wait_until

from firmware.appliance.assemble import build_appliance
from firmware.appliance.worker import Appliance
from firmware.config.settings import Settings


def appliance_settings(tmp: Path, broker: Any, *, rate: int = 48000, **over: Any) -> Settings:
    """Settings for a desk on the ALSA tap and ``broker`` with state under ``tmp``."""
    data: dict[str, Any] = {
        "device": {"site": "test", "desk": "d1", "state_dir": str(tmp / "state"),
                   "runtime_dir": str(tmp / "run")},
        "audio": {"device": DEVICE_NAME, "channels": 2, "rate_hz": rate, "queue_s": 600.0},
        "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1,
                 "reconnect_max_s": 0.5, "keepalive_s": 5},
    }
    for section, values in over.items():
        data.setdefault(section, {}).update(values)
    return Settings.model_validate(data)


class TimedSource:
    """Wraps the appliance's audio source and notes, for every block the worker reads, when it
    got it (monotonic) and the stream position (s) at the block's end."""

    def __init__(self, source: Any, delivered: list[tuple[float, float]]):
        self._source = source
        self._frames = 0
        self._delivered = delivered

    def read(self, timeout: float) -> np.ndarray | None:
        block = self._source.read(timeout)
        if block is not None:
            self._frames += block.shape[0]
            self._delivered.append((time.monotonic(), self._frames / self._source.rate))
        return block

    def __getattr__(self, name: str) -> Any:  # rate, channels, name, overflows, start, close
        return getattr(self._source, name)


@dataclass
class Run:
    app: Appliance
    factory: Any
    t_clear: float
    events: list[dict[str, Any]] = field(default_factory=list)
    delivered: list[tuple[float, float]] = field(default_factory=list)
    worker: threading.Thread | None = None  # the appliance's worker while it runs

    def pin_changes(self, pin_number: int) -> list[tuple[float, float]]:
        """(monotonic time, value) of every state the mock pin took since the start."""
        pin = self.factory.pin(pin_number)
        t = self.t_clear + np.cumsum([s.timestamp for s in pin.states])
        return [(float(ti), float(s.state)) for ti, s in zip(t, pin.states, strict=True)]

    def stream_at(self, mono: float) -> float:
        """The stream position (s) the worker had been handed by monotonic time ``mono``."""
        best = 0.0
        for t, s in self.delivered:
            if t > mono:
                break
            best = s
        return best

    def analysed_at(self, stream_s: float) -> tuple[float, float]:
        """(monotonic time the worker took it, stream position at its end) of the first block
        reaching past ``stream_s``: the block whose analysis decided what happened there."""
        for t, s in self.delivered:
            if s >= stream_s:
                return t, s
        raise AssertionError(f"stream never reached {stream_s} s")


def run_on_tap(tmp: Path, broker: Any, samples: np.ndarray, rate_in: int = 16000, *,
               rate: int = 48000, settings: Settings | None = None,
               after: float = 1.0) -> Run:
    """Play ``samples`` (frames, 2) through the tap at ``rate``, run the appliance until it has
    analysed all of it (plus ``after`` s), stop it cleanly, return what happened.

    The tap plays in real time, so the wait is the recording's length plus `HANG_S` (a hang
    guard, not a deadline: a busy machine makes the analysis late, never wrong)."""
    settings = settings or appliance_settings(tmp, broker, rate=rate)
    duration = samples.shape[0] / rate_in
    timeout = duration + after + HANG_S
    pad = np.zeros((int(rate_in * (after + 20.0)), samples.shape[1]))  # past the end: silence
    with running_on_tap(tmp, broker, np.concatenate([samples, pad]), rate_in,
                        settings=settings) as run:
        worker = run.worker
        try:
            wait_until(lambda: run.app.stream_s >= duration + after, timeout, 0.02,
                       alive=lambda: worker is not None and worker.is_alive())
        except (AssertionError, TimeoutError) as exc:
            raise AssertionError(f"analysed only {run.app.stream_s:.1f} s: {exc}") from None
    return run


@contextlib.contextmanager
def running_on_tap(tmp: Path, broker: Any, samples: np.ndarray, rate_in: int = 16000, *,
                   settings: Settings) -> Iterator[Run]:
    """Start the appliance on ``samples`` played through the tap (silence after them, for as
    long as the block runs), yield while it runs, stop it cleanly on exit."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    rate = settings.audio.rate_hz
    tap = AlsaTap(tmp)
    x = resample_poly(samples, rate, rate_in, axis=0) if rate != rate_in else samples
    tap.load(x)
    factory = MockFactory(pin_class=MockPWMPin)
    app = build_appliance(settings, factory=factory)
    run = Run(app, factory, 0.0)
    app.on_event = run.events.append
    open_source = app.open_source
    app.open_source = lambda: TimedSource(open_source(), run.delivered)
    for pin in list(factory.pins.values()):
        pin.clear_states()
    run.t_clear = time.monotonic()
    stop = threading.Event()
    worker = run.worker = threading.Thread(target=app.run, args=(stop,), daemon=True)
    worker.start()
    try:
        yield run
    finally:
        stop.set()
        worker.join(HANG_S)
        assert not worker.is_alive(), "appliance did not stop"
