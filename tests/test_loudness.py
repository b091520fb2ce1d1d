"""BS.1770 loudness: EBU Tech 3341 conformance signals and pyloudnorm on real recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from dsp.analyzer import AnalyzerParams, HopFeatures, StreamAnalyzer
from dsp.loudness import LoudnessMeter
from firmware.audio.source import read_wav

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def sine(dbfs: float, seconds: float, rate: int) -> np.ndarray:
    """Stereo 1 kHz sine, peak level ``dbfs`` (Tech 3341 states levels as sine peak dBFS)."""
    t = np.arange(int(round(seconds * rate))) / rate
    x = 10 ** (dbfs / 20) * np.sin(2 * np.pi * 1000 * t)
    return np.vstack([x, x])


def segments(parts: list[tuple[float, float]], rate: int) -> np.ndarray:
    """Consecutive sine segments (dBFS, seconds), phase-continuous."""
    n = [int(round(s * rate)) for _, s in parts]
    t = np.arange(sum(n)) / rate
    gain = np.concatenate([np.full(k, 10 ** (d / 20)) for (d, _), k in zip(parts, n, strict=True)])
    x = gain * np.sin(2 * np.pi * 1000 * t)
    return np.vstack([x, x])


def meter(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, float]:
    m = LoudnessMeter(rate=rate, hop=rate // 100, n_channels=2)
    mom, short = m.process(x)
    return mom, short, m.integrated()


RATES = [48000, 16000]


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("level", [-23.0, -33.0])
def test_3341_cases_1_2_constant_sine(rate, level):
    mom, short, integ = meter(sine(level, 20.0, rate), rate)
    assert np.all(np.abs(mom[40:] - level) <= 0.1)
    assert np.all(np.abs(short[300:] - level) <= 0.1)
    assert abs(integ - level) <= 0.1


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("parts", [
    [(-36, 10), (-23, 60), (-36, 10)],                        # case 3
    [(-72, 10), (-36, 10), (-23, 60), (-36, 10), (-72, 10)],  # case 4
    [(-26, 20), (-20, 20.1), (-26, 20)],                      # case 5
])
def test_3341_cases_3_5_gated_integrated(rate, parts):
    *_, integ = meter(segments(parts, rate), rate)
    assert abs(integ - (-23.0)) <= 0.1


@pytest.mark.parametrize("rate", RATES)
def test_3341_case_9_short_term_constant(rate):
    """Alternating 1.34 s at -20 dBFS and 1.66 s at -30 dBFS: S = -23 LUFS after 3 s."""
    x = segments([(-20, 1.34), (-30, 1.66)] * 10, rate)
    _, short, _ = meter(x, rate)
    assert np.all(np.abs(short[300:] - (-23.0)) <= 0.1)


@pytest.mark.parametrize("rate", RATES)
def test_3341_case_12_momentary_constant(rate):
    """Alternating 0.18 s at -20 dBFS and 0.22 s at -30 dBFS: M = -23 LUFS after 0.4 s."""
    x = segments([(-20, 0.18), (-30, 0.22)] * 50, rate)
    mom, _, _ = meter(x, rate)
    assert np.all(np.abs(mom[40:] - (-23.0)) <= 0.1)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("offset_ms", [0.0, 3.7, 5.0])
def test_momentary_maximum_of_a_burst(rate, offset_ms):
    """A 0.4 s burst at -23 dBFS in silence, at any alignment to the hops: max M = -23."""
    x = segments([(-200, 1.0 + offset_ms / 1000), (-23, 0.4), (-200, 1.0)], rate)
    mom, _, _ = meter(x, rate)
    assert abs(mom.max() - (-23.0)) <= 0.1


@pytest.mark.parametrize("rate", RATES)
def test_short_term_maximum_of_a_burst(rate):
    x = segments([(-200, 1.0), (-23, 3.0), (-200, 1.0)], rate)
    _, short, _ = meter(x, rate)
    assert abs(short.max() - (-23.0)) <= 0.1


def real_recordings() -> list[Path]:
    """Every RAVDESS and FDA recording (speech at 48 and 20 kHz)."""
    return sorted((DATA / "voice-level" / "ravdess").rglob("*.wav")) + sorted(
        (DATA / "pitch" / "fda").glob("*.wav"))


@pytest.mark.parametrize("path", real_recordings(), ids=lambda p: p.name)
def test_integrated_matches_pyloudnorm_on_real_recordings(path):
    """Within 0.1 LU of pyloudnorm at the file's own rate (an independent implementation)."""
    pyloudnorm = pytest.importorskip("pyloudnorm")
    x, rate = read_wav(path)
    x = x.astype(np.float64)
    # "DeMan" is the exact BS.1770 filter derivation; pyloudnorm's default K-weighting is an
    # approximation that is 0.04 LU off on the 48 kHz reference sine.
    ref = pyloudnorm.Meter(rate, filter_class="DeMan").integrated_loudness(x)
    hop = rate // 100
    m = LoudnessMeter(rate=rate, hop=hop, n_channels=x.shape[1])
    m.process(x.T[:, : x.shape[0] // hop * hop])
    assert abs(m.integrated() - ref) <= 0.1, (m.integrated(), ref)


def test_real_recordings_present():
    assert real_recordings(), f"evaluation data missing under {DATA}"


def test_analyzer_momentary_matches_meter_per_channel():
    """The analyzer's per-channel momentary loudness is the meter's, channel by channel."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16000 * 3)) * np.array([[0.05], [0.01]])
    a = StreamAnalyzer(AnalyzerParams(n_channels=2))
    f = HopFeatures.concat([a.process(x), a.flush()]).slice(0, x.shape[1] // 160)
    for c in range(2):
        mom, short = LoudnessMeter(rate=16000, hop=160, n_channels=1).process(x[c:c + 1])
        np.testing.assert_allclose(f.loudness_m_lufs[c], mom, atol=1e-9)
        np.testing.assert_allclose(f.loudness_s_lufs[c], short, atol=1e-9)


def test_resampled_speech_loudness_close_to_native():
    """Speech measured after resampling to 16 kHz stays within 0.3 LU of the native rate."""
    path = sorted((DATA / "voice-level" / "ravdess").rglob("*.wav"))[0]
    x, rate = read_wav(path)
    x = x[:, 0].astype(np.float64)
    native = LoudnessMeter(rate=rate, hop=rate // 100)
    native.process(x[None, : x.size // (rate // 100) * (rate // 100)])
    y = resample_poly(x, 16000, rate)
    low = LoudnessMeter(rate=16000, hop=160)
    low.process(y[None, : y.size // 160 * 160])
    assert abs(native.integrated() - low.integrated()) <= 0.3
