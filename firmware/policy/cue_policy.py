"""Cue policy: from per-hop features and the agent's usual voice to cue and snooze events.

Everything is stated against the agent's own usual voice (dB above usual), never as a feeling.
Time is stream seconds, so `deskcue analyze` and the running appliance decide identically.

Frame conventions: hop ``k`` is centred at ``(k + 0.5) * 0.01`` s; decisions are taken per
chunk of `CHUNK_HOPS` (50 ms) aligned to absolute hops, and the usual voice changes only at
learning points every `LEARN_HOPS` (0.5 s, aligned too). A block's complete chunks are decided
together with numpy; Python loops run per transition (a cue or a call starting or ending, a
learning point, a laughter record), never per hop or chunk. Learning rule: a chunk whose end
finds raised or tense voice engaged is not offered and drops the speech offered before it and
not yet learned; at each learning point the usual voice learns what ``lag_s`` of speech has
followed, and settles ``ready``. The events are the same, bit for bit, whatever the blocks.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

import numpy as np

from dsp._fast import windows
from dsp.analyzer import HOP_S, HopFeatures
from dsp.laughter import PEAK_AHEAD_HOPS, TRAIN_GAP_HOPS, LaughterBurst, LaughterDetector
from firmware.config.settings import Settings
from firmware.contract.events import (
    EVENT_DATA,
    CueSuppressed,
    EventData,
    Recalibrate,
    Snooze,
    UsualVoiceLearned,
)
from firmware.contract.events import (
    LaughterBurst as LaughterBurstData,
)
from firmware.policy.calls import CallTracker
from firmware.policy.sustained import CueTransition, Phase, SustainedCue, SustainedParams
from firmware.policy.usual_voice import RobustStat, UsualVoice, semitones

CHUNK_HOPS = 5  # 50 ms: the policy's decision grid, aligned to absolute hop indices
LEARN_HOPS = 50  # 0.5 s: the usual voice changes only at these points (absolute hops too)
PITCH_WINDOW_HOPS = 50  # pitch is judged as the median of the last 0.5 s of voiced hops
RECENT_MIN_HOPS = 50  # pitched hops (0.5 s) before bursts that make a recent speaking pitch
AFTER_LOSS_HOPS = 40  # hops after lost audio not learned from: the momentary loudness's 400 ms
#                       window starts over there (`StreamAnalyzer.restart`) and reads low


def _nan_to_zero(x: np.ndarray) -> np.ndarray:
    """NaN (a measure not known at that hop) as 0 for event payloads; the measures here are
    never infinite (np.nan_to_num would also clip infinities, at five times the cost)."""
    return np.where(np.isnan(x), 0.0, x)


class TrailingMedian:
    """Median of the finite values among the last ``window`` hops (NaN if none), per
    channel, computed only at the hops asked for (`at`), when they are asked for.

    Hops are `push`ed as they come (absolute hop indices follow on from 0) and kept, with
    the ``window - 1`` before them, until `trim`: medians cost a handful of numpy calls
    each time they are computed, so the policy computes them for a whole learning interval
    at once where it can, and for a block only when a cue could need them.
    """

    def __init__(self, n: int, window: int = PITCH_WINDOW_HOPS, start: int = 0):
        """``start``: absolute index of the first hop to be pushed (nothing heard before)."""
        self.window = window
        self._buf = np.full((n, window - 1), np.nan)
        self._end = start  # absolute index of the hop after the last one pushed

    @property
    def end(self) -> int:
        """Absolute index of the hop after the last one pushed."""
        return self._end

    @property
    def _base(self) -> int:
        """Absolute hop index of the buffer's first column."""
        return self._end - self._buf.shape[1]

    def push(self, values: np.ndarray, first: int) -> None:
        """Append the next hops, (n, k), the first of them hop ``first`` (absolute)."""
        self._buf = np.concatenate([self._buf, values], axis=1)
        self._end = first + values.shape[1]

    def trim(self, first_needed: int) -> None:
        """Forget what no window of a hop from ``first_needed`` on reaches."""
        drop = first_needed - (self.window - 1) - self._base
        if drop > 0:
            self._buf = self._buf[:, drop:]

    def values(self, channel: int, lo: int, hi: int) -> np.ndarray:
        """The pushed values of hops ``[lo, hi)`` (absolute)."""
        return self._buf[channel, lo - self._base:hi - self._base]

    def window_max(self, channel: int, lo: int, hi: int) -> float:
        """Largest finite value any window of hops ``[lo, hi)`` sees (NaN if none)."""
        base = self._base
        return float(np.fmax.reduce(self._buf[channel, max(lo - self.window + 1 - base, 0):
                                              hi - base]))

    def at(self, channel: int, hops: np.ndarray) -> np.ndarray:
        """Medians at absolute hop indices ``hops`` (pushed and not trimmed away)."""
        if not hops.size:
            return np.empty(0)
        row = self._buf[channel:channel + 1]  # C-contiguous, as `windows` needs
        start = hops - (self._base + self.window - 1)  # the first column of each window
        # Each window sorted (NaN last); the median of its n finite values is the mean of the
        # sorted values at (n - 1) // 2 and n // 2 - what np.nanmedian gives, bit for bit.
        win = np.sort(windows(row, self.window)[0, start], axis=-1)
        n = self.window - np.add.reduce(np.isnan(win), axis=-1)
        rows = np.arange(hops.size)
        med = win[rows, np.maximum(n - 1, 0) // 2]
        med += win[rows, n // 2]
        med /= 2.0
        med[n == 0] = np.nan
        return med

    def finite_at(self, channel: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """The hops of ``[lo, hi)`` whose own value is finite (absolute indices), and the
        medians there: the smoothed value of every hop that has one."""
        hops = np.flatnonzero(np.isfinite(self.values(channel, lo, hi))) + lo
        return hops, self.at(channel, hops)


class Display(Enum):
    """What the desk light should show (`CuePolicy.shown` decides which wins)."""

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
    the contract's model for the type (`firmware.contract.events.EVENT_DATA`); for events that
    are never published, `CueSuppressed` (``<cue>.suppressed``, the desk's own record) or None
    (``laughter.cue``, for the indicator)."""

    type: str
    stream_s: float
    data: EventData | CueSuppressed | None
    publish: bool = True  # False: for the desk only (the indicator), never published
    # False: a cue that starts while the agent's other cue (raised or tense) is showing; the
    # motor stays still, since the agent already felt the buzz for this passage
    buzz: bool = True


def _chunk_ending(stream_s: float) -> int:
    """The chunk of the hop that ends at ``stream_s`` (s): cue and call-end events are
    stamped at the end of the hop that decided them."""
    return (int(round(stream_s / HOP_S)) - 1) // CHUNK_HOPS


# A completed burst is reported once the detector is sure the train is over: at most a train
# gap (plus the peak confirmation and the detector's delay) after the end of its last burst,
# and the report arrives with whichever block heard that moment. It is judged at a fixed time
# after its end, by which it has always arrived, so events do not depend on the blocks.
_COMPLETED_DUE_S = (TRAIN_GAP_HOPS + PEAK_AHEAD_HOPS + LaughterDetector.delay_hops) * HOP_S


def _due_s(kind: str, b: LaughterBurst) -> float:
    """When a burst record is judged (stream s): a decision when it was made (the newest hop
    heard then), a completion `_COMPLETED_DUE_S` after the burst's end."""
    if kind == "decided":
        return b.decided_at_s
    return (b.end_s or b.decided_at_s) + _COMPLETED_DUE_S


def _engaged_at(ends: np.ndarray, was: bool, changes: list[tuple[int, bool]]) -> np.ndarray:
    """Whether a cue is engaged after each hop index in ``ends``, from its state before
    the run (``was``) and where it changed in the run (`SustainedCue.engaged_changes`)."""
    if not changes:
        return np.full(ends.size, was)
    idx = np.array([i for i, _ in changes])
    states = np.array([e for _, e in changes])
    pos = np.searchsorted(idx, ends, side="right") - 1
    return np.where(pos >= 0, states[np.maximum(pos, 0)], was)


# Rows of `_hop_matrix`: what the policy reads of each hop, packed so that a block joins a
# partial chunk in one copy. A caller row is _CH_STRIDE below the agent's, so
# m[row:_T:_CH_STRIDE] is both channels (the caller's rate and alpha rows are unused);
# _OFFER are the rows the usual voice learns, in `UsualVoice.offer_columns` order.
_LOUD, _ST, _RATE, _ALPHA, _VOICED = range(5)
_CH_STRIDE = 5
_C_LOUD, _C_ST, _C_VOICED = _LOUD + _CH_STRIDE, _ST + _CH_STRIDE, _VOICED + _CH_STRIDE
_T = 2 * _CH_STRIDE
_OFFER = slice(_LOUD, _ALPHA + 1)


def _active_at(cue: SustainedCue, t: float) -> bool:
    """Whether ``cue`` (already stepped past stream time ``t``, s) was active at ``t``."""
    if cue.fired_s > t:
        return False
    if cue.phase is Phase.ACTIVE:
        return True
    return t < cue.cooldown_until_s - cue.p.cooldown_s  # before its last end


def _hop_matrix(f: HopFeatures) -> np.ndarray:
    """(11, n) float64: the agent's momentary loudness (LUFS), pitch (semitones re 100 Hz,
    NaN where unpitched), speaking rate (syllables/s), alpha ratio (dB), voice activity
    (0/1); the caller's loudness, pitch, two unused rows, voice activity (NaN, NaN, 0 for a
    mono stream); the hop centre (s). Features the analyzer did not give are NaN."""
    n = f.n_hops
    m = np.empty((2 * _CH_STRIDE + 1, n))
    m[_T] = f.t
    m[_LOUD:_T:_CH_STRIDE] = f.loudness_m_lufs[:2] if f.voiced.shape[0] > 1 \
        else [f.loudness_m_lufs[0], np.full(n, np.nan)]
    m[_VOICED:_T:_CH_STRIDE] = f.voiced[:2] if f.voiced.shape[0] > 1 else [f.voiced[0], np.zeros(n)]
    if f.f0_hz is not None:
        st = semitones(f.f0_hz)
        m[_ST:_T:_CH_STRIDE] = st[:2] if st.shape[0] > 1 else [st[0], np.full(n, np.nan)]
    else:
        m[_ST:_T:_CH_STRIDE] = np.nan
    m[_RATE] = f.rate_sps[0] if f.rate_sps is not None else np.nan
    m[_ALPHA] = f.alpha_db[0] if f.alpha_db is not None else np.nan
    return m


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
        # stream time (s, the end of the hop) the caller's start-of-call level of the call in
        # progress was complete; None until then (a plot draws the caller threshold from it)
        self.caller_level_known_s: float | None = None
        self._bursts: list[tuple[str, LaughterBurst]] = []
        self._laugh_cued: dict[int, float] = {}  # burst index -> stream time it was cued
        self._laugh_fired: list[float] = []
        self._laugh_cooldown_until = -np.inf
        self.laughter_flash_until_s = -np.inf
        # the agent's raw pitch (semitones re 100 Hz) per run, (t, st), the last 4 s plus
        # cues.laughter.recent_s or more, to judge bursts
        self._st_hist: deque[tuple[np.ndarray, np.ndarray]] = deque()
        # offered for learning since the last learning point, and whether a cue engaged then
        self._learn_cols: list[np.ndarray] = []
        self._learn_drop = False
        self._interval_first = 0  # absolute hop where the current learning interval began
        self.calls = CallTracker(silence_gap_s=settings.calls.silence_gap_s,
                                 min_call_s=settings.calls.min_call_s)
        self.snoozed_until_s = -np.inf
        self.now_s = 0.0
        self._was_ready = usual.ready
        self._stereo = True
        self._pending: np.ndarray | None = None  # `_hop_matrix` of a partial chunk
        self._pending_first = 0
        self._learn_from = 0  # absolute hop before which nothing is learned (lost audio)
        self._first_seen = False  # a run of hops has been decided

    # -- commands -------------------------------------------------------------------------
    def snooze(self, minutes: float | None, *, source: str) -> PolicyEvent:
        """Snooze cues for ``minutes`` (default from config, capped); 0 cancels a snooze."""
        cfg = self.settings.snooze
        m = cfg.default_min if minutes is None else min(max(float(minutes), 0.0), cfg.max_min)
        self.snoozed_until_s = self.now_s + 60.0 * m
        # The agent's own snooze is private unless the site says otherwise; one sent over
        # MQTT is the supervisor's act. Decided here, before stamping, so `seq` has no gaps.
        publish = source == "mqtt" or self.settings.mqtt.publish_snooze
        # the minutes as applied, not rounded: 0 reads as a cancel to whoever receives it
        return PolicyEvent("snooze", self.now_s, Snooze(
            minutes=m, until_s=round(self.snoozed_until_s, 3),
            source=source), publish=publish)  # type: ignore[arg-type]

    def recalibrate(self) -> PolicyEvent:
        """Forget the usual voice and learn it again from the next speech."""
        self.usual.reset()
        self._learn_cols, self._learn_drop = [], False
        self._was_ready = False
        return PolicyEvent("recalibrate", self.now_s, Recalibrate(
            warmup_speech_s=float(self.usual.warmup_speech_s)))

    @property
    def snoozed(self) -> bool:
        return self.now_s < self.snoozed_until_s

    @property
    def display(self) -> Display:
        """What the desk light shows."""
        return self.shown(reveal_snooze=True)

    def shown(self, *, reveal_snooze: bool, reveal_laughter: bool = True) -> Display:
        """What the desk light shows; without ``reveal_snooze``, what it would show were the
        cues not snoozed (for supervisors who may not learn of the agent's snooze); without
        ``reveal_laughter``, what it would show without the laughter-like cue's flash (for
        supervisors where ``mqtt.publish_laughter`` is off)."""
        # A snooze silences a cue already showing too: the agent presses it because the
        # light is on, and a cue left running would go on until the passage ends.
        if self.snoozed and reveal_snooze:
            return Display.SNOOZED
        if self.raised.phase.value == "active":
            return Display.RAISED_VOICE
        if self.tense.phase.value == "active":
            return Display.TENSE_VOICE
        if self.now_s < self.laughter_flash_until_s and reveal_laughter:
            return Display.LAUGHTER
        if self.caller_cue.phase.value == "active":
            return Display.CALLER_ESCALATION
        return Display.READY if self.usual.ready else Display.WARMING

    # -- per block ------------------------------------------------------------------------
    def process(self, f: HopFeatures,
                bursts: list[tuple[str, LaughterBurst]] | None = None) -> list[PolicyEvent]:
        """Consume a run of consecutive hops (and the laughter-like bursts the analyzer
        decided or completed in them); return the events they caused, in stream order.

        Decisions are taken per chunk of `CHUNK_HOPS` aligned to absolute hop indices, and
        the usual voice changes only at learning points every `LEARN_HOPS` (aligned too), so
        the events do not depend on how the stream was cut; a partial chunk waits for the
        next call (at most 40 ms). All complete chunks of a call are decided together with
        numpy (see `_decide`).
        """
        if bursts:
            self._bursts += bursts
        if f.n_hops == 0:
            return []
        self._stereo = f.voiced.shape[0] > 1
        m = _hop_matrix(f)
        if self._pending is not None:
            m = np.concatenate([self._pending, m], axis=1)
            first = self._pending_first
        else:
            first = int(f.hop[0])
        n = m.shape[1]
        n_ready = (first + n) // CHUNK_HOPS * CHUNK_HOPS - first
        self._pending = m[:, n_ready:] if n_ready < n else None
        self._pending_first = first + n_ready
        if n_ready <= 0:
            return []
        return self._decide(m[:, :n_ready] if n_ready < n else m, first)

    def _decide(self, m: np.ndarray, first: int, final: bool = False) -> list[PolicyEvent]:
        """Decide a run of whole chunks (``final``: the stream's last, maybe partial, chunk):
        ``m`` is its `_hop_matrix`, ``first`` the absolute index of its first hop.

        The run is cut only at learning points (every `LEARN_HOPS` of stream time), where
        the usual voice may change; between them the agent's cues, laughter and what is
        offered for learning are decided with numpy over all the hops at once, then calls
        and the caller over the whole run. Events come out in the order a chunk-by-chunk
        walk gives: by chunk, then raised, tense, calls, caller, laughter, warm-up done.
        """
        n = m.shape[1]
        t = m[_T]
        voiced = m[_VOICED:_T:_CH_STRIDE] > 0.5  # (2, n): agent, caller
        if not self._first_seen:  # the stream's first run: its interval starts here
            self._interval_first = first
            self._first_seen = True
        # pitch of voiced hops, both channels, for the 0.5 s medians
        self.pitch_median.push(np.where(voiced, m[_ST:_T:_CH_STRIDE], np.nan), first)
        self._st_hist.append((t, m[_ST]))
        # agent's momentary loudness above the usual of each hop's learning interval, dB
        # (NaN before warm-up)
        excess = np.empty(n)
        pitch_tags: list[tuple[int, float]] = []  # largest pitch above usual per interval
        tagged: list[tuple[int, int, PolicyEvent]] = []  # (chunk, rank, event)
        cuts = [0, *range((first // LEARN_HOPS + 1) * LEARN_HOPS - first, n, LEARN_HOPS), n]
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            learn_point = (final and b == n) or (first + b) % LEARN_HOPS == 0
            tagged += self._decide_interval(m, first, a, b, voiced[0], excess, learn_point,
                                            pitch_tags)
        tagged += self._calls_and_caller(m, first, voiced, excess, pitch_tags, tagged)
        self.pitch_median.trim(self._interval_first)
        self.now_s = float(t[-1] + 0.005)
        keep_s = 4.1 + self.settings.cues.laughter.recent_s  # bursts look back this far at most
        while len(self._st_hist) > 1 and self._st_hist[0][0][-1] < self.now_s - keep_s:
            self._st_hist.popleft()
        if len(tagged) > 1:
            tagged.sort(key=lambda e: (e[0], e[1]))  # stable: a chunk's cue keeps its order
        return [e for _, _, e in tagged]

    def _decide_interval(self, m: np.ndarray, first: int, a: int, b: int, voiced_all: np.ndarray,
                         excess_all: np.ndarray, learn_point: bool,
                         pitch_tags: list[tuple[int, float]]
                         ) -> list[tuple[int, int, PolicyEvent]]:
        """Hops ``[a, b)`` of run ``m`` (first hop ``first``), inside one learning interval:
        the usual voice is constant here. Decides raised and tense voice and laughter, fills
        ``excess_all`` there and gathers what may be learned. At a ``learn_point`` (the
        interval's end) adds the interval's largest pitch above usual to ``pitch_tags`` (at
        its last hop, for the call summary) and hands the gathered hops to the usual voice."""
        tagged: list[tuple[int, int, PolicyEvent]] = []
        u = self.usual
        ready = u.ready
        usual = u.usual_lufs if ready else np.nan
        usual_st = u.usual_st if ready else np.nan
        t = m[_T, a:b]
        loud = m[_LOUD, a:b]
        voiced = voiced_all[a:b]
        excess = np.subtract(loud, usual, out=excess_all[a:b])
        was = (self.raised.engaged, self.tense.engaged)
        changes: tuple[list[tuple[int, bool]], ...] = ([], [])
        rv = self.settings.cues.raised_voice
        if ready and rv.enabled:
            on = voiced & (excess >= rv.threshold_db)
            if self.raised.engaged or on.any():
                keep = voiced & (excess >= rv.threshold_db - rv.hysteresis_db)
                measures = {"db_above_usual": excess, "loudness_lufs": loud}
                for tr in self.raised.step(t, on, keep, measures, self.snoozed_until_s):
                    tagged.append((_chunk_ending(tr.stream_s), 0, self._event(tr, usual)))
                changes = (self.raised.engaged_changes, changes[1])
        if ready and np.isfinite(usual_st) and self.settings.cues.tense_voice.enabled:
            for tr in self._tense(m, first, a, b, usual_st, excess):
                ev = self._event(tr, u.usual_lufs)
                ev.buzz = not (tr.kind == "started" and _active_at(self.raised, tr.stream_s))
                tagged.append((_chunk_ending(tr.stream_s), 1, ev))
            # One buzz a passage: a raised voice starting while the tense cue already shows
            # is seen (amber outranks violet), not felt again. Decided once tense has been
            # stepped over the same hops; on a tie, raised buzzes and tense does not.
            for _, _, ev in tagged:
                if (ev.type == "raised_voice.started" and self.tense.fired_s < ev.stream_s
                        and _active_at(self.tense, ev.stream_s)):
                    ev.buzz = False
            changes = (changes[0], self.tense.engaged_changes)
        # The last hop of each chunk here (the stream's last chunk may be partial).
        ends = np.arange((CHUNK_HOPS - 1 - (first + a)) % CHUNK_HOPS, b - a, CHUNK_HOPS)
        if not ends.size or ends[-1] != b - a - 1:
            ends = np.append(ends, b - a - 1)
        if self._bursts:
            tagged += self._laughter_in(t[ends], (first + a + ends) // CHUNK_HOPS)
        # Learning: a chunk is offered unless a cue is engaged at its end; an engaged chunk
        # also drops everything offered before it that is not learned yet.
        keep_from = 0
        if was[0] or was[1] or changes[0] or changes[1]:
            engaged = _engaged_at(ends, was[0], changes[0]) | _engaged_at(ends, was[1], changes[1])
            if engaged.any():
                self._learn_drop = True
                self._learn_cols = []
                keep_from = int(ends[np.flatnonzero(engaged)[-1]]) + 1
        if self._learn_from > first + a:  # just after lost audio: not learned from
            keep_from = max(keep_from, self._learn_from - first - a)
        if keep_from < b - a:
            v = voiced[keep_from:]
            if v.any():
                self._learn_cols.append(m[_OFFER, a + keep_from:b][:, v])
        if learn_point:
            top = self._interval_pitch(first + b, usual_st)
            if np.isfinite(top):
                pitch_tags.append((b - 1, top))
            tagged += self._learn(float(t[-1] + 0.005), (first + b - 1) // CHUNK_HOPS)
        return tagged

    def _interval_pitch(self, end: int, usual_st: float) -> float:
        """The largest agent pitch (0.5 s median) above ``usual_st`` in the learning interval
        that ends before hop ``end``, semitones (NaN if none); starts the next interval."""
        lo, self._interval_first = self._interval_first, end
        if not np.isfinite(usual_st):
            return np.nan
        _, med = self.pitch_median.finite_at(0, lo, end)
        return float(np.fmax.reduce(med)) - usual_st if med.size else np.nan

    def _learn(self, now_s: float, chunk: int) -> list[tuple[int, int, PolicyEvent]]:
        """A learning point: drop what a cue engaged on, offer the rest, settle ``ready``."""
        if self._learn_drop:
            self.usual.forget_pending()
        cols = self._learn_cols
        self.usual.offer_columns(cols[0] if len(cols) == 1 else np.concatenate(cols, axis=1)
                                 if cols else np.empty((4, 0)))
        self._learn_cols, self._learn_drop = [], False
        if not self.usual.ready or self._was_ready:
            return []
        self._was_ready = True
        return [(chunk, 7, self._learned_event(now_s))]

    def _learned_event(self, now_s: float) -> PolicyEvent:
        u = self.usual
        data = UsualVoiceLearned(
            usual_lufs=round(float(u.usual_lufs), 2),
            spread_db=round(float(u.loudness.spread()), 2),
            speech_s=round(float(u.speech_s), 1),
            usual_f0_hz=round(float(u.usual_f0_hz), 1) if np.isfinite(u.usual_st) else None,
            usual_rate_sps=round(float(u.rate.median()), 2) if u.rate.weight > 0 else None)
        return PolicyEvent("usual_voice_learned", now_s, data)

    def _laughter_in(self, end_t: np.ndarray,
                     chunks: np.ndarray) -> list[tuple[int, int, PolicyEvent]]:
        """Judge the waiting bursts at the chunks whose last hops are centred at ``end_t``
        (s): each at the first chunk whose end it does not follow; one `_laughter` call per
        chunk that has bursts (a loop over bursts, not over chunks)."""
        tagged: list[tuple[int, int, PolicyEvent]] = []
        until = end_t + 0.005
        while self._bursts:
            k = int(np.searchsorted(until, _due_s(*self._bursts[0])))
            if k == until.size:
                break
            evs = self._laughter(float(end_t[k]) + 0.005, float(end_t[k]) - 4.0)
            tagged += [(int(chunks[k]), 6, e) for e in evs]
        return tagged

    def _calls_and_caller(self, m: np.ndarray, first: int, voiced: np.ndarray,
                          excess: np.ndarray, pitch_tags: list[tuple[int, float]],
                          tagged: list[tuple[int, int, PolicyEvent]]
                          ) -> list[tuple[int, int, PolicyEvent]]:
        """Calls over run ``m``, and the caller cue inside them; the cues that started in the
        run (``tagged`` so far and the caller's) count in the call in progress at the end of
        their chunk, the intervals' largest pitch (``pitch_tags``) in the call in progress at
        the interval's end (its speech is inside that call: a call ends >= 2 s after it)."""
        out: list[tuple[int, int, PolicyEvent]] = []
        t = m[_T]
        caller_voiced = voiced[1] if self._stereo else None
        plan = None
        if caller_voiced is not None:
            plan = self.calls.plan(t, voiced[0] | caller_voiced)
            for s in plan:
                if s.starts:
                    self.caller_usual.clear()
                    self.caller_pitch.clear()
                    self.caller_level_known_s = None
                stop = s.stop
                if s.ends:  # the chunk that finds the end is not the caller's
                    stop = max(s.start, stop - (first + stop) % CHUNK_HOPS)
                if stop > s.start:
                    out += [(_chunk_ending(tr.stream_s), 5, self._event(tr, usual)) for tr, usual
                            in self._caller(m, first, s.start, stop, caller_voiced)]
                if s.ends:
                    end_s = float(t[s.stop]) + 0.005
                    out += [((first + s.stop) // CHUNK_HOPS, 2, self._event(tr, np.nan))
                            for tr in self.caller_cue.finish(end_s)]
        # The call summary is published: a laughter-like cue counts in it only where
        # supervisors may hear of laughter at all (mqtt.publish_laughter).
        laughter = self.settings.mqtt.publish_laughter
        cues_at = [(min(t.size - 1, (c + 1) * CHUNK_HOPS - 1 - first), e.type.rsplit(".", 1)[0])
                   for c, _, e in tagged + out
                   if e.type.endswith((".started", ".cue")) and not e.type.startswith("call.")
                   and (laughter or e.type != "laughter.cue")]
        for ce in self.calls.step(t, voiced[0], caller_voiced, excess, cues_at=cues_at,
                                  pitch_max_at=pitch_tags, plan=plan):
            if ce.type == "call.started":  # stamped at the start of its first hop
                chunk, rank = int(round(ce.stream_s / HOP_S)) // CHUNK_HOPS, 4
            else:
                chunk, rank = _chunk_ending(ce.stream_s), 3
            out.append((chunk, rank, PolicyEvent(ce.type, ce.stream_s, ce.data)))
        return out

    def _tense(self, m: np.ndarray, first: int, a: int, b: int, usual_st: float,
               excess: np.ndarray) -> list[CueTransition]:
        """Pitch (0.5 s median) held above usual with raised effort (loudness or tilt) or a
        fast rate, over hops ``[a, b)`` of run ``m`` (``excess``: those hops)."""
        cfg = self.settings.cues.tense_voice
        lo, hi = first + a, first + b
        u = self.usual
        alpha_above = m[_ALPHA, a:b] - (u.alpha.median() if u.alpha.weight > 0 else np.nan)
        rate = m[_RATE, a:b]
        if not self.tense.engaged:
            # Idle: `on` needs a pitch median at the threshold, so a value its window sees
            # there (the margin covers rounding in median - usual), and effort on a voiced
            # hop; without both, the medians are not needed.
            if not self.pitch_median.window_max(0, lo, hi) >= usual_st + cfg.pitch_st - 1e-9:
                self.tense.engaged_changes = []
                return []
            effort = self._effort(excess, alpha_above, rate)
            if not np.count_nonzero(effort & np.isfinite(self.pitch_median.values(0, lo, hi))):
                self.tense.engaged_changes = []
                return []
        else:
            effort = self._effort(excess, alpha_above, rate)
        hops, med = self.pitch_median.finite_at(0, lo, hi)
        st_above = np.full(b - a, np.nan)
        st_above[hops - lo] = med - usual_st
        pitch_up = st_above >= cfg.pitch_st  # NaN (unvoiced) compares False
        on = pitch_up & effort
        keep = st_above >= cfg.pitch_st - cfg.hysteresis_st
        measures = {"st_above_usual": _nan_to_zero(st_above),
                    "db_above_usual": _nan_to_zero(excess),
                    "alpha_above_usual_db": _nan_to_zero(alpha_above),
                    "rate_sps": _nan_to_zero(rate)}
        return self.tense.step(m[_T, a:b], on, keep, measures, self.snoozed_until_s)

    def _effort(self, excess: np.ndarray, alpha_above: np.ndarray,
                rate: np.ndarray) -> np.ndarray:
        """Raised effort per hop: loudness or alpha ratio above usual, or a fast rate."""
        cfg = self.settings.cues.tense_voice
        u = self.usual
        usual_rate = u.rate.median() if u.rate.weight > 0 else np.nan
        return ((excess >= cfg.effort_db) | (alpha_above >= cfg.tilt_db)
                | (rate >= cfg.rate_ratio * usual_rate))

    def _caller(self, m: np.ndarray, first: int, lo: int, hi: int,
                voiced_all: np.ndarray) -> list[tuple[CueTransition, float]]:
        """The caller against the caller's own start-of-call level and pitch ("stay
        steady"): louder by the threshold, or higher in pitch and half as much louder.

        Over hops ``[lo, hi)`` of run ``m`` (first hop ``first``), all inside one call. The
        first ``baseline_speech_s`` of the caller's voiced hops in the call are the
        baseline; the cue is judged from the chunk after the one that completed it. Returns
        each transition with the caller's usual level (LUFS) it was judged against. Pitch
        (0.5 s median) is computed only at hops where it can matter.
        """
        cfg = self.settings.cues.caller_escalation
        voiced = voiced_all[lo:hi]
        loud = m[_C_LOUD, lo:hi]
        need = int(round(cfg.baseline_speech_s / 0.01))
        have = int(round(self.caller_usual.weight))
        if have < need:
            learnable = voiced
            if self._learn_from > first + lo:  # just after lost audio: not learned from
                learnable = voiced.copy()
                learnable[:self._learn_from - first - lo] = False
            take = np.flatnonzero(learnable)[: need - have]
            self.caller_usual.learn(loud[take])
            self.caller_pitch.learn(self._caller_st(first + lo, take))
            if take.size < need - have:
                return []
            done = lo + int(take[-1])  # the hop that completed the baseline: its chunk is
            self.caller_level_known_s = float(m[_T, done]) + 0.005
            start = done + CHUNK_HOPS - (first + done) % CHUNK_HOPS  # not judged yet
            if start >= hi:
                return []
            voiced, loud = voiced[start - lo:], loud[start - lo:]
            lo = start
        if not cfg.enabled:
            return []
        thr = cfg.threshold_db
        usual = self.caller_usual.median()
        excess = loud - usual
        usual_st = self.caller_pitch.median() if self.caller_pitch.weight > 0 else np.nan
        if not self.caller_cue.engaged and not np.count_nonzero(voiced & (excess >= thr)) and (
                not self.pitch_median.window_max(1, first + lo, first + hi)
                >= usual_st + cfg.pitch_st - 1e-9):
            # Idle, not loud enough, and no pitch median can reach the pitch threshold (no
            # value its window sees does; the margin covers rounding): `on` holds nowhere.
            return []
        # pitch where `on` or `keep` could hold: the measures are read only there
        at = np.flatnonzero(voiced & (excess >= min(thr, thr / 2, thr - cfg.hysteresis_db)))
        st_above = np.full(hi - lo, np.nan)
        st_above[at] = self._caller_st(first + lo, at) - usual_st
        pitch_up = (st_above >= cfg.pitch_st) & (excess >= thr / 2)
        on = voiced & ((excess >= thr) | pitch_up)
        keep = voiced & ((excess >= thr - cfg.hysteresis_db) | pitch_up)
        measures = {"db_above_usual": excess, "loudness_lufs": loud,
                    "st_above_usual": _nan_to_zero(st_above)}
        # Snooze silences the agent's cues; the caller cue is for the agent too.
        return [(tr, usual) for tr in
                self.caller_cue.step(m[_T, lo:hi], on, keep, measures, self.snoozed_until_s)]

    def _caller_st(self, first: int, rel: np.ndarray) -> np.ndarray:
        """The caller's pitch (0.5 s median, semitones re 100 Hz) at hops ``first + rel``;
        NaN where the hop itself has no voiced pitch."""
        st = np.full(rel.size, np.nan)
        own = np.flatnonzero(np.isfinite(self.pitch_median.values(1, first, first + int(
            rel[-1]) + 1)[rel])) if rel.size else rel
        st[own] = self.pitch_median.at(1, first + rel[own])
        return st

    def _laughter(self, until_s: float, pitch_since_s: float,
                  every: bool = False) -> list[PolicyEvent]:
        """Cue on bursts decided up to ``until_s`` (the end of the chunk being decided, s);
        report cued bursts once they complete. A burst's pitch is read from the agent's
        hops since ``pitch_since_s`` (4 s before that chunk's last hop). ``every``: judge
        every record waiting, due or not (audio was lost at ``until_s``: no train goes on
        past it)."""
        cfg = self.settings.cues.laughter
        events: list[PolicyEvent] = []
        while self._bursts:
            kind, b = self._bursts[0]
            at = b.decided_at_s if kind == "decided" else (b.end_s or b.decided_at_s)
            if _due_s(kind, b) > until_s and not every:
                break
            self._bursts.pop(0)
            if kind == "decided":
                self._laugh_fired = [t for t in self._laugh_fired if t > at - 3600.0]
                if (cfg.enabled and self._burst_pitch_up(b, cfg.pitch_st, pitch_since_s)
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

    def _burst_pitch_up(self, b: LaughterBurst, pitch_st: float, since_s: float) -> bool:
        """Whether the burst's median pitch (hops from ``since_s`` on, s) is ``pitch_st``
        above the agent's reference pitch (`_burst_pitch`), with at least 3 pitched hops."""
        median, ref, n = self._burst_pitch(b, since_s)
        return n >= 3 and median - ref >= pitch_st

    def _burst_pitch(self, b: LaughterBurst, since_s: float) -> tuple[float, float, int]:
        """The burst's median pitch (semitones re 100 Hz; its pitched hops from ``since_s``
        on, s), the agent's reference pitch it is judged against, and how many pitched hops
        the burst has (NaN, NaN, 0 before the usual pitch is known; a NaN median and the usual
        pitch as the reference under 3 pitched hops). The reference is the
        usual pitch, or the agent's recent speaking pitch if higher (the median of the
        pitched hops in the ``cues.laughter.recent_s`` before the burst's start, none before
        ``since_s`` less that, at least `RECENT_MIN_HOPS` of them), so that speech already
        raised does not pass."""
        usual = self.usual.usual_st if self.usual.ready else np.nan
        if not np.isfinite(usual) or not self._st_hist:
            return np.nan, np.nan, 0
        st_t = np.concatenate([h[0] for h in self._st_hist])
        st_v = np.concatenate([h[1] for h in self._st_hist])
        m = (st_t >= since_s) & (st_t >= b.start_s) & (st_t <= b.decided_at_s)
        v = st_v[m]
        v = v[np.isfinite(v)]
        if v.size < 3:
            return np.nan, usual, int(v.size)
        ref = usual
        recent_s = self.settings.cues.laughter.recent_s
        if recent_s > 0:
            # the window starts at a fixed stream time (`_st_hist` holds it whatever the cuts)
            lo = max(since_s, b.start_s) - recent_s
            r = st_v[(st_t >= lo) & (st_t < b.start_s)]
            r = r[np.isfinite(r)]
            if r.size >= RECENT_MIN_HOPS:
                ref = max(usual, float(np.median(r)))
        return float(np.median(v)), ref, int(v.size)

    def finish(self) -> list[PolicyEvent]:
        """Decide the last partial chunk (its end a learning point), then end active cues and
        the call (end of stream or shutdown)."""
        events = self._decide_rest()
        usual = self.usual.usual_lufs
        events += [self._event(tr, usual) for tr in self.raised.finish(self.now_s)]
        events += [self._event(tr, usual) for tr in self.tense.finish(self.now_s)]
        events += [self._event(tr, np.nan) for tr in self.caller_cue.finish(self.now_s)]
        events += [PolicyEvent(ce.type, ce.stream_s, ce.data)
                   for ce in self.calls.finish(self.now_s)]
        return events

    def _decide_rest(self) -> list[PolicyEvent]:
        """Decide the partial chunk waiting, if any, its end a learning point (or make the
        end of what was decided one): at the end of the stream, or before lost audio."""
        if self._pending is not None:
            events = self._decide(self._pending, self._pending_first, final=True)
        else:
            usual_st = self.usual.usual_st if self.usual.ready else np.nan
            self.calls.note_pitch(self._interval_pitch(self.pitch_median.end, usual_st))
            events = [e for _, _, e in self._learn(self.now_s, 0)]
        self._pending = None
        return events

    def lost(self, first_hop: int,
             bursts: list[tuple[str, LaughterBurst]] | None = None) -> list[PolicyEvent]:
        """Audio was lost after the hops decided so far: the next run starts at absolute hop
        ``first_hop`` (stream time ``first_hop * HOP_S``; the lost time counts in every clock:
        snooze, cooldowns, the hourly caps, calls). ``bursts``: the analyzer's records up to
        the loss. Returns the events it caused, in stream order.

        No evidence spans the loss: the partial chunk before it is decided now (its end a
        learning point); a cue's build-up ends at it (`SustainedCue.lost`: what was lost is
        no pause `gap_s` may bridge); every laughter-like record waiting is judged now (the
        analyzer ended the train); the 0.5 s pitch medians start over; the call's silence
        clock stops (`CallTracker.lost`); the `AFTER_LOSS_HOPS` after it are not learned from
        (the usual voice, the caller's start-of-call level). Only bookkeeping: no hop of the
        lost time is analysed or walked over.
        """
        if bursts:
            self._bursts += bursts
        events = self._decide_rest()
        at_s = self.now_s
        resume_s = first_hop * HOP_S
        if resume_s < at_s:
            raise ValueError(f"audio resumes at {resume_s} s, before {at_s} s")
        tagged: list[PolicyEvent] = []
        if self._bursts:
            tagged += self._laughter(at_s, at_s - 4.0, every=True)
        usual = self.usual.usual_lufs
        tagged += [self._event(tr, usual) for tr in self.raised.lost(at_s, resume_s)]
        tagged += [self._event(tr, usual) for tr in self.tense.lost(at_s, resume_s)]
        tagged += [self._event(tr, np.nan) for tr in self.caller_cue.lost(at_s, resume_s)]
        tagged += [PolicyEvent(ce.type, ce.stream_s, ce.data)
                   for ce in self.calls.lost(at_s, resume_s)]
        tagged.sort(key=lambda e: e.stream_s)  # stable: a cue's events keep their order
        self.pitch_median = TrailingMedian(2, start=first_hop)
        self._interval_first = first_hop
        self._learn_from = first_hop + AFTER_LOSS_HOPS
        self.now_s = resume_s
        return events + tagged

    def _event(self, tr: CueTransition, usual: float) -> PolicyEvent:
        d = dict(tr.data)
        d["cue"] = tr.cue
        if tr.kind in ("suppressed", "suppressed_ended"):
            # For the desk's own record (status, a reviewer's plot), never published: the
            # agent was not cued, so there is nothing for a supervisor to count.
            return PolicyEvent(f"{tr.cue}.{tr.kind}", tr.stream_s,
                               CueSuppressed.model_validate(d), publish=False)
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
        return PolicyEvent(kind, tr.stream_s, cast(EventData, EVENT_DATA[kind].model_validate(d)))
