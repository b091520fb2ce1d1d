"""Tests for dsp.laughter: synthetic signals with known structure, espeak-ng speech, contract.

Synthetic sounds (16 kHz, float64):

* laugh: "ha-ha-ha" calls at a known rate - a breathy /h/ (formant-filtered noise) followed by
  a short voiced /a/ with a falling F0, silence-ish breath between calls;
* steady vowel, speech-like syllables (continuous voicing, a new vowel per syllable, the
  smooth rise and fall of a syllable, no breathy gaps), a single cough (noise burst, abrupt
  onset, fast decay), a long sigh (breathy noise swelling and fading).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile
from scipy.signal import resample_poly

from dsp.laughter import LaughterBurst, LaughterDetector, LaughterFrames, _Pulse
from firmware.demo.voice_synth import VOWELS, formants, glottal, laugh, ramp_env

FS = 16_000
HOP = 160
def steady_vowel(seconds: float = 1.5, f0_hz: float = 120.0, peak: float = 0.3) -> np.ndarray:
    n = int(seconds * FS)
    f0 = f0_hz + 3 * np.sin(2 * np.pi * 5 * np.arange(n) / FS)  # 5 Hz vibrato, +-3 Hz
    x = formants(glottal(f0), VOWELS["a"]) * ramp_env(n, 0.05, 0.05)
    return peak * x / np.max(np.abs(x))


def syllables(n: int = 12, f0_hz: float = 130.0, seed: int = 1, peak: float = 0.3) -> np.ndarray:
    """Speech-like syllables at ~4 /s: continuous voicing (voiced consonants between
    syllables), a new vowel each syllable, a smooth rise and fall, durations 0.17-0.33 s."""
    rng = np.random.default_rng(seed)
    names = list(VOWELS)
    out = []
    for i in range(n):
        m = int(rng.uniform(0.17, 0.33) * FS)
        f0 = f0_hz * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * np.arange(m) / FS + i))
        v = formants(glottal(f0), VOWELS[names[int(rng.integers(len(names)))]])
        v /= np.max(np.abs(v))
        out.append(v * (0.35 + 0.65 * np.sin(np.pi * np.linspace(0, 1, m)) ** 0.7))
    x = np.concatenate(out) * ramp_env(sum(o.size for o in out), 0.03, 0.05)
    return peak * x / np.max(np.abs(x))


def cough(peak: float = 0.5, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(0.35 * FS)
    x = formants(rng.standard_normal(n), (600, 1500, 2800), (300, 300, 400))
    x *= np.exp(-np.arange(n) / FS / 0.07) * ramp_env(n, 0.003, 0.02)
    return peak * x / np.max(np.abs(x))


def sigh(seconds: float = 1.5, peak: float = 0.2, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    x = formants(rng.standard_normal(n), (700, 1200, 2600), (200, 200, 300))
    return peak * x * np.sin(np.pi * np.linspace(0, 1, n)) ** 1.5 / np.max(np.abs(x))


def pad(x: np.ndarray, pre: float = 0.5, post: float = 0.8, seed: int = 9) -> np.ndarray:
    """Surround with quiet room noise (-70 dBFS) and trim to whole hops."""
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.zeros(int(pre * FS)), x, np.zeros(int(post * FS))])
    y += 10 ** (-70 / 20) * rng.standard_normal(y.size)
    return y[: y.size // HOP * HOP]


def run(x: np.ndarray, block: int | None = None, **kw) -> tuple[np.ndarray, list, list]:
    """Process ``x`` (in blocks of ``block`` samples, default all at once)."""
    det = LaughterDetector(**kw)
    block = block or x.size
    scores, decided, completed = [], [], []
    for i in range(0, x.size, block):
        r = det.process(x[i : i + block])
        scores.append(r.score)
        decided += r.decided
        completed += r.completed
    return np.concatenate(scores), decided, completed


# ----------------------------------------------------------------------------- laughter
@pytest.mark.parametrize(
    ("rate_hz", "f0_hz", "vowel"),
    [(4.5, 220.0, "a"), (5.0, 320.0, "a"), (5.5, 420.0, "e"), (6.0, 280.0, "o")],
)
def test_laugh_pulse_train_scores_high_and_is_decided_fast(
    rate_hz: float, f0_hz: float, vowel: str
) -> None:
    onset = 0.5
    x = pad(laugh(rate_hz=rate_hz, f0_hz=f0_hz, vowel=vowel), pre=onset)
    score, decided, completed = run(x)
    assert score.max() >= 0.8
    assert len(decided) == 1 and len(completed) == 1
    ev = decided[0]
    assert ev.end_s is None and ev.duration_s is None
    assert abs(ev.start_s - onset) <= 0.1
    assert ev.decided_at_s - onset <= 0.6  # decision latency from the true onset
    assert ev.burst_count >= 3
    done = completed[0]
    assert done.index == ev.index
    assert done.burst_count == 6  # every call counted
    assert done.rhythm_hz == pytest.approx(rate_hz, rel=0.12)
    assert done.end_s is not None and done.duration_s is not None
    assert done.end_s == pytest.approx(onset + 6 / rate_hz, abs=0.2)
    assert done.duration_s == pytest.approx(done.end_s - done.start_s)


def test_laugh_detected_over_a_wide_level_range_but_not_below_the_gate() -> None:
    base = laugh()
    for peak_dbfs in (-6.0, -30.0, -45.0):
        _, decided, _ = run(pad(base / np.max(np.abs(base)) * 10 ** (peak_dbfs / 20)))
        assert len(decided) == 1, peak_dbfs
    _, decided, _ = run(pad(base / np.max(np.abs(base)) * 10 ** (-75 / 20)))
    assert decided == []


@pytest.mark.parametrize("dc", [0.01, 0.03])
def test_a_dc_offset_changes_nothing_the_detector_decides(dc: float) -> None:
    """A converter's DC offset (-40 / -30 dBFS) under a laugh peaking at -26 dBFS: the frame's
    mean square took the DC in (the window leaks it into the two lowest bins), it filled the
    dips between the calls, and the laugh scored 0.59 at -40 dBFS and nothing at -30. The
    spectrum now reads the audio less the offset `HopLevel` tracks."""
    x = pad(laugh(seed=1, peak=0.05), pre=2.0)  # the offset is tracked within 1.5 s
    plain, decided, _ = run(x)
    offset, decided_dc, _ = run(x + dc)
    assert len(decided) == 1 and decided_dc == decided
    np.testing.assert_allclose(offset, plain, rtol=0, atol=1e-6)


def test_laugh_between_speech_like_syllables_is_found_at_its_onset() -> None:
    a, b = syllables(seed=4), syllables(seed=5)
    lx = laugh(seed=6)
    onset = 0.5 + a.size / FS
    x = pad(np.concatenate([a, lx, b]))
    score, decided, _ = run(x)
    assert len(decided) == 1
    assert abs(decided[0].start_s - onset) <= 0.5
    hop_t = (np.arange(score.size) + 0.5) * HOP / FS
    assert score[hop_t < onset].max() < 0.5  # the speech before it stays low


# ----------------------------------------------------------------------------- not laughter
@pytest.mark.parametrize(
    "name",
    ["steady_vowel", "steady_vowel_high", "syllables", "syllables_female", "cough", "sigh"],
)
def test_other_sounds_score_low(name: str) -> None:
    x = {
        "steady_vowel": lambda: steady_vowel(),
        "steady_vowel_high": lambda: steady_vowel(f0_hz=300.0),
        "syllables": lambda: syllables(),
        "syllables_female": lambda: syllables(n=16, f0_hz=220.0, seed=7),
        "cough": lambda: cough(),
        "sigh": lambda: sigh(),
    }[name]()
    score, decided, _ = run(pad(x))
    assert score.max() < 0.3
    assert decided == []


def test_aspiration_gaps_needed() -> None:
    """Every gap must be at least about as bright (2-4.3 kHz re 250-1000 Hz) as the calls
    around it: a gap whose balance is 10 dB darker (a nasal or a voice bar) scores 0, the same
    train with aspiration gaps scores 1."""
    shape = np.ones(10) / np.sqrt(10)

    def train(tilts: list[float]) -> list[_Pulse]:
        return [
            _Pulse(peak=20 * i, onset=20 * i - 5, level=-20.0, voicing=0.95, shape=shape,
                   dip_db=20.0, gap_voicing=0.1, gap_tilt_db=t)
            for i, t in enumerate(tilts)
        ]

    assert LaughterDetector._window_score(train([0.0, 3.0, 0.0])) == 1.0
    assert LaughterDetector._window_score(train([0.0, 3.0, -10.0])) == 0.0
    assert LaughterDetector._window_score(train([0.0, -5.0, 2.0])) == pytest.approx(0.5)


def test_repeated_coughs_are_not_laughter() -> None:
    # Three coughs 0.28 s apart: rhythm and dips like a laugh, but no voiced nucleus. These
    # synthetic coughs are formant-filtered noise, whose narrow resonances give them some
    # periodicity (R 0.35-0.5 at their peaks): the voiced-nucleus measure holds them below
    # the decision threshold, not at 0.
    step = int(0.28 * FS)
    x = np.zeros(2 * step + cough().size)
    for i in range(3):
        c = cough(seed=10 + i)
        x[i * step : i * step + c.size] += c
    det = LaughterDetector()
    score, decided, _ = run(pad(x))
    assert score.max() < det.threshold
    assert decided == []


def _espeak(text: str, tmp_path: Path) -> np.ndarray:
    out = tmp_path / "s.wav"
    subprocess.run(["espeak-ng", "-w", str(out), text], check=True, capture_output=True)
    rate, data = wavfile.read(out)
    x = data.astype(np.float64) / 32768.0
    return resample_poly(x, 320, 441) if rate == 22050 else resample_poly(x, FS, rate)


def test_synthesised_speech_has_no_bursts(tmp_path: Path) -> None:
    text = (
        "Thank you for calling, my name is Sarah, how can I help you today? "
        "I understand that you are frustrated, and I am sorry for the trouble. "
        "Could you please confirm the account number and the postcode for me? "
        "Let me check that for you, it will only take a moment."
    )
    x = _espeak(text, tmp_path)
    assert x.size > 8 * FS
    score, decided, _ = run(pad(x))
    assert decided == []
    assert score.max() < 0.5


# ----------------------------------------------------------------------------- streaming contract
def test_block_size_invariance_random_blocks() -> None:
    x = pad(np.concatenate([laugh(seed=1), syllables(seed=2), laugh(rate_hz=4.5, seed=3)]))
    ref_score, ref_dec, ref_done = run(x)
    assert len(ref_dec) == 2
    rng = np.random.default_rng(0)
    for _ in range(4):
        det = LaughterDetector()
        n_hops, i = x.size // HOP, 0
        scores, dec, done = [], [], []
        while i < n_hops:
            k = min(int(rng.integers(0, 37)), n_hops - i)  # includes empty blocks
            r = det.process(x[i * HOP : (i + k) * HOP])
            assert r.score.shape == (k,) and r.in_burst.shape == (k,)
            scores.append(r.score)
            dec += r.decided
            done += r.completed
            i += k
        np.testing.assert_allclose(np.concatenate(scores), ref_score, rtol=0, atol=1e-12)
        assert dec == ref_dec and done == ref_done


def test_contract_one_result_per_hop_delay_and_in_burst() -> None:
    det = LaughterDetector()
    d = det.delay_hops
    assert d == 2
    x = pad(laugh())
    r = det.process(x)
    assert isinstance(r, LaughterFrames)
    assert r.score.shape == (x.size // HOP,) and r.score.dtype == np.float64
    assert r.in_burst.dtype == bool
    assert np.all((r.score >= 0) & (r.score <= 1))
    assert det.hops_seen == x.size // HOP
    ev = r.decided[0]
    assert isinstance(ev, LaughterBurst)
    # result j is hop j - d; the decision is stamped with the newest hop heard when it was
    # made, d hops after the hop whose measures completed it
    hop_t = (np.arange(r.score.size) - d + 0.5) * HOP / FS
    k_dec = int(np.argmin(np.abs(hop_t - (ev.decided_at_s - d * HOP / FS))))
    assert r.in_burst[k_dec] and not r.in_burst[k_dec - 1]
    assert r.score[k_dec] >= det.threshold
    assert not r.in_burst[-1]  # the event has ended by the end of the padding


def test_shared_measures_give_the_same_results_as_audio() -> None:
    """The analyzer's way in (shared spectrum + the pitch tracker's periodicity) and the
    detector's own front end give identical scores and events."""
    from dsp.hop_spectrum import HopSpectrum
    from dsp.pitch import PitchTracker
    from dsp.voice_activity import HopLevel

    x = pad(np.concatenate([laugh(seed=1), syllables(seed=2)]))
    own = LaughterDetector().process(x)
    spec = HopSpectrum(bands=LaughterDetector.band_weights)
    per = PitchTracker().process(x[None]).periodicity
    level = HopLevel(n_channels=1)  # the spectrum reads the audio less its DC, as there
    level.process(x[None])
    bands = spec.process(level.remove(x[None]))[0]
    shared = LaughterDetector().process_hops(bands[:, 0], per[0], bands[:, 1:])
    np.testing.assert_array_equal(own.score, shared.score)
    assert own.decided == shared.decided and len(own.decided) == 1
    with pytest.raises(ValueError, match="bands"):
        LaughterDetector().process_hops(bands[:, 0], per[0], bands[:, 1:5])


