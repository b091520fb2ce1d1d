"""The learned laughter verifier (dsp/laughter_verifier.py) and its training script.

Hermetic: synthetic signals only (no ../shared data, no YAMNet)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from dsp.hop_spectrum import FREQS_HZ
from dsp.laughter import LaughterDetector
from dsp.laughter_verifier import (
    DEFAULT_WEIGHTS,
    FEATURE_NAMES,
    N_FEATURES,
    PULSE_NAMES,
    USUAL_MIN_HOPS,
    LaughterVerifier,
    VerifierWeights,
    mel_edges_hz,
    span_hops,
    window_features,
)
from firmware.demo.voice_synth import laugh
from tests.test_laughter import pad, steady_vowel, syllables

sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))

FS = 16_000


def _constant(p: float, propose: float = 0.0) -> VerifierWeights:
    """A verifier that answers ``p`` whatever it hears."""
    z = np.zeros(N_FEATURES)
    return VerifierWeights(z, z + 1, np.zeros((N_FEATURES, 1)), np.zeros(1), np.zeros(1),
                           float(np.log(p / (1 - p))), propose)


def _stream() -> np.ndarray:
    return pad(np.concatenate([syllables(seed=2), laugh(seed=1), syllables(seed=3)]))


def test_mel_bands_cover_100_to_7600_hz_with_at_least_two_bins_each() -> None:
    edges = mel_edges_hz()
    assert len(edges) == 16
    assert edges[0][0] == pytest.approx(100.0) and edges[-1][1] == pytest.approx(7600.0)
    for (lo, hi), (lo2, _) in zip(edges, edges[1:], strict=False):
        assert hi == lo2 and hi > lo
    w = LaughterVerifier.band_weights
    assert w.shape == (257, 16)
    assert ((w > 0).sum(axis=0) >= 2).all()  # no band hangs on one bin
    assert not (w[:, :] > 0).sum(axis=1)[FREQS_HZ < 95].any()


def test_features_shape_units_and_pitch_relative_to_usual() -> None:
    rng = np.random.default_rng(0)
    mel = 10 ** (rng.uniform(-6, -3, (100, 16)))
    per = rng.uniform(0, 1, 100)
    st = np.where(rng.random(100) < 0.5, 15.0, np.nan)  # voiced at 15 st re 100 Hz
    pulse = np.zeros(len(PULSE_NAMES))
    f = window_features(mel, per, st, usual_st=10.0, pulse=pulse)
    assert f.shape == (N_FEATURES,) == (len(FEATURE_NAMES),)
    assert np.isfinite(f).all()
    named = dict(zip(FEATURE_NAMES, f, strict=True))
    assert named["usual_known"] == 1.0
    assert named["st_median_above_usual"] == pytest.approx(5.0)
    assert named["st_median"] == pytest.approx(15.0)
    assert named["share_3st_above_usual"] == 1.0
    unknown = dict(zip(FEATURE_NAMES, window_features(mel, per, st, np.nan, pulse),
                       strict=True))
    assert unknown["usual_known"] == 0.0 and unknown["st_median_above_usual"] == 0.0
    # level-free: the spectral shape is re the window's mean level
    louder = window_features(mel * 100, per, st, 10.0, pulse)
    np.testing.assert_allclose(louder[:16], f[:16], atol=1e-3)  # (up to the -100 dB floor)


def test_the_summaries_read_the_proposed_train_and_the_modulation_the_whole_second() -> None:
    """Speech before the train changes only the modulation features (2-10 Hz needs the whole
    second): the shape, spread, change, periodicity, breathiness and pitch are the train's."""
    rng = np.random.default_rng(3)
    mel = 10 ** (rng.uniform(-6, -3, (100, 16)))
    per = rng.uniform(0, 1, 100)
    st = np.where(rng.random(100) < 0.5, 15.0, np.nan)
    pulse = rng.uniform(0, 1, len(PULSE_NAMES))
    f = window_features(mel, per, st, 10.0, pulse, span=40)
    mel2, per2, st2 = mel.copy(), per.copy(), st.copy()
    mel2[:60] *= 10 ** rng.uniform(-2, 2, (60, 16))
    per2[:60] = rng.uniform(0, 1, 60)
    st2[:60] = 2.0
    g = window_features(mel2, per2, st2, 10.0, pulse, span=40)
    mod = np.array(["_mod" in n or n.startswith("mod_") for n in FEATURE_NAMES])
    np.testing.assert_allclose(g[~mod], f[~mod], rtol=1e-9, atol=1e-9)
    assert not np.allclose(g[mod], f[mod])
    assert span_hops(500, 480) == 30 and span_hops(500, 300) == 100


