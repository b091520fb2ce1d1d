"""The agent's usual voice: robust rolling statistics of their own speech, kept across restarts.

Each measure (momentary loudness in LUFS, pitch in semitones re 100 Hz, speaking rate in
syllable-like nuclei per second, alpha ratio in dB) keeps an exponentially forgetting
histogram of its values over voiced hops. The usual value is the histogram's median, the
spread its MAD, both insensitive to the odd loud word. Learning lags the stream by
``lag_s`` of speech: hops waiting in that lag are dropped when a cue engages, so a passage that
earned a cue never teaches the baseline that it is usual. The cue policy offers speech only at
its learning points (every 0.5 s of stream time, aligned to absolute hops), so the usual voice
and ``ready`` change only there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

HOP_S = 0.01
STATE_VERSION = 2
ST_REF_HZ = 100.0  # pitch is kept in semitones re 100 Hz


@dataclass
class RobustStat:
    """Exponentially forgetting histogram of one measure (bins of ``step`` over [lo, hi]).

    ``decay`` is the weight kept per learned hop (0.5 per half-life of speech).
    """

    lo: float
    hi: float
    step: float
    decay: float
    hist: np.ndarray = field(default_factory=lambda: np.zeros(0))  # empty: all bins zero

    def __post_init__(self) -> None:
        if self.hist.size == 0:
            self.hist = np.zeros(int(round((self.hi - self.lo) / self.step)))
        self._cache: dict[float, float] = {}  # quantiles (and -1: weight) since the last change

    def clear(self) -> None:
        """Forget everything learned."""
        self.hist[:] = 0.0
        self._cache.clear()

    def learn(self, values: np.ndarray) -> None:
        """Add ``values`` in stream order: the k-th of n gets weight decay**(n-1-k)."""
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        n = v.size
        if n == 0:
            return
        # np.minimum/np.maximum: np.clip's Python wrapper costs more than the work here
        bins = np.minimum(np.maximum(((v - self.lo) / self.step).astype(np.int64), 0),
                          self.hist.size - 1)
        w = self.decay ** np.arange(n - 1, -1, -1, dtype=np.float64)
        self.hist *= self.decay**n
        self.hist += np.bincount(bins, weights=w, minlength=self.hist.size)
        self._cache.clear()

    @property
    def weight(self) -> float:
        """Total weight learned: hops of speech, each decayed by the speech heard since."""
        w = self._cache.get(-1.0)
        if w is None:
            w = self._cache[-1.0] = float(self.hist.sum())
        return w

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (0-1), interpolated within the bin; NaN when empty."""
        hit = self._cache.get(q)
        if hit is None:
            hit = self._cache[q] = self._quantile(q)
        return hit

    def _quantile(self, q: float) -> float:
        total = self.hist.sum()
        if total <= 0:
            return float("nan")
        cdf = np.cumsum(self.hist) / total
        i = int(np.searchsorted(cdf, q))
        i = min(i, self.hist.size - 1)
        prev = cdf[i - 1] if i > 0 else 0.0
        frac = (q - prev) / max(cdf[i] - prev, 1e-12)
        return float(self.lo + (i + min(max(frac, 0.0), 1.0)) * self.step)

    def median(self) -> float:
        """The median, in the unit of the values learned; NaN when empty."""
        return self.quantile(0.5)

    def spread(self) -> float:
        """Half the inter-quartile range: a robust standard deviation x 0.674."""
        return 0.5 * (self.quantile(0.75) - self.quantile(0.25))

    def to_dict(self) -> dict[str, Any]:
        nz = np.nonzero(self.hist)[0]
        return {"lo": self.lo, "hi": self.hi, "step": self.step,
                "bins": nz.tolist(), "weights": self.hist[nz].tolist()}

    def load(self, d: dict[str, Any]) -> None:
        if (d["lo"], d["hi"], d["step"]) != (self.lo, self.hi, self.step):
            raise ValueError("histogram layout changed")
        bins = np.asarray(d["bins"])
        weights = np.asarray(d["weights"], dtype=np.float64)
        # A damaged file can hold any numbers: a bin outside the histogram (an IndexError, or a
        # negative one counted from the end) is as corrupt as a negative weight.
        if bins.ndim != 1 or weights.shape != bins.shape or (bins.size and (
                bins.dtype.kind not in "iu" or bins.min() < 0 or bins.max() >= self.hist.size)):
            raise ValueError("corrupt histogram")
        hist = np.zeros_like(self.hist)
        hist[bins.astype(np.int64)] = weights
        if not np.all(np.isfinite(hist)) or np.any(hist < 0):
            raise ValueError("corrupt histogram")
        self.hist = hist
        self._cache.clear()


