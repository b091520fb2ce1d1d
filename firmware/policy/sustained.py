"""A cue that fires on evidence sustained for a hold time: hysteresis, gaps, cooldown, hourly cap.

Shared by every sustained cue (raised voice, tense voice, caller escalation). Time is stream
seconds. Per hop the caller supplies: ``on`` (evidence at the firing threshold), ``keep``
(evidence at the lower release threshold: hysteresis) and named measurements that the cue
aggregates into its events (mean while building, peak and mean over the whole cue).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np


class Phase(Enum):
    IDLE = "idle"
    BUILDING = "building"
    ACTIVE = "active"


@dataclass(frozen=True)
class SustainedParams:
    """Timing of a sustained cue, all in seconds (``max_per_hour`` a count)."""

    hold_s: float
    gap_s: float
    release_s: float
    cooldown_s: float
    max_per_hour: int


@dataclass
class CueTransition:
    """A cue started or ended; ``data`` holds the measurements for the event."""

    cue: str
    # "started" | "ended" | "suppressed" (due, but held back: data["reason"]) |
    # "suppressed_ended" (the evidence of a held-back passage stopped: data["end_s"])
    kind: str
    stream_s: float
    data: dict[str, Any]


@dataclass
class _Acc:
    """Running sums of the measurements over a stretch of evidence hops."""

    n: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    peaks: dict[str, float] = field(default_factory=dict)

    def add(self, values: dict[str, float]) -> None:
        self.n += 1
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.peaks[k] = max(self.peaks.get(k, -np.inf), v)

    def add_many(self, n: int, values: dict[str, np.ndarray]) -> None:
        """`add` for each of ``n`` hops (``values``: one array of ``n`` per measure), in
        order. The sums are accumulated in stream order (a cumulative sum seeded with the
        running sum, as `add` would), so they come out the same bit for bit however the hops
        were cut into runs; NaN never becomes a peak (as in `add`)."""
        self.n += n
        for k, v in values.items():
            self.sums[k] = float(np.cumsum(np.concatenate(([self.sums.get(k, 0.0)], v)))[-1])
            self.peaks[k] = max(self.peaks.get(k, -np.inf), float(np.fmax.reduce(v)))

    def mean(self, k: str) -> float:
        return self.sums.get(k, 0.0) / max(self.n, 1)


class SustainedCue:
    """State machine of one sustained cue; `step` consumes a block of hops.

    idle -> building at the first ``on`` hop (the onset); building -> active once evidence has
    lasted ``hold_s`` with no gap longer than ``gap_s`` (and the cue is not snoozed, cooling
    down or over its hourly cap - then it keeps building and fires as soon as allowed);
    building -> idle after a gap; active -> idle when ``keep`` has been false for
    ``release_s``, which starts the cooldown. A passage that is due but held back is
    reported once as a ``suppressed`` transition with the reason ("snoozed", "cooldown",
    "hourly cap"); if it is allowed later in the same passage it still starts then, else its
    end (the last hop of evidence before the gap) is reported as ``suppressed_ended``, so a
    reviewer sees the whole passage that was held back.
    """

    def __init__(self, name: str, params: SustainedParams):
        self.name = name
        self.p = params
        self.phase = Phase.IDLE
        self.onset_s = 0.0
        self.fired_s = 0.0
        self.last_on_s = 0.0
        self.last_keep_s = 0.0
        self.cooldown_until_s = -np.inf
        self.fired_at: deque[float] = deque()
        self._held_back = False  # this passage was due and held back (reported once)
        self._held: dict[str, Any] = {}  # its onset_s, at_s and reason
        self._build = _Acc()
        self._whole = _Acc()
        # (hop index within the last `step`'s run, engaged after that hop) at each change
        self.engaged_changes: list[tuple[int, bool]] = []

    @property
    def engaged(self) -> bool:
        """True while building or active: the hops are not usual speech."""
        return self.phase is not Phase.IDLE

    def blocked(self, t: float, snoozed: bool) -> str | None:
        """Why a cue due at stream time ``t`` may not fire now, or None."""
        if snoozed:
            return "snoozed"
        if t < self.cooldown_until_s:
            return "cooldown"
        while self.fired_at and self.fired_at[0] <= t - 3600.0:
            self.fired_at.popleft()
        if len(self.fired_at) >= self.p.max_per_hour:
            return "hourly cap"
        return None

    def step(self, t: np.ndarray, on: np.ndarray, keep: np.ndarray,
             measures: dict[str, np.ndarray] | Callable[[], dict[str, np.ndarray]],
             snoozed_until_s: float) -> list[CueTransition]:
        """Advance over consecutive hops at stream times ``t`` (s, hop centres 10 ms apart);
        return the transitions that happened, in stream order.

        ``measures`` (or a function returning them, called only if the cue is engaged or
        ``on`` has a hop) holds one value per hop. The work is numpy over the whole run: the
        Python loop runs once per transition (an onset, a gap that ends the build-up, a
        start, an end), never per hop. `engaged_changes` then lists where, within this run,
        `engaged` changed. The decisions are the per-hop state machine's, bit for bit
        (measurements are summed in stream order), so they do not depend on how the hops
        were cut into runs.
        """
        out: list[CueTransition] = []
        self.engaged_changes = []
        if self.phase is Phase.IDLE and not on.any():
            return out
        vals = measures() if callable(measures) else measures
        on_idx = np.flatnonzero(on)
        i, n = 0, t.shape[0]
        while i < n:
            if self.phase is Phase.IDLE:
                k = int(np.searchsorted(on_idx, i))
                if k == on_idx.size:
                    break
                i = int(on_idx[k])
                self.phase = Phase.BUILDING
                self.onset_s = float(t[i]) - 0.005  # evidence began at the start of this hop
                self.last_on_s = float(t[i])
                self._build = _Acc()
                self._held_back = False
                self.engaged_changes.append((i, True))
            if self.phase is Phase.BUILDING:
                i = self._build_up(i, t, on, vals, snoozed_until_s, out)
            else:
                i = self._hold_on(i, t, keep, vals, out)
        return out

    def _build_up(self, i: int, t: np.ndarray, on: np.ndarray, vals: dict[str, np.ndarray],
                  snoozed_until_s: float, out: list[CueTransition]) -> int:
        """Building from hop ``i``: gather evidence until a gap ends it (-> idle) or the hold
        is met on an ``on`` hop while allowed (-> active); return the next hop to decide."""
        p = self.p
        ts, ons = t[i:], on[i:]
        # time of the latest on hop up to each hop (the one before, at a hop that is not on)
        last_on = np.maximum.accumulate(np.where(ons, ts, -np.inf))
        np.maximum(last_on, self.last_on_s, out=last_on)
        gaps = np.flatnonzero(~ons & (ts - last_on > p.gap_s))
        end = int(gaps[0]) if gaps.size else ts.size  # the gap hop, or the run's end
        cand = np.flatnonzero(ons[:end])
        due = cand[ts[cand] + 0.005 - self.onset_s >= p.hold_s]
        fire = -1
        if due.size:
            tc = ts[due]
            allowed = (tc >= snoozed_until_s) & (tc >= self.cooldown_until_s)
            if self.fired_at:
                fired = np.fromiter(self.fired_at, dtype=np.float64, count=len(self.fired_at))
                # fires inside the last hour (those at or before t - 3600 no longer count)
                recent = fired.size - np.searchsorted(fired, tc - 3600.0, side="right")
                allowed &= recent < p.max_per_hour
            ok = np.flatnonzero(allowed)
            blocked = due[: ok[0]] if ok.size else due
            if blocked.size and not self._held_back:
                # A passage that would have been cued: said once, with why, so a reviewer
                # can see what snooze, cooldown or the cap held back.
                self._held_back = True
                tb = float(ts[int(blocked[0])])
                self._held = {"onset_s": round(self.onset_s, 3), "at_s": round(tb + 0.005, 3),
                              "reason": self.blocked(tb, tb < snoozed_until_s)}
                out.append(CueTransition(self.name, "suppressed", tb + 0.005, dict(self._held)))
            if ok.size:
                fire = int(due[ok[0]])
        stop = fire + 1 if fire >= 0 else end
        take = cand[cand < stop]
        if take.size:
            self._build.add_many(take.size, {k: v[i:][take] for k, v in vals.items()})
            self.last_on_s = float(ts[take[-1]])
        if fire >= 0:
            tf = float(ts[fire])
            self.phase = Phase.ACTIVE
            self.fired_s = tf + 0.005
            self.last_keep_s = tf
            while self.fired_at and self.fired_at[0] <= tf - 3600.0:
                self.fired_at.popleft()
            self.fired_at.append(tf)
            self._whole = _Acc(self._build.n, dict(self._build.sums), dict(self._build.peaks))
            out.append(CueTransition(self.name, "started", self.fired_s, self._started_data()))
            return i + fire + 1
        if gaps.size:
            self.phase = Phase.IDLE
            self.engaged_changes.append((i + end, False))
            if self._held_back:
                out.append(self._held_back_end(float(ts[end]) + 0.005))
            return i + end + 1
        return i + ts.size

    def _hold_on(self, i: int, t: np.ndarray, keep: np.ndarray, vals: dict[str, np.ndarray],
                 out: list[CueTransition]) -> int:
        """Active from hop ``i``: gather the cue's measurements on ``keep`` hops until
        ``keep`` has been false for ``release_s`` (-> idle, cooldown); return the next hop."""
        p = self.p
        ts, keeps = t[i:], keep[i:]
        last_keep = np.maximum.accumulate(np.where(keeps, ts, -np.inf))
        np.maximum(last_keep, self.last_keep_s, out=last_keep)
        rel = np.flatnonzero(~keeps & (ts - last_keep >= p.release_s))
        end = int(rel[0]) if rel.size else ts.size
        take = np.flatnonzero(keeps[:end])
        if take.size:
            self._whole.add_many(take.size, {k: v[i:][take] for k, v in vals.items()})
            self.last_keep_s = float(ts[take[-1]])
        if not rel.size:
            return i + ts.size
        tr = float(ts[end])
        self.phase = Phase.IDLE
        self.cooldown_until_s = tr + p.cooldown_s
        self.engaged_changes.append((i + end, False))
        out.append(CueTransition(self.name, "ended", tr + 0.005,
                                 self._ended_data(self.last_keep_s + 0.005)))
        return i + end + 1

    def lost(self, at_s: float, resume_s: float) -> list[CueTransition]:
        """Audio was lost from stream time ``at_s`` (the end of the last hop stepped) to
        ``resume_s`` (the start of the next); return the transitions it caused.

        A build-up ends at the loss: evidence before it never adds up with evidence after,
        however short the loss (what was said in it is unknown, so it is no pause ``gap_s``
        may bridge); a held-back passage's end is reported there. An active cue stays on
        through a loss, which counts as time below the release level (nothing heard keeps
        it on): if ``release_s`` has passed since its last evidence by the first hop after
        the loss, it ends there (`ended` at the release time, or at the loss if later;
        the cooldown from then), else the release goes on counting after it."""
        self.engaged_changes = []
        if self.phase is Phase.BUILDING:
            self.phase = Phase.IDLE
            return [self._held_back_end(at_s)] if self._held_back else []
        if self.phase is not Phase.ACTIVE:
            return []
        tr = self.last_keep_s + self.p.release_s  # hop centre at which the release completes
        if tr > resume_s + 0.005:
            return []
        tr = max(tr, at_s - 0.005)
        self.phase = Phase.IDLE
        self.cooldown_until_s = tr + self.p.cooldown_s
        return [CueTransition(self.name, "ended", tr + 0.005,
                              self._ended_data(self.last_keep_s + 0.005))]

    def finish(self, t_end: float) -> list[CueTransition]:
        """End an active cue at the end of the stream (or on shutdown)."""
        if self.phase is not Phase.ACTIVE:
            held = self.phase is Phase.BUILDING and self._held_back
            self.phase = Phase.IDLE
            return [self._held_back_end(t_end)] if held else []
        self.phase = Phase.IDLE
        return [CueTransition(self.name, "ended", t_end,
                              self._ended_data(self.last_keep_s + 0.005))]

    def _held_back_end(self, t: float) -> CueTransition:
        """A held-back passage's evidence stopped (found at stream time ``t``, s)."""
        self._held_back = False
        end = round(self.last_on_s + 0.005, 3)
        return CueTransition(self.name, "suppressed_ended", t, {
            **self._held, "end_s": end, "duration_s": round(end - self._held["onset_s"], 3)})

    def _started_data(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "onset_s": round(self.onset_s, 3),
            "at_s": round(self.fired_s, 3),
            "duration_s": round(self.fired_s - self.onset_s, 3),
        }
        for k in self._build.sums:
            d[k] = round(self._build.mean(k), 2)
        return d

    def _ended_data(self, end_s: float) -> dict[str, Any]:
        d: dict[str, Any] = {
            "onset_s": round(self.onset_s, 3),
            "at_s": round(self.fired_s, 3),
            "end_s": round(end_s, 3),
            "duration_s": round(end_s - self.onset_s, 3),
        }
        for k in self._whole.sums:
            d[k] = round(self._whole.mean(k), 2)
            d["peak_" + k] = round(self._whole.peaks[k], 2)
        return d
