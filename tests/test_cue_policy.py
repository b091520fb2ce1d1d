"""Raised-voice cue policy: warm-up, hold, hysteresis, cooldown, hourly cap, snooze, baseline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dsp.analyzer import HopFeatures
from dsp.laughter import LaughterBurst
from firmware.appliance.pipeline import make_usual_voice
from firmware.config.settings import Settings
from firmware.policy.cue_policy import CuePolicy, PolicyEvent

USUAL = -30.0


def hops(loudness: np.ndarray, voiced: np.ndarray | None = None, start: int = 0) -> HopFeatures:
    """Agent-only features with the given momentary loudness per 10 ms hop."""
    n = loudness.size
    v = np.ones(n, dtype=bool) if voiced is None else voiced
    idx = np.arange(start, start + n)
    row = loudness[None, :]
    return HopFeatures(hop=idx, t=(idx + 0.5) * 0.01, level_dbfs=row, loudness_m_lufs=row,
                       loudness_s_lufs=row, voiced=v[None, :],
                       noise_floor_dbfs=np.full((1, n), -80.0))


class Feeder:
    """Feeds a policy seconds of constant loudness, tracking the stream position."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        self.policy = CuePolicy(self.settings, make_usual_voice(self.settings))
        self.hop = 0
        self.events: list = []
        self.rng = np.random.default_rng(0)

    def feed(self, seconds: float, db_above: float, voiced: bool = True, jitter: float = 0.5):
        n = int(round(seconds * 100))
        loud = USUAL + db_above + self.rng.uniform(-jitter, jitter, n)
        f = hops(loud, np.full(n, voiced), self.hop)
        self.hop += n
        ev = self.policy.process(f)
        self.events += ev
        return ev

    def types(self) -> list[str]:
        """Cue events (calls are tested in test_calls.py)."""
        return [e.type for e in self.events if not e.type.startswith("call.")]


def warmed(settings: Settings | None = None) -> Feeder:
    fd = Feeder(settings)
    fd.feed(30.0, 0.0)
    assert fd.types() == ["usual_voice_learned"]
    return fd


def test_warmup_needs_at_most_30_s_of_speech_and_nothing_fires_before():
    fd = Feeder()
    fd.feed(5.0, 15.0)  # loud from the first second: no baseline yet, no cue
    fd.feed(25.0, 0.0)
    assert "raised_voice.started" not in fd.types()
    learned = [e for e in fd.events if e.type == "usual_voice_learned"]
    assert learned and learned[0].stream_s <= 30.0
    # the median ignores the loud start
    assert abs(learned[0].data.usual_lufs - USUAL) < 1.0


def test_raised_voice_fires_after_hold_and_states_measurements():
    fd = warmed()
    t0 = fd.hop * 0.01
    fd.feed(3.0, 10.0)
    started = [e for e in fd.events if e.type == "raised_voice.started"]
    assert len(started) == 1
    d = started[0].data
    hold = fd.settings.cues.raised_voice.hold_s
    assert abs(d.onset_s - t0) < 0.02
    assert abs(d.at_s - (t0 + hold)) < 0.06
    assert 9.0 < d.db_above_usual < 11.0
    assert "dB above your usual" in d.summary
    fd.feed(5.0, 0.0)
    ended = [e for e in fd.events if e.type == "raised_voice.ended"]
    assert len(ended) == 1 and ended[0].data.duration_s > 2.9


def test_short_loud_word_does_not_fire():
    fd = warmed()
    fd.feed(0.6, 15.0)
    fd.feed(5.0, 0.0)
    assert "raised_voice.started" not in fd.types()


def test_hysteresis_no_flicker_around_threshold():
    """Loudness wandering just under and over the threshold gives one cue, not many."""
    fd = warmed()
    thr = fd.settings.cues.raised_voice.threshold_db
    for _ in range(10):
        fd.feed(1.5, thr + 1.0, jitter=0.2)
        fd.feed(0.8, thr - 2.0, jitter=0.2)  # below threshold, above the release level
    assert fd.types().count("raised_voice.started") == 1
    assert fd.types().count("raised_voice.ended") == 0


def test_pauses_between_words_do_not_break_evidence():
    fd = warmed()
    for _ in range(4):
        fd.feed(0.4, 12.0)
        fd.feed(0.3, -40.0, voiced=False)
    assert fd.types().count("raised_voice.started") == 1