@pytest.mark.parametrize(("laugh_hz", "gate", "verified"), [
    (150.0, 3.0, False),  # at the usual pitch: the policy's check would drop it
    (300.0, 3.0, True),  # an octave above: verified
    (150.0, None, True),  # no check given: every proposal is verified
    (150.0, 1.0, True),  # within the margin of a 1-semitone check: verified
])
def test_proposals_that_cannot_pass_the_pitch_check_are_not_verified(
        laugh_hz: float, gate: float | None, verified: bool) -> None:
    v = LaughterVerifier(weights=_constant(0.99), min_st_above_usual=gate)
    n = 1100  # 11 s at 150 Hz: the usual pitch (7 st re 100 Hz) is known from hop 1000 on
    mel, per = np.full((n, 16), 1e-4), np.full(n, 0.9)
    v.push(mel, per, np.full(n, 150.0), np.ones(n, bool))
    v.push(mel[:100], per[:100], np.full(100, laugh_hz), np.ones(100, bool))
    k = n + 100 - 3  # the newest spectrum hop
    assert np.isfinite(v.usual_st(k))
    score = v.verify(k, np.zeros(len(PULSE_NAMES)), k - 40)
    assert score == (pytest.approx(0.99) if verified else 0.0)


def test_shipped_weights_load_small_and_give_scores_in_0_1() -> None:
    w = VerifierWeights.load(DEFAULT_WEIGHTS)
    assert w.n_params <= 20_000
    assert 0.0 <= w.propose_threshold <= 1.0
    p = w.predict(np.random.default_rng(1).standard_normal((50, N_FEATURES)) * w.scale + w.mean)
    assert p.shape == (50,) and ((p >= 0) & (p <= 1)).all()
    assert LaughterVerifier().weights.n_params == w.n_params


def test_weights_round_trip(tmp_path: Path) -> None:
    w = _constant(0.3, propose=0.2)
    w.save(tmp_path / "w.npz")
    r = VerifierWeights.load(tmp_path / "w.npz")
    assert r.propose_threshold == 0.2 and r.b2 == w.b2
    np.testing.assert_array_equal(r.w1, w.w1)
    np.savez(tmp_path / "bad.npz", mean=np.zeros(3), scale=np.ones(3), w1=np.zeros((3, 1)),
             b1=np.zeros(1), w2=np.zeros(1), b2=0.0, propose_threshold=0.0)
    with pytest.raises(ValueError, match="features"):
        VerifierWeights.load(tmp_path / "bad.npz")


def test_the_verifier_decides_and_the_proposer_only_proposes() -> None:
    """A verifier that rejects everything leaves no burst; one that accepts everything
    turns every proposal into a burst, so the detector then decides as the pulse detector
    would at the proposal threshold, and the score column is the verified score."""
    x = _stream()
    none = LaughterDetector(verifier=LaughterVerifier(weights=_constant(0.01))).process(x)
    assert not none.decided and not none.in_burst.any()
    assert none.score.max() == pytest.approx(0.01)
    yes = LaughterDetector(verifier=LaughterVerifier(weights=_constant(0.99, 0.3))).process(x)
    alone = LaughterDetector(threshold=0.3, release=0.3).process(x)
    assert [b.start_s for b in yes.decided] == [b.start_s for b in alone.decided]
    assert yes.decided and all(b.score == pytest.approx(0.99) for b in yes.decided)


