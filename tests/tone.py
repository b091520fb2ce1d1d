"""A steady tone as a recording, for tests that need a desk hearing sound (not speech)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from wav_file import write_pcm16


def tone_wav(path: Path, seconds: float) -> Path:
    """A 16 kHz mono 16-bit WAV of a 200 Hz tone at -26 dBFS, ``seconds`` long, at ``path``."""
    t = np.arange(int(seconds * 16000)) / 16000
    return write_pcm16(path, 0.05 * np.sin(2 * np.pi * 200 * t) * 32767)
