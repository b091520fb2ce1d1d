"""Streaming results must not depend on how the audio was cut into blocks."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest

from dsp.analyzer import AnalyzerParams, HopFeatures, StreamAnalyzer
from dsp.laughter import LaughterBurst
from dsp.resample import StreamResampler
from firmware.appliance.pipeline import Pipeline, make_usual_voice
from firmware.config.settings import Settings
from firmware.demo.voice_synth import formants, glottal, laugh
from firmware.policy.cue_policy import CuePolicy


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
@pytest.mark.parametrize("tone_hz", [8400, 9200, 12000, 20000])
def test_resampler_rejects_what_it_cannot_pass(rate, tone_hz):
    """Tones from 9.2 kHz up are removed (>= 55 dB); 8-9.2 kHz may fold back, but only onto
    6.8-8 kHz, above the pass band: nothing lands in the speech band below 6.8 kHz."""
    x = np.sin(2 * np.pi * tone_hz * np.arange(rate) / rate)[None]
    y = StreamResampler(rate_in=rate).process(x)[0, 2000:]
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size))) / (np.hanning(y.size).sum() / 2)
    hz = np.fft.rfftfreq(y.size, 1 / 16000)
    assert 20 * np.log10(spectrum[hz < 6800].max()) < -55
    if tone_hz >= 9200:
        assert 20 * np.log10(np.sqrt(np.mean(y ** 2)) * np.sqrt(2)) < -55


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


def test_caller_measures_change_nothing_a_cue_reads():
    """The desk skips the caller's spectrum (rate, alpha ratio, pitch spread: no cue reads
    them); everything else, and every event, is what the full analysis gives."""
    rate = 16000
    env = np.abs(speechlike(46.0, rate, 1))  # syllable-like envelopes, a vowel inside
    env[:, 40 * rate:] *= 5.0  # the agent (and the caller) raise their voices
    vowel = formants(glottal(np.full(env.shape[1], 120.0)), (700.0, 1200.0))
    x = (env * vowel / np.abs(vowel).max()).T

    def run(caller_measures: bool) -> tuple[HopFeatures, list]:
        p = Pipeline(Settings(), source_rate=rate, source_channels=2,
                     caller_measures=caller_measures)
        steps = [p.process(x[i:i + 1600]) for i in range(0, x.shape[0], 1600)] + [p.finish()]
        feats = HopFeatures.concat([s.features for s in steps])
        return feats, [(e.type, e.stream_s, e.data) for s in steps for e in s.events]

    (full, full_events), (desk, desk_events) = run(True), run(False)
    assert desk_events == full_events and "raised_voice.started" in [e[0] for e in desk_events]
    for f in fields(HopFeatures):
        a, b = getattr(full, f.name), getattr(desk, f.name)
        if f.name in ("rate_sps", "alpha_db", "pitch_sd_st"):
            np.testing.assert_array_equal(b[0], a[0], err_msg=f.name)
            assert np.isnan(b[1]).all() and np.isfinite(a[1]).any(), f.name
        else:
            np.testing.assert_array_equal(b, a, err_msg=f.name)


# -- the cue policy alone, every kind of event, blocks from 10 ms to 30 s --------------------

HOP_S = 0.01


def _policy_script() -> tuple[HopFeatures, list[tuple[int, str, LaughterBurst]], int]:
    """Stereo features of a scripted desk: warm-up speech, raised and tense passages (the
    raised ones spaced so that cooldown and the hourly cap hold some back), a laugh, a caller
    who escalates, and two calls. Returns the features, the laughter records with the hop at
    which the analyzer would hand each over, and the hop where the desk gets a snooze."""
    rng = np.random.default_rng(11)
    parts: list[tuple[float, float | None, float, float | None]] = []  # s, agent dB, F0, caller
    calm = [(4.0, -30.0, 120.0, None), (0.4, None, 0.0, None), (3.0, None, 0.0, -35.0),
            (0.3, None, 0.0, None)]
    parts += calm * 4                                       # warm-up: ~30 s, the call begins
    for _ in range(3):                                      # raised: 1 cue, 2 in cooldown
        parts += [(2.5, -19.0, 130.0, None)] + calm
    parts += [(3.0, -25.5, 170.0, None)] + calm * 2         # tense: +6 st, +4.5 dB
    parts += [(1.2, -28.0, 200.0, None)] + calm             # the laugh (pitched up)
    parts += [(4.0, None, 0.0, -23.0)] + calm               # the caller escalates
    parts += [(2.5, -19.0, 130.0, None)] + calm * 2         # raised: snoozed (see below)
    parts += [(20.0, None, 0.0, None)] + calm * 3           # silence ends call 1; call 2
    for _ in range(4):                                      # raised, spaced past cooldown
        parts += [(2.5, -19.0, 130.0, None)] + calm * 3
    agent, f0, caller = [], [], []
    for sec, a, hz, c in parts:
        n = int(round(sec / HOP_S))
        agent.append(np.full(n, np.nan) if a is None else a + rng.uniform(-0.5, 0.5, n))
        f0.append(np.full(n, hz) * (1 + 0.01 * rng.standard_normal(n)) if hz else np.zeros(n))
        caller.append(np.full(n, np.nan) if c is None else c + rng.uniform(-0.5, 0.5, n))
    a, c, f = np.concatenate(agent), np.concatenate(caller), np.concatenate(f0)
    n = a.size
    hop = np.arange(n)
    loud = np.vstack([np.nan_to_num(a, nan=-70.0), np.nan_to_num(c, nan=-70.0)])
    voiced = np.isfinite(np.vstack([a, c]))
    f0_hz = np.vstack([np.where(voiced[0], f, 0.0), np.where(voiced[1], 180.0, 0.0)])
    feats = HopFeatures(hop=hop, t=(hop + 0.5) * HOP_S, level_dbfs=loud, loudness_m_lufs=loud,
                        loudness_s_lufs=loud, voiced=voiced,
                        noise_floor_dbfs=np.full((2, n), -90.0), f0_hz=f0_hz,
                        rate_sps=np.full((2, n), 4.0), alpha_db=np.full((2, n), -20.0))
    # The laugh: 1.2 s at 200 Hz; decided 0.5 s in, completed (reported) at most 0.45 s after
    # its end, handed over with the block that heard that moment (4 hops ahead of features).
    start = int(np.flatnonzero(f > 190)[0])
    b = dict(index=0, start_s=start * HOP_S, burst_count=6, rhythm_hz=5.0, score=1.0)
    decided = LaughterBurst(decided_at_s=(start + 50.5) * HOP_S, end_s=None,
                            duration_s=None, **b)
    end = start + 110
    done = LaughterBurst(decided_at_s=decided.decided_at_s, end_s=(end + 0.5) * HOP_S,
                         duration_s=1.1, **b)
    records = [(start + 50 - 4, "decided", decided), (end + 40 - 4, "completed", done)]
    escalates = int(np.flatnonzero(c > -30)[0])
    return feats, records, escalates + 600  # snoozed 6 s after the caller escalated


def _policy_events(cuts: list[tuple[int, int]]) -> list:
    settings = Settings.model_validate({"cues": {"raised_voice": {"cooldown_s": 20,
                                                                  "max_per_hour": 3}}})
    feats, records, snooze_hop = _policy_script()
    policy = CuePolicy(settings, make_usual_voice(settings))
    out = []
    for s, e in cuts:
        if s == snooze_hop:
            out.append(policy.snooze(0.5, source="button"))
        given = [(k, b) for at, k, b in records if s <= at < e]
        out += policy.process(feats.slice(s, e), given)
    out += policy.finish()
    return [(e.type, e.stream_s, e.data, e.publish) for e in out]


def _cuts_with(n: int, must: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Blocks of 10 ms to 30 s (log-uniform), one of them starting at hop ``must``."""
    cuts, i = [], 0
    while i < n:
        k = int(np.exp(rng.uniform(0.0, np.log(3000))))
        e = min(n, i + k)
        if i < must < e:
            e = must
        cuts.append((i, e))
        i = e
    return cuts