def test_only_scored_windows_of_three_or_more_pulses_are_proposed() -> None:
    seen: list[np.ndarray] = []

    class Recording(LaughterVerifier):
        def verify(self, k: int, pulse: np.ndarray, start: int) -> float:
            seen.append(pulse.copy())
            spans.append(k - start)
            return 0.0

    spans: list[int] = []
    LaughterDetector(verifier=Recording(weights=_constant(0.5))).process(_stream())
    assert seen
    n_pulses = np.array([p[PULSE_NAMES.index("n_pulses")] for p in seen])
    assert (n_pulses >= 3).all() and (n_pulses <= 4).all()
    # the proposal's train starts with its first pulse: two or three intervals back
    assert all(25 <= s <= 120 for s in spans)


@pytest.mark.parametrize("seed", [1, 2])
def test_verified_results_do_not_depend_on_block_cuts(seed: int) -> None:
    x = _stream()
    rng = np.random.default_rng(seed)

    def go(cuts: list[int]) -> tuple[np.ndarray, list]:
        det = LaughterDetector(verifier=LaughterVerifier())
        parts, dec = [], []
        for s, e in zip(cuts, cuts[1:], strict=False):
            r = det.process(x[s:e])
            parts.append(r.score)
            dec += r.decided
        return np.concatenate(parts), dec

    whole = go([0, x.size])
    cuts = [0]
    while cuts[-1] < x.size:
        cuts.append(min(x.size, cuts[-1] + HOP * int(rng.integers(1, 40))))
    cut = go(cuts)
    # (the shared spectrum's matrix product rounds by block length: 1e-16, as elsewhere)
    np.testing.assert_allclose(cut[0], whole[0], atol=1e-9)
    assert [(b.start_s, b.decided_at_s, b.burst_count) for b in cut[1]] == \
        [(b.start_s, b.decided_at_s, b.burst_count) for b in whole[1]]
    assert [b.score for b in cut[1]] == pytest.approx([b.score for b in whole[1]], abs=1e-9)


HOP = 160


@pytest.mark.parametrize("max_block", [3, 40, 450])
def test_streamed_features_equal_those_of_the_whole_history(max_block: int) -> None:
    """The verifier keeps its history in buffers it compacts (and grows for long blocks): its
    features at any hop equal those computed from the whole stream's rows."""
    rng = np.random.default_rng(max_block)
    n = 900
    mel = 10 ** rng.uniform(-9, -2, (n, 16))
    per = rng.uniform(0, 1, n)
    f0 = rng.uniform(90, 400, n)
    voiced = rng.uniform(0, 1, n) < 0.6
    v = LaughterVerifier(weights=_constant(0.5))
    pulse = rng.uniform(0, 1, len(PULSE_NAMES))
    got, i = {}, 0
    while i < n:
        j = min(n, i + int(rng.integers(1, max_block + 1)))
        v.push(mel[i:j], per[i:j], f0[i:j], voiced[i:j])
        # spectrum row r is hop r - 2; a proposal reads up to the newest spectrum hop
        for k in range(max(i - 2, 0), j - 2):
            if k % 37 == 0:
                got[k] = v.features(k, pulse, k - 20 - k % 90)
        i = j
    assert len(got) > 15
    for k, f in got.items():
        r = np.arange(k - 99, k + 1) + 2  # spectrum rows of hops k - 99 .. k
        rows_mel = np.where((r >= 0)[:, None], mel[np.clip(r, 0, None)], 1e-12)
        rows_per = np.where(r >= 0, per[np.clip(r, 0, None)], 0.0)
        q = np.arange(k - 101, k - 1) + 4  # F0 rows of hops k - 101 .. k - 2
        hz = np.where(q >= 0, (f0 * voiced)[np.clip(q, 0, None)], 0.0)
        st = np.where(hz > 0, 12 * np.log2(np.maximum(hz, 1e-9) / 100.0), np.nan)
        want = window_features(rows_mel, rows_per, st, v.usual_st(k), pulse,
                               span_hops(k, k - 20 - k % 90))
        np.testing.assert_allclose(f, want, rtol=1e-9, atol=1e-9, err_msg=f"hop {k}")


