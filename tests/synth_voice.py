"""Synthetic voiced sound with an exactly known F0 contour, for tests of the analysis stages.

Everything here is deterministic (seeded), mono float64 at ``rate`` Hz (default 16 000, the
analysis rate) and follows the signal conventions of ``docs/conventions.md``.

Building blocks
---------------
*F0 contours* are per-sample arrays of F0 in Hz, 0.0 where unvoiced; build them with
:func:`constant`, :func:`glide`, :func:`vibrato`, :func:`silence` and join them with
:func:`concat` (a jump is two constants joined). :func:`jitter` perturbs a contour; the
perturbed contour is the new truth.

:func:`voice` renders a contour by additive synthesis: harmonic ``h`` of the running phase
``2 pi cumsum(f0) / rate`` with amplitude from a glottal source slope (``tilt_db_per_octave``)
times a vowel's formant envelope evaluated at ``h * f0``. The F0 is therefore exact at every
sample, harmonics stop below the Nyquist frequency, and the level of the voiced part is set
in dBFS RMS (re full-scale square wave, i.e. RMS re 1.0). Options make it hard for a tracker:
``missing_fundamental``, ``even_boost_db`` (octave-up trap), ``subharmonic_db`` (period
doubling, octave-down trap), ``hnr_db`` (breathy aspiration noise), ``shimmer_db``.

:func:`add_noise` adds white or pink noise at an SNR; :func:`telephone` simulates a telephone
channel (8 kHz, 300-3400 Hz band-pass, G.711 mu-law) and returns to ``rate``;
:func:`level_steps` applies gain steps.

Composite takes
---------------
:func:`utterance` is a sentence-like take (syllables with vowels gliding between formant
targets, declining intonation with accents, unvoiced fricatives, pauses);
:func:`syllable_train` a train of syllables at a known rate; :func:`laugh` a laugh-like train
of short breathy high-pitched bursts. They return a :class:`Take` with the audio, the
per-sample F0 truth and event times.

Ground truth per hop: :func:`hop_truth` gives F0 at each hop centre (hop ``k`` centred at
``(k + 0.5) * hop / rate`` s) and whether the hop is voiced; :func:`boundary_distance` tells
how far each hop is from a voicing change, to leave edge hops out of a score.

Example::

    f0 = concat(silence(0.3), glide(100, 200, 1.0), silence(0.3))   # per-sample truth, Hz
    x = add_noise(voice(f0, vowel="i", level_dbfs=-26), snr_db=10)  # mono float64 audio
    f0_hop, voiced_hop = hop_truth(f0)                              # per 10 ms hop
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.signal

__all__ = [
    "HOP", "RATE", "VOWELS", "Take", "add_noise", "boundary_distance", "concat", "constant",
    "formant_gain", "glide", "hop_truth", "jitter", "laugh", "level_steps", "mulaw_decode",
    "mulaw_encode", "resample", "silence", "syllable_train", "telephone", "utterance",
    "vibrato", "voice",
]

RATE = 16000
"""Default sample rate, Hz (the analysis rate)."""
HOP = 160
"""Default hop, samples (10 ms at 16 kHz)."""

VOWELS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    # name: ((F1, F2, F3) Hz, (B1, B2, B3) Hz) - adult male averages (Peterson & Barney).
    "a": ((730.0, 1090.0, 2440.0), (90.0, 110.0, 170.0)),
    "e": ((530.0, 1840.0, 2480.0), (70.0, 110.0, 160.0)),
    "i": ((270.0, 2290.0, 3010.0), (60.0, 100.0, 170.0)),
    "o": ((570.0, 840.0, 2410.0), (80.0, 100.0, 160.0)),
    "u": ((300.0, 870.0, 2240.0), (60.0, 100.0, 150.0)),
}
"""Formant frequencies and bandwidths of a few vowels."""


# --- F0 contours -------------------------------------------------------------------------------


def _n(duration_s: float, rate: int) -> int:
    return int(round(duration_s * rate))


def constant(f0_hz: float, duration_s: float, *, rate: int = RATE) -> np.ndarray:
    """A constant F0 of ``f0_hz`` Hz for ``duration_s`` seconds (per-sample contour)."""
    return np.full(_n(duration_s, rate), float(f0_hz))


def silence(duration_s: float, *, rate: int = RATE) -> np.ndarray:
    """An unvoiced stretch (F0 0.0) of ``duration_s`` seconds."""
    return np.zeros(_n(duration_s, rate))


def glide(start_hz: float, end_hz: float, duration_s: float, *, rate: int = RATE) -> np.ndarray:
    """An F0 glide linear in semitones (exponential in Hz) from ``start_hz`` to ``end_hz``."""
    n = _n(duration_s, rate)
    return start_hz * (end_hz / start_hz) ** (np.arange(n) / max(n, 1))


def vibrato(
    centre_hz: float,
    duration_s: float,
    *,
    depth_semitones: float = 1.0,
    rate_hz: float = 5.5,
    rate: int = RATE,
) -> np.ndarray:
    """Sinusoidal vibrato around ``centre_hz``: ``+-depth_semitones`` at ``rate_hz`` Hz."""
    t = np.arange(_n(duration_s, rate)) / rate
    return centre_hz * 2.0 ** (depth_semitones * np.sin(2 * np.pi * rate_hz * t) / 12.0)


def concat(*contours: np.ndarray) -> np.ndarray:
    """Join contours (or audio) end to end; a jump in F0 is two constants joined."""
    return np.concatenate([np.asarray(c, dtype=np.float64) for c in contours])


def jitter(
    f0_hz: np.ndarray, *, percent: float = 1.0, smooth_s: float = 0.01, seed: int = 0,
    rate: int = RATE,
) -> np.ndarray:
    """Perturb the voiced part of a contour by smooth random noise of ``percent`` % RMS.

    The noise is white noise low-passed by a ``smooth_s`` moving average (roughly cycle to
    cycle). The returned contour is the new ground truth.
    """
    rng = np.random.default_rng(seed)
    n = f0_hz.size
    k = max(int(smooth_s * rate), 1)
    noise = np.convolve(rng.standard_normal(n + k), np.ones(k) / np.sqrt(k), mode="same")[:n]
    noise /= max(float(np.std(noise)), 1e-12)
    return np.where(f0_hz > 0, f0_hz * (1.0 + 0.01 * percent * noise), 0.0)


# --- rendering ---------------------------------------------------------------------------------


def formant_gain(
    freq_hz: np.ndarray, formants_hz: np.ndarray, bandwidths_hz: np.ndarray
) -> np.ndarray:
    """Magnitude (linear, 1 at DC) of a cascade of 2-pole resonators at ``freq_hz``.

    ``formants_hz``/``bandwidths_hz`` broadcast against ``freq_hz`` with the formant index
    on the last axis.
    """
    f = np.asarray(freq_hz)[..., None]
    r = f / formants_hz
    g = 1.0 / np.sqrt((1.0 - r**2) ** 2 + (f * bandwidths_hz / formants_hz**2) ** 2)
    return np.prod(g, axis=-1)


def _formant_tracks(
    vowel: str | np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample (n, 3) formant and bandwidth arrays from a vowel name or an (n, 3) array."""
    if isinstance(vowel, str):
        fr, bw = VOWELS[vowel]
        return np.broadcast_to(np.array(fr), (n, 3)), np.broadcast_to(np.array(bw), (n, 3))
    fr = np.asarray(vowel, dtype=np.float64)
    if fr.shape != (n, 3):
        raise ValueError(f"formant array must be shaped ({n}, 3), got {fr.shape}")
    bw = np.clip(0.08 * fr + 40.0, 50.0, 250.0)
    return fr, bw


