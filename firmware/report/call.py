"""What `deskcue analyze` gathers about one recording for a reviewer: the tracks to draw, the
usual voice as it was learned, the thresholds the cues were judged against, and every event.

No matplotlib here: `analyze` fills a `CallRecord` block by block whether or not a plot is
drawn (`firmware.report.plot`) or a report written (`firmware.report.html`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dsp.analyzer import HopFeatures
from firmware.config.settings import Settings
from firmware.contract.events import (
    EVENT_DATA,
    CallerEnded,
    EventEnvelope,
    LaughterBurst,
    RaisedVoiceEnded,
    TenseVoiceEnded,
)

SPAN_EVENTS = ("raised_voice.ended", "tense_voice.ended", "caller.ended", "laughter_burst")
SPAN_MODELS = (RaisedVoiceEnded, TenseVoiceEnded, CallerEnded, LaughterBurst)
HELD_BACK_REASONS = {
    "cooldown": "cooldown: the same cue had ended less than its cooldown before",
    "snoozed": "snoozed: the agent had silenced cues",
    "hourly cap": "hourly cap: the cue had fired its most times in the last hour",
}


def mmss(t_s: float, *, tenths: bool = False) -> str:
    """Stream time in seconds as ``m:ss`` (``h:mm:ss`` from one hour; ``m:ss.s`` with
    ``tenths``)."""
    t = max(0.0, float(t_s))
    if tenths:
        t = round(t, 1)
        whole = int(t)
        frac = f".{int(round((t - whole) * 10)) % 10}"
    else:
        whole, frac = int(round(t)), ""
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}{frac}" if h else f"{m}:{s:02d}{frac}"


def cue_spans(events: list[EventEnvelope]) -> list[tuple[str, float, float]]:
    """(cue, onset_s, end_s) of every cue in published events, in stream seconds: from the
    evidence's onset to where it last held, read from each ``*.ended`` event and each
    ``laughter_burst``."""
    return [(d.cue, d.onset_s, d.end_s) for e in events
            if isinstance(d := e.data, SPAN_MODELS)]


@dataclass(frozen=True)
class ReportEvent:
    """One event of the recording: ``type``, stream time (s) and its ``data`` as JSON.

    ``published``: what `deskcue analyze --events` prints and a desk would send (``seq`` is
    its sequence number there); the others are the desk's own record, never published - a
    passage held back (``<cue>.suppressed`` when it was due, ``reason`` cooldown, snoozed or
    hourly cap; ``<cue>.suppressed_ended`` when its evidence stopped, ``end_s``) or
    laughter-like bursts when ``mqtt.publish_laughter`` is off."""

    type: str
    stream_s: float
    data: dict[str, Any]
    published: bool
    seq: int | None = None

    @property
    def held_back(self) -> bool:
        """About a passage due for a cue but held back (when it was due, or when it ended)."""
        return self.type.endswith((".suppressed", ".suppressed_ended"))

    @property
    def cue(self) -> str | None:
        """The cue this event is about (``raised_voice``, ``tense_voice``, ``caller``,
        ``laughter``), or None."""
        cue = self.data.get("cue")
        return cue if isinstance(cue, str) else None


@dataclass(frozen=True)
class Thresholds:
    """What the cues were judged against, relative to the usual voice (from the config)."""

    raised_db: float  # the agent's momentary loudness above usual, dB
    raised_hold_s: float
    tense_st: float  # the agent's pitch above usual, semitones
    tense_effort_db: float  # with loudness this far above usual (or tilt or rate up), dB
    tense_hold_s: float
    caller_db: float  # the caller above their start-of-call level, dB
    caller_hold_s: float
    warmup_speech_s: float  # speech heard before any agent cue may fire, s

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        c = settings.cues
        return cls(raised_db=c.raised_voice.threshold_db, raised_hold_s=c.raised_voice.hold_s,
                   tense_st=c.tense_voice.pitch_st, tense_effort_db=c.tense_voice.effort_db,
                   tense_hold_s=c.tense_voice.hold_s,
                   caller_db=c.caller_escalation.threshold_db,
                   caller_hold_s=c.caller_escalation.hold_s,
                   warmup_speech_s=settings.baseline.warmup_speech_s)


class Tracks:
    """The per-hop measures a plot draws, kept as float32 (0.2 MB per minute of stereo):
    hop centres (s), level (dBFS), momentary loudness (LUFS), voice activity, F0 (Hz, 0 where
    unvoiced), per channel; and, per block, the usual voice the cues were judged against."""

    def __init__(self) -> None:
        self._t: list[np.ndarray] = []
        self._level: list[np.ndarray] = []
        self._loud: list[np.ndarray] = []
        self._voiced: list[np.ndarray] = []
        self._f0: list[np.ndarray] = []
        self._usual: list[tuple[float, float, float, float]] = []

    def add(self, f: HopFeatures) -> None:
        """Keep a block's hops."""
        if not f.n_hops:
            return
        self._t.append(f.t.astype(np.float64))
        self._level.append(f.level_dbfs.astype(np.float32))
        self._loud.append(f.loudness_m_lufs.astype(np.float32))
        self._voiced.append(f.voiced.astype(bool))
        f0 = f.f0_hz if f.f0_hz is not None else np.zeros_like(f.level_dbfs)
        self._f0.append(f0.astype(np.float32))

    def add_usual(self, t_s: float, usual_lufs: float, usual_f0_hz: float,
                  caller_lufs: float) -> None:
        """The usual voice from stream time ``t_s`` (s) on: the agent's usual loudness (LUFS)
        and pitch (Hz), the caller's start-of-call level (LUFS); NaN where not known."""
        self._usual.append((t_s, usual_lufs, usual_f0_hz, caller_lufs))

    def caller_from(self, t_s: float, caller_lufs: float) -> None:
        """The caller's start-of-call level known from stream time ``t_s`` (s) on, inside a
        block whose row came later (or, the policy deciding in 50 ms chunks, just before the
        last row): a row at ``t_s`` with the agent's values of the row before it, and the
        level in the rows after it that did not have one. Once per level (idempotent)."""
        rows = self._usual
        if any(r[0] == t_s and np.isfinite(r[3]) for r in rows):
            return
        i = next((k for k, r in enumerate(rows) if r[0] > t_s), len(rows))
        before = rows[i - 1] if i else (t_s, np.nan, np.nan, np.nan)
        rows[i:] = [(r[0], r[1], r[2], caller_lufs if np.isnan(r[3]) else r[3])
                    for r in rows[i:]]
        rows.insert(i, (t_s, before[1], before[2], caller_lufs))

    def _join(self, parts: list[np.ndarray], axis: int = -1) -> np.ndarray:
        return np.concatenate(parts, axis=axis) if parts else np.empty((0, 0))

    @property
    def t(self) -> np.ndarray:
        return np.concatenate(self._t) if self._t else np.empty(0)

    @property
    def level_dbfs(self) -> np.ndarray:
        return self._join(self._level)

    @property
    def loudness_lufs(self) -> np.ndarray:
        return self._join(self._loud)

    @property
    def voiced(self) -> np.ndarray:
        return self._join(self._voiced)

    @property
    def f0_hz(self) -> np.ndarray:
        return self._join(self._f0)

    @property
    def usual(self) -> np.ndarray:
        """(n, 4): stream time (s), usual loudness (LUFS), usual pitch (Hz), the caller's
        start-of-call level (LUFS), one row per block."""
        return np.array(self._usual, dtype=np.float64).reshape(-1, 4)


