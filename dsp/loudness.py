"""K-weighted loudness per ITU-R BS.1770-4: momentary (400 ms), short-term (3 s), integrated.

The K-weighting filter (pre-filter high shelf + RLB high-pass) is designed for any sample rate
from its analogue parameters by the bilinear transform with pre-warping; at 48 kHz the
coefficients equal the ones printed in BS.1770. Loudness is
``-0.691 + 10 log10(sum_c G_c * mean(z_c^2))`` LUFS, with channel weights ``G_c`` = 1 for
left/right/centre.
"""

from __future__ import annotations

import numpy as np

from dsp._fast import sosfilt_inplace, windows

LUFS_OFFSET = -0.691
SILENCE_LUFS = -120.0


def _biquad(b0: float, b1: float, b2: float, a0: float, a1: float, a2: float) -> np.ndarray:
    return np.array([b0 / a0, b1 / a0, b2 / a0, 1.0, a1 / a0, a2 / a0])


def k_weighting_sos(rate: int) -> np.ndarray:
    """Second-order sections of the K-weighting filter at ``rate`` Hz, shape (2, 6).

    Analogue parameters as derived from the BS.1770 48 kHz coefficients (high shelf +3.9998 dB
    at 1681.97 Hz, Q 0.7072; high-pass 38.135 Hz, Q 0.5003), mapped with pre-warping.
    """
    # Stage 1: high shelf
    g_db, q1, f1 = 3.999843853973347, 0.7071752369554196, 1681.974450955533
    k = np.tan(np.pi * f1 / rate)
    vh = 10 ** (g_db / 20)
    vb = vh ** 0.4996667741545416
    a0 = 1 + k / q1 + k * k
    shelf = _biquad(vh + vb * k / q1 + k * k, 2 * (k * k - vh), vh - vb * k / q1 + k * k,
                    a0, 2 * (k * k - 1), 1 - k / q1 + k * k)
    # Stage 2: high-pass (RLB)
    q2, f2 = 0.5003270373238773, 38.13547087602444
    k = np.tan(np.pi * f2 / rate)
    a0 = 1 + k / q2 + k * k
    hp = _biquad(1.0, -2.0, 1.0, a0, 2 * (k * k - 1), 1 - k / q2 + k * k)
    # The RLB numerator is un-normalised in BS.1770 (b = 1, -2, 1): keep a0 only in the poles.
    hp[:3] = [1.0, -2.0, 1.0]
    return np.vstack([shelf, hp])


def power_to_lufs(mean_square: np.ndarray) -> np.ndarray:
    """Mean square of K-weighted samples (summed over channels) to LUFS, floored at -120."""
    ms = np.asarray(mean_square, dtype=np.float64)
    with np.errstate(divide="ignore"):
        out = LUFS_OFFSET + 10.0 * np.log10(ms)
    return np.maximum(out, SILENCE_LUFS)


class KWeightedEnergy:
    """Streaming K-weighting: per-hop sums of squared K-weighted samples for each channel.

    ``process(x)`` takes ``(n_channels, n)`` with ``n`` a multiple of ``hop`` and returns the
    per-hop energy ``(n_channels, n // hop)`` (sum over the hop's samples of z^2).
    """

    def __init__(self, *, rate: int = 16000, hop: int = 160, n_channels: int = 1):
        self.rate, self.hop, self.n_channels = rate, hop, n_channels
        self.sos = k_weighting_sos(rate)
        self._zi = np.zeros((n_channels, self.sos.shape[0], 2))  # filter state per channel

    def process(self, x: np.ndarray) -> np.ndarray:
        """Per-hop sums of squared K-weighted samples (n_channels, n // hop), full scale 1.0."""
        n_hops = x.shape[1] // self.hop
        z = np.array(x, dtype=np.float64, order="C")  # filtered in place
        sosfilt_inplace(self.sos, z, self._zi)
        z = z[:, : n_hops * self.hop].reshape(x.shape[0], n_hops, self.hop)
        return np.einsum("chs,chs->ch", z, z)


class WindowedLoudness:
    """Sliding-window loudness over the last ``window_hops`` hops, updated every hop.

    Takes per-hop K-weighted energies (n_channels, H) (sums of squares, as `KWeightedEnergy`
    returns them) and returns each channel's mean square over the window ending at each hop
    (n_channels, H), for `power_to_lufs`. The window before the first hop is zero (silence),
    as a meter that has just been switched on.
    """

    def __init__(self, *, window_hops: int, hop: int = 160, n_channels: int = 1):
        self.window_hops, self.hop = window_hops, hop
        self._hist = np.zeros((n_channels, window_hops - 1))
        self._norm = window_hops * hop

    def mean_square(self, energy: np.ndarray) -> np.ndarray:
        """Mean square per channel over the window ending at each input hop."""
        buf = np.concatenate([self._hist, energy], axis=1)
        self._hist = buf[:, buf.shape[1] - (self.window_hops - 1):]
        return np.add.reduce(windows(buf, self.window_hops), axis=-1) / self._norm


class LoudnessMeter:
    """BS.1770 meter for a group of channels measured together (e.g. a stereo programme).

    ``process(x)`` returns momentary and short-term loudness (LUFS) for each input hop, the
    window ending at that hop's end. ``integrated()`` gives the gated integrated loudness
    (absolute gate -70 LUFS, relative gate -10 LU) over 400 ms blocks with 75 % overlap.
    """

    def __init__(self, *, rate: int = 16000, hop: int = 160, n_channels: int = 1):
        if rate % 10 != 0 or (rate // 10) % hop != 0:
            raise ValueError("the 100 ms gating step must be a whole number of hops")
        self.k = KWeightedEnergy(rate=rate, hop=hop, n_channels=n_channels)
        mom = round(0.4 * rate / hop)
        self.momentary = WindowedLoudness(window_hops=mom, hop=hop, n_channels=1)
        self.short = WindowedLoudness(window_hops=round(3.0 * rate / hop), hop=hop, n_channels=1)
        self._step = (rate // 10) // hop  # hops per 100 ms
        self._mom_hops = mom
        self._hops = 0
        self._blocks: list[np.ndarray] = []

    def process(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Momentary (400 ms) and short-term (3 s) loudness, LUFS, one of each per input hop."""
        e = self.k.process(x).sum(axis=0, keepdims=True)
        ms_m = self.momentary.mean_square(e)[0]
        ms_s = self.short.mean_square(e)[0]
        # gating blocks: 400 ms windows ending on every 100 ms boundary after the first 400 ms
        idx = self._hops + np.arange(e.shape[1]) + 1  # hops completed at each output
        sel = (idx % self._step == 0) & (idx >= self._mom_hops)
        self._blocks.append(ms_m[sel])
        self._hops += e.shape[1]
        return power_to_lufs(ms_m), power_to_lufs(ms_s)

    def integrated(self) -> float:
        """Gated integrated loudness (LUFS) of everything fed so far; -120 if all gated."""
        z = np.concatenate(self._blocks) if self._blocks else np.zeros(0)
        z = z[power_to_lufs(z) > -70.0]
        if z.size == 0:
            return SILENCE_LUFS
        rel = float(power_to_lufs(z.mean())) - 10.0
        z = z[power_to_lufs(z) > rel]
        return float(power_to_lufs(z.mean())) if z.size else SILENCE_LUFS