def test_silence_and_empty_input() -> None:
    det = LaughterDetector()
    r = det.process(np.zeros(0))
    assert r.score.shape == (0,) and r.decided == () and r.completed == ()
    r = det.process(np.zeros(16000))
    assert np.all(r.score == 0) and not r.in_burst.any()


def test_reset_forgets_the_stream() -> None:
    x = pad(laugh())
    det = LaughterDetector()
    first = det.process(x)
    det.reset()
    again = det.process(x)
    np.testing.assert_array_equal(first.score, again.score)
    assert [e.start_s for e in first.decided] == [e.start_s for e in again.decided]
    assert again.decided[0].index == 0


def test_bad_input_is_refused() -> None:
    det = LaughterDetector()
    with pytest.raises(ValueError, match="agent channel"):
        det.process(np.zeros((1, 1600)))
    with pytest.raises(ValueError, match="multiple"):
        det.process(np.zeros(100))
    with pytest.raises(ValueError):
        LaughterDetector(rate=8000)
    with pytest.raises(ValueError):
        LaughterDetector(threshold=0.3, release=0.5)


def _measure_rows(n_calls: int, gap_hi_gain: float) -> tuple[np.ndarray, ...]:
    """Per-hop measures of a call train at 5/s, given directly (mean square, periodicity,
    shape bands): calls peak at -20 dBFS and fall 3 dB per hop to a -50 dBFS gap; calls are
    periodic (0.95) with one fixed band spectrum; gaps aperiodic (0.1), their 2-4.3 kHz bands
    (shape bands 6-9) scaled by ``gap_hi_gain`` (1: as bright as the calls)."""
    n = 20 * (n_calls + 2)
    k = np.arange(n)
    peaks = 20 * (np.arange(n_calls) + 1)
    dist = np.min(np.abs(k[:, None] - peaks[None, :]), axis=1)
    level = np.maximum(-20.0 - 3.0 * dist, -50.0)
    ms = 10 ** (level / 10)
    periodicity = np.where(dist <= 3, 0.95, 0.1)
    spectrum = np.linspace(2.0, 0.5, 10)
    bands = np.tile(spectrum, (n, 1))
    bands[dist > 5, 6:] *= gap_hi_gain
    bands *= (ms / bands.sum(axis=1))[:, None]
    return ms, periodicity, bands


