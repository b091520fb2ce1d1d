"""A cue that fires on evidence sustained for a hold time: hysteresis, gaps, cooldown, hourly cap.

Shared by every sustained cue (raised voice, tense voice, caller escalation). Time is stream
seconds. Per hop the caller supplies: ``on`` (evidence at the firing threshold), ``keep``
(evidence at the lower release threshold: hysteresis) and named measurements that the cue
aggregates into its events (mean while building, peak and mean over the whole cue).
"""

from __future__ import annotations

from collections import deque
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
    kind: str  # "started" | "ended" | "suppressed" (due, but held back: data["reason"])
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
    "hourly cap"); if it is allowed later in the same passage it still starts then.
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
        self._build = _Acc()
        self._whole = _Acc()

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
             measures: dict[str, np.ndarray], snoozed_until_s: float) -> list[CueTransition]:
        """Advance over hops at stream times ``t`` (s); return the transitions that happened."""
        out: list[CueTransition] = []
        if self.phase is Phase.IDLE and not on.any():
            return out
        p = self.p
        names = list(measures)
        cols = [measures[k] for k in names]
        for i in range(t.shape[0]):
            ti = float(t[i])
            if self.phase is Phase.IDLE:
                if not on[i]:
                    continue
                self.phase = Phase.BUILDING
                self.onset_s = ti - 0.005  # evidence began at the start of this hop
                self.last_on_s = ti
                self._build = _Acc()
                self._held_back = False
            vals = {k: float(c[i]) for k, c in zip(names, cols, strict=True)}
            if self.phase is Phase.BUILDING:
                if on[i]:
                    self.last_on_s = ti
                    self._build.add(vals)
                elif ti - self.last_on_s > p.gap_s:
                    self.phase = Phase.IDLE
                    continue
                if ti + 0.005 - self.onset_s >= p.hold_s and on[i]:
                    why = self.blocked(ti, ti < snoozed_until_s)
                    if why is None:
                        self.phase = Phase.ACTIVE
                        self.fired_s = ti + 0.005
                        self.last_keep_s = ti
                        self.fired_at.append(ti)
                        self._whole = _Acc(self._build.n, dict(self._build.sums),
                                           dict(self._build.peaks))
                        out.append(CueTransition(self.name, "started", self.fired_s,
                                                 self._started_data()))
                    elif not self._held_back:
                        # A passage that would have been cued: said once, with why, so a
                        # reviewer can see what snooze, cooldown or the cap held back.
                        self._held_back = True
                        out.append(CueTransition(self.name, "suppressed", ti + 0.005, {
                            "onset_s": round(self.onset_s, 3), "at_s": round(ti + 0.005, 3),
                            "reason": why}))
            elif self.phase is Phase.ACTIVE:
                if keep[i]:
                    self.last_keep_s = ti
                    self._whole.add(vals)
                elif ti - self.last_keep_s >= p.release_s:
                    self.phase = Phase.IDLE
                    end_s = self.last_keep_s + 0.005
                    self.cooldown_until_s = ti + p.cooldown_s
                    out.append(CueTransition(self.name, "ended", ti + 0.005,
                                             self._ended_data(end_s)))
        return out

    def finish(self, t_end: float) -> list[CueTransition]:
        """End an active cue at the end of the stream (or on shutdown)."""
        if self.phase is not Phase.ACTIVE:
            self.phase = Phase.IDLE
            return []
        self.phase = Phase.IDLE
        return [CueTransition(self.name, "ended", t_end,
                              self._ended_data(self.last_keep_s + 0.005))]

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