def voice(
    f0_hz: np.ndarray,
    *,
    rate: int = RATE,
    level_dbfs: float = -20.0,
    vowel: str | np.ndarray = "a",
    tilt_db_per_octave: float = -12.0,
    missing_fundamental: bool = False,
    even_boost_db: float = 0.0,
    subharmonic_db: float | None = None,
    hnr_db: float | None = None,
    shimmer_db: float = 0.0,
    ramp_s: float = 0.005,
    max_freq_hz: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Render a per-sample F0 contour (Hz, 0 = unvoiced) as voiced sound; returns mono audio.

    Parameters
    ----------
    level_dbfs:
        RMS level of the voiced samples in dBFS (RMS re 1.0, i.e. re a full-scale square wave).
    vowel:
        A key of :data:`VOWELS` or a per-sample ``(n, 3)`` array of formant frequencies (Hz).
    tilt_db_per_octave:
        Source spectral slope: harmonic ``h`` has amplitude ``h ** (tilt / 6.02)`` before the
        formant envelope (-12 dB/octave is a modal voice, -6 a pressed/loud one, -18 breathy).
    missing_fundamental:
        Drop harmonic 1 (the period is still there; only the fundamental component is not).
    even_boost_db:
        Gain on even harmonics (an octave-up trap: a large boost makes the sound look like
        ``2 * f0``).
    subharmonic_db:
        If given, add components at ``(h - 1/2) * f0`` this many dB below harmonic ``h``'s
        source amplitude (times the formant envelope at their own frequency): period
        doubling, as in diplophonic or creaky voice, an octave-down trap. The truth stays
        ``f0`` (the glottal cycle rate a laryngograph would report).
    hnr_db:
        If given, add aspiration noise (white, pulsed with the glottal cycle) so that the
        harmonics-to-noise ratio of the voiced part is ``hnr_db`` dB.
    shimmer_db:
        RMS of a slow random amplitude modulation, dB.
    ramp_s:
        Raised-cosine fade in/out at each voiced segment edge, seconds.
    max_freq_hz:
        Highest harmonic frequency rendered (default 0.45 * rate).
    seed:
        Seed for the noise-like options.
    """
    f0 = np.asarray(f0_hz, dtype=np.float64)
    n = f0.size
    rng = np.random.default_rng(seed)
    voiced = f0 > 0
    out = np.zeros(n)
    if not voiced.any():
        return out
    top = 0.45 * rate if max_freq_hz is None else float(max_freq_hz)
    fmin = float(f0[voiced].min())
    n_harm = int(top // fmin)
    phase = 2.0 * np.pi * np.cumsum(f0) / rate
    fr, bw = _formant_tracks(vowel, n)
    src_exp = tilt_db_per_octave / (20.0 * np.log10(2.0))
    chunk = max(1, 400_000 // max(n_harm, 1))
    sub_gain = None if subharmonic_db is None else 10.0 ** (-subharmonic_db / 20.0)
    even_gain = 10.0 ** (even_boost_db / 20.0)
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        f = f0[a:b]
        ph = phase[a:b]
        h = np.arange(1, n_harm + 1, dtype=np.float64)[:, None]
        freq = h * f[None, :]
        amp = h**src_exp * formant_gain(freq, fr[a:b][None], bw[a:b][None])
        amp = np.where((freq < top) & (f[None, :] > 0), amp, 0.0)
        if missing_fundamental:
            amp[0] = 0.0
        amp[1::2] *= even_gain
        seg = np.sum(amp * np.sin(h * ph[None, :]), axis=0)
        if sub_gain is not None:
            hs = h - 0.5
            fs_ = hs * f[None, :]
            amp_s = sub_gain * h**src_exp * formant_gain(fs_, fr[a:b][None], bw[a:b][None])
            amp_s = np.where((fs_ < top) & (fs_ > 0) & (f[None, :] > 0), amp_s, 0.0)
            seg += np.sum(amp_s * np.sin(hs * ph[None, :] + 0.3), axis=0)
        out[a:b] = seg
    if hnr_db is not None:
        pulse = 0.5 * (1.0 + np.cos(phase))  # aspiration bursts once per cycle
        noise = rng.standard_normal(n) * pulse
        p_h = np.mean(out[voiced] ** 2)
        p_n = np.mean(noise[voiced] ** 2)
        out = out + noise * np.sqrt(p_h / p_n * 10.0 ** (-hnr_db / 10.0))
    if shimmer_db > 0:
        k = max(int(0.02 * rate), 1)
        s = np.convolve(rng.standard_normal(n + k), np.ones(k) / np.sqrt(k), mode="same")[:n]
        out *= 10.0 ** (shimmer_db * s / np.std(s) / 20.0)
    out *= _segment_ramps(voiced, int(ramp_s * rate))
    out *= 10.0 ** (level_dbfs / 20.0) / np.sqrt(np.mean(out[voiced] ** 2))
    return np.where(voiced, out, 0.0)


def _segment_ramps(voiced: np.ndarray, n_ramp: int) -> np.ndarray:
    """Gain 0..1: raised-cosine fades of ``n_ramp`` samples inside each voiced segment."""
    g = voiced.astype(np.float64)
    if n_ramp < 2:
        return g
    edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]])))
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n_ramp) + 0.5) / n_ramp)
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        m = min(n_ramp, (stop - start) // 2)
        if m < 1:
            continue
        r = ramp[np.linspace(0, n_ramp - 1, m).astype(int)]
        g[start : start + m] *= r
        g[stop - m : stop] *= r[::-1]
    return g


# --- channel and noise -------------------------------------------------------------------------


def add_noise(
    x: np.ndarray, snr_db: float, *, colour: str = "white", seed: int = 0
) -> np.ndarray:
    """Add stationary noise at ``snr_db`` dB re the mean power of the *active* samples of ``x``.

    Active samples are those not exactly 0.0 (synthetic silence is exact zeros), so the SNR is
    that of the speech, not diluted by pauses. ``colour`` is ``"white"`` or ``"pink"``
    (-3 dB/octave). Noise runs over the whole signal, pauses included.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    noise = rng.standard_normal(x.shape)
    if colour == "pink":
        spec = np.fft.rfft(noise)
        f = np.arange(spec.size, dtype=np.float64)
        f[0] = 1.0
        noise = np.fft.irfft(spec / np.sqrt(f), n=x.size)
    elif colour != "white":
        raise ValueError(f"unknown noise colour {colour!r}")
    active = x != 0.0
    p_x = float(np.mean(x[active] ** 2)) if active.any() else 0.0
    noise *= np.sqrt(p_x * 10.0 ** (-snr_db / 10.0) / np.mean(noise**2))
    return x + noise


def level_steps(
    x: np.ndarray, steps: Sequence[tuple[float, float]], *, rate: int = RATE, ramp_s: float = 0.0
) -> np.ndarray:
    """Apply gain steps: ``steps`` is ``[(time_s, gain_db), ...]``; each gain holds from its
    time to the next (0 dB before the first). ``ramp_s`` > 0 makes each step a linear ramp (in
    dB) of that length starting at the step time."""
    n = x.shape[-1]
    gain_db = np.zeros(n)
    t = np.arange(n) / rate
    prev = 0.0
    for time_s, g in sorted(steps):
        if ramp_s > 0:
            w = np.clip((t - time_s) / ramp_s, 0.0, 1.0)
            gain_db = np.where(t >= time_s, prev + (g - prev) * w, gain_db)
        else:
            gain_db = np.where(t >= time_s, g, gain_db)
        prev = g
    return x * 10.0 ** (gain_db / 20.0)


# G.711 mu-law, exact segment tables (ITU-T G.711; the classic Sun g711.c arithmetic).
_MU_BIAS = 0x84
_MU_CLIP = 8159


def mulaw_encode(x: np.ndarray) -> np.ndarray:
    """G.711 mu-law encoder: float samples in [-1, 1) to uint8 codes."""
    lin14 = np.clip(np.round(np.asarray(x) * 8192.0), -8192, 8191).astype(np.int32)
    sign = np.where(lin14 < 0, 0x80, 0x00)
    # Magnitude with the bias of 33 on the 14-bit scale; the top of segment 7 saturates.
    mag = np.minimum(np.minimum(np.abs(lin14), _MU_CLIP) + (_MU_BIAS >> 2), 0x1FFF)
    seg = np.clip(np.floor(np.log2(mag >> 5)).astype(np.int32), 0, 7)
    mant = (mag >> (seg + 1)) & 0x0F
    return (~(sign | (seg << 4) | mant) & 0xFF).astype(np.uint8)


def mulaw_decode(code: np.ndarray) -> np.ndarray:
    """G.711 mu-law decoder: uint8 codes to float samples in [-1, 1)."""
    c = (~np.asarray(code, dtype=np.int32)) & 0xFF
    seg = (c >> 4) & 0x07
    mag = ((((c & 0x0F) << 3) + _MU_BIAS) << seg) - _MU_BIAS
    return np.where(c & 0x80, -mag, mag).astype(np.float64) / 32768.0


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Linear-phase polyphase resampling from ``rate_in`` to ``rate_out`` Hz (no time shift)."""
    if rate_in == rate_out:
        return np.asarray(x, dtype=np.float64)
    g = int(np.gcd(rate_in, rate_out))
    return scipy.signal.resample_poly(x, rate_out // g, rate_in // g, axis=-1)


def telephone(x: np.ndarray, *, rate: int = RATE, rate_out: int | None = None) -> np.ndarray:
    """Telephone channel: resample to 8 kHz, band-pass 300-3400 Hz, G.711 mu-law round trip.

    The band-pass is a 4th-order Butterworth run forward and backward (zero phase, so time
    stamps still line up). Returns audio at ``rate_out`` (default: back to ``rate``).
    """
    y = resample(x, rate, 8000)
    sos = scipy.signal.butter(4, [300.0, 3400.0], btype="bandpass", fs=8000, output="sos")
    y = mulaw_decode(mulaw_encode(scipy.signal.sosfiltfilt(sos, y, axis=-1)))
    return resample(y, 8000, rate if rate_out is None else rate_out)


# --- composite takes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Take:
    """A synthetic take with its ground truth."""

    audio: np.ndarray
    """Mono samples, float64, at ``rate``."""
    f0_hz: np.ndarray
    """True F0 per sample, Hz; 0.0 where unvoiced."""
    rate: int = RATE
    events_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Event times in seconds: syllable nucleus centres (:func:`utterance`,
    :func:`syllable_train`) or burst centres (:func:`laugh`)."""

    @property
    def duration_s(self) -> float:
        return self.audio.size / self.rate

    def hop_truth(self, hop: int = HOP) -> tuple[np.ndarray, np.ndarray]:
        """``(f0_hz, voiced)`` per hop, see :func:`hop_truth`."""
        return hop_truth(self.f0_hz, hop=hop)


def hop_truth(f0_hz: np.ndarray, *, hop: int = HOP) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth per hop of a per-sample contour.

    Hop ``k`` covers samples ``[hop*k, hop*(k+1))`` and is stamped at its centre, sample
    ``hop*k + hop//2``: its F0 is the contour there and it is voiced when the contour is voiced
    there (the same convention as a reference track sampled at frame centres). Returns
    ``(f0_hz, voiced)`` with f0 0.0 where unvoiced.
    """
    n_hops = f0_hz.size // hop
    f0 = f0_hz[hop // 2 : n_hops * hop : hop].astype(np.float64)
    return f0, f0 > 0


def boundary_distance(voiced: np.ndarray) -> np.ndarray:
    """Hops from each hop to the nearest voicing change (1 = next to a boundary).

    Useful to leave hops at voicing edges out of a score ("don't care" margins).
    """
    v = np.asarray(voiced, dtype=np.int8)
    edges = np.flatnonzero(np.diff(v)) + 0.5
    if edges.size == 0:
        return np.full(v.size, np.iinfo(np.int32).max)
    pos = np.arange(v.size)
    j = np.searchsorted(edges, pos)
    before = edges[np.maximum(j - 1, 0)]
    after = edges[np.minimum(j, edges.size - 1)]
    return np.ceil(np.minimum(np.abs(pos - before), np.abs(pos - after))).astype(int)


def _fricative(n: int, rng: np.random.Generator, rate: int) -> np.ndarray:
    """Unit-RMS fricative-like noise (random band: s-, sh- or f-like) with soft edges."""
    kind = rng.integers(3)
    band = [(3500.0, 7500.0), (1800.0, 5000.0), (800.0, 7500.0)][kind]
    band = (band[0], min(band[1], 0.45 * rate))
    sos = scipy.signal.butter(2, band, btype="bandpass", fs=rate, output="sos")
    z = scipy.signal.sosfilt(sos, rng.standard_normal(n))
    z *= np.hanning(n) ** 0.5
    return z / max(float(np.sqrt(np.mean(z**2))), 1e-12)


def utterance(
    duration_s: float = 3.0,
    *,
    f0_base_hz: float = 120.0,
    syllable_rate_hz: float = 4.5,
    rate: int = RATE,
    level_dbfs: float = -20.0,
    seed: int = 0,
) -> Take:
    """A sentence-like take with an exact F0 truth.

    Syllables at about ``syllable_rate_hz`` (random +-30 % spacing), each an optional
    unvoiced fricative onset (about 40 % of syllables) and a voiced nucleus whose formants
    glide between random vowel targets. Intonation: declination of about -2 semitones over
    the take, a random accent (+2..+5 semitones rise-fall) on about a third of the syllables,
    1 % jitter. Phrase pauses of 150-400 ms now and then. The level of the voiced part is
    ``level_dbfs`` (dBFS RMS) with syllable-to-syllable variation of +-3 dB and fricatives
    10-20 dB below. ``events_s`` holds the nucleus centres.
    """
    rng = np.random.default_rng(seed)
    n = _n(duration_s, rate)
    f0 = np.zeros(n)
    env = np.zeros(n)
    fric = np.zeros(n)
    formants = np.tile(np.array(VOWELS["a"][0]), (n, 1))
    names = list(VOWELS)
    nuclei = []
    t = 0.15
    prev_target = np.array(VOWELS[names[rng.integers(len(names))]][0])
    while True:
        period = (1.0 / syllable_rate_hz) * rng.uniform(0.7, 1.3)
        if t + period > duration_s - 0.1:
            break
        a = _n(t, rate)
        b = _n(t + period, rate)
        m = b - a
        if rng.random() < 0.4:  # fricative onset
            nf = int(m * rng.uniform(0.2, 0.35))
            fric[a : a + nf] = _fricative(nf, rng, rate) * 10 ** (-rng.uniform(10, 20) / 20)
            va = a + nf
        else:
            va = a + int(m * rng.uniform(0.0, 0.1))
        vb = b - int(m * rng.uniform(0.1, 0.25))
        nv = vb - va
        if nv < int(0.04 * rate):
            t += period
            continue
        tt = (np.arange(va, vb) / rate) / duration_s
        semis = -2.0 * tt  # declination
        if rng.random() < 0.35:
            acc = rng.uniform(2.0, 5.0)
            semis = semis + acc * np.sin(np.pi * np.linspace(0, 1, nv)) ** 2
        semis = semis + rng.uniform(-1.0, 1.0)
        f0[va:vb] = f0_base_hz * 2.0 ** (semis / 12.0)
        shape = np.sin(np.pi * np.linspace(0.0, 1.0, nv)) ** 0.6
        env[va:vb] = shape * 10 ** (rng.uniform(-3.0, 3.0) / 20.0)
        target = np.array(VOWELS[names[rng.integers(len(names))]][0])
        w = np.linspace(0.0, 1.0, nv)[:, None] ** 0.5
        formants[va:vb] = (1 - w) * prev_target + w * target
        prev_target = target
        nuclei.append((va + vb) / 2 / rate)
        t += period
        if rng.random() < 0.12:
            t += rng.uniform(0.15, 0.4)
    f0 = jitter(f0, percent=1.0, seed=seed + 1, rate=rate)
    v = voice(
        f0, rate=rate, vowel=formants, level_dbfs=0.0, ramp_s=0.0, hnr_db=25.0,
        shimmer_db=0.5, seed=seed + 2,
    )
    v *= env
    voiced = f0 > 0
    v *= 10.0 ** (level_dbfs / 20.0) / np.sqrt(np.mean(v[voiced] ** 2))
    audio = v + fric * 10.0 ** (level_dbfs / 20.0)
    return Take(audio, f0, rate, np.array(nuclei))


def syllable_train(
    syllable_rate_hz: float,
    duration_s: float,
    *,
    f0_hz: float = 150.0,
    nucleus_s: float = 0.12,
    regularity: float = 1.0,
    rate: int = RATE,
    level_dbfs: float = -20.0,
    vowel: str = "a",
    seed: int = 0,
) -> Take:
    """Voiced syllable nuclei at ``syllable_rate_hz`` per second (a speaking-rate truth).

    Each nucleus is ``nucleus_s`` long (at most 70 % of the spacing) with a sine-shaped
    envelope, separated by silence. With ``regularity`` < 1 the spacing varies randomly by up
    to ``+-(1 - regularity) * 50 %``. F0 falls 2 semitones across each nucleus, starting at
    ``f0_hz``. ``events_s`` holds the nucleus centres.
    """
    rng = np.random.default_rng(seed)
    n = _n(duration_s, rate)
    f0 = np.zeros(n)
    env = np.zeros(n)
    spacing = 1.0 / syllable_rate_hz
    dur = min(nucleus_s, 0.7 * spacing)
    centres = []
    t = 0.5 * spacing
    while t + dur / 2 < duration_s:
        a = _n(t - dur / 2, rate)
        b = _n(t + dur / 2, rate)
        nv = b - a
        f0[a:b] = glide(f0_hz, f0_hz * 2 ** (-2 / 12), nv / rate, rate=rate)[:nv]
        env[a:b] = np.sin(np.pi * (np.arange(nv) + 0.5) / nv)
        centres.append((a + b) / 2 / rate)
        t += spacing * (1.0 + (1.0 - regularity) * rng.uniform(-0.5, 0.5))
    v = voice(f0, rate=rate, vowel=vowel, level_dbfs=0.0, ramp_s=0.0, seed=seed)
    v *= env
    voiced = f0 > 0
    v *= 10.0 ** (level_dbfs / 20.0) / np.sqrt(np.mean(v[voiced] ** 2))
    return Take(v, f0, rate, np.array(centres))


def laugh(
    duration_s: float = 1.5,
    *,
    burst_rate_hz: float = 4.5,
    f0_hz: float = 280.0,
    rate: int = RATE,
    level_dbfs: float = -20.0,
    seed: int = 0,
) -> Take:
    """A laugh-like train ("ha-ha-ha"): short breathy voiced bursts at ``burst_rate_hz``.

    Each burst lasts 40-55 % of the spacing, starts with an aspirated /h/ (noise only, 20 %
    of the burst) and carries a voiced vowel /a/ with F0 around ``f0_hz`` falling over the
    train, breathy (HNR 8 dB) with a shallow source slope. ``events_s`` holds the burst
    centres. The F0 truth covers the voiced part of each burst.
    """
    rng = np.random.default_rng(seed)
    n = _n(duration_s, rate)
    f0 = np.zeros(n)
    env = np.zeros(n)
    asp = np.zeros(n)
    spacing = 1.0 / burst_rate_hz
    centres = []
    t = 0.1
    i = 0
    while t + spacing <= duration_s:
        dur = spacing * rng.uniform(0.4, 0.55)
        a = _n(t, rate)
        b = _n(t + dur, rate)
        nb = b - a
        nh = int(0.2 * nb)
        fb = f0_hz * 2 ** ((-0.5 * i + rng.uniform(-1, 1)) / 12)
        f0[a + nh : b] = fb
        env[a:b] = np.sin(np.pi * (np.arange(nb) + 0.5) / nb) ** 0.7
        asp[a : a + nh] = 1.0
        centres.append((a + b) / 2 / rate)
        t += spacing
        i += 1
    v = voice(
        f0, rate=rate, vowel="a", level_dbfs=0.0, ramp_s=0.002, hnr_db=8.0,
        tilt_db_per_octave=-9.0, seed=seed,
    )
    band = [500.0, min(5000.0, 0.45 * rate)]
    sos = scipy.signal.butter(2, band, btype="bandpass", fs=rate, output="sos")
    h = scipy.signal.sosfilt(sos, rng.standard_normal(n))
    h /= max(float(np.std(h)), 1e-12)
    out = (v + 0.3 * h * asp) * env
    active = env > 0
    out *= 10.0 ** (level_dbfs / 20.0) / np.sqrt(np.mean(out[active] ** 2))
    return Take(out, f0, rate, np.array(centres))
