"""Streaming rational-rate resampler (polyphase FIR) with its filter state carried across blocks.

Any capture rate (8, 16, 20, 44.1, 48 kHz ...) is converted to the analysis rate. Output sample
``m`` sits at input time ``m * down / up`` and is computed from input samples up to that time
only, so the result is causal and identical however the input is cut into blocks. The heavy
lifting is scipy's polyphase `upfirdn` kernel (C), run over the new block plus the filter's
history.
"""

from __future__ import annotations

from math import gcd

import numpy as np

from dsp._fast import upfirdn_prepare, upfirdn_rows


def kaiser_lowpass(n_taps: int, cutoff: float, stop_db: float) -> np.ndarray:
    """``scipy.signal.firwin(n_taps, cutoff, window=("kaiser", kaiser_beta(stop_db)))``, the
    same numbers (a test compares them), without importing scipy.signal (~0.8 s of CPU at
    start); ``cutoff`` is a fraction of Nyquist."""
    import scipy.special  # the Kaiser window's Bessel I0, as scipy's window uses it

    a = stop_db
    beta = (0.1102 * (a - 8.7) if a > 50 else
            0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21) if a > 21 else 0.0)
    m = np.arange(0, n_taps, dtype=np.float64) - 0.5 * (n_taps - 1)
    h = cutoff * np.sinc(cutoff * m) - 0.0 * np.sinc(0.0 * m)
    alpha = (n_taps - 1) / 2.0
    n = np.arange(0, n_taps, dtype=np.float64)
    h *= (scipy.special.i0(beta * np.sqrt(1 - ((n - alpha) / alpha) ** 2.0))
          / scipy.special.i0(np.asarray(beta, dtype=np.float64)))
    h /= np.sum(h * np.cos(np.pi * m * 0.0))
    return h


class StreamResampler:
    """Converts ``(n_channels, n)`` float blocks from ``rate_in`` to ``rate_out`` (Hz).

    Anti-alias low-pass: pass band to ``0.425 x`` the lower rate (6.8 kHz for 16 kHz out),
    stop band from ``0.5 x`` (8 kHz), ``stop_db`` attenuation (Kaiser window). Constant group
    delay ``delay_s`` seconds.
    """

    def __init__(self, *, rate_in: int, rate_out: int = 16000, n_channels: int = 1,
                 stop_db: float = 60.0):
        if rate_in <= 0 or rate_out <= 0:
            raise ValueError("rates must be positive")
        g = gcd(int(rate_in), int(rate_out))
        self.up, self.down = int(rate_out) // g, int(rate_in) // g
        self.rate_in, self.rate_out, self.n_channels = int(rate_in), int(rate_out), n_channels
        self.passthrough = self.up == 1 and self.down == 1
        fs = rate_in * self.up  # the filter runs at the upsampled rate
        low = min(rate_in, rate_out)
        width = (0.5 - 0.425) * low / (0.5 * fs)  # transition width, fraction of Nyquist
        a = stop_db
        n_taps = int(np.ceil((a - 7.95) / (2.285 * np.pi * width))) + 1
        n_taps += (-n_taps) % self.up  # whole taps per phase
        # a pass-through needs no filter (and so no scipy.special import)
        self.h = (np.ones(1) if self.passthrough
                  else kaiser_lowpass(n_taps, 0.4625 * low / (0.5 * fs), a) * self.up)
        self._h_prepared = upfirdn_prepare(self.h, self.up)
        self.n_taps = n_taps
        self.delay_s = (n_taps - 1) / 2 / fs
        # History: enough input samples to cover the filter, rounded so that the buffer start
        # is always on the output grid (absolute input index multiple of `down`).
        self._hist_len = int(np.ceil(n_taps / self.up)) + 1
        self._hist_len += (-self._hist_len) % self.down
        self._hist = np.zeros((n_channels, self._hist_len))
        self._n_in = 0  # input samples consumed
        self._m = 0  # next output index

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed ``x`` (n_channels, n) at ``rate_in``; return every output sample now computable."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if self.passthrough:
            return x.copy()
        n_total = self._n_in + x.shape[1]
        # outputs m with m*down/up <= n_total - 1 (the newest input sample)
        m_end = ((n_total - 1) * self.up) // self.down + 1 if n_total > 0 else 0
        if m_end <= self._m:
            self._append(x, n_total)
            return np.zeros((x.shape[0], 0))
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

    def _append(self, x: np.ndarray, n_total: int) -> None:
        """Keep the last `_hist_len` input samples, ending at absolute index n_total - 1, but
        starting on the output grid: pad with older samples so (n_total - len) % down == 0."""
        joined = np.concatenate([self._hist, x], axis=1)
        keep = self._hist_len + ((n_total - self._hist_len) % self.down)
        if keep > joined.shape[1]:  # early in the stream: the past before sample 0 is silence
            joined = np.pad(joined, ((0, 0), (keep - joined.shape[1], 0)))
        self._hist = joined[:, joined.shape[1] - keep:]
        self._n_in = n_total
