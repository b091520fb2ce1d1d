"""Streaming results must not depend on how the audio was cut into blocks."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from dsp.analyzer import AnalyzerParams, HopFeatures, StreamAnalyzer
from dsp.resample import StreamResampler
from firmware.appliance.pipeline import Pipeline
from firmware.config.settings import Settings


def speechlike(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Stereo noise bursts with a syllable-like envelope and pauses, at ``rate`` Hz."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    env = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) * (np.sin(2 * np.pi * 0.3 * t) > -0.3)
    x = rng.standard_normal((2, n)) * env * np.array([[0.1], [0.03]])
    x[:, : rate // 2] = rng.standard_normal((2, rate // 2)) * 1e-4
    return x


def random_cuts(n: int, rng: np.random.Generator, largest: int) -> list[tuple[int, int]]:
    cuts, i = [], 0
    while i < n:
        k = int(rng.integers(1, largest))
        cuts.append((i, min(n, i + k)))
        i += k
    return cuts


def run_analyzer(x: np.ndarray, cuts: list[tuple[int, int]]) -> HopFeatures:
    a = StreamAnalyzer(AnalyzerParams(n_channels=x.shape[0]))
    parts = [a.process(x[:, s:e]) for s, e in cuts]
    parts.append(a.flush())
    return HopFeatures.concat(parts)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_analyzer_features_independent_of_block_sizes(seed):
    x = speechlike(12.0, 16000, seed)
    rng = np.random.default_rng(seed)
    whole = run_analyzer(x, [(0, x.shape[1])])
    cut = run_analyzer(x, random_cuts(x.shape[1], rng, 4000))
    tiny = run_analyzer(x[:, :32000], random_cuts(32000, rng, 50))
    assert whole.n_hops == x.shape[1] // 160
    for f in fields(HopFeatures):
        a, b = getattr(whole, f.name), getattr(cut, f.name)
        np.testing.assert_allclose(b, a, atol=1e-9, err_msg=f.name)
        c = getattr(tiny, f.name)
        np.testing.assert_allclose(c[..., :150], a[..., :150], atol=1e-9, err_msg=f.name)
    assert whole.voiced[0].any() and not whole.voiced[0].all()


@pytest.mark.parametrize("rate", [8000, 16000, 20000, 44100, 48000])
def test_resampler_block_invariant_and_in_band_flat(rate):
    x = np.sin(2 * np.pi * 1000 * np.arange(rate * 2) / rate)[None]
    whole = StreamResampler(rate_in=rate).process(x)
    r = StreamResampler(rate_in=rate)
    parts = [r.process(x[:, s:e]) for s, e in random_cuts(x.shape[1], np.random.default_rng(0),
                                                           3000)]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)
    assert abs(whole.shape[1] - 32000) <= 1
    rms = np.sqrt(np.mean(whole[0, 4000:28000] ** 2)) * np.sqrt(2)
    assert abs(20 * np.log10(rms)) < 0.05


@pytest.mark.parametrize("rate", [44100, 48000])
@pytest.mark.parametrize("tone_hz", [9000, 12000])
def test_resampler_rejects_what_it_cannot_pass(rate, tone_hz):
    """Tones above 8 kHz are removed (>= 55 dB), not aliased into the speech band."""
    x = np.sin(2 * np.pi * tone_hz * np.arange(rate) / rate)[None]
    y = StreamResampler(rate_in=rate).process(x)
    assert 20 * np.log10(np.sqrt(np.mean(y[0, 2000:] ** 2)) * np.sqrt(2)) < -55


def test_pipeline_events_independent_of_block_sizes():
    """The whole pipeline (44.1 kHz source) gives the same events whatever the blocks."""
    rate = 44100
    rng = np.random.default_rng(5)
    calm = speechlike(50.0, rate, 1) * 0.3
    loud = speechlike(6.0, rate, 2) * 1.5
    x = np.concatenate([calm, loud, speechlike(8.0, rate, 3) * 0.3], axis=1).T

    def events(cuts):
        p = Pipeline(Settings(), source_rate=rate, source_channels=2)
        out = []
        for s, e in cuts:
            out += p.process(x[s:e]).events
        out += p.finish().events
        return [(e.type, round(e.stream_s, 3), e.data) for e in out]

    whole = events([(0, x.shape[0])])
    cut = events(random_cuts(x.shape[0], rng, 9000))
    assert [e[0] for e in whole] == ["call.started", "usual_voice_learned",
                                     "raised_voice.started", "raised_voice.ended", "call.ended"]
    assert cut == whole
