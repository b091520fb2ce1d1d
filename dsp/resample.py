"""Streaming rational-rate resampler (polyphase FIR) with its filter state carried across blocks.

Any capture rate (8, 16, 20, 44.1, 48 kHz ...) is converted to the analysis rate. Output sample
``m`` sits at input time ``m * down / up`` and is computed from input samples up to that time
only, so the result is causal and identical however the input is cut into blocks.

Decimating by a whole factor (48, 32 or 96 kHz to 16 kHz: the captures the appliance meets),
the filter is one matrix product (BLAS, float32 for a 16-bit capture): the input is cut in
frames of ``_TILE`` outputs' worth plus the filter's reach, and a fixed matrix of the taps
gives those outputs; at 100 ms blocks of 48 kHz stereo this costs ~25 us instead of ~135 us
for scipy's polyphase `upfirdn` kernel (C, one scalar multiply-add at a time), which remains
for rational ratios (44.1 kHz). Every product has the same shape (``_ROWS`` frames), so each
output is computed by the same code path whatever the block cuts: bit for bit invariant.
"""

from __future__ import annotations

import math
from math import gcd

import numpy as np

from dsp._fast import upfirdn_prepare, upfirdn_rows

_TILE = 32  # outputs per frame of the decimating product
_ROWS = 128  # frames per matrix product: every product has this one shape

# Chebyshev coefficients of exp(-x) I0(x) on [0, 8] and of exp(-x) sqrt(x) I0(x) on (8, inf),
# from the Cephes library (S. L. Moshier), as scipy.special.i0 and numpy.i0 use them.
_I0_A = (-4.4153416464793395e-18, 3.3307945188222384e-17, -2.431279846547955e-16,
         1.715391285555133e-15, -1.1685332877993451e-14, 7.676185498604936e-14,
         -4.856446783111929e-13, 2.95505266312964e-12, -1.726826291441556e-11,
         9.675809035373237e-11, -5.189795601635263e-10, 2.6598237246823866e-09,
         -1.300025009986248e-08, 6.046995022541919e-08, -2.670793853940612e-07,
         1.1173875391201037e-06, -4.4167383584587505e-06, 1.6448448070728896e-05,
         -5.754195010082104e-05, 0.00018850288509584165, -0.0005763755745385824,
         0.0016394756169413357, -0.004324309995050576, 0.010546460394594998, -0.02373741480589947,
         0.04930528423967071, -0.09490109704804764, 0.17162090152220877, -0.3046826723431984,
         0.6767952744094761)
_I0_B = (-7.233180487874754e-18, -4.830504485944182e-18, 4.46562142029676e-17,
         3.461222867697461e-17, -2.8276239805165836e-16, -3.425485619677219e-16,
         1.7725601330565263e-15, 3.8116806693526224e-15, -9.554846698828307e-15,
         -4.150569347287222e-14, 1.54008621752141e-14, 3.8527783827421426e-13,
         7.180124451383666e-13, -1.7941785315068062e-12, -1.3215811840447713e-11,
         -3.1499165279632416e-11, 1.1889147107846439e-11, 4.94060238822497e-10,
         3.3962320257083865e-09, 2.266668990498178e-08, 2.0489185894690638e-07,
         2.8913705208347567e-06, 6.889758346916825e-05, 0.0033691164782556943, 0.8044904110141088)


def _chbevl(x: np.ndarray, coefs: tuple[float, ...]) -> np.ndarray:
    b0, b1, b2 = np.full_like(x, coefs[0]), np.zeros_like(x), np.zeros_like(x)
    for c in coefs[1:]:
        b2, b1 = b1, b0
        b0 = x * b1 - b2 + c
    return 0.5 * (b0 - b2)


