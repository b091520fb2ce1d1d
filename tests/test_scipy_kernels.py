"""The analyzer's filters and kernels without scipy.signal: the very numbers scipy gives.

`dsp` loads scipy's compiled kernels (lfilter, sosfilt, upfirdn, pocketfft) without importing
scipy.signal or scipy.fft, and designs its filters from a table or with numpy: each must equal
what scipy.signal computes, bit for bit, or the events of a recording would change. (The one
exception, a whole-factor decimation done as a matrix product, is held to the dtype's rounding
and to bit-for-bit invariance to the block cuts.)
"""

from __future__ import annotations

import warnings
from math import gcd

import numpy as np
import pytest
import scipy.fft
import scipy.signal
import scipy.special

from dsp import _fast
from dsp.pitch import _FRONT_END_16K_3300, front_end
from dsp.resample import StreamResampler, kaiser_lowpass
from dsp.voice_activity import lower_quartile


def scipy_front_end(rate: int, lowpass_hz: float | None) -> tuple[np.ndarray, np.ndarray]:
    sos = scipy.signal.butter(2, 40.0, btype="highpass", fs=rate, output="sos")
    if lowpass_hz is not None:
        sos = np.vstack([sos, scipy.signal.ellip(6, 0.5, 60.0, lowpass_hz, fs=rate,
                                                 output="sos")])
    b, a = scipy.signal.sos2tf(sos)
    return b, a


@pytest.mark.parametrize("rate, lowpass_hz", [(16000, 3300.0), (16000, 3000.0), (8000, None)])
def test_pitch_front_end_is_scipys_design(rate: int, lowpass_hz: float | None) -> None:
    b, a = front_end(rate, lowpass_hz)
    want_b, want_a = scipy_front_end(rate, lowpass_hz)
    assert np.array_equal(b, want_b) and np.array_equal(a, want_a)


def test_the_tabled_front_end_is_not_handed_out_to_be_changed() -> None:
    b, _ = front_end(16000, 3300.0)
    b[0] = 1.0
    assert _FRONT_END_16K_3300[0][0] != 1.0


@pytest.mark.parametrize("rate_in", [8000, 11025, 22050, 24000, 32000, 44100, 48000, 96000])
def test_resampler_taps_are_scipys_firwin(rate_in: int) -> None:
    r = StreamResampler(rate_in=rate_in, rate_out=16000)
    up = 16000 // gcd(rate_in, 16000)
    low, fs = min(rate_in, 16000), rate_in * up
    stop = 0.575 if rate_in > 16000 else 0.5  # downsampling lets 8-9.2 kHz fold onto 6.8-8 kHz
    want = scipy.signal.firwin(r.n_taps, (0.425 + stop) / 2 * low / (0.5 * fs),
                               window=("kaiser", scipy.signal.kaiser_beta(60.0))) * up
    assert np.array_equal(r.h, want)
    assert np.array_equal(kaiser_lowpass(101, 0.3, 40.0),
                          scipy.signal.firwin(101, 0.3, window=("kaiser",
                                                                scipy.signal.kaiser_beta(40.0))))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("up, down", [(1, 3), (2, 1), (160, 441), (1, 1)])
def test_upfirdn_kernel_is_scipys_upfirdn(up: int, down: int, dtype: type) -> None:
    rng = np.random.default_rng(up * 1000 + down)
    h, x = rng.standard_normal(37), rng.standard_normal((2, 1001))
    got = _fast.upfirdn_rows(h, _fast.upfirdn_prepare(h, up, dtype), x, up, down)
    assert got.dtype == dtype
    assert np.array_equal(got, scipy.signal.upfirdn(h.astype(dtype), x.astype(dtype), up, down,
                                                    axis=1))