def test_aspiration_is_measured_in_the_gaps_of_the_stream() -> None:
    """Through process_hops: the same train scores in full with gaps as bright as the calls
    (aspiration, breath) and 0 with gaps 20 dB darker at 2-4.3 kHz (a nasal or voice bar)."""
    bright = LaughterDetector().process_hops(*_measure_rows(6, 1.0))
    dark = LaughterDetector().process_hops(*_measure_rows(6, 0.01))
    assert bright.score.max() == 1.0 and len(bright.decided) == 1
    assert dark.score.max() == 0.0 and dark.decided == ()


def test_periodicity_of_near_silent_gaps_is_not_believed() -> None:
    """Below -90 dBFS periodicity counts as 0: silent gaps (-100 dBFS) whose periodicity
    reads high (numerical noise, hum) still separate the calls, so the train scores."""
    ms, per, bands = _measure_rows(6, 1.0)
    per = np.where(per < 0.5, 0.95, per)  # periodic-looking everywhere between the calls
    deep = ms < 10 ** (-43 / 10)  # the middle of each gap (-44 to -50 dBFS) ...
    scale = np.where(deep, 10 ** (-50 / 10), 1.0)  # ... taken 50 dB down, below -90 dBFS
    r = LaughterDetector().process_hops(ms * scale, per, bands * scale[:, None])
    assert r.score.max() == 1.0
    loud_gaps = LaughterDetector().process_hops(ms, per, bands)
    assert loud_gaps.score.max() == 0.0  # at -50 dBFS the same periodicity is believed