@dataclass
class CallRecord:
    """Everything a plot or report says about one recording."""

    name: str  # the recording's file name
    duration_s: float
    channels: tuple[str, ...]  # ("agent",) or ("agent", "caller")
    thresholds: Thresholds
    tracks: Tracks = field(default_factory=Tracks)
    events: list[ReportEvent] = field(default_factory=list)
    heard_s: float = 0.0  # the agent's speech heard for the usual voice, s
    learned_at_s: float | None = None  # stream time the usual voice was learned, s
    usual_lufs: float | None = None  # the usual level at the end, LUFS
    usual_f0_hz: float | None = None  # the usual pitch at the end, Hz
    usual_from: str | None = None  # where a known usual voice was taken from
    notes: list[str] = field(default_factory=list)  # what makes the measures less sure

    @property
    def cues_fired(self) -> dict[str, int]:
        """Cue -> how many times it fired (a light and a buzz for the agent)."""
        out: dict[str, int] = {}
        for e in self.events:
            if e.cue and (e.type.endswith(".started") or e.type == "laughter_burst"):
                out[e.cue] = out.get(e.cue, 0) + 1
        return out

    @property
    def held_back(self) -> dict[str, int]:
        """Reason -> how many passages were due for a cue but held back."""
        out: dict[str, int] = {}
        for e in self.events:
            if e.type.endswith(".suppressed"):
                r = str(e.data.get("reason", "?"))
                out[r] = out.get(r, 0) + 1
        return out

    def spans(self) -> list[tuple[str, float, float, float]]:
        """(cue, onset_s, at_s, end_s) of every cue that fired: from the evidence's onset to
        where it last held, with the moment it fired (s); read from each ``*.ended`` event
        and each ``laughter_burst`` through the contract's model."""
        out: list[tuple[str, float, float, float]] = []
        for e in self.events:
            if e.type in SPAN_EVENTS:
                d = EVENT_DATA[e.type].model_validate(e.data)
                assert isinstance(d, SPAN_MODELS)
                out.append((d.cue, d.onset_s, d.at_s, d.end_s))
        return out

    def held_back_spans(self) -> list[tuple[str, float, float, str]]:
        """(cue, onset_s, end_s, reason) of every passage held back: its evidence from the
        onset to where it stopped (to the moment it was due if its end is not known), s."""
        ends = {(e.cue, e.data.get("onset_s")): float(e.data["end_s"]) for e in self.events
                if e.type.endswith(".suppressed_ended")}
        return [(e.cue or "?", float(e.data["onset_s"]),
                 ends.get((e.cue, e.data.get("onset_s")), float(e.data["at_s"])),
                 str(e.data.get("reason", "?")))
                for e in self.events if e.type.endswith(".suppressed")]

    def warmup_note(self) -> str | None:
        """Why no agent cue could fire for part or all of the recording, in one sentence;
        None when a known usual voice was given ready or it was learned at the very start."""
        need = self.thresholds.warmup_speech_s
        if self.learned_at_s is None:
            return (f"no cue for the agent could fire: the usual voice was not learned yet "
                    f"(heard {self.heard_s:.1f} s of the agent's speech, needs {need:.1f} s)")
        if self.learned_at_s > 0:  # learned here (from scratch, or a baseline still warming up)
            return (f"cues for the agent could fire only from {mmss(self.learned_at_s)} on, "
                    f"once {need:.1f} s of the agent's speech was heard")
        return None
