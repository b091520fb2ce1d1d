"""Calls from channel activity, the per-call summary, and the caller-escalation cue."""

from __future__ import annotations

import numpy as np

from dsp.analyzer import HopFeatures
from firmware.appliance.pipeline import make_usual_voice
from firmware.config.settings import Settings
from firmware.policy.cue_policy import CuePolicy, Display


def features(agent_db: np.ndarray, caller_db: np.ndarray, start_hop: int = 0) -> HopFeatures:
    """Two-channel hops; NaN = silence (unvoiced), else voiced at that momentary loudness."""
    loud = np.vstack([np.nan_to_num(agent_db, nan=-80.0), np.nan_to_num(caller_db, nan=-80.0)])
    voiced = np.vstack([np.isfinite(agent_db), np.isfinite(caller_db)])
    idx = np.arange(start_hop, start_hop + agent_db.size)
    return HopFeatures(hop=idx, t=(idx + 0.5) * 0.01, level_dbfs=loud, loudness_m_lufs=loud,
                       loudness_s_lufs=loud, voiced=voiced,
                       noise_floor_dbfs=np.full_like(loud, -90.0))


def script(parts: list[tuple[float, float | None, float | None]]) -> tuple[np.ndarray, ...]:
    """(seconds, agent dB or None, caller dB or None) segments -> per-hop arrays."""
    a, c = [], []
    for sec, ad, cd in parts:
        n = int(round(sec * 100))
        a.append(np.full(n, np.nan if ad is None else ad))
        c.append(np.full(n, np.nan if cd is None else cd))
    return np.concatenate(a), np.concatenate(c)


def run(parts, settings: Settings | None = None, chunk: int | None = None):
    settings = settings or Settings()
    policy = CuePolicy(settings, make_usual_voice(settings))
    a, c = script(parts)
    events, i = [], 0
    rng = np.random.default_rng(1)
    while i < a.size:
        n = chunk or int(rng.integers(1, 400))
        events += policy.process(features(a[i:i + n], c[i:i + n], i))
        i += n
    events += policy.finish()
    return policy, events


CONVERSATION = [(1.0, None, None)] + [(4.0, -30.0, None), (0.5, None, None),
                                      (3.0, None, -35.0), (1.0, -30.0, -35.0)] * 4


def test_one_call_with_a_summary_that_adds_up():
    _, events = run(CONVERSATION + [(30.0, None, None)])
    calls = [e for e in events if e.type.startswith("call.")]
    assert [e.type for e in calls] == ["call.started", "call.ended"]
    start, end = calls[0].data, calls[1].data
    assert start.start_s == 1.0
    assert end.start_s == 1.0 and end.end_s == 1.0 + 4 * 8.5 - 0.0
    assert end.duration_s == 34.0
    assert end.agent_talk_s == 20.0 and end.caller_talk_s == 16.0
    assert end.overlap_s == 4.0
    assert end.agent_talk_share == round(20 / 34, 3)
    # the end is published once the silence gap has passed
    assert calls[1].stream_s >= end.end_s + Settings().calls.silence_gap_s - 0.011


def test_a_short_pause_keeps_the_call_a_long_one_splits_it():
    gap = Settings().calls.silence_gap_s
    _, events = run(CONVERSATION + [(gap - 2, None, None)] + CONVERSATION
                    + [(gap + 1, None, None)] + CONVERSATION)
    assert [e.type for e in events if e.type.startswith("call.")] == [
        "call.started", "call.ended", "call.started", "call.ended"]


def test_calls_independent_of_block_sizes():
    parts = CONVERSATION + [(20.0, None, None)] + CONVERSATION
    _, a = run(parts, chunk=7)
    _, b = run(parts)
    assert [(e.type, e.stream_s, e.data) for e in a] == [(e.type, e.stream_s, e.data) for e in b]


def test_caller_escalation_against_the_callers_own_start_of_call_level():
    settings = Settings()
    parts = [(12.0, None, -35.0), (4.0, None, -24.0), (6.0, None, -35.0), (30.0, None, None)]
    policy, events = run(parts, settings)
    types = [e.type for e in events]
    assert types.count("caller.started") == 1
    assert types.count("caller.ended") == 1
    s = next(e for e in events if e.type == "caller.started").data
    assert s.channel == "caller" and 10.0 <= s.db_above_usual <= 12.0
    assert abs(s.onset_s - 12.0) < 0.02
    assert "stay steady" in s.summary
    summary = next(e for e in events if e.type == "call.ended").data
    assert summary.cues == {"caller": 1}


def test_caller_escalation_shows_stay_steady_while_active():
    settings = Settings()
    policy = CuePolicy(settings, make_usual_voice(settings))
    a, c = script([(10.0, None, -35.0), (3.0, None, -25.0)])
    policy.process(features(a, c))
    assert policy.display is Display.CALLER_ESCALATION


def test_a_steady_caller_gives_no_cue():
    _, events = run([(60.0, None, -35.0), (20.0, None, None)])
    assert not any(e.type.startswith("caller.") for e in events)


def test_caller_baseline_restarts_with_each_call():
    """A loud caller on the next call is that call's usual: no cue."""
    gap = Settings().calls.silence_gap_s
    _, events = run([(12.0, None, -35.0), (gap + 2, None, None), (20.0, None, -24.0)])
    assert not any(e.type.startswith("caller.") for e in events)
