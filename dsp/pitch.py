"""Causal streaming pitch tracker: F0 (Hz), voicing confidence (0-1) and a voiced flag per hop.

Method
------
The frame analysis is Boersma's autocorrelation method (the one behind Praat's
``To Pitch (ac)``), made causal and vectorised over all frames of a block and all channels:

1. **Front end.** A causal IIR filter (2nd-order Butterworth high-pass at 40 Hz against DC and
   rumble, then a 6th-order elliptic low-pass at ``lowpass_hz``) and decimation to the *lag
   rate* of 8 kHz. Periodicity below 3.3 kHz is all a pitch tracker needs and all a telephone
   channel carries; halving the rate halves the cost of every transform below.
2. **Periodicity per hop.** A Hann-windowed frame of ``window_s`` (default 40 ms, 3 periods of
   75 Hz as in Praat) centred on the hop centre (the front end has removed DC). Its
   autocorrelation,
   divided by that of the window (which undoes the taper's decay with lag, Boersma 1993), is
   the periodicity ``R(tau)``: 1 for a periodic frame, about 0 for noise, independent of the
   spectral shape, and it does not need the fundamental itself - a telephone-band frame
   (300-3400 Hz) with the fundamental missing still peaks at the period. One real FFT pair
   per frame gives all lags at once (float32: ``R`` needs ~1e-4, float32 gives ~1e-7 at half
   the cost). ``R > 1`` (possible when the level changes within the frame) is reflected to
   ``1 / R``, as in Praat.
3. **Candidates.** The ``n_candidates`` highest local maxima of ``R`` in the lag range,
   refined by parabolic interpolation (lag and height), scored
   ``strength = R_peak - octave_cost * log2(tau / tau_min)`` (Praat's bias against
   sub-harmonics, whose peaks are nearly as high as the period's).
4. **Path.** A Viterbi search over {unvoiced, candidates} per hop with Praat's path costs
   (``octave_jump_cost`` per octave of F0 change between voiced hops,
   ``voiced_unvoiced_cost`` per voicing switch). The unvoiced state scores
   ``voicing_threshold`` plus Praat's silence penalty, computed from the hop's *local peak*
   (peak amplitude within a quarter period of ``fmin_hz`` either side of the hop centre,
   about the hop itself) against a slowly decaying running peak of the channel (the causal
   stand-in for Praat's global peak), and below ``silence_dbfs`` always. Taking the level
   at the hop rather than over the whole window keeps voicing from spilling past the ends
   of a voiced stretch. The search runs forward one hop at a time with its scores
   carried across blocks; each hop's decision is read by tracing back from the best state
   ``viterbi_lag_hops`` hops later (fixed-lag smoothing).
5. **Speaker range prior.** Candidates more than ``range_octaves`` from the median F0 of the
   channel's recent voiced hops (the last few seconds of voicing) lose ``range_cost`` per
   octave beyond. This removes the 3x and 4x errors of band-limited audio, where one strong
   harmonic in the first formant can look like the fundamental, without touching any F0 a
   voice reaches in speech (the median is re-estimated every 0.5 s at fixed stream positions).

Frame convention and delay
--------------------------
Input is analysis-rate audio shaped ``(n_channels, n_samples)`` with ``n_samples`` a whole
number of hops. Hop ``k`` covers samples ``[hop*k, hop*(k+1))`` and is stamped at its centre
``(k + 0.5) * hop / rate`` s; its analysis frame is centred there. The frame reaches
``frame_lookahead_hops`` hops past hop ``k`` (2 for a 40 ms window) and the Viterbi decision
waits ``viterbi_lag_hops`` more (2), so ``delay_hops`` is 4 (40 ms): result ``j`` of a call
belongs to absolute hop ``hops_seen_before_call + j - delay_hops``. Results for negative hop
indices at stream start are computed as if the stream were preceded by silence (unvoiced, F0
0) and are meant to be discarded.

Results do not depend on how the stream is cut into blocks: all state (filter memory, sample
history, running peak, path scores, range history) is carried explicitly, and everything that
changes over time does so at fixed stream positions.

Cost
----
On the appliance's 100 ms blocks (10 hops, 2 channels) a call costs ~0.2 ms on a 2-core x86:
the front-end filter and the two transforms about a third, the Viterbi loop (two numpy calls
per hop) an eighth, and the rest is the fixed cost of ~100 numpy calls on a few dozen values
each. Hence the style of the code below: buffers and views made once per block length,
0-d array constants, putmask and argmax where where and max reductions would cost more,
contiguous planes rather than slices. ``tests/bench/bench_pitch.py --speed`` measures it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from dsp._fast import frames as frame_view
from dsp._fast import irfft_rows, lfilter_zi, rfft_rows

__all__ = ["PitchFrames", "PitchTracker"]

LAG_RATE = 8000

# `front_end(16000, 3300.0)`, the analyzer's, as scipy.signal designs it (a test checks it is
# still so): designing it costs an import of scipy.signal, ~0.8 s of CPU at every start.
_FRONT_END_16K_3300 = (
    np.array([0.018252579327112065, 0.00897222200413187, 0.008547346239528948,
              -0.02283748737666589, -0.025869320388213973, -0.022837487376665896,
              0.008547346239528951, 0.00897222200413186, 0.01825257932711207]),
    np.array([1.0, -4.265990468518932, 9.112646188323083, -12.879004872355658, 12.83753670810142,
              -9.144863317973927, 4.557914866565186, -1.4406218842531906, 0.22248318404474668]))


def front_end(rate: int, lowpass_hz: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The pitch tracker's front end as one transfer function ``(b, a)`` at ``rate`` Hz: a
    2nd-order Butterworth high-pass at 40 Hz, then (unless ``lowpass_hz`` is None) a 6th-order
    elliptic low-pass (0.5 dB ripple, 60 dB stop band) at ``lowpass_hz``. For these poles one
    transfer function matches the SOS cascade to ~1e-11 and is much cheaper to call on short
    blocks."""
    if rate == 16000 and lowpass_hz == 3300.0:
        b, a = _FRONT_END_16K_3300
        return b.copy(), a.copy()
    import scipy.signal

    sos = scipy.signal.butter(2, 40.0, btype="highpass", fs=rate, output="sos")
    if lowpass_hz is not None:
        sos = np.vstack([sos, scipy.signal.ellip(6, 0.5, 60.0, lowpass_hz, fs=rate,
                                                 output="sos")])
    b, a = scipy.signal.sos2tf(sos)
    return b, a
