"""A test recording on disk: 16-bit PCM samples as a WAV file, the format every desk reads."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def write_pcm16(path: Path, pcm: np.ndarray, rate: int = 16000) -> Path:
    """Write ``pcm`` at ``rate`` Hz to ``path`` as a 16-bit PCM WAV; returns ``path``.

    ``pcm`` is (n,) for mono or (n, channels), already in 16-bit units (full scale 32767);
    floats are truncated towards zero as ``astype`` does, so each caller keeps its own
    scaling and rounding.
    """
    data = np.asarray(pcm).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if data.ndim == 1 else data.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return path
