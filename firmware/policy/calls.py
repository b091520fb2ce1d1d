"""Calls found from channel activity, with a per-call summary the supervisor can explain.

A call starts at the first voiced hop on either channel and ends once both channels have been
silent for ``silence_gap_s``; it then ends at its last voiced hop. The summary states
durations, talk shares, overlap, cues by type and the largest excursions above the agent's
usual level — measurements, never judgements.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from firmware.contract.events import CallEnded, CallStarted

HALF_HOP_S = 0.005


@dataclass
class _CallStats:
    start_s: float
    last_active_s: float
    agent_hops: int = 0
    caller_hops: int = 0
    overlap_hops: int = 0
    cues: Counter[str] = field(default_factory=Counter)
    max_level_above_usual_db: float = -np.inf
    max_pitch_above_usual_st: float = -np.inf
    quiet_from_s: float = -np.inf  # silence counts from the later of this and last_active_s
    lost_s: float = 0.0  # audio lost during the call, s


@dataclass(frozen=True)
class CallStretch:
    """Hops ``[start, stop)`` of a run inside one call (indices within the run): the call
    ``starts`` at ``start`` (else it was in progress), and ``ends`` when the silence gap is
    complete at hop ``stop`` (else it goes on past the run); ``last_active_s`` is the centre
    of its latest active hop by then, s."""

    start: int
    stop: int
    starts: bool
    ends: bool
    last_active_s: float


@dataclass(frozen=True)
class CallEvent:
    type: str  # "call.started" | "call.ended"
    stream_s: float
    data: CallStarted | CallEnded


class CallTracker:
    """Streaming call detection over hops; `step` returns call events in stream order."""

    def __init__(self, *, silence_gap_s: float, min_call_s: float):
        self.gap = silence_gap_s
        self.min_call_s = min_call_s
        self.call: _CallStats | None = None
        self.calls = 0

    @property
    def in_call(self) -> bool:
        return self.call is not None

    def note_pitch(self, st_above_usual: float) -> None:
        """Count a largest pitch above usual (semitones; NaN: none) in the current call."""
        if self.call is not None and np.isfinite(st_above_usual):
            self.call.max_pitch_above_usual_st = max(self.call.max_pitch_above_usual_st,
                                                     st_above_usual)

    def plan(self, t: np.ndarray, active: np.ndarray) -> list[CallStretch]:
        """Where calls run, start and end over hops at stream times ``t`` with per-hop
        activity (either channel voiced), from the current state, without changing it."""
        return list(self._walk(t, active))

    def lost(self, at_s: float, resume_s: float) -> list[CallEvent]:
        """Audio was lost from stream time ``at_s`` to ``resume_s``: nothing in it counts as
        voice, nor as the silence that ends a call (the silence clock stops), so a call in
        progress is not ended by a loss shorter than ``silence_gap_s``. A longer loss ends it
        at its last voiced hop (whether it went on is unknown), found at the loss."""
        c = self.call
        if c is None:
            return []
        lost = resume_s - at_s
        c.lost_s += lost
        if lost >= self.gap:
            self.call = None
            return [self._end(c, detected_s=at_s)]
        c.quiet_from_s = max(c.quiet_from_s, c.last_active_s) + lost
        return []

    def _walk(self, t: np.ndarray, active: np.ndarray) -> Iterator[CallStretch]:
        in_call = self.call is not None
        last_s = self.call.last_active_s if self.call is not None else -np.inf
        # silence is counted from the later of the last active hop and this (lost audio)
        quiet_s = self.call.quiet_from_s if self.call is not None else -np.inf
        i, n = 0, t.size
        while i < n:
            starts = not in_call
            if starts:
                hits = np.flatnonzero(active[i:])
                if hits.size == 0:
                    return
                i += int(hits[0])
                last_s = float(t[i])
                quiet_s = -np.inf
                in_call = True
            seg_t, seg_a = t[i:], active[i:]
            if float(seg_t[-1]) - max(last_s, quiet_s) < self.gap:
                # the gap cannot complete in this run: the call goes on past it
                hits = np.flatnonzero(seg_a)
                if hits.size:
                    last_s = float(seg_t[hits[-1]])
                yield CallStretch(i, n, starts, False, last_s)
                return
            last = np.maximum.accumulate(np.where(seg_a, seg_t, -np.inf))
            np.maximum(last, last_s, out=last)
            quiet = last if quiet_s <= last_s else np.maximum(last, quiet_s)
            over = np.flatnonzero(seg_t - quiet >= self.gap)
            stop = i + (int(over[0]) if over.size else seg_t.size)
            if stop > i:
                last_s = float(last[stop - i - 1])
            yield CallStretch(i, stop, starts, bool(over.size), last_s)
            in_call = not over.size
            i = stop

    def step(self, t: np.ndarray, agent: np.ndarray, caller: np.ndarray | None,
             level_above_usual_db: np.ndarray | None,
             pitch_above_usual_st: np.ndarray | None = None,
             cues_at: Sequence[tuple[int, str]] = (),
             pitch_max_at: Sequence[tuple[int, float]] = (),
             plan: list[CallStretch] | None = None) -> list[CallEvent]:
        """Advance over hops at stream times ``t`` with per-hop voiced flags per channel.

        ``cues_at``: cues that started in this run, as (hop index within the run, cue) in
        stream order; each counts in the call in progress after that hop (a call that starts
        at or before it and has not been found ended by then).
        ``pitch_max_at``: (hop index, largest pitch above usual, semitones) of stretches of
        the agent's speech, counted like ``cues_at`` (instead of, or besides,
        ``pitch_above_usual_st`` per hop). ``plan``: what `plan` gave for these hops, if the
        caller has it already.
        """
        out: list[CallEvent] = []
        caller = np.zeros_like(agent) if caller is None else caller
        for st in plan if plan is not None else self._walk(t, agent | caller):
            if st.starts:
                self.call = _CallStats(start_s=float(t[st.start]) - HALF_HOP_S,
                                       last_active_s=float(t[st.start]))
                self.calls += 1
                out.append(CallEvent("call.started", self.call.start_s, CallStarted(
                    call=self.calls, start_s=round(self.call.start_s, 3))))
            c = self.call
            assert c is not None
            self._accumulate(c, slice(st.start, st.stop), agent, caller, level_above_usual_db,
                             pitch_above_usual_st)
            c.last_active_s = st.last_active_s
            for at, cue in cues_at:
                if st.start <= at < st.stop:
                    c.cues[cue] += 1
            for at, top in pitch_max_at:
                if st.start <= at < st.stop:
                    c.max_pitch_above_usual_st = max(c.max_pitch_above_usual_st, top)
            if st.ends:
                out.append(self._end(c, detected_s=float(t[st.stop]) + HALF_HOP_S))
                self.call = None
        return out

    def _accumulate(self, c: _CallStats, s: slice, agent: np.ndarray, caller: np.ndarray,
                    level: np.ndarray | None, pitch: np.ndarray | None) -> None:
        a, b = agent[s], caller[s]
        n_agent = int(np.count_nonzero(a))
        c.agent_hops += n_agent
        c.caller_hops += int(np.count_nonzero(b))
        c.overlap_hops += int(np.count_nonzero(a & b))
        if not n_agent:
            return
        if level is not None:
            # NaN (no usual level yet) is skipped: np.fmax ignores it, and so does max()
            c.max_level_above_usual_db = max(c.max_level_above_usual_db,
                                             float(np.fmax.reduce(level[s][a])))
        if pitch is not None:
            p = pitch[s][a]
            p = p[np.isfinite(p)]
            if p.size:
                c.max_pitch_above_usual_st = max(c.max_pitch_above_usual_st, float(p.max()))

    def _end(self, c: _CallStats, detected_s: float | None = None) -> CallEvent:
        """The summary; the event is stamped when the end was detected (``detected_s``)."""
        end_s = c.last_active_s + HALF_HOP_S
        dur = max(end_s - c.start_s, 1e-9)
        data = CallEnded(
            call=self.calls,
            start_s=round(c.start_s, 3),
            end_s=round(end_s, 3),
            duration_s=round(dur, 2),
            agent_talk_s=round(c.agent_hops * 0.01, 2),
            caller_talk_s=round(c.caller_hops * 0.01, 2),
            agent_talk_share=round(c.agent_hops * 0.01 / dur, 3),
            caller_talk_share=round(c.caller_hops * 0.01 / dur, 3),
            overlap_s=round(c.overlap_hops * 0.01, 2),
            cues=dict(c.cues),
            max_level_above_usual_db=(round(c.max_level_above_usual_db, 1)
                                      if np.isfinite(c.max_level_above_usual_db) else None),
            max_pitch_above_usual_st=(round(c.max_pitch_above_usual_st, 1)
                                      if np.isfinite(c.max_pitch_above_usual_st) else None),
            short=bool(dur < self.min_call_s),
            lost_s=round(c.lost_s, 2),
        )
        return CallEvent("call.ended", detected_s if detected_s is not None else end_s, data)

    def finish(self, now_s: float) -> list[CallEvent]:
        """End a call in progress (end of stream or shutdown) at stream time ``now_s``."""
        if self.call is None:
            return []
        ev = self._end(self.call, detected_s=now_s)
        self.call = None
        return [ev]