def semitones(f0_hz: np.ndarray) -> np.ndarray:
    """F0 in Hz to semitones re 100 Hz; NaN where unvoiced (0 Hz)."""
    f = np.asarray(f0_hz, dtype=np.float64)
    voiced = f > 0
    out = np.full(f.shape, np.nan)
    np.log2(f / ST_REF_HZ, out=out, where=voiced)
    out *= 12.0
    return out


class UsualVoice:
    """The usual voice of one speaker, learned from voiced, uncued hops: loudness (LUFS),
    pitch (semitones re 100 Hz, on pitch-voiced hops), speaking rate (syllables/s) and
    alpha ratio (dB).

    ``warmup_speech_s``: seconds of speech heard before ``ready``; ``half_life_speech_s``:
    forgetting; ``lag_s``: learning delay, in seconds of speech, so that cued passages can be
    left out. Each `offer` queues hops and learns those that ``lag_s`` of speech has followed;
    the cue policy offers once per learning grid point (every 0.5 s of stream time, aligned
    to absolute hops), so the usual voice, its medians and ``ready`` change only there and
    stay constant in between.
    """

    def __init__(self, *, warmup_speech_s: float, half_life_speech_s: float, lag_s: float = 3.0):
        decay = 0.5 ** (HOP_S / half_life_speech_s)
        self.warmup_speech_s = warmup_speech_s
        self.loudness = RobustStat(lo=-90.0, hi=0.0, step=0.25, decay=decay)
        self.pitch = RobustStat(lo=-24.0, hi=36.0, step=0.25, decay=decay)
        self.rate = RobustStat(lo=0.0, hi=12.0, step=0.1, decay=decay)
        self.alpha = RobustStat(lo=-50.0, hi=10.0, step=0.25, decay=decay)
        self.speech_s = 0.0
        self._ready = False
        self.lag_hops = int(round(lag_s / HOP_S))
        self._pending: list[np.ndarray] = []  # (4, n) columns: loudness, st, rate, alpha
        self._pending_n = 0
        self.changes = 0
        """Counts every change to what `to_dict` holds (learning, `reset`, `load`): a saver
        compares it with the count it last saved, so an unchanged voice is not written again."""

    @property
    def ready(self) -> bool:
        """Warm-up done: ``warmup_speech_s`` of speech heard (learned or waiting in the lag),
        counted at the last `offer` (or `load`).

        Once ready it stays ready until `reset` (dropping the lag when a cue starts must not
        take the baseline away from the cue that is running)."""
        if not self._ready:
            self._ready = self.heard_s >= self.warmup_speech_s
        return self._ready

    @property
    def heard_s(self) -> float:
        """Speech heard, s: learned, plus what waits in the learning lag (what the warm-up
        counts)."""
        return self.speech_s + self._pending_n * HOP_S

    @property
    def usual_lufs(self) -> float:
        """Usual momentary loudness, LUFS (NaN until some speech was learned)."""
        return self.loudness.median()

    @property
    def usual_st(self) -> float:
        """Usual pitch, semitones re 100 Hz (NaN until some voiced pitch was learned)."""
        return self.pitch.median() if self.pitch.weight > 0 else float("nan")

    @property
    def usual_f0_hz(self) -> float:
        """Usual pitch, Hz (NaN until some voiced pitch was learned)."""
        return ST_REF_HZ * 2 ** (self.usual_st / 12.0)

    def offer(self, loudness_lufs: np.ndarray, voiced: np.ndarray,
              f0_hz: np.ndarray | None = None, rate_sps: np.ndarray | None = None,
              alpha_db: np.ndarray | None = None) -> None:
        """Offer a run of hops (voice activity ``voiced``); the voiced ones are learned once
        ``lag_s`` of voiced speech has followed them. Pitch is learned where F0 > 0."""
        m = np.asarray(voiced, dtype=bool)
        n = int(m.sum())
        nan = np.full(n, np.nan)
        self.offer_columns(np.vstack([
            np.asarray(loudness_lufs, dtype=np.float64)[m],
            semitones(f0_hz)[m] if f0_hz is not None else nan,
            np.asarray(rate_sps, dtype=np.float64)[m] if rate_sps is not None else nan,
            np.asarray(alpha_db, dtype=np.float64)[m] if alpha_db is not None else nan,
        ]))

    def offer_columns(self, cols: np.ndarray) -> None:
        """`offer` for voiced hops already gathered, in stream order: ``cols`` is (4, n) -
        loudness (LUFS), pitch (semitones re 100 Hz, NaN where unpitched), speaking rate
        (syllables/s), alpha ratio (dB). Learns every queued hop that ``lag_s`` of speech
        has followed, then settles ``ready``."""
        if cols.shape[1]:
            self._pending.append(cols)
            self._pending_n += cols.shape[1]
        excess = self._pending_n - self.lag_hops
        if excess > 0:
            allv = np.concatenate(self._pending, axis=1) if len(self._pending) > 1 \
                else self._pending[0]
            learn, keep = allv[:, :excess], allv[:, excess:]
            self._pending, self._pending_n = [keep], keep.shape[1]
            for stat, values in zip((self.loudness, self.pitch, self.rate, self.alpha), learn,
                                    strict=True):
                stat.learn(values)
            self.speech_s += learn.shape[1] * HOP_S
            self.changes += 1
        _ = self.ready  # latch it now, not at whatever later moment it is first read

    def forget_pending(self) -> None:
        """Drop hops not yet learned: a cue started on them."""
        self._pending, self._pending_n = [], 0

    def reset(self) -> None:
        """Forget everything: re-learn the usual voice from scratch (recalibrate)."""
        for stat in (self.loudness, self.pitch, self.rate, self.alpha):
            stat.clear()
        self.speech_s = 0.0
        self._ready = False
        self.forget_pending()
        self.changes += 1

    def to_dict(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "speech_s": self.speech_s,
                "loudness": self.loudness.to_dict(), "pitch": self.pitch.to_dict(),
                "rate": self.rate.to_dict(), "alpha": self.alpha.to_dict()}

    def load(self, d: dict[str, Any]) -> None:
        """Restore from `to_dict` output; raises ValueError on anything inconsistent."""
        if not isinstance(d, dict):
            raise ValueError("not a saved usual voice")
        if d.get("version") != STATE_VERSION:
            raise ValueError(f"baseline state version {d.get('version')!r} not understood")
        speech_s = float(d["speech_s"])
        if not np.isfinite(speech_s) or speech_s < 0:
            raise ValueError("corrupt speech_s")
        for name in ("loudness", "pitch", "rate", "alpha"):
            getattr(self, name).load(d[name])
        self.speech_s = speech_s
        self.changes += 1
        # Before warm-up ends, a voice that has learned anything holds exactly ``lag_s`` of
        # speech waiting (learning starts only once the lag is full), and that is not saved:
        # it was ready when saved if what it learned plus the lag reached the warm-up.
        self._ready = speech_s > 0 and speech_s + self.lag_hops * HOP_S >= self.warmup_speech_s
        if not self.learned:
            self.reset()
            raise ValueError("no usual level in it (nothing learned: a non-finite baseline)")

    @property
    def learned(self) -> bool:
        """True once some speech has been learned: the usual level is a finite number.

        A baseline that is not is never saved or restored (it would compare every cue
        against NaN)."""
        return bool(np.isfinite(self.usual_lufs))
