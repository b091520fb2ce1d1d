"""Cheap building blocks for the per-block hot paths (results identical to the usual calls).

The analyzer runs on 50 ms blocks, so a stage call handles a few hops and the fixed cost of
each numpy/scipy call (argument checks, axis normalisation, view construction) dominates.
These helpers give the same arrays as ``sliding_window_view`` / ``as_strided`` and the same
filter output as ``scipy.signal.sosfilt`` / ``lfilter`` (the same C routines on the same
data), without the per-call validation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.fft
import scipy.signal

_sosfilt: Any
_linear_filter: Any
try:  # the C kernels behind scipy.signal.sosfilt / lfilter
    from scipy.signal._sigtools import _linear_filter
    from scipy.signal._sosfilt import _sosfilt
except ImportError:  # pragma: no cover - private scipy layout changed: use the public calls
    _sosfilt = None
    _linear_filter = None

__all__ = ["frames", "irfft_rows", "lfilter_zi", "rfft_rows", "sosfilt_inplace", "windows"]


def windows(buf: np.ndarray, w: int) -> np.ndarray:
    """Read-only view ``(c, n - w + 1, w)`` of the length-``w`` windows along the last axis of
    a C-contiguous ``(c, n)`` array (what ``sliding_window_view(buf, w, axis=1)`` gives)."""
    c, n = buf.shape
    s0, s1 = buf.strides
    v = np.ndarray((c, n - w + 1, w), buf.dtype, buf, 0, (s0, s1, s1))
    v.flags.writeable = False
    return v


def frames(buf: np.ndarray, n_frames: int, step: int, length: int,
           frame_major: bool = False) -> np.ndarray:
    """Read-only view of frames of ``length`` samples every ``step`` samples of a C-contiguous
    ``(c, n)`` array: ``(c, n_frames, length)``, or ``(n_frames, c, length)`` when
    ``frame_major``."""
    s0, s1 = buf.strides
    if frame_major:
        shape, strides = (n_frames, buf.shape[0], length), (step * s1, s0, s1)
    else:
        shape, strides = (buf.shape[0], n_frames, length), (s0, step * s1, s1)
    v = np.ndarray(shape, buf.dtype, buf, 0, strides)
    v.flags.writeable = False
    return v


def sosfilt_inplace(sos: np.ndarray, x: np.ndarray, zi: np.ndarray) -> None:
    """Filter the rows of the C-contiguous float64 ``x`` (c, n) in place with the float64
    second-order sections ``sos`` (s, 6); ``zi`` (c, s, 2), C-contiguous, is the carried state
    and is updated in place. Same numbers as ``scipy.signal.sosfilt``."""
    if _sosfilt is not None:
        _sosfilt(sos, x, zi)
        return
    y, zf = scipy.signal.sosfilt(sos, x, axis=-1, zi=np.moveaxis(zi, 0, 1))  # pragma: no cover
    x[...] = y  # pragma: no cover
    zi[...] = np.moveaxis(zf, 1, 0)  # pragma: no cover


def lfilter_zi(b: np.ndarray, a: np.ndarray, x: np.ndarray,
               zi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.lfilter(b, a, x, axis=-1, zi=zi)`` for float64 ``b``, ``a``, ``x``
    (c, n) and ``zi`` (c, order): returns the output and the final state."""
    if _linear_filter is not None:
        return _linear_filter(b, a, x, -1, zi)
    y, zf = scipy.signal.lfilter(b, a, x, axis=-1, zi=zi)  # pragma: no cover
    return y, zf  # pragma: no cover


_pfft: Any
try:  # the C transforms behind scipy.fft.rfft / irfft
    from scipy.fft._pocketfft import pypocketfft  # type: ignore[import-not-found]
    _pfft = pypocketfft
except ImportError:  # pragma: no cover
    _pfft = None


def rfft_rows(x: np.ndarray) -> np.ndarray:
    """``scipy.fft.rfft(x, axis=-1)`` of a real float32/float64 array (no padding: pass the
    array already zero-padded to the transform length)."""
    if _pfft is not None:
        return _pfft.r2c(x, (x.ndim - 1,), True, 0, None, 1)
    return scipy.fft.rfft(x, axis=-1)  # pragma: no cover


def irfft_rows(spec: np.ndarray, n: int) -> np.ndarray:
    """``scipy.fft.irfft(spec, n=n, axis=-1)`` for a real (power) or complex spectrum of
    ``n // 2 + 1`` bins."""
    if _pfft is not None:
        if spec.dtype.kind != "c":
            spec = spec + 0.0j
        return _pfft.c2r(spec, (spec.ndim - 1,), n, False, 2, None, 1)
    return scipy.fft.irfft(spec, n=n, axis=-1)  # pragma: no cover