def bessel_i0(x: np.ndarray) -> np.ndarray:
    """The modified Bessel function I0 of float64 ``x``: the same numbers as
    ``scipy.special.i0`` (Cephes' algorithm, the same C library ``exp``; a test compares them)
    without importing scipy.special (~0.2 s of CPU at start)."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    e = np.array([math.exp(v) for v in x.ravel()]).reshape(x.shape)
    out = np.empty_like(x)
    small = x <= 8.0
    out[small] = e[small] * _chbevl(x[small] / 2.0 - 2.0, _I0_A)
    big = x[~small]
    out[~small] = e[~small] * _chbevl(32.0 / big - 2.0, _I0_B) / np.sqrt(big)
    return out


def kaiser_lowpass(n_taps: int, cutoff: float, stop_db: float) -> np.ndarray:
    """``scipy.signal.firwin(n_taps, cutoff, window=("kaiser", kaiser_beta(stop_db)))``, the
    same numbers (a test compares them), without importing scipy.signal (~0.8 s of CPU at
    start); ``cutoff`` is a fraction of Nyquist."""
    a = stop_db
    beta = (0.1102 * (a - 8.7) if a > 50 else
            0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21) if a > 21 else 0.0)
    m = np.arange(0, n_taps, dtype=np.float64) - 0.5 * (n_taps - 1)
    h = cutoff * np.sinc(cutoff * m) - 0.0 * np.sinc(0.0 * m)
    alpha = (n_taps - 1) / 2.0
    n = np.arange(0, n_taps, dtype=np.float64)
    h *= (bessel_i0(beta * np.sqrt(1 - ((n - alpha) / alpha) ** 2.0))
          / bessel_i0(np.asarray(beta, dtype=np.float64)))
    h /= np.sum(h * np.cos(np.pi * m * 0.0))
    return h


class StreamResampler:
    """Converts ``(n_channels, n)`` float blocks from ``rate_in`` to ``rate_out`` (Hz).

    Low-pass (Kaiser window, ``stop_db`` attenuation), pass band to ``0.425 x`` the lower
    rate (6.8 kHz for 16 kHz out). Downsampling, the stop band starts at ``0.575 x`` the
    output rate (9.2 kHz): what lies between the output's Nyquist and there (8-9.2 kHz) folds
    back only onto 6.8-8 kHz, above the pass band, and the wider transition halves the taps
    (74 instead of 147 for 48 -> 16 kHz), the resampler's CPU and its delay. Upsampling, the
    stop band starts at the input's Nyquist, so no image lands above the input's band.
    Constant group delay ``delay_s`` seconds.
    """

    def __init__(self, *, rate_in: int, rate_out: int = 16000, n_channels: int = 1,
                 stop_db: float = 60.0, dtype: type = np.float64):
        """``dtype``: the arithmetic and the output, float64 or float32 (for 16-bit audio
        float32's rounding, ~-140 dB, is far below the input's own, and its filter runs
        about 30 % faster)."""
        if rate_in <= 0 or rate_out <= 0:
            raise ValueError("rates must be positive")
        g = gcd(int(rate_in), int(rate_out))
        self.up, self.down = int(rate_out) // g, int(rate_in) // g
        self.rate_in, self.rate_out, self.n_channels = int(rate_in), int(rate_out), n_channels
        self.passthrough = self.up == 1 and self.down == 1
        fs = rate_in * self.up  # the filter runs at the upsampled rate
        low = min(rate_in, rate_out)
        stop = 0.575 if rate_out < rate_in else 0.5  # stop-band edge, fraction of `low`
        width = (stop - 0.425) * low / (0.5 * fs)  # transition width, fraction of Nyquist
        a = stop_db
        n_taps = int(np.ceil((a - 7.95) / (2.285 * np.pi * width))) + 1
        n_taps += (-n_taps) % self.up  # whole taps per phase
        self.h = (np.ones(1) if self.passthrough
                  else kaiser_lowpass(n_taps, (0.425 + stop) / 2 * low / (0.5 * fs), a) * self.up)
        self.dtype = np.dtype(dtype)
        self._h_prepared = upfirdn_prepare(self.h, self.up, self.dtype.type)
        self.n_taps = n_taps
        self.delay_s = (n_taps - 1) / 2 / fs
        # History: enough input samples to cover the filter, rounded so that the buffer start
        # is always on the output grid (absolute input index multiple of `down`).
        self._hist_len = int(np.ceil(n_taps / self.up)) + 1
        self._hist_len += (-self._hist_len) % self.down
        self._decimate = self.up == 1 and not self.passthrough
        if self._decimate:
            # Output m = sum_i h[i] x[down m - i]. Frame t holds the inputs from
            # down t _TILE - reach on, reach >= n_taps - 1 (a multiple of `down`), and column j
            # of `_taps` the taps that give output t _TILE + j from it: zero where output j
            # does not reach, so inputs not heard yet (zero padded) never change an output.
            d = self.down
            self._reach = max(d, -(-(n_taps - 1) // d) * d)
            self._frame = d * _TILE + self._reach
            taps = np.zeros((self._frame, _TILE))
            for j in range(_TILE):
                taps[self._reach + d * j - np.arange(n_taps), j] = self.h
            self._taps = taps.astype(self.dtype)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next block is converted as the first one, preceded by
        silence (after audio was lost: no output joins samples from both sides of it)."""
        self._hist = np.zeros((self.n_channels, self._hist_len), self.dtype)
        self._n_in = 0  # input samples consumed
        self._m = 0  # next output index
        if self._decimate:
            # inputs from the frame of the first tile not fully output; before sample 0: silence
            self._tail = np.zeros((self.n_channels, self._reach), self.dtype)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed ``x`` (n_channels, n) at ``rate_in``; return every output sample now
        computable, in the resampler's dtype."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim == 1:
            x = x[None, :]
        if self.passthrough:
            return x.copy()
        if self._decimate:
            return self._decimate_block(x)
        n_total = self._n_in + x.shape[1]
        # outputs m with m*down/up <= n_total - 1 (the newest input sample)
        m_end = ((n_total - 1) * self.up) // self.down + 1 if n_total > 0 else 0
        if m_end <= self._m:
            self._append(x, n_total)
            return np.zeros((x.shape[0], 0), self.dtype)
        buf = np.concatenate([self._hist, x], axis=1)
        s0 = self._n_in - self._hist.shape[1]  # absolute index of buf[0]; multiple of `down`
        # Only the outputs m in [self._m, m_end) are needed: trim the buffer to what they use.
        first_in = max(0, (self._m * self.down - (self.n_taps - 1)) // self.up - 1)
        skip = max(0, first_in - s0)
        skip -= skip % self.down  # keep buf start on the output grid
        buf = buf[:, skip:]
        s0 += skip
        y = upfirdn_rows(self.h, self._h_prepared, buf, self.up, self.down)
        j0 = self._m - (s0 * self.up) // self.down
        out = y[:, j0: j0 + (m_end - self._m)]
        self._m = m_end
        self._append(x, n_total)
        return out

    def _decimate_block(self, x: np.ndarray) -> np.ndarray:
        """`process` when ``up == 1``: whole frames through the taps matrix."""
        n_total = self._n_in + x.shape[1]
        m_end = (n_total - 1) // self.down + 1 if n_total > 0 else 0
        buf = np.concatenate([self._tail, x], axis=1)
        self._n_in = n_total
        t0 = self._m // _TILE  # buf starts at input down t0 _TILE - reach
        if m_end <= self._m:
            self._tail = buf
            return np.zeros((x.shape[0], 0), self.dtype)
        c, step = x.shape[0], self.down * _TILE
        nt = -(-m_end // _TILE) - t0
        need = nt * step + self._reach
        if buf.shape[1] < need:  # the last frame reaches past the newest input: zeros
            buf = np.concatenate([buf, np.zeros((c, need - buf.shape[1]), self.dtype)],
                                 axis=1)
        rows = c * nt
        frames = np.zeros((-(-rows // _ROWS) * _ROWS, self._frame), self.dtype)
        s0, s1 = buf.strides
        frames[:rows].reshape(c, nt, self._frame)[...] = np.ndarray(
            (c, nt, self._frame), self.dtype, buf, 0, (s0, step * s1, s1))
        y = np.empty((frames.shape[0], _TILE), self.dtype)
        for a in range(0, frames.shape[0], _ROWS):
            np.matmul(frames[a:a + _ROWS], self._taps, out=y[a:a + _ROWS])
        first = t0 * _TILE
        out = y[:rows].reshape(c, nt * _TILE)[:, self._m - first:m_end - first]
        # keep the inputs from the first frame not fully output to the newest (not the zeros)
        heard = n_total - (t0 * step - self._reach)
        self._tail = buf[:, (m_end // _TILE - t0) * step:heard].copy()
        self._m = m_end
        return out

    def _append(self, x: np.ndarray, n_total: int) -> None:
        """Keep the last `_hist_len` input samples, ending at absolute index n_total - 1, but
        starting on the output grid: pad with older samples so (n_total - len) % down == 0."""
        joined = np.concatenate([self._hist, x], axis=1)
        keep = self._hist_len + ((n_total - self._hist_len) % self.down)
        if keep > joined.shape[1]:  # early in the stream: the past before sample 0 is silence
            joined = np.pad(joined, ((0, 0), (keep - joined.shape[1], 0)))
        self._hist = joined[:, joined.shape[1] - keep:]
        self._n_in = n_total