def test_usual_pitch_is_learned_on_a_grid_and_known_after_8_s_of_voice() -> None:
    """A steady 200 Hz voice: the usual pitch is unknown until 8 s of voiced pitch, then
    12 semitones re 100 Hz, whatever the block cuts."""
    x = np.concatenate([steady_vowel(6.0, 200.0), steady_vowel(6.0, 200.0)])
    x = x[: x.size // HOP * HOP]
    from dsp.pitch import PitchTracker

    def usual(block: int) -> LaughterVerifier:
        v = LaughterVerifier(weights=_constant(0.5))
        spec_rows = np.zeros((0, 16))
        pt = PitchTracker()
        for i in range(0, x.size, block):
            b = x[None, i:i + block]
            p = pt.process(b)
            n = b.shape[1] // HOP
            spec_rows = np.full((n, 16), 1e-6)
            v.push(spec_rows, p.periodicity[0], p.f0_hz[0], p.voiced[0])
        return v

    a, b = usual(1600), usual(HOP * 7)
    n = x.size // HOP
    assert np.isnan(a.usual_st(300))
    late = [a.usual_st(k) for k in (n - 150, n - 10)]
    assert late == [b.usual_st(k) for k in (n - 150, n - 10)]
    assert np.isfinite(late[1]) and abs(late[1] - 12.0) <= 0.5
    assert USUAL_MIN_HOPS <= 1000


def test_training_is_seeded_and_reproducible_and_learns_a_tiny_set() -> None:
    """The training script on a tiny synthetic set: two runs give the same weights (hash),
    and the model separates what it was trained on."""
    import train_laughter_verifier as T

    feats, labels = [], []
    for seed in range(3):
        for x, y in ((pad(laugh(seed=seed)), 1.0), (pad(syllables(seed=seed)), 0.0),
                     (pad(syllables(seed=seed + 5, f0_hz=200.0)), 0.0)):
            _, F = T.windows(x)
            feats.append(F)
            labels.append(np.full(F.shape[0], y))
    X, y = np.concatenate(feats), np.concatenate(labels)
    assert X.shape[1] == N_FEATURES and 0 < y.sum() < y.size
    fold = np.arange(y.size) % 2
    ds = T.DataSet(X, y, y.copy(), fold, np.full(y.size, "clip"), {0: 60.0, 1: 60.0})
    a = T.train(ds, [0, 1], epochs=150)
    b = T.train(ds, [0, 1], epochs=150)
    assert T.digest(a) == T.digest(b)
    assert a.n_params <= 20_000
    z = a.mean  # the standardisation is learned from the data
    assert z.shape == (N_FEATURES,)
    p = T.fit(X, y, epochs=150).predict(X)
    assert p[y == 1].mean() > 0.8 and p[y == 0].mean() < 0.2
    _assert_pitch_is_not_read(a)


def _assert_pitch_is_not_read(w: VerifierWeights) -> None:
    """The network's score does not move with the pitch inputs (the policy's check decides
    on pitch), whatever the other inputs are."""
    import train_laughter_verifier as T

    rng = np.random.default_rng(4)
    f = rng.standard_normal((40, N_FEATURES)) * w.scale + w.mean
    g = f.copy()
    cols = [FEATURE_NAMES.index(c) for c in T.UNUSED_INPUTS]
    g[:, cols] = rng.uniform(-12, 24, (40, len(cols)))
    np.testing.assert_array_equal(w.predict(f), w.predict(g))
    other = f.copy()
    other[:, FEATURE_NAMES.index("rhythm")] += 3 * w.scale[FEATURE_NAMES.index("rhythm")]
    assert not np.array_equal(w.predict(f), w.predict(other))


def test_shipped_weights_do_not_read_the_pitch() -> None:
    _assert_pitch_is_not_read(VerifierWeights.load(DEFAULT_WEIGHTS))


def _median_f0_hz(x: np.ndarray) -> float:
    from dsp.pitch import PitchTracker

    p = PitchTracker().process(x[None, : x.size // 160 * 160])
    return float(np.median(p.f0_hz[0][p.voiced[0]]))


def _level_db(x: np.ndarray) -> np.ndarray:
    h = x[: x.size // 160 * 160].reshape(-1, 160)
    return 10 * np.log10(np.mean(h * h, axis=1) + 1e-10)


def test_the_raised_pitch_recipe_raises_the_pitch_and_keeps_the_tempo() -> None:
    """``laughter_data.pitch_shift`` (the bench's and the training's raised-pitch speech):
    F0 up by the semitones asked, same length, syllables where they were (plain resampling,
    which raises the pitch as much, moves them)."""
    from laughter_data import pitch_shift
    from scipy.signal import resample_poly

    x = syllables(16, 130.0)
    for st in (2.0, 3.0):
        y = pitch_shift(x, st)
        assert y.size == x.size
        assert abs(12 * np.log2(_median_f0_hz(y) / _median_f0_hz(x)) - st) <= 0.25
        assert np.corrcoef(_level_db(x), _level_db(y))[0, 1] > 0.6
    r = resample_poly(x, 1000, 1189)
    r = np.concatenate([r, np.zeros(x.size - r.size)])
    assert abs(12 * np.log2(_median_f0_hz(r) / _median_f0_hz(x)) - 3.0) <= 0.25
    assert np.corrcoef(_level_db(x), _level_db(r))[0, 1] < 0.3
    np.testing.assert_allclose(pitch_shift(x, 0.0), x, atol=1e-9)


def test_raised_training_speech_is_the_speakers_own_after_an_unraised_warm_up() -> None:
    """Raised-pitch negatives stay in their speaker's group (so held-out folds keep them
    with the speaker), carry no laugh, and are raised only after the unraised warm-up; one
    stream per speaker keeps the tempo (phase vocoder), one is resampled (faster too)."""
    import train_laughter_verifier as T

    sp = {g: [T.Item(f"{g}{i}", "speech", g, syllables(16, f0, seed=i)) for i in range(2)]
          for g, f0 in (("spk:a", 120.0), ("spk:b", 200.0))}
    sp["espeak:0"] = sp["spk:a"]  # synthetic voices are not raised
    out = T.raised_streams(sp)
    assert [g for _, g in out] == ["spk:a", "spk:a", "spk:b", "spk:b"]
    for s, g in out:
        assert np.isnan(s.onset_s) and s.speaker == g  # type: ignore[attr-defined]
        n = int(s.warmup_s * FS)  # type: ignore[attr-defined]
        x = s.audio  # type: ignore[attr-defined]
        all_speech = np.concatenate([it.audio for it in sp[g]])
        usual = _median_f0_hz(all_speech)
        assert abs(12 * np.log2(_median_f0_hz(x[:n]) / usual)) <= 0.5
        st = 12 * np.log2(_median_f0_hz(x[n:]) / usual)
        assert T.RAISED_ST[0] - 0.3 <= st <= T.RAISED_ST[1] + 0.3
        faster = all_speech.size / (x.size - n)
        if s.laugh.endswith("vocoder"):  # type: ignore[attr-defined]
            assert faster == pytest.approx(1.0, abs=1e-3)
        else:
            assert s.laugh.endswith("resample")  # type: ignore[attr-defined]
            assert 12 * np.log2(faster) == pytest.approx(st, abs=0.4)


def _envelope_db(x: np.ndarray) -> np.ndarray:
    """The mean power spectrum (dB) smoothed over 470 Hz, 150-6000 Hz: where the formants
    sit, not the harmonics."""
    f = np.lib.stride_tricks.sliding_window_view(x, 512)[::128] * np.hanning(512)
    p = 10 * np.log10(np.mean(np.abs(np.fft.rfft(f, axis=1)) ** 2, axis=0) + 1e-12)
    return np.convolve(p, np.ones(15) / 15, "same")[5:192]


def test_the_other_laughers_recipes_move_pitch_formants_and_tempo_as_asked() -> None:
    """``laughter_data.shift_voice`` moves the pitch by the semitones asked, the formants
    with it or not (a larger voice or the same one higher); ``time_stretch`` changes the
    length and keeps the pitch."""
    from laughter_data import shift_voice, time_stretch

    x = syllables(16, 160.0)
    e0 = _envelope_db(x)

    def away_db(y: np.ndarray) -> float:
        return float(np.mean(np.abs(_envelope_db(y) - e0)))

    for st in (-4.0, 4.0):
        kept, moved = shift_voice(x, st, 1.0), shift_voice(x, st)
        for y in (kept, moved):
            assert y.size == x.size
            assert abs(12 * np.log2(_median_f0_hz(y) / _median_f0_hz(x)) - st) <= 0.4
        assert away_db(kept) < 0.7 * away_db(moved)
    warped = shift_voice(x, 0.0, 1.1)
    assert abs(12 * np.log2(_median_f0_hz(warped) / _median_f0_hz(x))) <= 0.25
    assert away_db(warped) > 2 * away_db(shift_voice(x, 0.0, 1.0))
    for rate in (0.85, 1.2):
        y = time_stretch(x, rate)
        assert abs(y.size - x.size / rate) <= 1
        assert abs(12 * np.log2(_median_f0_hz(y) / _median_f0_hz(x))) <= 0.25


def test_copies_of_a_laugh_stay_in_its_group_and_a_speech_laugh_breaks_into_the_phrase(
) -> None:
    """``laugh_variants``: each laugh's copies (alone and in a stream) stay in the laugh's
    group and its streams use speech of its fold; ``laugh_in_speech`` with
    ``tail_overlap_s`` starts the laugh that long before the speech ends, the speech still
    sounding under its first sounds."""
    import train_laughter_verifier as T
    from laughter_data import laugh_in_speech

    sp = {g: [T.Item(f"{g}{i}", "speech", g, syllables(40, 120.0, seed=i)) for i in range(2)]
          for g in ("spk:a", "spk:b", "spk:c", "spk:d", "spk:e")}
    lx = laugh(seed=3)
    items = [T.Item("pkg:x", "laughing", "pkg:x", lx), T.Item("s", "speech", "spk:a", lx)]
    clips, streams = T.laugh_variants(items, sp, n=4)
    assert len(clips) == len(streams) == 4
    assert {g for _, g in clips} == {g for _, g in streams} == {"pkg:x"}
    for s, _ in streams:
        assert T.fold_of(s.speaker) == T.fold_of("pkg:x")
        assert s.onset_s < s.end_s
    speech = sp["spk:a"][0].audio
    a = laugh_in_speech(speech, lx, np.random.default_rng(5), warmup_s=5.0)
    b = laugh_in_speech(speech, lx, np.random.default_rng(5), warmup_s=5.0, tail_overlap_s=0.5)
    shift = a.onset_s - b.onset_s  # 0.5 s less the cross-fade (20-50 ms) of ``a``
    assert 0.44 <= shift <= 0.49
    assert a.end_s - b.end_s == pytest.approx(shift, abs=1e-3)
    i, j = int(a.end_s * FS) - lx.size, int(b.end_s * FS) - lx.size  # where each laugh starts
    n = int(0.3 * FS)
    under = b.audio[j:j + n] - a.audio[i:i + n]  # ``b``'s speech under the laugh's start
    assert np.mean(under ** 2) > 0.1 * np.mean(a.audio[i:i + n] ** 2)