def test_filter_and_fft_kernels_are_scipys() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 800))
    b, a = scipy_front_end(16000, 3300.0)
    zi = rng.standard_normal((2, b.size - 1)) * 1e-3
    y, zf = _fast.lfilter_zi(b, a, x, zi)
    want_y, want_zf = scipy.signal.lfilter(b, a, x, axis=-1, zi=zi)
    assert np.array_equal(y, want_y) and np.array_equal(zf, want_zf)
    sos = scipy.signal.butter(4, 1000.0, fs=16000, output="sos")
    state = np.zeros((2, sos.shape[0], 2))
    xs = x.copy()
    _fast.sosfilt_inplace(sos, xs, state)
    assert np.array_equal(xs, scipy.signal.sosfilt(sos, x, axis=-1))
    for dtype in (np.float32, np.float64):
        assert np.array_equal(_fast.rfft_rows(x.astype(dtype)),
                              scipy.fft.rfft(x.astype(dtype), axis=-1))
    spec = scipy.fft.rfft(x, axis=-1)
    assert np.array_equal(_fast.irfft_rows(spec, 800), scipy.fft.irfft(spec, n=800, axis=-1))


def test_bessel_i0_is_scipys() -> None:
    from dsp.resample import bessel_i0

    x = np.concatenate([np.linspace(-30.0, 30.0, 60001),
                        np.random.default_rng(3).uniform(0.0, 700.0, 20000), [0.0, 8.0]])
    assert np.array_equal(bessel_i0(x), scipy.special.i0(x))
    assert np.array_equal(bessel_i0(np.asarray(5.65)), scipy.special.i0(5.65))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rate_in", [32000, 44100, 48000, 96000])
def test_resampler_gives_scipys_upfirdn_whatever_the_blocks(rate_in: int, dtype: type) -> None:
    # Every output of the streaming resampler is the number scipy's upfirdn gives for the
    # whole signal at once (in the same dtype): bit for bit where upfirdn's kernel runs
    # (44.1 kHz), within the dtype's rounding where a whole-factor decimation is one matrix
    # product (its sums run in another order) - and bit for bit the same however the input
    # is cut, into long blocks or a few samples at a time.
    rng = np.random.default_rng(rate_in)
    x = rng.standard_normal((2, rate_in)).astype(dtype)  # 1 s

    def resampled(cuts: np.ndarray) -> np.ndarray:
        r = StreamResampler(rate_in=rate_in, rate_out=16000, n_channels=2, dtype=dtype)
        return np.concatenate([r.process(b) for b in np.split(x, cuts, axis=1)], axis=1)

    got = resampled(np.sort(rng.choice(np.arange(1, x.shape[1]), size=40, replace=False)))
    assert got.dtype == dtype and got.shape[1] == 16000
    assert np.array_equal(resampled(np.cumsum(rng.integers(0, 40, size=x.shape[1] // 10))
                                    .clip(0, x.shape[1])), got)
    assert np.array_equal(resampled(np.array([], dtype=int)), got)
    r = StreamResampler(rate_in=rate_in, rate_out=16000, n_channels=2, dtype=dtype)
    want = scipy.signal.upfirdn(r.h.astype(dtype), x, r.up, r.down, axis=1)[:, :got.shape[1]]
    if r.up > 1:
        assert np.array_equal(got, want)
    else:
        tol = 4 * np.finfo(dtype).eps * np.abs(r.h).sum() * np.abs(x).max()
        assert np.abs(got - want).max() <= tol


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 7, 799, 800, 801, 802])
def test_lower_quartile_is_numpys_nanquantile(k: int) -> None:
    rng = np.random.default_rng(k)
    # levels in dB, rows of very different spreads: where numpy's two interpolation forms
    # round apart, only its own form gives its numbers
    x = rng.uniform(-120.0, 0.0, (2, 400, k)) * rng.uniform(0.0, 1.0, (2, 400, 1)) ** 3
    x[1, 1, : k // 2] = np.nan  # a window not heard in full yet
    x[1, 2] = np.nan  # nothing heard at all
    x[1, 3, 1:] = x[1, 3, 0]  # a steady level: ties
    for rows in (x[0], x):
        with warnings.catch_warnings():
            # nor does it warn about the empty window (a warning the analysis thread would
            # have to silence through the process-wide filters)
            warnings.simplefilter("error")
            got = lower_quartile(rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the window with nothing heard
            want = np.nanquantile(rows, 0.25, axis=-1)
        assert got.shape == want.shape and np.array_equal(got, want, equal_nan=True)
