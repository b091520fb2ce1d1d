"""Tests of dsp.voice_measures against synthetic signals with a known answer."""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest
import synth_voice as sv

from dsp.pitch import PitchTracker
from dsp.voice_measures import VoiceMeasureFrames, VoiceMeasures

HOP = sv.HOP
FIELDS = ("speaking_rate_hz", "nucleus", "alpha_ratio_db", "alpha_ratio_avg_db", "pitch_sd_st")


def measure(x: np.ndarray, block_hops: int = 10, **kw) -> VoiceMeasureFrames:
    """Run audio (mono or (c, n)) through pitch tracker + measures in blocks, flushed, with
    the delay removed: result k is hop k of the input."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    c = x.shape[0]
    pt = PitchTracker(n_channels=c)
    vm = VoiceMeasures(n_channels=c, pitch_delay_hops=pt.delay_hops, **kw)
    d = vm.delay_hops
    h = -(-x.shape[1] // HOP)
    padded = np.zeros((c, (h + d) * HOP))
    padded[:, : x.shape[1]] = x
    outs = []
    for a in range(0, padded.shape[1], block_hops * HOP):
        blk = padded[:, a : a + block_hops * HOP]
        outs.append(vm.process(blk, pt.process(blk)))
    return VoiceMeasureFrames(
        *(np.concatenate([getattr(o, f) for o in outs], axis=1)[:, d : d + h] for f in FIELDS)
    )


def test_api_and_delay() -> None:
    pt = PitchTracker(n_channels=2)
    vm = VoiceMeasures(n_channels=2, pitch_delay_hops=pt.delay_hops)
    assert vm.delay_hops == pt.delay_hops
    x = np.zeros((2, 5 * HOP))
    r = vm.process(x, pt.process(x))
    for f in FIELDS:
        assert getattr(r, f).shape == (2, 5)
    with pytest.raises(ValueError):
        vm.process(np.zeros((2, 4 * HOP)), pt.process(x))  # pitch for another block
    with pytest.raises(ValueError):
        VoiceMeasures(pitch_delay_hops=2)  # less look-ahead than the measures need


# --- speaking rate ---------------------------------------------------------------------------


@pytest.mark.parametrize("rate_hz", [2.0, 3.0, 4.5, 6.0, 7.0])
def test_speaking_rate_of_a_syllable_train(rate_hz: float) -> None:
    t = sv.syllable_train(rate_hz, 9.0, seed=1)
    r = measure(sv.add_noise(t.audio, 25.0, seed=2))
    # Every nucleus found once (measured: exact count at 2-7 Hz).
    assert r.nucleus.sum() == t.events_s.size
    # The rate over the trailing 4 s, once the window is full, is the true rate (+-1 nucleus).
    k = np.arange(400, r.speaking_rate_hz.shape[1])
    truth = [np.sum((t.events_s > (j + 1) * 0.01 - 4.0) & (t.events_s <= (j + 1) * 0.01))
             for j in k]
    assert np.all(np.abs(r.speaking_rate_hz[0, k] - rate_hz) <= 0.25 + 1e-9)
    assert np.abs(r.speaking_rate_hz[0, k] * 4.0 - np.array(truth)).max() <= 1.0 + 1e-9


def test_speaking_rate_starts_over_elapsed_time() -> None:
    t = sv.syllable_train(4.0, 2.0, seed=1)
    r = measure(t.audio)
    assert r.speaking_rate_hz[0, -1] == pytest.approx(4.0, abs=0.6)


@functools.cache
def sentence(seed: int, rate: float) -> sv.Take:
    return sv.utterance(8.0, syllable_rate_hz=rate, f0_base_hz=(110.0, 220.0)[seed % 2],
                        seed=seed)


@pytest.mark.parametrize("cond", ["clean", "white 20 dB", "telephone"])
def test_nuclei_of_sentence_like_takes(cond: str) -> None:
    # Measured over 6 takes (12 s, 3.5 and 5 syllables/s): counts within +-1 of the truth in
    # every condition.
    for seed, rate in ((0, 3.5), (1, 5.0), (3, 5.0)):
        t = sentence(seed, rate)
        x = t.audio
        if cond == "white 20 dB":
            x = sv.add_noise(x, 20.0, seed=seed)
        elif cond == "telephone":
            x = sv.telephone(x)
        n = int(measure(x).nucleus.sum())
        assert abs(n - t.events_s.size) <= max(2, round(0.08 * t.events_s.size)), (n, t)


def test_unvoiced_bursts_are_not_syllables() -> None:
    rng = np.random.default_rng(3)
    x = np.zeros(5 * sv.RATE)
    for k in range(20):  # 20 noise bursts of 80 ms, 4 per second
        a = int((0.1 + 0.25 * k) * sv.RATE)
        x[a : a + 1280] = rng.standard_normal(1280) * np.hanning(1280) * 0.1
    r = measure(x)
    assert r.nucleus.sum() == 0
    assert np.all(r.speaking_rate_hz == 0.0)


# --- alpha ratio -----------------------------------------------------------------------------


def expected_alpha_db(x: np.ndarray) -> float:
    """10 log10(E(1-5 kHz) / E(50-1000 Hz)) from one long Hann periodogram."""
    seg = x[4000:-4000]
    p = np.abs(np.fft.rfft(seg * np.hanning(seg.size))) ** 2
    f = np.fft.rfftfreq(seg.size, 1.0 / sv.RATE)
    lo = p[(f >= 50.0) & (f < 1000.0)].sum()
    hi = p[(f >= 1000.0) & (f < 5000.0)].sum()
    return float(10.0 * np.log10(hi / lo))


@pytest.mark.parametrize("tilt", [-6.0, -9.0, -12.0, -15.0])
@pytest.mark.parametrize("f0_hz", [150.0, 230.0])
def test_alpha_ratio_matches_known_spectrum(tilt: float, f0_hz: float) -> None:
    # F0s chosen with no harmonic within 60 Hz of a band edge (the 32 ms frame leaks +-60 Hz).
    x = sv.voice(sv.constant(f0_hz, 2.0), tilt_db_per_octave=tilt, vowel="e")
    r = measure(x)
    mid = slice(30, 170)
    # Measured: equal to the long-term spectrum within 0.01 dB.
    assert np.nanmedian(r.alpha_ratio_db[0, mid]) == pytest.approx(expected_alpha_db(x), abs=0.2)
    assert np.nanmedian(r.alpha_ratio_avg_db[0, mid]) == pytest.approx(
        expected_alpha_db(x), abs=0.2
    )


def test_alpha_ratio_rises_with_vocal_effort_and_not_with_level() -> None:
    f0 = sv.constant(180.0, 1.5)
    modal = measure(sv.voice(f0, tilt_db_per_octave=-12.0, level_dbfs=-30.0)).alpha_ratio_db
    loud = measure(sv.voice(f0, tilt_db_per_octave=-12.0, level_dbfs=-10.0)).alpha_ratio_db
    pressed = measure(sv.voice(f0, tilt_db_per_octave=-6.0, level_dbfs=-30.0)).alpha_ratio_db
    assert np.nanmedian(loud) == pytest.approx(np.nanmedian(modal), abs=0.05)
    assert np.nanmedian(pressed) > np.nanmedian(modal) + 5.0  # measured +6.6 dB


def test_alpha_ratio_only_on_voiced_hops() -> None:
    body = sv.concat(sv.silence(0.5), sv.constant(150.0, 1.0), sv.silence(0.5))
    r = measure(sv.add_noise(sv.voice(body), 30.0))
    truth = sv.hop_truth(body)[1]
    core = sv.boundary_distance(truth) > 2
    assert np.all(np.isnan(r.alpha_ratio_db[0, core & ~truth]))
    assert np.all(np.isfinite(r.alpha_ratio_db[0, core & truth]))
    assert np.isnan(r.alpha_ratio_avg_db[0, 20])  # nothing voiced yet
    assert np.isfinite(r.alpha_ratio_avg_db[0, -1])  # the window still holds voiced hops


# --- pitch spread ----------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [0.5, 1.0, 2.0, 4.0])
def test_pitch_sd_of_vibrato(depth: float) -> None:
    # A sinusoid of +-depth semitones has a standard deviation of depth / sqrt(2).
    x = sv.voice(sv.vibrato(160.0, 4.0, depth_semitones=depth, rate_hz=3.0))
    sd = measure(x).pitch_sd_st[0, 300:390]
    assert np.all(np.abs(sd / (depth / np.sqrt(2.0)) - 1.0) < 0.03), sd


def test_pitch_sd_of_steady_voice_and_of_a_step() -> None:
    steady = measure(sv.voice(sv.constant(200.0, 3.5))).pitch_sd_st[0, 300:]
    assert np.all(steady < 0.02)
    # Half the window at 200 Hz, half at 4 semitones up: sd = 2 semitones.
    f0 = sv.concat(sv.constant(200.0, 1.5), sv.constant(200.0 * 2 ** (4 / 12), 1.5))
    sd = measure(sv.voice(f0, ramp_s=0.0)).pitch_sd_st[0]
    assert sd[299] == pytest.approx(2.0, abs=0.05)


def test_pitch_sd_needs_enough_voiced_hops() -> None:
    body = sv.concat(sv.silence(1.0), sv.constant(150.0, 0.15), sv.silence(1.0))
    r = measure(sv.voice(body), min_voiced_hops=20)
    assert np.all(np.isnan(r.pitch_sd_st[0, :100]))
    assert np.all(np.isnan(r.pitch_sd_st[0]))  # 15 voiced hops < 20


# --- streaming -------------------------------------------------------------------------------


def test_block_size_invariance() -> None:
    a = sv.utterance(6.0, seed=8).audio
    b = sv.telephone(sv.utterance(6.0, f0_base_hz=220.0, seed=9).audio)
    x = np.stack([a, b])
    h = x.shape[1] // HOP
    x = x[:, : h * HOP]
    pt, vm = PitchTracker(n_channels=2), VoiceMeasures(n_channels=2)
    ref = vm.process(x, pt.process(x))
    rng = np.random.default_rng(2)
    pt, vm = PitchTracker(n_channels=2), VoiceMeasures(n_channels=2)
    outs, done = [], 0
    while done < h:
        n = int(min(rng.integers(0, 31), h - done))
        blk = x[:, done * HOP : (done + n) * HOP]
        outs.append(vm.process(blk, pt.process(blk)))
        done += n
    for f in FIELDS:
        got = np.concatenate([getattr(o, f) for o in outs], axis=1)
        want = getattr(ref, f)
        if got.dtype == bool:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-9, equal_nan=True)


def test_cpu_budget() -> None:
    """Loose regression guard on a shared machine (measured 0.0013 s per second of stereo
    audio in 100 ms blocks on a quiet machine, up to 0.003 under heavy contention; bound
    0.005, best of 3)."""
    u = sv.utterance(10.0, seed=31).audio
    x = np.stack([u, sv.telephone(u)])[:, : 1000 * HOP]
    pt = PitchTracker(n_channels=2)
    blocks = [x[:, a : a + 10 * HOP] for a in range(0, x.shape[1], 10 * HOP)]
    pitch = [pt.process(b) for b in blocks]
    best = np.inf
    for _ in range(3):
        vm = VoiceMeasures(n_channels=2)
        t0 = time.process_time()
        for b, p in zip(blocks, pitch, strict=True):
            vm.process(b, p)
        best = min(best, (time.process_time() - t0) / (x.shape[1] / sv.RATE))
    assert best < 0.005, best
