"""Band energies per hop from one short-time spectrum, shared by the stages that need them.

The voice measures (alpha ratio, speaking-rate envelope) and the laughter detector (level and
formant pattern of each burst) both look at a 32 ms spectrum every 10 ms. Computing it once
for all of them, in one transform call per block, is most of what keeps the whole analyzer
cheaper than a reference pitch tracker alone on the appliance's short blocks.

Frame convention and delay
--------------------------
16 kHz input shaped ``(n_channels, n_samples)``, ``n_samples`` a whole number of 10 ms hops.
The frame of hop ``k`` is 512 samples with a (strictly positive) Hann window, *centred on the
hop centre* ``160 k + 80``: it spans samples ``[160 k - 176, 160 k + 336)``, so it reaches
176 samples (1.1 hops) past the end of hop ``k`` and ``delay_hops`` is 2: result ``j`` of a
call belongs to absolute hop ``hops_seen_before_call + j - 2``. The stream is preceded by
silence; results for negative hops (the first two of the stream) describe that silence.

The transform runs in float32 (band energies need ~1e-4 relative accuracy, float32 gives
1e-7 at about half the cost); the band sums are float64. Results do not depend on how the
stream is cut into blocks.
"""

from __future__ import annotations

import numpy as np

from dsp._fast import frames as frame_view
from dsp._fast import rfft_rows

__all__ = ["FRAME", "HopSpectrum", "band_matrix", "mean_square_column"]

RATE = 16000
HOP = 160
FRAME = 512
"""Frame length, samples at 16 kHz (32 ms)."""

WINDOW = np.hanning(FRAME + 2)[1:-1]
"""The analysis window: Hann without its zero end points."""

FREQS_HZ = np.fft.rfftfreq(FRAME, 1.0 / RATE)
"""Centre frequency of each of the 257 bins, Hz."""


def band_matrix(edges_hz: list[tuple[float, float]]) -> np.ndarray:
    """Weights (257, n_bands) turning a power spectrum into band mean squares.

    Column ``i`` sums the bins with ``lo <= f < hi`` of ``edges_hz[i]``, scaled so that the
    sum is the mean square of the signal in that band (Parseval, Hann window, every bin
    counted twice for its negative-frequency twin: right for bands that contain neither 0 Hz
    nor the Nyquist frequency): a full-scale sine inside the band reads 0.5."""
    scale = 2.0 / (FRAME * float(np.sum(WINDOW**2)))
    f = FREQS_HZ
    cols = [((f >= lo) & (f < hi)) * scale for lo, hi in edges_hz]
    return np.stack(cols, axis=1)


def mean_square_column() -> np.ndarray:
    """Weights (257, 1) giving the window-compensated mean square of the whole frame
    (Parseval with the 0 Hz and Nyquist bins counted once): a full-scale square wave reads 1.
    """
    w = np.full(FREQS_HZ.size, 2.0)
    w[[0, -1]] = 1.0
    return (w / (FRAME * float(np.sum(WINDOW**2))))[:, None]


class HopSpectrum:
    """Streaming band energies: ``process(x)`` returns ``(n_channels, n_hops, n_bands)``
    float64 band mean squares (see the module docstring for frames and delay).

    Parameters (keyword-only)
    -------------------------
    bands:
        ``(257, n_bands)`` weights applied to the power spectrum of each frame (see
        :func:`band_matrix`, :func:`mean_square_column`).
    n_channels:
        Channels, each analysed alike.
    """

    delay_hops = 2

    def __init__(self, *, bands: np.ndarray, n_channels: int = 1) -> None:
        bands = np.asarray(bands, dtype=np.float64)
        if bands.ndim != 2 or bands.shape[0] != FRAME // 2 + 1:
            raise ValueError(f"bands must be ({FRAME // 2 + 1}, n_bands), got {bands.shape}")
        if n_channels < 1:
            raise ValueError("need n_channels >= 1")
        self.n_channels = int(n_channels)
        self.bands = bands
        self._window32 = WINDOW.astype(np.float32)
        self._per_h: dict[int, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next call starts at hop 0, preceded by silence."""
        # Samples from the start of the next frame to compute: that of hop (seen - 2), which
        # starts 176 samples before hop (seen - 2) and so 2 * 160 + 176 before hop `seen`.
        self._buf = np.zeros((self.n_channels, self.delay_hops * HOP + (FRAME - HOP) // 2))

    def process(self, x: np.ndarray) -> np.ndarray:
        """Band mean squares ``(n_channels, n_hops, n_bands)`` of the frames completed by the
        block ``x`` ``(n_channels, n_hops * 160)`` (result ``j``: hop ``seen + j - 2``)."""
        c = self.n_channels
        if x.ndim != 2 or x.shape[0] != c or x.shape[1] % HOP:
            raise ValueError(f"expected ({c}, k * {HOP}) samples, got {x.shape}")
        h = x.shape[1] // HOP
        if h == 0:
            return np.zeros((c, 0, self.bands.shape[1]))
        buf = np.concatenate([self._buf, x], axis=1)
        self._buf = buf[:, h * HOP:]
        wbuf = self._per_h.get(h)
        if wbuf is None:
            if len(self._per_h) >= 8:
                self._per_h.clear()
            wbuf = self._per_h[h] = np.empty((c, h, FRAME), dtype=np.float32)
        np.multiply(frame_view(buf, h, HOP, FRAME), self._window32, out=wbuf,
                    dtype=np.float32)
        spec = rfft_rows(wbuf)
        power = spec.real * spec.real
        power += spec.imag * spec.imag
        return power.astype(np.float64) @ self.bands
