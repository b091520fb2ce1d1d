"""A steady tone as a recording, for tests that need a desk hearing sound (not speech)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def tone_wav(path: Path, seconds: float) -> Path:
    """A 16 kHz mono 16-bit WAV of a 200 Hz tone at -26 dBFS, ``seconds`` long, at ``path``."""
    t = np.arange(int(seconds * 16000)) / 16000
    x = (0.05 * np.sin(2 * np.pi * 200 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(x.tobytes())
    return path
