"""A small synthesiser of voiced sound for demo recordings and tests (16 kHz, float64).

Vowels are a harmonic glottal source (-6 dB/octave) through a cascade of formant resonators;
a laugh is a train of "ha" calls: a breathy /h/ then a short voiced vowel with falling F0.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

FS = 16_000
VOWELS = {
    "a": (800, 1200, 2500),
    "e": (500, 1900, 2600),
    "i": (300, 2300, 3000),
    "o": (500, 900, 2500),
    "u": (350, 800, 2300),
}


# ----------------------------------------------------------------------------- synthesis
def formants(x: np.ndarray, freqs: tuple[float, ...],
             bws: tuple[float, ...] = (90.0, 110.0, 150.0)) -> np.ndarray:
    """Cascade of two-pole resonators (a vowel's formants)."""
    y = x
    for f, bw in zip(freqs, bws, strict=False):
        r = np.exp(-np.pi * bw / FS)
        y = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / FS), r * r], y)
    return y


def glottal(f0: np.ndarray) -> np.ndarray:
    """Harmonic source with a -6 dB/octave roll-off following the F0 track ``f0`` (Hz)."""
    phase = 2 * np.pi * np.cumsum(f0) / FS
    n_harm = int(4000 / f0.min())
    h = np.arange(1, n_harm + 1)[:, None]
    amp = np.where(h * f0[None, :] < 4000, 1.0 / h, 0.0)
    return np.sum(amp * np.sin(h * phase[None, :]), axis=0)


def ramp_env(n: int, attack_s: float, release_s: float) -> np.ndarray:
    w = np.ones(n)
    a, r = int(attack_s * FS), int(release_s * FS)
    if a:
        w[:a] = np.linspace(0, 1, a)
    if r:
        w[-r:] = np.minimum(w[-r:], np.linspace(1, 0, r))
    return w


def laugh(
    n_calls: int = 6,
    rate_hz: float = 5.0,
    f0_hz: float = 320.0,
    vowel: str = "a",
    seed: int = 0,
    peak: float = 0.3,
) -> np.ndarray:
    """A "ha-ha-ha" train: each call a 35 ms /h/ then a 90 ms voiced vowel, F0 falling 15 %,
    level falling 0.7 dB per call, call-to-call timing jitter 5 %."""
    rng = np.random.default_rng(seed)
    calls = []
    for c in range(n_calls):
        n = int(FS / rate_hz * (1 + 0.05 * rng.standard_normal()))
        na, nv = int(0.035 * FS), int(0.09 * FS)
        seg = 0.005 * formants(rng.standard_normal(n), VOWELS[vowel])  # breath between calls
        asp = 0.1 * formants(rng.standard_normal(na), VOWELS[vowel]) * ramp_env(na, 0.01, 0.005)
        f0 = np.linspace(f0_hz, 0.85 * f0_hz, nv) * (1 - 0.03 * c)
        vo = formants(glottal(f0), VOWELS[vowel])
        vo = vo / np.max(np.abs(vo)) * ramp_env(nv, 0.01, 0.04)
        vo += 0.05 * formants(rng.standard_normal(nv), VOWELS[vowel]) * ramp_env(nv, 0.01, 0.04)
        seg[:na] += asp
        seg[na : na + nv] += vo
        calls.append(seg * 0.92**c)
    x = np.concatenate(calls)
    return peak * x / np.max(np.abs(x))
