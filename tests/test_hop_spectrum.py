"""Tests for dsp.hop_spectrum: calibration, frame alignment, block invariance, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.hop_spectrum import HopSpectrum, band_matrix, mean_square_column

FS = 16000
HOP = 160


def run(x: np.ndarray, bands: np.ndarray, blocks: list[int] | None = None) -> np.ndarray:
    """Feed (c, n) in blocks of the given hop counts (default: all at once); rows re-aligned
    so that row k is hop k."""
    spec = HopSpectrum(bands=bands, n_channels=x.shape[0])
    n_hops = x.shape[1] // HOP
    blocks = blocks or [n_hops]
    out, i = [], 0
    for k in blocks:
        out.append(spec.process(x[:, i * HOP:(i + k) * HOP]))
        i += k
    return np.concatenate(out, axis=1)[:, spec.delay_hops:]


def test_bands_and_mean_square_are_calibrated() -> None:
    t = np.arange(2 * FS) / FS
    sine = np.sin(2 * np.pi * 1000.0 * t)  # full scale, inside 750-1300 Hz only
    square = np.sign(np.sin(2 * np.pi * 97.0 * t))  # full-scale square wave
    bands = np.hstack([band_matrix([(750.0, 1300.0), (2000.0, 4000.0)]),
                       mean_square_column()])
    r = run(np.vstack([sine, square]), bands)[:, 10:-10]  # away from the edges
    np.testing.assert_allclose(r[0, :, 0], 0.5, rtol=2e-3)  # sine: mean square 1/2
    assert np.all(r[0, :, 1] < 1e-6)  # nothing at 2-4 kHz
    np.testing.assert_allclose(r[0, :, 2], 0.5, rtol=2e-3)
    np.testing.assert_allclose(r[1, :, 2], 1.0, rtol=0.02)  # square wave: 0 dBFS


def test_frame_is_centred_on_the_hop() -> None:
    # a 2 ms click in the middle of hop 50: the row of hop 50 is where its energy peaks
    x = np.zeros((1, 100 * HOP))
    x[0, 50 * HOP + 64:50 * HOP + 96] = 1.0
    r = run(x, mean_square_column())[0, :, 0]
    assert int(np.argmax(r)) == 50
    assert r[49] == pytest.approx(r[51], rel=0.05)  # symmetric about it
    # the frame reaches 176 samples (1.1 hops) past each end of its hop: hops 49-51 see it
    assert np.all(r[:49] == 0.0) and np.all(r[52:] == 0.0) and np.all(r[49:52] > 0.0)


def test_results_do_not_depend_on_block_cuts() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 300 * HOP)) * 0.1
    bands = np.hstack([band_matrix([(50.0, 1000.0), (1000.0, 5000.0)]), mean_square_column()])
    ref = run(x, bands)
    cuts, left = [], 300
    while left:
        k = min(int(rng.integers(0, 23)), left)  # empty blocks included
        cuts.append(k)
        left -= k
    np.testing.assert_allclose(run(x, bands, cuts), ref, rtol=0, atol=1e-12)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="bands"):
        HopSpectrum(bands=np.ones((100, 2)))
    spec = HopSpectrum(bands=mean_square_column(), n_channels=2)
    with pytest.raises(ValueError, match="expected"):
        spec.process(np.zeros((1, 1600)))
    with pytest.raises(ValueError, match="expected"):
        spec.process(np.zeros((2, 100)))
    assert spec.process(np.zeros((2, 0))).shape == (2, 0, 1)