def test_cooldown_and_hourly_cap():
    s = Settings.model_validate({"cues": {"raised_voice": {"cooldown_s": 60, "max_per_hour": 2}}})
    fd = warmed(s)
    for _ in range(4):  # loud 3 s, calm 10 s: all inside the 60 s cooldown
        fd.feed(3.0, 12.0)
        fd.feed(10.0, 0.0)
    assert fd.types().count("raised_voice.started") == 1
    for _ in range(6):  # spaced beyond the cooldown: the cap of 2 per hour holds
        fd.feed(3.0, 12.0)
        fd.feed(70.0, 0.0)
    assert fd.types().count("raised_voice.started") == 2
    # every passage held back is reported once, with why, for the desk only (not published)
    held = [e for e in fd.events if e.type == "raised_voice.suppressed"]
    assert [e.data.reason for e in held] == ["cooldown"] * 4 + ["hourly cap"] * 4
    assert not any(e.publish for e in held)
    assert all(e.data.at_s - e.data.onset_s >= s.cues.raised_voice.hold_s - 0.01
               for e in held)


def test_snooze_blocks_cues_until_it_ends():
    fd = warmed()
    ev = fd.policy.snooze(1.0, source="button")
    assert ev.type == "snooze" and ev.data.minutes == 1.0
    assert fd.policy.display.value == "snoozed"
    fd.feed(3.0, 12.0)
    assert "raised_voice.started" not in fd.types()
    assert [e.data.reason for e in fd.events if e.type.endswith(".suppressed")] == ["snoozed"]
    fd.feed(60.0, 0.0)
    fd.feed(3.0, 12.0)
    assert fd.types().count("raised_voice.started") == 1


def test_snooze_is_capped_and_zero_cancels():
    fd = warmed()
    assert fd.policy.snooze(10_000, source="cli").data.minutes == 120.0
    fd.policy.snooze(0, source="cli")
    assert not fd.policy.snoozed


def test_a_short_snooze_is_answered_as_applied_not_as_a_cancel():
    # 0 minutes means "cancelled" to whoever reads the event: a snooze of a few seconds must
    # not read as 0, and what it says must be what the desk applied
    fd = warmed()
    ev = fd.policy.snooze(0.001, source="mqtt")
    assert fd.policy.snoozed and ev.data.minutes > 0
    assert ev.data.until_s - fd.policy.now_s == pytest.approx(60.0 * ev.data.minutes, abs=1e-3)


def test_cued_passages_are_left_out_of_the_baseline():
    fd = warmed()
    for _ in range(8):
        fd.feed(20.0, 12.0)  # long raised passages, all cued
        fd.feed(3.0, 0.0)
    assert abs(fd.policy.usual.usual_lufs - USUAL) < 1.5


def test_baseline_round_trips_through_its_state():
    fd = warmed()
    state = fd.policy.usual.to_dict()
    other = make_usual_voice(Settings())
    other.load(state)
    assert other.ready and abs(other.usual_lufs - fd.policy.usual.usual_lufs) < 1e-9


def test_a_cue_right_after_the_warm_up_still_ends():
    """The first cue can start while learning still lags; dropping that lag must not take
    the baseline away from the running cue (it would never end)."""
    fd = Feeder()
    fd.feed(20.5, 0.0)  # just past the warm-up, part of it still waiting in the lag
    fd.feed(3.0, 12.0)
    fd.feed(6.0, 0.0)
    assert fd.types()[-2:] == ["raised_voice.started", "raised_voice.ended"]


def test_usual_voice_learns_what_its_lag_has_followed_at_each_offer():
    """Each offer learns every hop that lag_s of speech has followed, and no other."""
    usual = make_usual_voice(Settings())
    lag = usual.lag_hops * 0.01
    assert lag >= 3.0
    heard = 0.0
    for _ in range(40):  # 0.5 s at a time, as the policy offers at its learning points
        usual.offer(np.full(50, USUAL), np.ones(50, dtype=bool))
        heard += 0.5
        assert abs(usual.speech_s - max(0.0, heard - lag)) < 1e-9


def test_learning_and_ready_only_at_half_second_points_of_stream_time():
    """The usual voice changes only at learning points (every 0.5 s of stream time, aligned to
    absolute hops), whatever the blocks: there it has learned the speech heard up to lag_s
    before, and the warm-up ends at the first point with warmup_speech_s heard."""
    fd = Feeder()
    rng = np.random.default_rng(3)
    lag = fd.policy.usual.lag_hops * 0.01
    while fd.hop < 3000:
        fd.feed(int(rng.integers(1, 120)) / 100, 0.0)
        decided = fd.hop // 5 * 5  # whole 50 ms chunks are decided
        point = decided // 50 * 50  # the latest learning point decided, hops
        assert abs(fd.policy.usual.speech_s - max(0.0, point * 0.01 - lag)) < 1e-9
    ready = [e for e in fd.events if e.type == "usual_voice_learned"]
    warmup = fd.settings.baseline.warmup_speech_s
    assert len(ready) == 1 and ready[0].stream_s == np.ceil(warmup / 0.5) * 0.5


