"""Cue policy: from per-hop features and the agent's usual voice to cue and snooze events.

Everything is stated against the agent's own usual voice (dB above usual), never as a feeling.
Time is stream seconds, so `deskcue analyze` and the running appliance decide identically.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from dsp._fast import windows
from dsp.analyzer import HopFeatures
from dsp.laughter import LaughterBurst
from firmware.config.settings import Settings
from firmware.contract.events import (
    EVENT_DATA,
    EventData,
    Recalibrate,
    Snooze,
    UsualVoiceLearned,
)
from firmware.contract.events import (
    LaughterBurst as LaughterBurstData,
)
from firmware.policy.calls import CallTracker
from firmware.policy.sustained import CueTransition, SustainedCue, SustainedParams
from firmware.policy.usual_voice import RobustStat, UsualVoice, semitones

CHUNK_HOPS = 5  # 50 ms: the policy's decision grid, aligned to absolute hop indices
PITCH_WINDOW_HOPS = 50  # pitch is judged as the median of the last 0.5 s of voiced hops


def _nan_to_zero(x: np.ndarray) -> np.ndarray:
    """NaN (a measure not known at that hop) as 0 for event payloads; the measures here are
    never infinite (np.nan_to_num would also clip infinities, at five times the cost)."""
    return np.where(np.isnan(x), 0.0, x)


class TrailingMedian:
    """Per-hop median of the finite values among the last ``window`` hops (NaN if none),
    for ``n`` channels, with the history carried across calls."""

    def __init__(self, n: int, window: int = PITCH_WINDOW_HOPS):
        self.window = window
        self._hist = np.full((n, window - 1), np.nan)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        buf = np.concatenate([self._hist, values], axis=1)
        self._hist = buf[:, buf.shape[1] - (self.window - 1):]
        # Each window sorted (NaN last); the median of its n finite values is the mean of the
        # sorted values at (n - 1) // 2 and n // 2 - what np.nanmedian gives, bit for bit.
        win = np.sort(windows(buf, self.window), axis=-1)
        n = self.window - np.add.reduce(np.isnan(win), axis=-1)
        c, h = n.shape
        rows, cols = np.arange(c)[:, None], np.arange(h)
        med = win[rows, cols, np.maximum(n - 1, 0) // 2]
        med += win[rows, cols, n // 2]
        med /= 2.0
        med[n == 0] = np.nan
        return med

    def reset(self, channel: int) -> None:
        self._hist[channel] = np.nan


class Display(Enum):
    """What the desk light should show, most urgent last."""

    WARMING = "warming"  # learning the usual voice; no cue can fire yet
    READY = "ready"
    SNOOZED = "snoozed"
    CALLER_ESCALATION = "caller_escalation"  # the caller's voice is rising: stay steady
    LAUGHTER = "laughter"  # a brief flash: laughter-like bursts
    TENSE_VOICE = "tense_voice"  # pitch and effort up: calm the tone
    RAISED_VOICE = "raised_voice"


@dataclass
class PolicyEvent:
    """An event for the supervisor and the indicator: ``type``, stream time (s) and ``data``,
    the contract's model for the type (`firmware.contract.events.EVENT_DATA`); None only for
    an event that is never published (``laughter.cue``, for the indicator)."""

    type: str
    stream_s: float
    data: EventData | None
    publish: bool = True  # False: for the desk only (the indicator), never published


def _row(a: np.ndarray | None, c: int) -> np.ndarray | None:
    """Channel ``c`` of an optional per-hop feature."""
    return None if a is None else a[c]


def _sustained(cfg: Any) -> SustainedParams:
    return SustainedParams(hold_s=cfg.hold_s, gap_s=cfg.gap_s, release_s=cfg.release_s,
                           cooldown_s=cfg.cooldown_s, max_per_hour=cfg.max_per_hour)


class CuePolicy:
    """Runs the usual-voice baseline and the cues over the agent channel (channel 0)."""

    def __init__(self, settings: Settings, usual: UsualVoice):
        self.settings = settings
        self.usual = usual
        rv = settings.cues.raised_voice
        self.raised = SustainedCue("raised_voice", _sustained(rv))
        self.tense = SustainedCue("tense_voice", _sustained(settings.cues.tense_voice))
        self.pitch_median = TrailingMedian(2)
        ce = settings.cues.caller_escalation
        self.caller_cue = SustainedCue("caller", _sustained(ce))
        self.caller_usual = RobustStat(lo=-90.0, hi=0.0, step=0.25, decay=1.0)
        self.caller_pitch = RobustStat(lo=-24.0, hi=36.0, step=0.25, decay=1.0)
        self._bursts: list[tuple[str, LaughterBurst]] = []
        self._laugh_cued: dict[int, float] = {}  # burst index -> stream time it was cued
        self._laugh_fired: list[float] = []
        self._laugh_cooldown_until = -np.inf
        self.laughter_flash_until_s = -np.inf
        # the agent's raw pitch (semitones re 100 Hz) over the last 4 s, to judge bursts
        self._st_t = np.zeros(0)
        self._st_v = np.zeros(0)
        self.calls = CallTracker(silence_gap_s=settings.calls.silence_gap_s,
                                 min_call_s=settings.calls.min_call_s)
        self.snoozed_until_s = -np.inf
        self.now_s = 0.0
        self._was_ready = usual.ready
        self._pending: HopFeatures | None = None

    # -- commands -------------------------------------------------------------------------
    def snooze(self, minutes: float | None, *, source: str) -> PolicyEvent:
        """Snooze cues for ``minutes`` (default from config, capped); 0 cancels a snooze."""
        cfg = self.settings.snooze
        m = cfg.default_min if minutes is None else min(max(float(minutes), 0.0), cfg.max_min)
        self.snoozed_until_s = self.now_s + 60.0 * m
        return PolicyEvent("snooze", self.now_s, Snooze(
            minutes=round(m, 2), until_s=round(self.snoozed_until_s, 3),
            source=source))  # type: ignore[arg-type]

    def recalibrate(self) -> PolicyEvent:
        """Forget the usual voice and learn it again from the next speech."""
        self.usual.reset()
        self._was_ready = False
        return PolicyEvent("recalibrate", self.now_s, Recalibrate(
            warmup_speech_s=float(self.usual.warmup_speech_s)))

    @property
    def snoozed(self) -> bool:
        return self.now_s < self.snoozed_until_s

    @property
    def display(self) -> Display:
        if self.raised.phase.value == "active":
            return Display.RAISED_VOICE
        if self.tense.phase.value == "active":
            return Display.TENSE_VOICE
        if self.snoozed:
            return Display.SNOOZED
        if self.now_s < self.laughter_flash_until_s:
            return Display.LAUGHTER
        if self.caller_cue.phase.value == "active":
            return Display.CALLER_ESCALATION
        return Display.READY if self.usual.ready else Display.WARMING

    # -- per block ------------------------------------------------------------------------
    def process(self, f: HopFeatures,
                bursts: list[tuple[str, LaughterBurst]] | None = None) -> list[PolicyEvent]:
        """Consume a run of hops (and the laughter-like bursts the analyzer decided or
        completed in them); return the events they caused, in stream order.

        Hops are decided in chunks of `CHUNK_HOPS` aligned to absolute hop indices (the
        baseline is read once per chunk), so the events do not depend on how the stream was
        cut; a partial chunk waits for the next call (at most 40 ms).
        """
        if bursts:
            self._bursts += bursts
        if f.n_hops == 0:
            return []
        pending = HopFeatures.concat([self._pending, f]) if self._pending is not None else f
        first = int(pending.hop[0])
        n_ready = (first + pending.n_hops) // CHUNK_HOPS * CHUNK_HOPS - first
        events: list[PolicyEvent] = []
        start = 0
        while start < n_ready:
            stop = (first + start) // CHUNK_HOPS * CHUNK_HOPS + CHUNK_HOPS - first
            whole = start == 0 and stop == pending.n_hops
            events += self._chunk(pending if whole else pending.slice(start, stop))
            start = stop
        self._pending = pending.slice(n_ready, pending.n_hops) if n_ready < pending.n_hops \
            else None
        return events

    def _chunk(self, f: HopFeatures) -> list[PolicyEvent]:
        events: list[PolicyEvent] = []
        loud = f.loudness_m_lufs[0]
        voiced = f.voiced[0]
        rv = self.settings.cues.raised_voice
        usual = self.usual.usual_lufs if self.usual.ready else np.nan
        excess = loud - usual
        if self.usual.ready and rv.enabled:
            on = voiced & (excess >= rv.threshold_db)
            keep = voiced & (excess >= rv.threshold_db - rv.hysteresis_db)
            measures = {"db_above_usual": excess, "loudness_lufs": loud}
            for tr in self.raised.step(f.t, on, keep, measures, self.snoozed_until_s):
                events.append(self._event(tr, usual))
        st = self._smoothed_st(f)
        if f.f0_hz is not None:
            keep_from = f.t[-1] - 4.0
            m = self._st_t >= keep_from
            self._st_t = np.concatenate([self._st_t[m], f.t])
            self._st_v = np.concatenate([self._st_v[m], semitones(f.f0_hz[0])])
        usual_st = self.usual.usual_st if self.usual.ready else np.nan
        st_above = st[0] - usual_st
        if self.usual.ready and np.isfinite(usual_st) and self.settings.cues.tense_voice.enabled:
            events += self._tense(f, st_above, excess)
        caller_voiced = f.voiced[1] if f.voiced.shape[0] > 1 else None
        for ce in self.calls.step(f.t, voiced, caller_voiced, excess, st_above):
            if ce.type == "call.started":
                self.caller_usual.clear()
                self.caller_pitch.clear()
            else:
                events += [self._event(tr, np.nan) for tr in
                           self.caller_cue.finish(ce.stream_s)]
            events.append(PolicyEvent(ce.type, ce.stream_s, ce.data))
        if caller_voiced is not None and self.calls.in_call:
            events += self._caller(f, caller_voiced, st[1] if st.shape[0] > 1 else None)
        events += self._laughter(float(f.t[-1]) + 0.005)
        for e in events:
            if e.type.endswith((".started", ".cue")) and not e.type.startswith("call."):
                self.calls.note_cue(e.type.rsplit(".", 1)[0])
        # Learn from speech that is not part of a cue; drop what led up to a cue.
        if self.raised.engaged or self.tense.engaged:
            self.usual.forget_pending()
        else:
            self.usual.offer(loud, voiced, _row(f.f0_hz, 0), _row(f.rate_sps, 0),
                             _row(f.alpha_db, 0))
        self.now_s = float(f.t[-1] + 0.005)
        if self.usual.ready and not self._was_ready:
            self._was_ready = True
            u = self.usual
            data = UsualVoiceLearned(
                usual_lufs=round(float(u.usual_lufs), 2),
                spread_db=round(float(u.loudness.spread()), 2),
                speech_s=round(float(u.speech_s), 1),
                usual_f0_hz=round(float(u.usual_f0_hz), 1) if np.isfinite(u.usual_st) else None,
                usual_rate_sps=round(float(u.rate.median()), 2) if u.rate.weight > 0 else None)
            events.append(PolicyEvent("usual_voice_learned", self.now_s, data))
        return events

    def _smoothed_st(self, f: HopFeatures) -> np.ndarray:
        """Pitch per channel, semitones re 100 Hz: median of the last 0.5 s of voiced hops,
        NaN at hops that are not voiced themselves (voice activity and pitch)."""
        c = f.voiced.shape[0]
        if f.f0_hz is None:
            return np.full((c, f.n_hops), np.nan)
        st = semitones(np.where(f.voiced, f.f0_hz, 0.0))
        med = self.pitch_median(np.vstack([st, np.full((2 - c, f.n_hops), np.nan)]))[:c]
        return np.where(np.isfinite(st), med, np.nan)

    def _tense(self, f: HopFeatures, st_above: np.ndarray,
               excess: np.ndarray) -> list[PolicyEvent]:
        """Pitch held above usual with raised effort (loudness or tilt) or a fast rate."""
        cfg = self.settings.cues.tense_voice
        u = self.usual
        alpha_above = (_row(f.alpha_db, 0) - u.alpha.median()
                       if f.alpha_db is not None and u.alpha.weight > 0
                       else np.full(f.n_hops, np.nan))
        rate = _row(f.rate_sps, 0)
        usual_rate = u.rate.median() if u.rate.weight > 0 else np.nan
        with np.errstate(invalid="ignore"):
            effort = ((excess >= cfg.effort_db) | (alpha_above >= cfg.tilt_db)
                      | (rate >= cfg.rate_ratio * usual_rate))
            on = (st_above >= cfg.pitch_st) & effort
            keep = st_above >= cfg.pitch_st - cfg.hysteresis_st
        measures = {"st_above_usual": _nan_to_zero(st_above),
                    "db_above_usual": _nan_to_zero(excess),
                    "alpha_above_usual_db": _nan_to_zero(alpha_above),
                    "rate_sps": _nan_to_zero(rate)}
        return [self._event(tr, u.usual_lufs) for tr in
                self.tense.step(f.t, on, keep, measures, self.snoozed_until_s)]

    def _caller(self, f: HopFeatures, voiced: np.ndarray,
                st: np.ndarray | None) -> list[PolicyEvent]:
        """The caller against the caller's own start-of-call level and pitch ("stay
        steady"): louder by the threshold, or higher in pitch and half as much louder."""
        cfg = self.settings.cues.caller_escalation
        loud = f.loudness_m_lufs[1]
        st = np.full(f.n_hops, np.nan) if st is None else st
        need = int(round(cfg.baseline_speech_s / 0.01))
        have = int(round(self.caller_usual.weight))
        if have < need:
            take = np.flatnonzero(voiced)[: need - have]
            self.caller_usual.learn(loud[take])
            self.caller_pitch.learn(st[take])
            return []
        if not cfg.enabled:
            return []
        usual = self.caller_usual.median()
        excess = loud - usual
        st_above = (st - self.caller_pitch.median() if self.caller_pitch.weight > 0
                    else np.full(f.n_hops, np.nan))
        with np.errstate(invalid="ignore"):
            pitch_up = (st_above >= cfg.pitch_st) & (excess >= cfg.threshold_db / 2)
            on = voiced & ((excess >= cfg.threshold_db) | pitch_up)
            keep = voiced & ((excess >= cfg.threshold_db - cfg.hysteresis_db) | pitch_up)
        measures = {"db_above_usual": excess, "loudness_lufs": loud,
                    "st_above_usual": _nan_to_zero(st_above)}
        # Snooze silences the agent's cues; the caller cue is for the agent too.
        return [self._event(tr, usual) for tr in
                self.caller_cue.step(f.t, on, keep, measures, self.snoozed_until_s)]

    def _laughter(self, until_s: float) -> list[PolicyEvent]:
        """Cue on bursts decided up to ``until_s``; report cued bursts once they complete."""
        cfg = self.settings.cues.laughter
        events: list[PolicyEvent] = []
        while self._bursts:
            kind, b = self._bursts[0]
            at = b.decided_at_s if kind == "decided" else (b.end_s or b.decided_at_s)
            if at > until_s:
                break
            self._bursts.pop(0)
            if kind == "decided":
                self._laugh_fired = [t for t in self._laugh_fired if t > at - 3600.0]
                if (cfg.enabled and self._burst_pitch_up(b, cfg.pitch_st)
                        and at >= self.snoozed_until_s
                        and at >= self._laugh_cooldown_until
                        and len(self._laugh_fired) < cfg.max_per_hour):
                    self._laugh_cued[b.index] = at
                    self._laugh_fired.append(at)
                    self.laughter_flash_until_s = at + 1.5
                    events.append(PolicyEvent("laughter.cue", at, None, publish=False))
            elif b.index in self._laugh_cued:
                self._laugh_cued.pop(b.index)
                end = b.end_s if b.end_s is not None else at
                self._laugh_cooldown_until = end + cfg.cooldown_s
                # mqtt.publish_laughter decides whether supervisors get these at all; the
                # filter sits here, before stamping, so `seq` has no gaps.
                publish = self.settings.mqtt.publish_laughter
                events.append(PolicyEvent("laughter_burst", until_s, publish=publish,
                                          data=LaughterBurstData(
                    cue="laughter", onset_s=round(float(b.start_s), 3),
                    at_s=round(float(b.decided_at_s), 3), end_s=round(float(end), 3),
                    duration_s=round(float(end - b.start_s), 3),
                    burst_count=int(b.burst_count), rhythm_hz=round(float(b.rhythm_hz), 2),
                    score=round(float(b.score), 3),
                    summary=f"laughter-like bursts: {b.burst_count} at "
                            f"{b.rhythm_hz:.1f}/s for {end - b.start_s:.1f} s")))
        return events

    def _burst_pitch_up(self, b: LaughterBurst, pitch_st: float) -> bool:
        """Whether the burst's median pitch is ``pitch_st`` above the agent's usual pitch."""
        usual = self.usual.usual_st if self.usual.ready else np.nan
        if not np.isfinite(usual):
            return False
        m = (self._st_t >= b.start_s) & (self._st_t <= b.decided_at_s)
        v = self._st_v[m]
        v = v[np.isfinite(v)]
        return v.size >= 3 and float(np.median(v)) - usual >= pitch_st

    def finish(self) -> list[PolicyEvent]:
        """Decide the last partial chunk, then end active cues and the call (end of stream
        or shutdown)."""
        events = self._chunk(self._pending) if self._pending is not None else []
        self._pending = None
        usual = self.usual.usual_lufs
        events += [self._event(tr, usual) for tr in self.raised.finish(self.now_s)]
        events += [self._event(tr, usual) for tr in self.tense.finish(self.now_s)]
        events += [self._event(tr, np.nan) for tr in self.caller_cue.finish(self.now_s)]
        events += [PolicyEvent(ce.type, ce.stream_s, ce.data)
                   for ce in self.calls.finish(self.now_s)]
        return events

    def _event(self, tr: CueTransition, usual: float) -> PolicyEvent:
        d = dict(tr.data)
        d["cue"] = tr.cue
        if tr.kind == "suppressed":
            # For the desk's own record (status, a reviewer's plot), never published: the
            # agent was not cued, so there is nothing for a supervisor to count.
            return PolicyEvent(f"{tr.cue}.suppressed", tr.stream_s, d, publish=False)
        if np.isfinite(usual):
            d["usual_lufs"] = round(usual, 2)
        if tr.cue == "caller":
            d["channel"] = "caller"
            if tr.kind == "started":
                d["summary"] = (f"caller +{d['db_above_usual']:.1f} dB above the caller's "
                                f"start-of-call level for {d['duration_s']:.1f} s: stay steady")
            else:
                d["summary"] = (f"caller back near their start-of-call level after "
                                f"{d['duration_s']:.1f} s")
        elif tr.cue == "tense_voice":
            if tr.kind == "started":
                d["summary"] = (f"+{d['st_above_usual']:.1f} semitones, "
                                f"{d['db_above_usual']:+.0f} dB, {d['rate_sps']:.1f} syllables/s "
                                f"for {d['duration_s']:.1f} s")
            else:
                d["summary"] = (f"pitch back near your usual after {d['duration_s']:.1f} s "
                                f"(peak +{d['peak_st_above_usual']:.1f} semitones)")
        elif tr.kind == "started":
            d["summary"] = (f"+{d['db_above_usual']:.1f} dB above your usual "
                            f"for {d['duration_s']:.1f} s")
        else:
            d["summary"] = (f"voice back near your usual after {d['duration_s']:.1f} s "
                            f"(peak +{d['peak_db_above_usual']:.1f} dB)")
        kind = f"{tr.cue}.{tr.kind}"
        return PolicyEvent(kind, tr.stream_s, EVENT_DATA[kind].model_validate(d))
