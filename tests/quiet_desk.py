"""A whole desk running in this process on real parts (a recording played in real time, gpiozero
mock pins, its control socket; no broker): for tests of the commands a tech types beside it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from waiting import HANG_S, wait_until
from wav_file import write_pcm16

from firmware.appliance.assemble import build_appliance
from firmware.config.load import load_settings
from firmware.platform.control_socket import appliance_state


def quiet_wav(path: Path, seconds: float = 120.0) -> Path:
    """Mono 16 kHz noise at about -60 dBFS: long enough that the desk outlives the test."""
    x = (np.random.default_rng(0).standard_normal(int(16000 * seconds)) * 0.001 * 32767)
    return write_pcm16(path, x)


def desk_config(tmp: Path, extra: str = "") -> Path:
    """``tmp/etc/deskcue.toml`` naming state and runtime directories under ``tmp``, no MQTT."""
    etc = tmp / "etc"
    etc.mkdir(exist_ok=True)
    config = etc / "deskcue.toml"
    config.write_text(f'[device]\nstate_dir = "{tmp / "state"}"\nruntime_dir = "{tmp / "run"}"\n'
                      f"[mqtt]\nenabled = false\n{extra}")
    return config


@contextlib.contextmanager
def running_desk(config: Path, recording: Path) -> Iterator[Path]:
    """Run the appliance of ``config`` on ``recording`` until the block ends; yields its
    runtime directory once it answers with audio heard."""
    settings = load_settings(config)
    app = build_appliance(settings, recording=recording, pins="mock", config_path=config)
    stop = threading.Event()
    th = threading.Thread(target=app.run, args=(stop,), daemon=True)
    th.start()
    run = settings.device.runtime_dir
    try:
        wait_until(lambda: (appliance_state(run)[1] or {}).get("stream_s", 0) > 0,
                   alive=th.is_alive)
        yield run
    finally:
        stop.set()
        th.join(HANG_S)