def _laugh_after(speech_st: float, laugh_st: float, recent_s: float | None = None,
                 pause_s: float = 0.0, block_hops: int | None = None) -> list[str]:
    """The laughter events of a desk that learns its usual voice at 120 Hz, then speaks 8 s
    at ``speech_st`` semitones above it, pauses ``pause_s`` (unvoiced), then makes a 1.2 s
    laugh-like burst (verified by the analyzer, decided 0.5 s in) at ``laugh_st`` above it;
    shipped config but ``recent_s``; fed in blocks of ``block_hops`` (None: per part)."""
    settings = Settings() if recent_s is None else Settings.model_validate(
        {"cues": {"laughter": {"recent_s": recent_s}}})
    policy = CuePolicy(settings, make_usual_voice(settings))
    rng = np.random.default_rng(5)
    events: list[PolicyEvent] = []
    hop = 0
    parts = ((30.0, 0.0), (8.0, speech_st), (pause_s, None), (1.2, laugh_st), (2.0, 0.0))
    for seconds, st in parts:
        n = int(round(seconds * 100))
        idx = np.arange(hop, hop + n)
        voiced = np.full((1, n), st is not None)
        loud = np.where(voiced, USUAL + rng.uniform(-0.5, 0.5, n), -70.0)
        f0 = np.where(voiced, 120.0 * 2 ** ((st or 0.0) / 12)
                      * (1 + 0.01 * rng.standard_normal((1, n))), 0.0)
        f = HopFeatures(hop=idx, t=(idx + 0.5) * 0.01, level_dbfs=loud, loudness_m_lufs=loud,
                        loudness_s_lufs=loud, voiced=voiced,
                        noise_floor_dbfs=np.full((1, n), -80.0), f0_hz=f0)
        bursts = None
        if seconds == 1.2:
            b: dict[str, Any] = dict(index=0, start_s=hop * 0.01, burst_count=6,
                                     rhythm_hz=5.0, score=0.9)
            bursts = [("decided", LaughterBurst(decided_at_s=(hop + 50.5) * 0.01, end_s=None,
                                                duration_s=None, **b)),
                      ("completed", LaughterBurst(decided_at_s=(hop + 50.5) * 0.01,
                                                  end_s=(hop + n - 0.5) * 0.01,
                                                  duration_s=1.2, **b))]
        step = block_hops or max(n, 1)
        for i in range(0, n, step):  # the bursts with the first block, as the analyzer hands
            events += policy.process(f.slice(i, min(n, i + step)), bursts if i == 0 else None)
        hop += n
    events += policy.finish()
    return [e.type for e in events if e.type.startswith("laughter")]


def test_a_laugh_must_stand_above_the_agents_recent_speaking_pitch() -> None:
    """Bursts 2.5 semitones above the usual pitch (the check: 2) cue after calm speech; the
    same bursts after speech already raised to that pitch (an excited agent) do not, though
    the usual pitch alone would let them through."""
    assert Settings().cues.laughter.pitch_st == 2.0
    assert _laugh_after(0.0, 2.5) == ["laughter.cue", "laughter_burst"]
    assert _laugh_after(2.5, 2.5) == []
    assert _laugh_after(2.5, 2.5, recent_s=0.0) == ["laughter.cue", "laughter_burst"]
    # a laugh that does stand above the raised speech still cues
    assert _laugh_after(2.5, 5.0) == ["laughter.cue", "laughter_burst"]


def test_the_recent_speaking_pitch_does_not_depend_on_the_blocks() -> None:
    """The recent pitch is read over ``recent_s`` before the bursts whatever the blocks: raised
    speech 3.5 s before a laugh at its pitch holds the cue back in one block per part and in
    blocks of 70 ms (the policy keeps that much of the agent's pitch history)."""
    for block_hops in (None, 7):
        assert _laugh_after(2.5, 2.5, pause_s=3.5, block_hops=block_hops) == []
        assert _laugh_after(0.0, 2.5, pause_s=3.5, block_hops=block_hops) == [
            "laughter.cue", "laughter_burst"]
