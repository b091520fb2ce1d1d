"""Cheap building blocks for the per-block hot paths (results identical to the usual calls).

The appliance analyses 100 ms blocks (ten 10 ms hops per stage call), so the fixed cost of
each numpy/scipy call (argument checks, axis normalisation, view construction) dominates.
These helpers give the same arrays as ``sliding_window_view`` / ``as_strided`` and the same
filter output as ``scipy.signal.sosfilt`` / ``lfilter`` (the same C routines on the same
data), without the per-call validation.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["frames", "irfft_rows", "lfilter_zi", "rfft_rows", "sosfilt_inplace", "upfirdn_prepare",
           "upfirdn_rows", "windows"]


def _kernel(name: str) -> ModuleType | None:
    """The compiled scipy module ``name`` (e.g. ``scipy.signal._sigtools``), loaded without
    running its package's ``__init__``.

    ``import scipy.signal`` costs about 0.8 s of CPU on a 2-core x86 (more on a Pi): it pulls in
    scipy.stats, scipy.interpolate, scipy.optimize ... for every command that analyses audio,
    while the kernels below load in a few ms. The module is registered under its own name, so
    a later ``import scipy.signal`` (a benchmark, a test) reuses this very module. Falls back to
    the ordinary import, then to None (the public calls), should scipy's layout change.
    """
    if name in sys.modules:
        return sys.modules[name]
    try:
        top = importlib.util.find_spec("scipy")
        assert top is not None and top.submodule_search_locations
        parts = name.split(".")
        where = "/".join([next(iter(top.submodule_search_locations)), *parts[1:-1]])
        spec = importlib.machinery.PathFinder.find_spec(name, [where])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    except Exception:  # pragma: no cover - scipy's layout changed: import it the usual way
        sys.modules.pop(name, None)
        try:
            return importlib.import_module(name)
        except ImportError:
            return None


_sigtools, _sosfilt_mod = _kernel("scipy.signal._sigtools"), _kernel("scipy.signal._sosfilt")
_upfirdn_mod = _kernel("scipy.signal._upfirdn_apply")
# the C kernels behind scipy.signal.lfilter / sosfilt / upfirdn (None: use the public calls)
_linear_filter: Any = getattr(_sigtools, "_linear_filter", None)
_sosfilt: Any = getattr(_sosfilt_mod, "_sosfilt", None)
_upfirdn_apply: Any = getattr(_upfirdn_mod, "_apply", None)
_upfirdn_len: Any = getattr(_upfirdn_mod, "_output_len", None)


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
    import scipy.signal  # pragma: no cover

    y, zf = scipy.signal.sosfilt(sos, x, axis=-1, zi=np.moveaxis(zi, 0, 1))  # pragma: no cover
    x[...] = y  # pragma: no cover
    zi[...] = np.moveaxis(zf, 1, 0)  # pragma: no cover


def lfilter_zi(b: np.ndarray, a: np.ndarray, x: np.ndarray,
               zi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.lfilter(b, a, x, axis=-1, zi=zi)`` for float64 ``b``, ``a``, ``x``
    (c, n) and ``zi`` (c, order): returns the output and the final state."""
    if _linear_filter is not None:
        return _linear_filter(b, a, x, -1, zi)
    import scipy.signal  # pragma: no cover

    y, zf = scipy.signal.lfilter(b, a, x, axis=-1, zi=zi)  # pragma: no cover
    return y, zf  # pragma: no cover


def upfirdn_prepare(h: np.ndarray, up: int, dtype: type = np.float64) -> np.ndarray:
    """The taps ``h`` laid out for `upfirdn_rows` as ``dtype`` (float64 or float32): one
    flipped phase per row of ``up``, zero-padded (scipy's ``_pad_h``)."""
    h = np.asarray(h, dtype)
    full: np.ndarray = np.zeros(h.size + (-h.size % up), dtype)
    full[:h.size] = h
    return np.ascontiguousarray(full.reshape(-1, up).T[:, ::-1].ravel())


def upfirdn_rows(h: np.ndarray, h_prepared: np.ndarray, x: np.ndarray, up: int,
                 down: int) -> np.ndarray:
    """``scipy.signal.upfirdn(h, x, up, down, axis=1)`` of a ``(c, n)`` array in the dtype of
    ``h_prepared = upfirdn_prepare(h, up, dtype)`` (computed once): float64 or float32, the
    result in the same dtype."""
    dtype = h_prepared.dtype
    if _upfirdn_apply is None:  # pragma: no cover
        import scipy.signal

        return scipy.signal.upfirdn(h.astype(dtype), x.astype(dtype), up, down, axis=1)
    x = np.asarray(x, dtype)
    out = np.zeros((x.shape[0], _upfirdn_len(h.size, x.shape[1], up, down)), dtype)
    _upfirdn_apply(x, h_prepared, out, up, down, 1, 0, 0.0)  # mode 0: zero outside x
    return out


# the C transforms behind scipy.fft.rfft / irfft (scipy.fft itself costs ~0.2 s to import)
_pfft: Any = _kernel("scipy.fft._pocketfft.pypocketfft")


def rfft_rows(x: np.ndarray) -> np.ndarray:
    """``scipy.fft.rfft(x, axis=-1)`` of a real float32/float64 array (no padding: pass the
    array already zero-padded to the transform length)."""
    if _pfft is not None:
        return _pfft.r2c(x, (x.ndim - 1,), True, 0, None, 1)
    import scipy.fft  # pragma: no cover

    return scipy.fft.rfft(x, axis=-1)  # pragma: no cover


def irfft_rows(spec: np.ndarray, n: int) -> np.ndarray:
    """``scipy.fft.irfft(spec, n=n, axis=-1)`` for a real (power) or complex spectrum of
    ``n // 2 + 1`` bins."""
    if _pfft is not None:
        if spec.dtype.kind != "c":
            spec = spec + 0.0j
        return _pfft.c2r(spec, (spec.ndim - 1,), n, False, 2, None, 1)
    import scipy.fft  # pragma: no cover

    return scipy.fft.irfft(spec, n=n, axis=-1)  # pragma: no cover
