"""Second stage of the laughter cue: a small learned verifier of the pulse detector's proposals.

The pulse detector (:mod:`dsp.laughter`) is kept as a cheap, explainable, high-recall
*proposer*: every time it scores a window of three or four pulses at or above its
proposal threshold (0 in the shipped weights: every scored window), it asks this verifier
whether the proposed train, read within the last second of sound, is laughter-like. Only then
is a burst event opened.  The verifier describes sound, not feelings.

Inputs (every one explains itself; see :func:`window_features`)
---------------------------------------------------------------
* **log-mel bands** of the last second: 16 mel-spaced bands 100-7600 Hz of the analyzer's
  shared 32 ms spectrum (:attr:`LaughterVerifier.band_weights`, a
  :class:`~dsp.hop_spectrum.HopSpectrum` result, frames centred on the hop, ``delay_hops``
  2), hops ``k - 99 .. k`` for a proposal at hop ``k``; summarised over the proposed train
  (from its first pulse's onset, at least 0.3 s: :func:`span_hops`) as the mean spectral
  shape of its loud hops (dB re each hop's level), its spread over time and its hop-to-hop
  change per band; and over the whole second as the modulation spectrum of the level
  envelope at 2-10 Hz (a laugh inside speech is only part of the second: summaries of the
  whole second mixed the speech before it into the laugh's);
* **the pulse measures** of the proposing window (rhythm, voiced nuclei, alternation,
  repetition, aspiration, their minimum, pulse count, mean interval, interval spread, dip,
  gap voicing, peak voicing; see :mod:`dsp.laughter`);
* **periodicity** (the pitch tracker's, as the detector reads it) over the train, and its
  modulation over the second;
* **pitch relative to the speaker's usual**: the median and 90th percentile of the pitch
  tracker's F0 (semitones) on the train's voiced hops (up to ``k - 2``: F0 comes 2 hops later
  than the spectrum), minus the speaker's usual pitch, and whether the usual is known.  The usual
  pitch is the median of a forgetting histogram of the voiced hops' F0 (half-life 15 min of
  voiced speech), updated on a fixed 5 s grid of absolute hops so that it does not depend on
  block cuts; it is "known" after 8 s of voiced pitch.  (It mirrors the firmware's usual voice
  but lives here because data flows one way: the analyzer cannot read the policy's state.)

Model: standardised features -> one hidden layer (8 tanh units) -> logistic output; 761
parameters, weights in ``dsp/laughter_verifier.npz`` (made by
``tests/bench/train_laughter_verifier.py``, seeded, from development audio).  The shipped
weights give the six pitch inputs no weight (713 non-zero): the pitch is read here only to
skip proposals that could not cue, and the policy's pitch check decides (the training
recipe puts laughs in strangers' speech, so a learned pitch response was the recipe's).
The output is a probability-like score in [0, 1]; the training script shifts the output bias
so that 0.5 is the chosen operating point.

Streaming: :meth:`LaughterVerifier.push` takes each call's new rows (spectrum rows delay 2,
F0 rows delay 4) *before* the detector runs on the same call; :meth:`LaughterVerifier.verify`
then reads only rows at or before the proposal's hop by absolute index, so results do not
depend on how the stream is cut.  No I/O except loading the shipped weights at construction,
no threads, no clocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsp.hop_spectrum import FREQS_HZ, HopSpectrum, band_matrix

__all__ = ["DEFAULT_WEIGHTS", "LaughterVerifier", "VerifierWeights", "mel_edges_hz",
           "span_hops", "window_features", "FEATURE_NAMES"]

HOP_S = 0.01
DEFAULT_WEIGHTS = Path(__file__).with_name("laughter_verifier.npz")

N_MEL = 16
MEL_LO_HZ, MEL_HI_HZ = 100.0, 7600.0
WINDOW_HOPS = 100  # the last second of spectrum rows, hops k - 99 .. k
F0_LAG_HOPS = 2  # F0 (pitch tracker, delay 4) is known 2 hops later than the spectrum
MOD_HZ = np.arange(2, 11)  # level-envelope modulation read at 2..10 Hz
ST_REF_HZ = 100.0

# Usual pitch: forgetting histogram of voiced F0, semitones re 100 Hz.
ST_BINS = np.arange(-24.0, 36.0 + 1e-9, 0.25)
USUAL_GRID_HOPS = 500  # the usual pitch is refreshed on absolute 5 s boundaries (it
#   moves over minutes; each refresh costs ~0.1 ms)
USUAL_HALF_LIFE_HOPS = 90_000  # 15 min of voiced speech, as the firmware's usual voice
USUAL_MIN_HOPS = 800  # 8 s of voiced pitch before the usual is "known"
MIN_SPAN_HOPS = 30  # the train's summaries read at least its last 0.3 s
SKIP_MARGIN_ST = 1.5  # proposals this far below the policy's pitch check are not verified
HISTORY_HOPS = WINDOW_HOPS + 8
_ROOM_HOPS = 200  # rows a history buffer holds beyond HISTORY_HOPS before it is compacted
_MEL_FLOOR = 1e-12  # mel mean square of the silence before the stream
_HANN = np.hanning(WINDOW_HOPS)
_ARG = 2 * np.pi * np.outer(np.arange(WINDOW_HOPS), np.arange(1, 26)) / WINDOW_HOPS
# Hann-windowed DFT, bins 1-25 (i Hz over the 1 s window), of the track with its mean removed:
# the mean removal is folded into the matrix, (I - 1 1'/n) D, so one product does both
_DFT = np.hstack([np.cos(_ARG), -np.sin(_ARG)]) * _HANN[:, None]  # (100, 50)
_DFT -= _DFT.sum(axis=0) / WINDOW_HOPS


def mel_edges_hz(n: int = N_MEL, lo: float = MEL_LO_HZ, hi: float = MEL_HI_HZ
                 ) -> list[tuple[float, float]]:
    """``n`` adjacent mel-spaced bands from ``lo`` to ``hi`` Hz (rectangular, as the other
    shared bands: each bin counted in one band)."""
    m = np.linspace(2595 * np.log10(1 + lo / 700), 2595 * np.log10(1 + hi / 700), n + 1)
    f = 700 * (10 ** (m / 2595) - 1)
    # at least two 31.25 Hz bins per band: push narrow low bands' upper edges up
    f[1:] = np.maximum(f[1:], f[:-1] + 2 * (FREQS_HZ[1] - FREQS_HZ[0]))
    return list(zip(f[:-1].tolist(), f[1:].tolist(), strict=True))


_CENTRES = np.array([(lo + hi) / 2 for lo, hi in mel_edges_hz()])
_HI = _CENTRES >= 2000.0  # aspiration and breath noise outweigh the voice here
_LO = (_CENTRES >= 300.0) & (_CENTRES < 1000.0)  # F1 and the voice bar
_LEV_BAL = np.stack([np.full(N_MEL, 1.0 / N_MEL), _HI / _HI.sum() - _LO / _LO.sum()], axis=1)
_ONES = np.ones(WINDOW_HOPS)

PULSE_NAMES = ("rhythm", "voiced", "alternation", "repetition", "aspiration", "pulse_score",
               "n_pulses", "interval_s", "interval_spread", "dip_db", "gap_voicing",
               "peak_voicing")
FEATURE_NAMES = (
    tuple(f"shape_{i}" for i in range(N_MEL))
    + tuple(f"spread_{i}" for i in range(N_MEL))
    + tuple(f"flux_{i}" for i in range(N_MEL))
    + tuple(f"mod_{f}hz" for f in MOD_HZ)
    + ("loud_share_10db", "loud_share_20db", "periodicity_mean", "periodicity_share")
    + tuple(f"periodicity_mod_{f}hz" for f in MOD_HZ)
    + ("periodicity_flux", "balance_mean_db", "balance_sd_db", "balance_mod_3_8hz")
    + PULSE_NAMES
    + ("usual_known", "st_median_above_usual", "st_p90_above_usual", "f0_voiced_share",
       "st_median", "st_iqr", "share_3st_above_usual")
)
N_FEATURES = len(FEATURE_NAMES)


def span_hops(k: int, start: int) -> int:
    """Hops of the proposed train that the verifier summarises: from ``start`` (the onset
    of its first pulse) to the decision hop ``k``, at least MIN_SPAN_HOPS, at most the 1 s
    window."""
    return min(max(k - start + 1, MIN_SPAN_HOPS), WINDOW_HOPS)


def window_features(mel: np.ndarray, periodicity: np.ndarray, st: np.ndarray,
                    usual_st: float, pulse: np.ndarray, span: int = WINDOW_HOPS
                    ) -> np.ndarray:
    """The verifier's input vector for one proposal.

    Args:
        mel: mel band mean squares of hops ``k - 99 .. k``, shape ``(100, 16)``.
        periodicity: the pitch tracker's periodicity (0-1) of the same hops, ``(100,)``.
        st: F0 in semitones re 100 Hz of hops ``k - 101 .. k - 2``, NaN where unvoiced,
            ``(100,)``.
        usual_st: the speaker's usual pitch (semitones re 100 Hz), NaN if not known.
        pulse: the proposing window's pulse measures, ``(12,)`` in :data:`PULSE_NAMES` order.
        span: the last ``span`` hops are the proposed train (:func:`span_hops`): the
            spectral shape, its spread and change, the periodicity, breathiness and pitch
            are read over these; the modulation over the whole second.

    Returns:
        ``(N_FEATURES,)`` float64 in :data:`FEATURE_NAMES` order (dB, semitones, 0-1 shares;
        the modulation magnitudes relative to the envelope's total).
    """
    st = st[st.size - span:]
    sv = np.sort(st[np.isfinite(st)])
    return _features_db(mel_db(mel), periodicity, sv, usual_st, pulse, span)


def mel_db(mel: np.ndarray) -> np.ndarray:
    """Band mean squares to dB re full scale (floor -100 dB)."""
    db = np.log10(mel + 1e-10)
    db *= 10.0
    return db


def _features_db(db: np.ndarray, periodicity: np.ndarray, sv: np.ndarray, usual_st: float,
                 pulse: np.ndarray, span: int) -> np.ndarray:
    """:func:`window_features` from the bands in dB, ``(100, 16)``, and the span's voiced
    hops' F0 in semitones, sorted (``sv``).  Written for few numpy calls: it runs on every proposal,
    several times per second of speech, and each call costs about a microsecond whatever its
    size, so means over the loud hops are weighted products, not selections, and sums over
    hops are products with ones."""
    n = span  # the summaries read the proposed train; the modulation, the whole second
    out = np.empty(N_FEATURES)
    # per hop: the 16 bands (dB), the periodicity, then the shape (dB re the hop's level),
    # the balance, and their squares
    k = N_MEL + 1
    y = np.empty((n, 3 * k))
    y[:, :N_MEL] = db[WINDOW_HOPS - n:]
    y[:, N_MEL] = periodicity[WINDOW_HOPS - n:]
    lb_all = db @ _LEV_BAL  # (100, 2): level (mean of the bands) and balance per hop
    lb = lb_all[WINDOW_HOPS - n:]
    lev = lb[:, 0]
    x = y[:, k:2 * k]
    np.subtract(y[:, :N_MEL], lev[:, None], out=x[:, :N_MEL])
    x[:, N_MEL] = lb[:, 1]  # breathiness: bands >= 2 kHz over 300-1000 Hz (dB)
    top = lev.max()
    loud = lev >= top - 20.0  # (never empty: the loudest hop is loud)
    n_loud = float(np.count_nonzero(loud))
    np.multiply(x, x, out=y[:, 2 * k:])
    m = (loud / n_loud) @ y[:, k:]  # means over the loud hops
    var = m[k:] - m[:k] * m[:k]
    sd = np.sqrt(np.maximum(var, 0.0, out=var))
    d = y[1:, :k] - y[:-1, :k]  # hop-to-hop change of the bands and of the periodicity
    flux = _ONES[:n - 1] @ np.abs(d, out=d)
    flux /= n - 1
    # modulation (bin i = i Hz over the 1 s window) of the level envelope (40 dB range), of
    # the voicing (voiced call, unvoiced /h/ or pause alternate at laughter's 3-8 Hz) and of
    # the balance, in one product with the windowed, mean-removing DFT (cheaper than FFTs)
    tracks = np.empty((3, WINDOW_HOPS))
    np.maximum(lb_all[:, 0], lb_all[:, 0].max() - 40.0, out=tracks[0])
    tracks[1] = periodicity
    tracks[2] = lb_all[:, 1]
    re_im = tracks @ _DFT
    spec = np.hypot(re_im[:, :25], re_im[:, 25:])
    mods = spec[:, 1:10] / (spec @ _ONES[:25] + 1e-9)[:, None]  # columns: bins 2-10 Hz
    per = y[:, N_MEL]
    out[0:16] = m[:N_MEL]
    out[16:32] = sd[:N_MEL]
    out[32:48] = flux[:N_MEL]
    out[48:57] = mods[0]
    out[57] = np.count_nonzero(lev >= top - 10.0) / n
    out[58] = n_loud / n
    out[59] = _ONES[:n] @ per / n
    out[60] = np.count_nonzero(per >= 0.6) / n
    out[61:70] = mods[1]
    out[70] = flux[N_MEL]
    out[71] = m[N_MEL]
    out[72] = sd[N_MEL]
    out[73] = mods[2, 1:7].sum()  # 3-8 Hz
    out[74:86] = pulse
    n_v = sv.size
    if n_v >= 3:
        q50 = _quantile(sv, 0.5)
        out[90] = min(max(q50, -12.0), 30.0)
        out[91] = _quantile(sv, 0.75) - _quantile(sv, 0.25)
    else:
        out[90] = out[91] = 0.0
    if n_v >= 3 and usual_st == usual_st:  # (usual known: not NaN)
        out[86] = 1.0
        out[87] = min(max(q50 - usual_st, -12.0), 24.0)
        out[88] = min(max(_quantile(sv, 0.9) - usual_st, -12.0), 24.0)
        out[92] = float(n_v - np.searchsorted(sv, usual_st + 3.0)) / n_v
    else:
        out[86] = out[87] = out[88] = out[92] = 0.0
    out[89] = n_v / n
    return out


def _quantile(s: np.ndarray, q: float) -> float:
    """Quantile ``q`` of the sorted values ``s`` by linear interpolation (numpy's default)."""
    pos = q * (s.size - 1)
    lo = int(pos)
    f = pos - lo
    a = float(s[lo])
    return a if f == 0.0 else a + f * (float(s[lo + 1]) - a)


@dataclass(frozen=True)
class VerifierWeights:
    """A trained verifier: feature standardisation, one hidden tanh layer, logistic output.

    Attributes:
        mean, scale: ``(N_FEATURES,)`` feature standardisation.
        w1: ``(N_FEATURES, H)``, b1: ``(H,)``; w2: ``(H,)``, b2: scalar (output bias, shifted
            so that 0.5 is the operating point).
        propose_threshold: the pulse detector's score (0-1) at which a window is proposed.
    """

    mean: np.ndarray
    scale: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: float
    propose_threshold: float

    @property
    def n_params(self) -> int:
        return int(self.w1.size + self.b1.size + self.w2.size + 1)

    @classmethod
    def load(cls, path: str | Path) -> VerifierWeights:
        """Read weights saved by :meth:`save` (``.npz``)."""
        with np.load(path) as z:
            if z["mean"].shape != (N_FEATURES,):
                raise ValueError(f"{path}: {z['mean'].shape[0]} features, need {N_FEATURES}")
            return cls(mean=z["mean"], scale=z["scale"], w1=z["w1"], b1=z["b1"], w2=z["w2"],
                       b2=float(z["b2"]), propose_threshold=float(z["propose_threshold"]))

    def save(self, path: str | Path) -> None:
        """Write the weights as ``.npz`` (float32 would do; float64 keeps results exact)."""
        np.savez(path, mean=self.mean, scale=self.scale, w1=self.w1, b1=self.b1, w2=self.w2,
                 b2=np.float64(self.b2), propose_threshold=np.float64(self.propose_threshold))

    def predict(self, feats: np.ndarray) -> np.ndarray:
        """Scores in [0, 1] for features ``(..., N_FEATURES)``."""
        z = (feats - self.mean) / self.scale
        h = np.tanh(z @ self.w1 + self.b1)
        return 1.0 / (1.0 + np.exp(-(h @ self.w2 + self.b2)))


class LaughterVerifier:
    """Streaming feature history and the learned verifier (agent channel, 16 kHz, 10 ms hops).

    Args:
        weights: a :class:`VerifierWeights`, a path to an ``.npz``, or ``None`` for the
            shipped ``dsp/laughter_verifier.npz``.
        min_st_above_usual: the policy's pitch check (semitones above the usual pitch a
            burst's median pitch must reach to cue), or ``None``.  If given, a proposal
            whose train's median pitch is known to sit more than ``SKIP_MARGIN_ST`` below
            it (the usual pitch known, at least 3 voiced hops) is not verified (score 0): it
            could not cue anyway.  Most proposals in ordinary speech are at the speaker's
            usual pitch, so this spares most verifications; the margin covers the policy
            reading its own usual voice and slightly different hops.

    Attributes:
        band_weights: ``(257, 16)`` mel band weights for the shared
            :class:`~dsp.hop_spectrum.HopSpectrum` whose rows feed :meth:`push`.
        propose_threshold: the detector score at which windows are proposed (from the weights).
    """

    band_weights = band_matrix(mel_edges_hz())
    delay_hops = HopSpectrum.delay_hops

    def __init__(self, *, weights: VerifierWeights | str | Path | None = None,
                 min_st_above_usual: float | None = None) -> None:
        self._skip_below = None if min_st_above_usual is None \
            else min_st_above_usual - SKIP_MARGIN_ST
        if weights is None:
            weights = DEFAULT_WEIGHTS
        self.weights = weights if isinstance(weights, VerifierWeights) \
            else VerifierWeights.load(weights)
        self.propose_threshold = self.weights.propose_threshold
        w = self.weights  # standardisation folded into the first layer: one product fewer
        self._w1 = w.w1 / w.scale[:, None]
        self._b1 = w.b1 - (w.mean / w.scale) @ w.w1
        self._w2, self._b2 = w.w2, float(w.b2)
        self.reset()

    def reset(self) -> None:
        """Forget the stream and the usual pitch."""
        # Histories: preallocated, rows appended in place; only when full are the last
        # HISTORY_HOPS rows moved to the front (a copy per ~2 s of stream, not per block;
        # small, so that they stay in the cache).
        self._mel = np.full((HISTORY_HOPS + _ROOM_HOPS, N_MEL), _MEL_FLOOR)
        self._per = np.zeros(HISTORY_HOPS + _ROOM_HOPS)
        self._n = HISTORY_HOPS  # rows in use in _mel and _per
        self._mk0 = -self.delay_hops  # absolute hop of the next spectrum row
        self._f0 = np.zeros(HISTORY_HOPS + _ROOM_HOPS)  # Hz, 0 where unvoiced
        self._fn = HISTORY_HOPS  # rows in use in _f0
        self._fk0 = -4  # absolute hop of the next F0 row (pitch tracker delay 4)
        self._hist = np.zeros(ST_BINS.size)
        self._chunk_k0 = 0  # absolute hop of the last usual-pitch grid boundary
        self._usual: dict[int, float] = {0: np.nan}  # boundary hop -> usual pitch from then
        self._queue: list[tuple[np.ndarray, np.ndarray]] = []  # pushed spectrum rows, not
        self._queued = 0  # yet in the history (and how many)
        self._fqueue: list[np.ndarray] = []  # pushed F0 rows not yet in the history
        self._urows: list[np.ndarray] = []  # F0 rows since the last usual-pitch boundary
        self._u_k0 = -4  # absolute hop of their first row

    @staticmethod
    def _room(bufs: list[np.ndarray], used: int, m: int) -> tuple[list[np.ndarray], int]:
        """History buffers (same rows) with room for ``m`` more rows after the rows in use,
        their last HISTORY_HOPS kept; and the new count of rows in use."""
        size = bufs[0].shape[0]
        if used + m <= size:
            return bufs, used
        keep = slice(used - HISTORY_HOPS, used)
        if HISTORY_HOPS + m > size:  # a block longer than the room: grow
            out = []
            for b in bufs:
                new = np.empty((HISTORY_HOPS + m + _ROOM_HOPS, *b.shape[1:]))
                new[:HISTORY_HOPS] = b[keep]
                out.append(new)
            return out, HISTORY_HOPS
        for b in bufs:
            b[:HISTORY_HOPS] = b[keep]
        return bufs, HISTORY_HOPS

    def push(self, mel: np.ndarray, periodicity: np.ndarray, f0_hz: np.ndarray,
             voiced: np.ndarray) -> None:
        """Take one call's new rows, before the detector runs on the same call.

        ``mel`` and ``periodicity`` are kept as given (not copied) until the history takes
        them in, at the next verification or after about 1 s of rows: the caller must not
        change them (the analyzer's are new arrays every call).  Pushing only queues them:
        blocks come ten times a second, verifications a few times.

        Args:
            mel: ``(n, 16)`` mel band mean squares (spectrum rows, delay 2).
            periodicity: ``(n,)`` the pitch tracker's periodicity of the same hops (delay 2).
            f0_hz: ``(m,)`` the pitch tracker's F0 (Hz, 0 if unvoiced), its own rows (delay 4;
                rows for hops before the stream are dropped here).
            voiced: ``(m,)`` the pitch tracker's voicing decision.
        """
        n = mel.shape[0]
        if n:
            self._queue.append((mel, periodicity))
            self._queued += n
            self._mk0 += n
            if self._queued >= _ROOM_HOPS // 2:
                self._take_queue()
        m = f0_hz.shape[0]
        if m == 0:
            return
        self._fqueue.append(f0_hz * voiced)  # Hz where voiced, else 0
        self._fk0 += m
        if self._chunk_k0 + USUAL_GRID_HOPS <= self._fk0:
            self._learn_usual()

    def _take_queue(self) -> None:
        """Move the queued spectrum rows into the history."""
        if not self._queue:
            return
        if len(self._queue) == 1:
            mel, per = self._queue[0]
        else:
            mel = np.concatenate([q[0] for q in self._queue])
            per = np.concatenate([q[1] for q in self._queue])
        n = mel.shape[0]
        (self._mel, self._per), used = self._room([self._mel, self._per], self._n, n)
        self._mel[used:used + n] = mel
        self._per[used:used + n] = per
        self._n = used + n
        self._queue, self._queued = [], 0

    def _take_f0_queue(self) -> None:
        """Move the queued F0 rows into the history."""
        if not self._fqueue:
            return
        f0 = self._fqueue[0] if len(self._fqueue) == 1 else np.concatenate(self._fqueue)
        m = f0.shape[0]
        (self._f0,), fu = self._room([self._f0], self._fn, m)
        self._f0[fu:fu + m] = f0
        self._fn = fu + m
        self._fqueue = []
        self._urows.append(f0)

    def _learn_usual(self) -> None:
        """Usual pitch on the absolute grid (stream hops >= 0 only), from the F0 rows since
        the last boundary; snapshots before the last boundary are no longer asked for."""
        self._take_f0_queue()
        rows = self._urows[0] if len(self._urows) == 1 else np.concatenate(self._urows)
        pos = self._u_k0  # absolute hop of rows[0]
        nxt = self._chunk_k0 + USUAL_GRID_HOPS
        if len(self._usual) > 1:
            self._usual = {b: u for b, u in self._usual.items() if b >= self._chunk_k0}
        while nxt <= self._fk0:
            c = rows[nxt - USUAL_GRID_HOPS - pos:nxt - pos]
            c = c[c > 0.0]
            if c.size:  # (an interval without voiced pitch changes nothing)
                c = 12.0 * np.log2(c / ST_REF_HZ)
                self._hist *= 0.5 ** (c.size / USUAL_HALF_LIFE_HOPS)
                self._hist += np.bincount(
                    np.clip(np.searchsorted(ST_BINS, c), 0, ST_BINS.size - 1),
                    minlength=ST_BINS.size)
                tot = self._hist.sum()
                usual = float(ST_BINS[np.searchsorted(np.cumsum(self._hist), 0.5 * tot)]
                              ) if tot >= USUAL_MIN_HOPS else np.nan
            else:
                usual = self._usual[self._chunk_k0]
            self._chunk_k0 = nxt
            self._usual[nxt] = usual
            nxt += USUAL_GRID_HOPS
        self._urows = [rows[self._chunk_k0 - pos:]]
        self._u_k0 = self._chunk_k0

    def usual_st(self, k: int) -> float:
        """Usual pitch (semitones re 100 Hz) for a proposal at hop ``k``: as of the last grid
        boundary at or before hop ``k - 1`` (NaN if not known yet)."""
        b = max(k - 1, 0) // USUAL_GRID_HOPS * USUAL_GRID_HOPS
        return self._usual.get(b, np.nan)

    def _voiced_st(self, k: int, span: int) -> np.ndarray:
        """Semitones re 100 Hz of the voiced hops among the last ``span`` F0 rows of a
        proposal at hop ``k`` (hops up to ``k - 2``), sorted."""
        self._take_f0_queue()
        j = k - F0_LAG_HOPS - (self._fk0 - self._fn)  # row of hop k - 2 in F0's
        f0 = self._f0[j - span + 1:j + 1]
        sv = np.log2(f0[f0 > 0.0] / ST_REF_HZ)
        sv *= 12.0
        sv.sort()
        return sv

    def _features(self, k: int, pulse: np.ndarray, span: int, sv: np.ndarray,
                  usual: float) -> np.ndarray:
        self._take_queue()
        i = k - (self._mk0 - self._n)  # row of hop k in the spectrum history
        db = mel_db(self._mel[i - WINDOW_HOPS + 1:i + 1])
        per = self._per[i - WINDOW_HOPS + 1:i + 1]
        return _features_db(db, per, sv, usual, pulse, span)

    def features(self, k: int, pulse: np.ndarray, start: int) -> np.ndarray:
        """The input vector for a proposal whose newest spectrum row is hop ``k`` and whose
        train's first pulse began at hop ``start``."""
        span = span_hops(k, start)
        return self._features(k, pulse, span, self._voiced_st(k, span), self.usual_st(k))

    def verify(self, k: int, pulse: np.ndarray, start: int) -> float:
        """Verified laughter-likeness (0-1) of the proposal at hop ``k`` of a train whose
        first pulse began at hop ``start``; 0 without verifying if its pitch could not pass
        the policy's check (``min_st_above_usual``)."""
        span = span_hops(k, start)
        sv = self._voiced_st(k, span)
        usual = self.usual_st(k)
        if (self._skip_below is not None and sv.size >= 3 and usual == usual
                and _quantile(sv, 0.5) - usual < self._skip_below):
            return 0.0
        h = self._features(k, pulse, span, sv, usual) @ self._w1
        h += self._b1
        z = float(np.tanh(h, out=h) @ self._w2) + self._b2
        return 1.0 / (1.0 + math.exp(-z)) if z > -700.0 else 0.0
