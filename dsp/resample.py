"""Streaming rational-rate resampler (polyphase FIR) with its filter state carried across blocks.

Any capture rate (8, 16, 20, 44.1, 48 kHz ...) is converted to the analysis rate. Output sample
``m`` is computed from input samples up to index ``floor(m * down / up)`` only, so the result is
causal and identical however the input is cut into blocks.
"""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.signal import firwin


class StreamResampler:
    """Converts ``(n_channels, n)`` float blocks from ``rate_in`` to ``rate_out`` (Hz).

    The anti-alias low-pass cuts at 0.45 x the lower of the two rates (7.2 kHz for 16 kHz
    output: the analysis needs nothing above), Kaiser window, about 80 dB stop band.
    Group delay: ``delay_s`` seconds, constant.
    """

    def __init__(self, *, rate_in: int, rate_out: int = 16000, n_channels: int = 1,
                 taps_per_phase: int = 32):
        if rate_in <= 0 or rate_out <= 0:
            raise ValueError("rates must be positive")
        g = gcd(int(rate_in), int(rate_out))
        self.up = int(rate_out) // g
        self.down = int(rate_in) // g
        self.rate_in = int(rate_in)
        self.rate_out = int(rate_out)
        self.n_channels = n_channels
        self.passthrough = self.up == 1 and self.down == 1
        k = taps_per_phase
        n_taps = k * self.up
        cutoff = 0.45 * min(rate_in, rate_out) / (0.5 * rate_in * self.up)
        h = firwin(n_taps, cutoff, window=("kaiser", 8.0)) * self.up
        # Phase p holds taps h[p], h[p + up], ...; output m uses phase (m*down) % up and input
        # samples i, i-1, ..., i-k+1 with i = (m*down) // up.
        self.phases = h.reshape(k, self.up).T.copy()  # (up, k)
        self.k = k
        self.delay_s = (n_taps - 1) / 2 / (rate_in * self.up)
        self._hist = np.zeros((n_channels, k))
        self._n_in = 0  # input samples consumed so far
        self._m = 0  # next output sample index

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed ``x`` (n_channels, n) at ``rate_in``; return every output sample now computable."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if self.passthrough:
            return x.copy()
        buf = np.concatenate([self._hist, x], axis=1)
        n_total = self._n_in + x.shape[1]
        # outputs m with floor(m*down/up) <= n_total - 1
        m_end = ((n_total - 1) * self.up) // self.down + 1 if n_total > 0 else 0
        m = np.arange(self._m, m_end)
        if m.size:
            pos = (m * self.down) // self.up  # absolute input index of the newest tap
            phase = (m * self.down) % self.up
            # buffer index of absolute input index a is a - (self._n_in - k)
            base = pos - (self._n_in - self.k)
            idx = base[:, None] - np.arange(self.k)[None, :]  # (M, k)
            taps = self.phases[phase]  # (M, k)
            y = np.einsum("cmk,mk->cm", buf[:, idx], taps)
        else:
            y = np.zeros((x.shape[0], 0))
        self._n_in = n_total
        self._m = m_end
        self._hist = buf[:, buf.shape[1] - self.k:]
        return y