@pytest.mark.parametrize("verify", [False, True])
def test_analyzer_lines_up_the_laughter_column_and_its_bursts(verify: bool) -> None:
    """In the stream analyzer (shared spectrum, the pitch tracker's periodicity, stages of
    delay 0, 2 and 4 hops held in line), the agent's laughter column at hop k is the
    detector's score for hop k, the caller's is 0, and the bursts are the detector's - for
    any cutting of the stream into blocks; with the verifier (the analyzer's default) too,
    fed from the analyzer's shared spectrum and pitch tracker as from the detector's own."""
    from dsp.analyzer import AnalyzerParams, HopFeatures, StreamAnalyzer
    from dsp.laughter_verifier import LaughterVerifier

    agent = pad(np.concatenate([syllables(seed=2), laugh(seed=1), syllables(seed=3)]))
    caller = 0.3 * np.roll(agent, 4000)
    own = LaughterDetector(verifier=LaughterVerifier() if verify else None).process(agent)
    assert len(own.decided) == 1
    want = own.score[LaughterDetector.delay_hops:]  # row k = hop k
    x = np.vstack([agent, caller])
    rng = np.random.default_rng(8)
    for _ in range(3):
        a = StreamAnalyzer(AnalyzerParams(n_channels=2, laughter_verifier=verify))
        parts, bursts, i = [], [], 0
        while i < x.shape[1]:
            n = int(rng.integers(1, 4000))  # any length, hop-aligned or not
            parts.append(a.process(x[:, i:i + n]))
            bursts += a.take_bursts()
            i += n
        parts.append(a.flush())
        bursts += a.take_bursts()
        f = HopFeatures.concat(parts)
        # (the analyzer's shared spectrum has more columns than the detector's own: its
        # product rounds differently, 1e-16, and a verified score may carry that)
        np.testing.assert_allclose(f.laughter[0, : want.size], want, rtol=0, atol=1e-12)
        assert not f.laughter[1].any()
        assert [b for kind, b in bursts if kind == "decided"] == list(own.decided)


@pytest.mark.parametrize("pitch_st", [3.0, 7.5])
def test_the_appliance_spares_the_verifier_what_its_pitch_check_would_drop(
        pitch_st: float) -> None:
    """The pipeline hands the policy's laughter pitch check to the analyzer's verifier, so
    proposals too low to cue are not verified (see dsp/laughter_verifier.py)."""
    from firmware.appliance.pipeline import Pipeline
    from firmware.config.settings import Settings

    s = Settings()
    s = s.model_copy(update={"cues": s.cues.model_copy(update={
        "laughter": s.cues.laughter.model_copy(update={"pitch_st": pitch_st})})})
    pipe = Pipeline(s, source_rate=16_000, source_channels=1)
    assert pipe.analyzer.params.laughter_pitch_st == pitch_st
    # and the analyzer hands it on to the verifier it runs
    from dsp.laughter_verifier import SKIP_MARGIN_ST
    verifier = pipe.analyzer._verifier
    assert verifier is not None and verifier._skip_below == pitch_st - SKIP_MARGIN_ST
