"""Loaders for the laughter benchmark: real recordings from ``../shared/data``, at 16 kHz.

Evaluation data only: files are read in place and never copied into the repository; joined
test streams are built in memory by the benchmark.
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

RATE_HZ = 16_000
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEEPLY = DATA / "laughter" / "deeply"
FDA = DATA / "pitch" / "fda"
RAVDESS = DATA / "voice-level" / "ravdess"
FDA_SEX = {"rl": "male", "sb": "female"}  # FDA speakers (data README)


@dataclass(frozen=True)
class Clip:
    """One recording at 16 kHz: ``audio`` float64 in [-1, 1), shape ``(n_samples,)``."""

    name: str
    label: str  # deeply class ("laughing", "coughing", ...) or "speech"
    speaker: str
    audio: np.ndarray
    sex: str = ""  # "female" | "male" (labels; FDA: rl male, sb female)

    @property
    def seconds(self) -> float:
        return self.audio.size / RATE_HZ


def read_16k(path: Path) -> np.ndarray:
    """Read a 16-bit PCM WAV (mono or first channel) and resample it to 16 kHz (float64)."""
    with warnings.catch_warnings():  # some files carry LIST chunks scipy does not parse
        warnings.simplefilter("ignore", wavfile.WavFileWarning)
        rate, data = wavfile.read(path)
    if data.ndim > 1:
        data = data[:, 0]
    if data.dtype != np.int16:
        raise ValueError(f"{path}: expected 16-bit PCM, got {data.dtype}")
    x = data.astype(np.float64) / 32768.0
    if rate != RATE_HZ:
        f = Fraction(RATE_HZ, rate)
        x = resample_poly(x, f.numerator, f.denominator)
    return x


def load_deeply() -> list[Clip]:
    """Deeply nonverbal vocalisations: one class per clip (labels.csv)."""
    with open(DEEPLY / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [
        Clip(r["file"], r["class_folder"], r["speaker"], read_16k(DEEPLY / r["file"]), r["sex"])
        for r in rows
    ]


def load_fda() -> list[Clip]:
    """FDA read sentences (speakers rl, sb), 20 kHz resampled to 16 kHz."""
    return [
        Clip(p.name, "speech", p.name[:2], read_16k(p), FDA_SEX[p.name[:2]])
        for p in sorted(FDA.glob("*.wav"))
    ]


def load_ravdess_neutral() -> list[Clip]:
    """RAVDESS actors 1-4, neutral statements only, 48 kHz resampled to 16 kHz."""
    with open(RAVDESS / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["emotion"] == "neutral"]
    return [
        Clip(r["file"], "speech", f"actor{r['actor']}", read_16k(RAVDESS / "audio" / r["file"]),
             r["sex"])
        for r in rows
    ]