def test_policy_events_bit_for_bit_whatever_the_blocks():
    """Raised and tense voice, caller escalation, laughter, calls, warm-up, snooze, cooldown
    and the hourly cap: the same events, bit for bit, for one block, 100 ms blocks and
    random blocks of 10 ms to 30 s (laughter records handed over with the block that heard
    them)."""
    feats, _, snooze_hop = _policy_script()
    n = feats.n_hops
    whole = _policy_events([(0, snooze_hop), (snooze_hop, n)])
    types = [e[0] for e in whole]
    for t in ("call.started", "call.ended", "usual_voice_learned", "raised_voice.started",
              "raised_voice.ended", "tense_voice.started", "tense_voice.ended", "caller.started",
              "caller.ended", "laughter.cue", "laughter_burst", "snooze"):
        assert t in types, t
    assert types.count("call.started") == 2 and types.count("call.ended") == 2
    # 8 raised passages, 3 cues: one before the usual voice is learned, one in cooldown, one
    # snoozed, two over the hourly cap (each held back once, with why)
    assert types.count("raised_voice.started") == 3
    held = sorted(e[2].reason for e in whole if e[0] == "raised_voice.suppressed")
    assert held == ["cooldown", "hourly cap", "hourly cap", "snoozed"]
    hundred = [(i, min(snooze_hop, i + 10)) for i in range(0, snooze_hop, 10)]
    hundred += [(i, min(n, i + 10)) for i in range(hundred[-1][1], n, 10)]
    for cuts in (hundred, _cuts_with(n, snooze_hop, np.random.default_rng(1)),
                 _cuts_with(n, snooze_hop, np.random.default_rng(2))):
        assert _policy_events(cuts) == whole