"""Rate (Hz) at which the lag search runs."""

_LN10_20 = float(np.log(10.0) / 20.0)  # dB (amplitude) to natural log


def _k(value: float) -> np.ndarray:
    """``value`` as a read-only 0-d float64 array: as the operand of a ufunc on float64 arrays
    it gives the same result as the Python float and costs numpy about half as much (no
    scalar conversion), which counts on 100 ms blocks where every call handles a few values."""
    a = np.array(value, dtype=np.float64)
    a.flags.writeable = False
    return a


_0, _HALF, _1, _2, _20 = _k(0.0), _k(0.5), _k(1.0), _k(2.0), _k(20.0)
_NEG_HALF, _NEG_INF, _NEG_BIG = _k(-0.5), _k(-np.inf), _k(-1e9)
_TINY12, _TINY15, _TINY30 = _k(-1e-12), _k(1e-15), _k(1e-30)
_LN10_20_K, _LAG_RATE_K = _k(_LN10_20), _k(float(LAG_RATE))

_T = TypeVar("_T")

_TrackArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                     np.ndarray, tuple[list[np.ndarray], ...], list[np.ndarray]]
"""What `PitchTracker._track_arrays` keeps per block length."""


@dataclass(frozen=True)
class PitchFrames:
    """Per-hop pitch results, each array shaped ``(n_channels, n_hops)``.

    Result ``j`` of a call belongs to absolute hop ``hops_seen_before_call + j - delay_hops``
    (see :class:`PitchTracker`).
    """

    f0_hz: np.ndarray
    """Fundamental frequency in Hz (float64); 0.0 where the hop is unvoiced."""
    voicing: np.ndarray
    """Voicing confidence in [0, 1] (float64): the periodicity ``R`` of the hop at the chosen
    period (at the best candidate when unvoiced), faded towards 0 for hops near silence."""
    voiced: np.ndarray
    """Voicing decision (bool)."""
    periodicity: np.ndarray | None = None
    """Periodicity of the frames analysed in this call, before the path search: the highest
    ``R`` among the hop's candidates (0 with none), shaped ``(n_channels, n_hops)``. Unlike
    the other fields it is delayed only by the frame look-ahead: result ``j`` belongs to hop
    ``hops_seen_before_call + j - frame_lookahead_hops`` (see :class:`PitchTracker`)."""


