"""A capture device made of a file: ALSA's `file` plugin replays raw PCM into PortAudio.

``pcm.deskcue_tap`` reads ``tap.raw`` (interleaved S16_LE at whatever rate and channel count
the opener asks for) through a ``null`` slave, so the real PyAudio path reads a known recording
byte for byte. The null slave is not paced: the device delivers as fast as it is read, and
silence after the end of the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

DEVICE_NAME = "deskcue_tap"


class AlsaTap:
    def __init__(self, directory: Path, *, set_env: bool = True):
        """Write the device's config in ``directory``; ``set_env`` points this process's
        ALSA at it (``config_path`` is the value, for a child process's environment)."""
        self.dir = directory
        self.raw = directory / "tap.raw"
        self.raw.write_bytes(b"")
        self.conf = directory / "asound.conf"
        self.conf.write_text(
            f'pcm.{DEVICE_NAME} {{\n  type file\n  slave.pcm "null"\n  file "/dev/null"\n'
            f'  infile "{self.raw}"\n  format "raw"\n}}\n')
        system = "/usr/share/alsa/alsa.conf"
        self.config_path = f"{system}:{self.conf}"
        if set_env:
            os.environ["ALSA_CONFIG_PATH"] = self.config_path

    def load(self, samples: np.ndarray) -> None:
        """Queue float samples (frames, channels) in [-1, 1) as the device's content."""
        pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
        self.raw.write_bytes(pcm.tobytes())