@pytest.mark.parametrize("agent, caller", [("left", "right"), ("right", "left"),
                                           ("left", "none"), ("right", "none")])
def test_pipeline_analyses_the_configured_channels(agent, caller):
    """Each analysed channel is the source channel the map names, as a mono stream of it."""
    rate = 48000
    x = np.stack([speechlike(3.0, rate, 7)[0], speechlike(3.0, rate, 8)[0] * 0.5], axis=1)
    side = {"left": 0, "right": 1}
    settings = Settings.model_validate({"audio": {"agent_channel": agent,
                                                  "caller_channel": caller}})

    def levels(p: Pipeline, src: np.ndarray) -> np.ndarray:
        return np.concatenate([p.process(src[i:i + 4800]).features.level_dbfs
                               for i in range(0, src.shape[0], 4800)], axis=1)

    got = levels(Pipeline(settings, source_rate=rate, source_channels=2), x)
    names = [agent] + ([caller] if caller != "none" else [])
    assert got.shape[0] == len(names)
    for row, name in enumerate(names):
        alone = levels(Pipeline(Settings(), source_rate=rate, source_channels=1),
                       x[:, side[name]:side[name] + 1])
        np.testing.assert_array_equal(got[row], alone[0])


# -- the whole pipeline, from 1-sample blocks to one block of 20 s ---------------------------

def _awkward_cuts(n: int, rng: np.random.Generator, rate: int) -> list[tuple[int, int]]:
    """Runs of 1-sample blocks, odd-length blocks (3 to 999 samples) and blocks of up to 20 s,
    in random order: every cut a stage can meet, a partial hop carried, many hops at once."""
    cuts, i = [], 0
    while i < n:
        kind = rng.integers(3)
        if kind == 0:  # 0.1 s one sample at a time
            run = [1] * (rate // 10)
        elif kind == 1:
            run = list(2 * rng.integers(1, 500, size=20) + 1)
        else:
            run = [int(rng.integers(rate, 20 * rate))]
        for k in run:
            if i >= n:
                break
            cuts.append((i, min(n, i + int(k))))
            i += int(k)
    return cuts


@pytest.mark.parametrize("rate", [44100, 48000])
def test_everything_the_pipeline_gives_is_independent_of_block_sizes(rate):
    """Features, every event (laughter bursts through the verifier, raised voice, calls) and
    the learned usual voice are the same for one block and for blocks of 1 sample to 20 s,
    through the resampler (rational at 44.1 kHz, the decimating product at 48 kHz)."""
    from synth_voice import resample

    fs = 16000
    env = np.abs(speechlike(36.0, fs, 1))
    vowel = formants(glottal(np.full(env.shape[1], 120.0)), (700.0, 1200.0))
    calm = env * vowel / np.abs(vowel).max()
    laugh_ = np.vstack([laugh(seed=1), np.zeros(laugh(seed=1).size)])
    x16 = np.concatenate([calm, laugh_, np.zeros((2, fs)), calm[:, :6 * fs] * 5, laugh_ * 0.7,
                          calm[:, :3 * fs]], axis=1)
    x = np.stack([resample(x16[0], fs, rate), resample(x16[1], fs, rate)], axis=1)
    x = x.astype(np.float32)  # as the reader hands it over

    def run(cuts: list[tuple[int, int]]) -> tuple[HopFeatures, list, dict]:
        p = Pipeline(Settings(), source_rate=rate, source_channels=2, caller_measures=True)
        steps = [p.process(x[s:e]) for s, e in cuts] + [p.finish()]
        feats = HopFeatures.concat([s.features for s in steps])
        events = [(e.type, e.stream_s, e.data) for s in steps for e in s.events]
        return feats, events, p.usual.to_dict()

    whole, whole_events, whole_usual = run([(0, x.shape[0])])
    types = [e[0] for e in whole_events]
    for t in ("usual_voice_learned", "laughter.cue", "laughter_burst", "raised_voice.started",
              "call.ended"):
        assert t in types, t
    cut, cut_events, cut_usual = run(_awkward_cuts(x.shape[0], np.random.default_rng(rate), rate))
    assert cut.n_hops == whole.n_hops
    for f in fields(HopFeatures):
        a, b = getattr(whole, f.name), getattr(cut, f.name)
        if a.dtype == bool:
            np.testing.assert_array_equal(b, a, err_msg=f.name)
        else:  # the pitch tracker's voicing differs in the last bits (its running peak)
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-9, err_msg=f.name)
    assert cut_events == whole_events
    assert whole_usual["speech_s"] > 0 and cut_usual == whole_usual