class PitchTracker:
    """Causal, streaming, block-invariant pitch tracker (see the module docstring).

    All parameters are keyword-only.

    Parameters
    ----------
    rate:
        Input sample rate in Hz, a multiple of 8000 (the analysis rate is 16000).
    hop:
        Hop in samples at ``rate`` (160 = 10 ms at 16 kHz); a multiple of ``rate // 8000``.
    n_channels:
        Channels processed in parallel, each with its own independent track.
    fmin_hz, fmax_hz:
        F0 search range, Hz.
    window_s:
        Analysis window (Hann), seconds. At most 50 ms (the look-ahead of 2 hops).
    lowpass_hz:
        Cut-off of the front-end low-pass, Hz (below 4000).
    voicing_threshold:
        Score of the unvoiced state on the ``R`` scale (Praat's 0.45).
    octave_cost:
        Strength bias per octave of lag above the shortest lag (Praat's 0.01).
    octave_jump_cost:
        Path cost per octave of F0 change between consecutive voiced hops (Praat's 0.35).
    voiced_unvoiced_cost:
        Path cost of a voicing switch (Praat's 0.14).
    silence_dbfs:
        Hops whose local peak amplitude is below this (dB re full scale) are unvoiced.
    relative_silence_db:
        Praat's silence threshold in dB re the running peak (0.03 = -30.5 dB): hops whose
        local peak falls about 3 dB below it start being pushed to unvoiced.
    peak_decay_db_per_s:
        Decay of the running peak, dB per second.
    n_candidates:
        F0 candidates kept per hop.
    viterbi_lag_hops:
        Fixed-lag smoothing of the path, hops (adds to ``delay_hops``).
    range_octaves, range_cost:
        Speaker range prior: candidates further than ``range_octaves`` from the median of
        recent voiced F0 lose ``range_cost`` per octave beyond; ``range_cost=0`` disables it.
    """

    _RANGE_UPDATE_HOPS = 50
    """The range median is re-estimated at every multiple of this many hops of the stream."""
    _RANGE_HISTORY = 300
    """Recent voiced hops (per channel) the range median is taken over."""
    _RANGE_MIN_COUNT = 50
    """Voiced hops needed before the range prior applies."""

    def __init__(
        self,
        *,
        rate: int = 16000,
        hop: int = 160,
        n_channels: int = 1,
        fmin_hz: float = 60.0,
        fmax_hz: float = 500.0,
        window_s: float = 0.04,
        lowpass_hz: float = 3300.0,
        voicing_threshold: float = 0.45,
        octave_cost: float = 0.01,
        octave_jump_cost: float = 0.35,
        voiced_unvoiced_cost: float = 0.14,
        silence_dbfs: float = -70.0,
        relative_silence_db: float = -30.5,
        peak_decay_db_per_s: float = 1.0,
        n_candidates: int = 4,
        viterbi_lag_hops: int = 2,
        range_octaves: float = 1.0,
        range_cost: float = 1.0,
    ) -> None:
        if rate % LAG_RATE:
            raise ValueError(f"rate must be a multiple of {LAG_RATE} Hz, got {rate}")
        q = rate // LAG_RATE
        if hop <= 0 or hop % q:
            raise ValueError(f"hop must be a positive multiple of {q} samples at {rate} Hz")
        if not 0 < fmin_hz < fmax_hz <= LAG_RATE / 4:
            raise ValueError(f"need 0 < fmin_hz < fmax_hz <= {LAG_RATE / 4} Hz")
        if n_channels < 1 or n_candidates < 1 or viterbi_lag_hops < 0:
            raise ValueError("need n_channels >= 1, n_candidates >= 1, viterbi_lag_hops >= 0")
        if not 0 < lowpass_hz < LAG_RATE / 2:
            raise ValueError(f"lowpass_hz must be in (0, {LAG_RATE / 2})")
        self.rate = int(rate)
        self.hop = int(hop)
        self.n_channels = int(n_channels)
        self.fmin_hz = float(fmin_hz)
        self.fmax_hz = float(fmax_hz)
        self.voicing_threshold = float(voicing_threshold)
        self.octave_cost = float(octave_cost)
        self.octave_jump_cost = float(octave_jump_cost)
        self.voiced_unvoiced_cost = float(voiced_unvoiced_cost)
        self.silence_dbfs = float(silence_dbfs)
        self.relative_silence_db = float(relative_silence_db)
        self._silence_k = (1.0 + self.voicing_threshold) * 10.0 ** (-self.relative_silence_db / 20)
        # the same as 0-d arrays, cheaper operands (see `_k`)
        self._silence_k_k, self._silence_dbfs_k = _k(self._silence_k), _k(self.silence_dbfs)
        self._octave_cost_k, self._voicing_threshold_k = _k(octave_cost), _k(voicing_threshold)
        self._octave_jump_cost_k, self._range_octaves_k = _k(octave_jump_cost), _k(range_octaves)
        self.n_candidates = int(n_candidates)
        self.viterbi_lag_hops = int(viterbi_lag_hops)
        self.range_octaves = float(range_octaves)
        self.range_cost = float(range_cost)

        self._q = q
        hl = self._hop_l = hop // q  # hop at the lag rate
        self._peak_decay_db_per_hop = float(peak_decay_db_per_s) * hop / rate
        # Lags (lag-rate samples): peaks are searched in [lo, hi); one more lag on each side
        # serves the peak test and the interpolation.
        self._lo = max(2, int(np.floor(LAG_RATE / fmax_hz)))
        self._hi = int(np.ceil(LAG_RATE / fmin_hz)) + 1
        # Hann window centred on the hop centre; at most a look-ahead of 2 hops.
        max_n = 2 * (2 * hl + hl // 2)
        self._n = n = min(max(int(round(window_s * LAG_RATE)), 4 * self._lo), max_n)
        self._frame_start = hl // 2 - n // 2  # first sample re hop start (lag rate)
        self.frame_lookahead_hops = max(0, -(-(self._frame_start + n - hl) // hl))
        """Hops of look-ahead needed by the analysis frame."""
        self.delay_hops = self.frame_lookahead_hops + self.viterbi_lag_hops
        """Result ``j`` of a call is for absolute hop ``hops_seen_before_call + j -
        delay_hops``."""
        self._nfft = _fast_len(n + self._hi + 1)
        self._window = np.hanning(n + 2)[1:-1]
        self._window32 = self._window.astype(np.float32)
        wspec = np.fft.rfft(self._window, n=self._nfft)
        r_w = np.fft.irfft(wspec.real**2 + wspec.imag**2, n=self._nfft)
        self._inv_rw = r_w[0] / r_w[self._lo - 1 : self._hi + 1]
        lags = np.arange(self._lo, self._hi, dtype=np.float64)
        self._bias = self.octave_cost * np.log2(lags / self._lo)
        half = max(1, int(round(0.25 * LAG_RATE / fmin_hz)))  # a quarter period of fmin
        self._peak_span = (n // 2 - half, n // 2 + half + 1)

        # Front end as one transfer function: for these poles it matches the SOS cascade to
        # ~1e-11 and is much cheaper to call on short blocks.
        self._b, self._a = front_end(rate, float(lowpass_hz) if q > 1 else None)
        # Per block length (a few lengths in practice): scratch arrays and index arrays.
        self._per_h: dict[int, tuple[np.ndarray, ...]] = {}
        self._track_h: dict[int, _TrackArrays] = {}
        self.reset()

    # ------------------------------------------------------------------------------------
    def reset(self, *, keep_range: bool = False) -> None:
        """Forget the stream: the next call starts at hop 0, preceded by silence.

        ``keep_range``: keep the speaker range prior (the recent voiced F0 of each channel:
        who speaks, not what was said), as after audio was lost mid-stream."""
        c = self.n_channels
        s = self.n_candidates + 1
        lag = self.viterbi_lag_hops
        self._hops_seen = 0
        self._zi = np.zeros((c, self._a.size - 1))
        # Lag-rate history: buf[:, 0] is the first sample of the next frame to compute, the
        # frame of hop (hops_seen - frame_lookahead_hops).
        self._buf = np.zeros((c, self.frame_lookahead_hops * self._hop_l - self._frame_start))
        self._peak_db = np.full(c, -np.inf)
        self._delta = np.full((c, s), -1e9)
        self._delta[:, 0] = 0.0  # start unvoiced
        self._prev_lf = np.zeros((c, s - 1))  # log2 F0 of the previous hop's candidates
        # The last `lag` hops, (lag, c, ...): back-pointers, candidate F0 (state 0: 0 Hz),
        # confidence, silence penalty.
        self._bp_hist = np.zeros((lag, c, s), dtype=np.intp)
        self._vals_hist = np.zeros((lag, c, s, 2))
        self._pen_hist = np.zeros((lag, c))
        # Speaker range prior: ring of recent voiced log2 F0 per channel, its fill, the
        # current median (0 where not yet known) and the per-channel cost (0 until known).
        if not keep_range:
            self._ring = np.zeros((c, self._RANGE_HISTORY))
            self._ring_fill = np.zeros(c, dtype=np.intp)
            self._ring_pos = np.zeros(c, dtype=np.intp)
            self._range_centre = np.zeros(c)
            self._range_gain = np.zeros(c)
            self._range_on = False
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []  # (lf, best) since update

    # ------------------------------------------------------------------------------------
    def process(self, x: np.ndarray) -> PitchFrames:
        """Analyse a block of ``(n_channels, n_samples)`` samples, ``n_samples % hop == 0``.

        Returns one result per input hop, arrays shaped ``(n_channels, n_hops)``, delayed by
        :attr:`delay_hops` hops. A 1-D block is accepted when ``n_channels == 1``.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1 and self.n_channels == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[0] != self.n_channels:
            raise ValueError(f"expected ({self.n_channels}, n_samples), got {x.shape}")
        if x.shape[1] % self.hop:
            raise ValueError(f"n_samples must be a multiple of hop={self.hop}")
        c = self.n_channels
        h = x.shape[1] // self.hop
        if h == 0:
            z = np.zeros((c, 0))
            return PitchFrames(z, z.copy(), np.zeros((c, 0), dtype=bool), z.copy())

        y, self._zi = lfilter_zi(self._b, self._a, x, self._zi)
        arrays = self._block_arrays(h)
        # The lag-rate history and the new samples, in the block length's buffer whose frame
        # view (hop, channel) is made once.
        buf = arrays[0]
        hist = self._buf.shape[1]
        buf[:, :hist] = self._buf
        buf[:, hist:] = y[:, :: self._q]
        self._buf = buf[:, h * self._hop_l :]
        start = self._hops_seen - self.frame_lookahead_hops  # hop of the first frame
        self._hops_seen += h
        f0c, strength, conf, pen = self._candidates(arrays, h, c)
        return self._track(f0c, strength, conf, pen, start)

    # ------------------------------------------------------------------------------------
    def _candidates(
        self, arrays: tuple[np.ndarray, ...], h: int, c: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per frame of the block's buffer (``arrays``: `_block_arrays`): candidate F0
        (h, c, k) Hz, strength (h, c, k), confidence (h, c, k), and the silence penalty of the
        unvoiced state (h, c)."""
        lo, hi = self._lo, self._hi
        (_, frames, span, mag, mag_flat, at, at_off, pad, pad2, power, scale, rr, dif, up, mask,
         score, score_flat, bias, cols, flat_j, rowoff, rowoff3, idx3, w0, w1, w2, jdec,
         jdec1) = arrays
        # The transforms run in float32 (R needs ~1e-4, float32 gives 1e-7, twice as fast).
        # No local-mean removal: the front end's 40 Hz high-pass has taken DC out already.
        # `pad` is zero beyond the frame: the transform input zero-padded to nfft.
        np.multiply(frames, self._window32, out=pad[:, :, : self._n], dtype=np.float32)
        spec = rfft_rows(pad2)
        # Power spectrum |X|^2 = X conj(X) as complex (the inverse transform wants complex
        # input); its imaginary part, a b - b a, is 0 up to float32 rounding (~1e-7 of the
        # real part where numpy uses fused multiply-add): nothing R can see.
        np.multiply(spec, spec.conj(), out=power)
        r = irfft_rows(power, self._nfft)
        rr = np.multiply(r[:, lo - 1 : hi + 1],
                         np.divide(self._inv_rw, np.add(r[:, :1], _TINY30, dtype=np.float64),
                                   out=scale), out=rr)

        # Local maxima at lags lo .. hi-1 (columns 1 .. hi-lo of rr): R above its left
        # neighbour and not below its right one, i.e. the first difference turns from > 0 to
        # <= 0 (a - b > 0 exactly when a > b for finite floats, so this is the same test).
        # All on the flattened rows (one loop per call instead of one per row): what this
        # says across two rows lands in the border columns, whose `bias` is +inf.
        rr_f = rr.reshape(-1)
        np.greater(np.subtract(rr_f[1:], rr_f[:-1], out=dif), _0, out=up[1:-1])
        # Peak scores, -inf off the peaks: (m, w) in the columns of rr.
        np.subtract(rr_f, bias, out=score_flat)
        np.putmask(score_flat, np.less_equal(up[:-1], up[1:], out=mask), _NEG_INF)
        # The k best peaks, best first: k row-wise argmax, each knocking its winner out. Once
        # a row has no peak left its argmax is column 0 (all -inf), never a peak: `col > 0`
        # says a candidate is real. (Cheaper than argpartition on short rows; the order of
        # the candidates within a hop could only matter to the path search between exactly
        # equal path scores.)
        k = self.n_candidates
        for j in range(k):
            score.argmax(axis=1, out=cols[j])
            if j + 1 < k:
                score_flat[np.add(cols[j], rowoff, out=flat_j)] = _NEG_INF
        # Candidate-major from here on, (k, m): R at lag - 1, lag, lag + 1 in one gather
        # (rowoff3: row offsets in the flattened rr plus -1, 0, 1 down the first axis) and the
        # parabola through them: curvature y0 - 2 y1 + y2, half slope (y0 - y2) / 2 (the
        # products are exact, so this is the same arithmetic as a product with the matrix
        # [[1, 0.5], [-2, 0], [1, -0.5]]), vertex offset d in [-0.5, 0.5] lags, height
        # y1 - d (y0 - y2) / 4.
        y0, y1, y2 = rr_f[np.add(cols, rowoff3, out=idx3)]
        curv = np.add(np.subtract(y0, np.multiply(y1, _2, out=w0), out=w0), y2, out=w0)
        half_slope = np.multiply(np.subtract(y0, y2, out=w1), _HALF, out=w1)
        d = np.divide(half_slope, np.minimum(curv, _TINY12, out=w0), out=w0)
        np.minimum(np.maximum(d, _NEG_HALF, out=d), _HALF, out=d)
        peak = np.subtract(y1, np.multiply(np.multiply(half_slope, _HALF, out=w1), d, out=w1),
                           out=w1)
        # R > 1 (a level change within the frame) is reflected to 1 / R, as in Praat
        np.minimum(peak, np.divide(_1, np.maximum(peak, _1, out=w2), out=w2), out=peak)
        tau = np.add(cols - 1, np.add(d, lo, out=d), out=d)
        invalid = cols == 0
        strength = np.subtract(peak, np.multiply(np.log2(np.divide(tau, lo, out=w2), out=w2),
                                                 self._octave_cost_k, out=w2), out=w2)
        np.putmask(strength, invalid, _NEG_BIG)
        conf = np.maximum(peak, _0, out=w1)
        np.putmask(conf, invalid, _0)

        # The local peak, max |x| over the span at each hop centre, as the value at the
        # argmax (a row-wise argmax costs numpy a fraction of a max reduction).
        mag = np.abs(span, out=mag)
        local_peak = mag_flat[np.add(mag.argmax(axis=2, out=at), at_off, out=at)]
        local_peak += _TINY15
        level_db = np.log10(local_peak, out=local_peak)
        level_db *= _20
        pen = self._silence_penalty(level_db, jdec, jdec1)
        # (k, m) -> (h, c, k) views
        return (
            np.divide(_LAG_RATE_K, tau, out=tau).T.reshape(h, c, k),
            strength.T.reshape(h, c, k),
            conf.T.reshape(h, c, k),
            pen,
        )

    def _block_arrays(
        self, h: int
    ) -> tuple[np.ndarray, ...]:
        """Per block length ``h`` (cached; a few lengths), for the ``m = h * n_channels``
        frames in (hop, channel) order and the ``w = hi - lo + 2`` lags of the lag window, all
        flattened over (m, w) where not said: the lag-rate buffer (c, history + h * hop_l),
        its frames (h, c, n) and their local-peak spans (read-only views), scratch for the
        spans' magnitudes (h, c, span) and flattened, for the index of their maxima (h, c)
        intp and the offsets of the spans in it (h, c), the zero-padded
        float32 transform input (h, c, nfft) and (m, nfft), the complex64 power-spectrum
        buffer (m, nfft // 2 + 1), the lag weights and R (m, w), scratch for the first
        difference (m w - 1) and its sign (m w + 1, bool, False at both ends) and the non-peak
        mask (m w, bool), the peak scores (m, w) and flattened, the octave bias per lag tiled
        over the rows (m w; +inf in the border columns), the chosen columns (k, m) intp and a
        flat index (m,) intp; each row's offset in a flattened (m, w) array (m,) and that
        plus -1, 0, 1 (3, 1, m) with room for the gather index (3, k, m) intp; three (k, m)
        float64 scratch arrays; and the running-peak decay of each hop of the block (h, 1) re
        its first hop and re the hop before, dB."""
        got = self._per_h.get(h)
        if got is None:
            m = h * self.n_channels
            w = self._hi - self._lo + 2
            buf = np.zeros((self.n_channels, self._buf.shape[1] + h * self._hop_l))
            frames = frame_view(buf, h, self._hop_l, self._n, frame_major=True)
            a, b = self._peak_span
            pad = np.zeros((h, self.n_channels, self._nfft), dtype=np.float32)
            power = np.zeros((m, self._nfft // 2 + 1), dtype=np.complex64)
            bias = np.full((m, w), np.inf)
            bias[:, 1:-1] = self._bias
            rowoff = np.arange(m) * w
            jdec = (np.arange(h, dtype=np.float64) * self._peak_decay_db_per_hop)[:, None]
            score = np.empty((m, w))
            k = self.n_candidates
            mag = np.empty((h, self.n_channels, b - a))
            got = (
                buf, frames, frames[:, :, a:b], mag, mag.reshape(-1),
                np.empty((h, self.n_channels), dtype=np.intp),
                (np.arange(m) * (b - a)).reshape(h, self.n_channels), pad,
                pad.reshape(m, self._nfft), power,
                np.empty((m, w)), np.empty((m, w)), np.empty(m * w - 1),
                np.zeros(m * w + 1, dtype=bool), np.empty(m * w, dtype=bool), score,
                score.reshape(-1), bias.reshape(-1), np.empty((k, m), dtype=np.intp),
                np.empty(m, dtype=np.intp), rowoff, rowoff + np.arange(-1, 2)[:, None, None],
                np.empty((3, k, m), dtype=np.intp), np.empty((k, m)), np.empty((k, m)),
                np.empty((k, m)), jdec, jdec + self._peak_decay_db_per_hop)
            self._keep(self._per_h, h, got)
        return got

    def _silence_penalty(self, level_db: np.ndarray, j: np.ndarray,
                         j1: np.ndarray) -> np.ndarray:
        """Unvoiced-score penalty (h, c) from the local peak level (dB re full scale).

        Praat's rule with the global peak replaced by a running peak that decays by
        ``peak_decay_db_per_s``: ``max(0, 2 - (local / peak) * (1 + vt) / st)`` with ``st``
        the silence threshold as an amplitude ratio; 2 (certainly unvoiced) below
        ``silence_dbfs``. ``j`` / ``j1`` (h, 1): the decay at each hop of the block re its
        first hop / re the hop before it (``arange(h) * peak_decay_db_per_hop`` and that
        plus one hop's decay), dB.
        """
        # p_j = max(p_prev - dec*(j+1), max_{i<=j} (L_i - dec*(j-i)))  (in place below)
        peak = level_db + j
        np.maximum.accumulate(peak, axis=0, out=peak)
        peak -= j
        np.maximum(peak, self._peak_db - j1, out=peak)
        self._peak_db = peak[-1].copy()
        # (local / peak) * (1 + vt) / st = exp(ln10 / 20 * (level - peak)) * k
        ratio = np.subtract(level_db, peak, out=peak)
        ratio *= _LN10_20_K
        np.exp(ratio, out=ratio)
        ratio *= self._silence_k_k
        pen = np.subtract(_2, ratio, out=ratio)
        np.maximum(pen, _0, out=pen)
        np.putmask(pen, level_db < self._silence_dbfs_k, _2)
        return pen

    # ------------------------------------------------------------------------------------
    def _track(
        self,
        f0c: np.ndarray,
        strength: np.ndarray,
        conf: np.ndarray,
        pen: np.ndarray,
        start: int,
    ) -> PitchFrames:
        """Forward Viterbi per hop and fixed-lag trace-back; returns the delayed decisions.

        ``start`` is the absolute hop of the block's first frame.
        """
        h, c, k = f0c.shape
        s = k + 1
        lag = self.viterbi_lag_hops
        local, jump, trans, gain, tots, deltas, vals, views, trace = self._track_arrays(h)
        lf = np.log2(f0c)
        np.add(pen, self._voicing_threshold_k, out=local[:, :, 0])  # state 0 = unvoiced
        local[:, :, 1:] = strength
        # Transition costs of every hop of the block: (h, c, s_prev, s_cur); the voicing
        # switches are preset, the octave jumps between candidates filled in here.
        prev_lf = np.concatenate([self._prev_lf[None], lf[:-1]], axis=0)
        self._prev_lf = lf[-1]
        np.subtract(prev_lf[:, :, :, None], lf[:, :, None, :], out=jump)
        np.multiply(np.abs(jump, out=jump), self._octave_jump_cost_k, out=trans[:, :, 1:, 1:])

        bp = np.empty((lag + h, c, s), dtype=np.intp)
        bp[:lag] = self._bp_hist
        use_range = self.range_cost > 0
        u = self._RANGE_UPDATE_HOPS
        next_update = (-start) % u if use_range else h  # first i with (start + i) % u == 0
        pushed = 0  # hops of this block already handed to the range estimate
        if use_range:
            self._apply_range(local, lf, 0, min(next_update, h))
        # gain[i, ch, prev, cur]: local score of `cur` minus the cost of prev -> cur.
        np.subtract(local[:, :, None, :], trans, out=gain)
        renorm = (255 - start) % 256  # next i with (start + i) % 256 == 255
        # tots[i, ch, prev, cur]: path score of prev at hop i - 1 plus the gain of prev -> cur;
        # the back-pointers are the argmax over prev, taken for all hops after the loop. The
        # loop runs between the hops where something else happens (a range update, a
        # renormalisation), on views made once per block length.
        gain_i, tots_i, deltas_i, prev_i = views
        add, best_of = np.add, np.maximum.reduce
        prev = self._delta[:, :, None]
        i = 0
        while i < h:
            if i == next_update:
                self._pending.append((lf[pushed:i], deltas[pushed:i].argmax(axis=2)))
                pushed = i
                self._update_range()
                i1 = min(i + u, h)
                if self._apply_range(local, lf, i, i1):
                    np.subtract(local[i:i1, :, None, :], trans[i:i1], out=gain[i:i1])
                next_update += u
            stop = min(next_update, renorm + 1, h)
            for j in range(i, stop):
                best_of(add(prev, gain_i[j], tots_i[j]), axis=1, out=deltas_i[j])
                prev = prev_i[j]
            i = stop
            if i - 1 == renorm:
                # keep the scores bounded, at fixed stream positions
                deltas[i - 1] -= deltas[i - 1, :, :1]
                renorm += 256
        self._delta = deltas[h - 1].copy()
        tots.argmax(axis=2, out=bp[lag:])
        best = deltas.argmax(axis=2)  # (h, c)
        if use_range and pushed < h:
            self._pending.append((lf[pushed:], best[pushed:]))

        # Fixed-lag trace-back: the decision for frame i - lag follows the back-pointers
        # from the best state at frame i. vals[..., state, 0] is F0, [..., 1] confidence.
        vals[:lag] = self._vals_hist  # (the F0 of state 0 is preset to 0 Hz)
        best_r = vals[lag:, :, 0, 1]
        np.maximum.reduce(conf, axis=2, out=best_r)
        vals[lag:, :, 1:, 0] = f0c
        vals[lag:, :, 1:, 1] = conf
        pen_all = np.concatenate([self._pen_hist, pen], axis=0)
        # trace[step] (h, c): flat index of (row lag - step + i, channel, state 0) in bp / vals
        state = best
        bpf = bp.reshape(-1)
        for step in range(lag):
            state = bpf[trace[step] + state]
        out = vals.reshape(-1, 2)[trace[lag] + state]  # (h, c, 2)
        # pen is in [0, 2]: a factor in [0, 1]
        voicing = out[:, :, 1] * np.subtract(_1, np.multiply(pen_all[:h], _HALF))
        voiced = state > 0
        self._bp_hist = bp[h:]
        self._vals_hist = vals[h:]
        self._pen_hist = pen_all[h:]
        return PitchFrames(out[:, :, 0].T.copy(), voicing.T, voiced.T, best_r.T.copy())

    def _track_arrays(self, h: int) -> _TrackArrays:
        """Per block length ``h`` (cached; a few lengths) the path search's arrays, reused
        across calls: local scores (h, c, s), scratch for the octave jumps (h, c, k, k),
        transition costs (h, c, s_prev, s_cur) with the voicing-switch costs filled in, gains
        and totals (h, c, s_prev, s_cur), path scores (h, c, s), the values traced back
        (lag + h, c, s, 2) (the F0 of state 0 stays 0; see `_track`); per hop the views
        ``gain[i]``, ``tots[i]``, ``deltas[i]`` and ``deltas[i][:, :, None]``; and the
        trace-back index (`_trace_index`)."""
        got = self._track_h.get(h)
        if got is None:
            s = self.n_candidates + 1
            c = self.n_channels
            trans = np.empty((h, c, s, s))
            trans[:, :, 0, 0] = 0.0
            trans[:, :, 0, 1:] = self.voiced_unvoiced_cost
            trans[:, :, 1:, 0] = self.voiced_unvoiced_cost
            gain, tots, deltas = np.empty((h, c, s, s)), np.empty((h, c, s, s)), np.empty((h, c, s))
            views = (list(gain), list(tots), list(deltas), [d[:, :, None] for d in deltas])
            vals = np.zeros((self.viterbi_lag_hops + h, c, s, 2))
            got = (np.empty((h, c, s)), np.empty((h, c, s - 1, s - 1)), trans, gain, tots, deltas,
                   vals, views, self._trace_index(h))
            self._keep(self._track_h, h, got)
        return got

    _CACHE_MAX_HOPS = 1000
    """Buffers are kept for block lengths up to this many hops (10 s at 10 ms hops): a
    longer block, say a whole file in one call, gets its own and gives them back."""

    @classmethod
    def _keep(cls, cache: dict[int, _T], h: int, arrays: _T) -> None:
        """Keep ``arrays`` for block length ``h`` in ``cache`` (a few lengths, short ones)."""
        if h <= cls._CACHE_MAX_HOPS:
            if len(cache) >= 8:
                cache.clear()
            cache[h] = arrays

    def _trace_index(self, h: int) -> list[np.ndarray]:
        """Per step 0 .. lag of the fixed-lag trace-back, the flat index (h, c) of state 0 of
        rows ``lag - step .. lag - step + h`` and every channel in a C-contiguous
        (lag + h, c, s) array."""
        lag, c, s = self.viterbi_lag_hops, self.n_channels, self.n_candidates + 1
        chans = np.arange(c)[None, :]
        return [(np.arange(lag - step, lag - step + h)[:, None] * c + chans) * s
                for step in range(lag + 1)]

    # --- speaker range prior ---------------------------------------------------------------
    def _update_range(self) -> None:
        """At a fixed stream position: add the voiced hops since the last update (log2 F0 of
        the forward-best state) to each channel's ring and take the ring's median."""
        lfs = np.concatenate([p[0] for p in self._pending], axis=0)
        best = np.concatenate([p[1] for p in self._pending], axis=0)
        self._pending = []
        if best.size == 0:
            return
        chans = np.arange(best.shape[1])[None, :]
        vals = lfs[np.arange(best.shape[0])[:, None], chans, np.maximum(best - 1, 0)]
        size = self._RANGE_HISTORY
        for ch in range(best.shape[1]):
            v = vals[best[:, ch] > 0, ch][-size:]
            if v.size == 0:
                continue
            pos = self._ring_pos[ch]
            self._ring[ch, (pos + np.arange(v.size)) % size] = v
            self._ring_pos[ch] = (pos + v.size) % size
            n = self._ring_fill[ch] = min(self._ring_fill[ch] + v.size, size)
            if n >= self._RANGE_MIN_COUNT:
                self._range_centre[ch] = np.partition(self._ring[ch, :n], n // 2)[n // 2]
                self._range_gain[ch] = self.range_cost
                self._range_on = True

    def _apply_range(self, local: np.ndarray, lf: np.ndarray, i0: int, i1: int) -> bool:
        """Penalise the candidates of hops i0..i1 further than ``range_octaves`` from the
        channel's median F0 (``range_cost`` per octave beyond; nothing until it is known).
        Returns whether anything was applied."""
        if i1 <= i0 or not self._range_on:
            return False
        excess = np.abs(lf[i0:i1] - self._range_centre[:, None])
        excess -= self._range_octaves_k
        np.maximum(excess, _0, out=excess)
        excess *= self._range_gain[:, None]
        local[i0:i1, :, 1:] -= excess
        return True


def _fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (a fast FFT size)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best
