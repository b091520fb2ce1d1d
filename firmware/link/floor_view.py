"""The supervisor's floor view: every desk on a broker as its messages tell it, no I/O.

`MonitorState` folds what the desks under ``<prefix>`` publish into one `DeskView` per
site/desk: the retained ``status`` and ``info``, the latest ``telemetry``, the cues active now
and whether a call is on (from the retained ``state/<name>``, so a view started mid-call or
mid-cue shows it at once and a desk that restarted clears a cue whose ``*.ended`` never came;
and from ``*.started`` / ``*.ended`` events, which add the measurements), faults, calls, and
the last events. Every payload is parsed with its model from `firmware.contract`; one that
does not parse is counted as "off-contract", never read with defaults. Events are
de-duplicated by ``id``, and gaps in (``boot_id``, ``seq``) are counted as "missing" until a
replay fills them, in memory bounded per desk (`SEQ_WINDOW`, `SEQ_BOOTS`).

`deskcue monitor` (`firmware.cli.monitor`) draws it; the messages come through
`firmware.link.supervisor_client`.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from firmware.contract.commands import CommandResult
from firmware.contract.desk import DeskStatus, Info, Telemetry
from firmware.contract.events import CallEnded, CueData, EventEnvelope, Fault
from firmware.contract.states import STATE_NAMES, CueState

_CUE_PHASES = (".started", ".ended")
# Events of every call: they do not make a desk "recent" (see `urgency`).
_ROUTINE = frozenset({"call.started", "call.ended", "usual_voice_learned"})


SEQ_WINDOW = 4096
"""How far below a desk's highest sequence number (per boot id) a gap can still be filled by a
late or replayed event; an older gap stays counted as missing for good. What bounds the
monitor's memory per desk however long it runs (a set of every sequence number seen would
grow by each event, days on end)."""
SEQ_BOOTS = 8
"""Boot ids per desk whose gaps are tracked; an older boot's gaps stay counted as missing."""


@dataclass
class SeqGaps:
    """The sequence numbers seen from one boot of a desk, in bounded memory: every number up
    to ``floor`` is seen (or given up as missing, counted in ``lost``), ``above`` holds those
    seen beyond it, ``top`` is the highest."""

    floor: int = 0
    top: int = 0
    lost: int = 0
    above: set[int] = field(default_factory=set)

    def add(self, seq: int) -> None:
        """Note ``seq`` as seen (a repeat changes nothing)."""
        if seq <= self.floor or seq in self.above:
            return
        self.above.add(seq)
        self.top = max(self.top, seq)
        self._settle()
        if self.top - self.floor > 2 * SEQ_WINDOW:  # amortised: once per SEQ_WINDOW events
            new = self.top - SEQ_WINDOW
            kept = {s for s in self.above if s > new}
            self.lost += (new - self.floor) - (len(self.above) - len(kept))
            self.floor, self.above = new, kept
            self._settle()

    def _settle(self) -> None:
        while self.floor + 1 in self.above:
            self.floor += 1
            self.above.remove(self.floor)

    @property
    def missing(self) -> int:
        """Numbers below ``top`` not seen."""
        return self.lost + self.top - self.floor - len(self.above)


@dataclass
class DeskView:
    """What the monitor knows about one desk (payloads parsed with the contract's models)."""

    site: str
    desk: str
    status: str = "?"
    info: Info | None = None
    telemetry: Telemetry | None = None
    telemetry_at: float | None = None
    active_cues: dict[str, CueData | None] = field(default_factory=dict)  # None: from state/
    faults: dict[str, str] = field(default_factory=dict)  # kind -> what is wrong
    in_call: bool = False
    in_call_since: float | None = None  # None in a call: it began before the monitor saw it
    calls: int = 0
    last_call: CallEnded | None = None
    events: deque[EventEnvelope] = field(default_factory=lambda: deque(maxlen=20))
    last_event_at: float | None = None  # when the last notable event arrived (Unix s)
    seqs: dict[str, SeqGaps] = field(default_factory=dict)  # boot id -> what came of it
    missing_before: int = 0  # missing from boot ids no longer tracked (`SEQ_BOOTS`)
    duplicates: int = 0
    replayed: int = 0
    off_contract: int = 0  # messages that did not parse as the contract's models

    @property
    def name(self) -> str:
        """``site/desk``."""
        return f"{self.site}/{self.desk}"

    @property
    def missing(self) -> int:
        """Events not (yet) seen below the highest sequence number, over all boot ids."""
        return self.missing_before + sum(g.missing for g in self.seqs.values())

    def note_seq(self, boot_id: str, seq: int) -> None:
        """Note event ``seq`` of boot ``boot_id`` as arrived."""
        gaps = self.seqs.get(boot_id)
        if gaps is None:
            while len(self.seqs) >= SEQ_BOOTS:
                oldest = next(iter(self.seqs))
                self.missing_before += self.seqs.pop(oldest).missing
            gaps = self.seqs[boot_id] = SeqGaps()
        gaps.add(seq)


class MonitorState:
    """Every desk under ``prefix``, updated by `handle` from MQTT messages (no I/O here)."""

    def __init__(self, prefix: str = "deskcue", max_events: int = 50) -> None:
        self.prefix = prefix.rstrip("/")
        self.desks: dict[tuple[str, str], DeskView] = {}
        self.events: deque[tuple[DeskView, EventEnvelope]] = deque(maxlen=max_events)
        self._ids: OrderedDict[str, None] = OrderedDict()
        self.max_ids = 100_000
        """Event ids remembered to count duplicates (~18 MB at most), oldest forgotten."""
        self.results: deque[tuple[DeskView, CommandResult]] = deque(maxlen=10)
        self.stray = 0
        """Off-contract messages under a site/desk nothing valid came from: counted here, so
        a flood of junk topics costs no memory per topic and lists no phantom desks."""
        self.broker_lost_at: float | None = None
        """When the monitor lost its broker (Unix s), while it has: what is shown is from
        before then, however the clock ticks."""

    def desk(self, site: str, desk: str) -> DeskView:
        """The view of ``site``/``desk`` (created on first sight)."""
        key = (site, desk)
        if key not in self.desks:
            self.desks[key] = DeskView(site, desk)
        return self.desks[key]

    def handle(self, topic: str, payload: bytes, now: float | None = None) -> bool:
        """Fold one message in; returns False for topics it does not know and for payloads
        off the contract (counted per desk as ``off_contract``, or in `stray` while nothing
        valid came from that site/desk)."""
        now = time.time() if now is None else now
        head = self.prefix + "/"
        if not topic.startswith(head):
            return False
        parts = topic[len(head) :].split("/")
        if len(parts) < 3:
            return False
        suffix = "/".join(parts[2:])
        state = suffix[len("state/"):] if suffix.startswith("state/") else None
        if suffix not in ("status", "info", "telemetry", "events") and state not in STATE_NAMES \
                and not (suffix.startswith("cmd/") and suffix.endswith("/result")):
            return False
        if suffix == "status" and not payload:
            # The desk's retained status cleared (an empty retained message, MQTT's way to
            # delete one): a desk taken off the floor. A monitor started now would not list
            # it, so one that has run for weeks forgets it too.
            gone = self.desks.pop((parts[0], parts[1]), None)
            if gone is not None:
                self.events = deque(((v, e) for v, e in self.events if v is not gone),
                                    maxlen=self.events.maxlen)
            return True
        text = payload.decode("utf-8", "replace").strip()
        parsed: Any
        try:
            if suffix == "status":
                parsed = DeskStatus.model_validate(text).root
            elif suffix == "info":
                parsed = Info.model_validate_json(payload)
            elif suffix == "telemetry":
                parsed = Telemetry.model_validate_json(payload)
            elif state is not None:
                parsed = CueState.model_validate(text).root == "ON"
            elif suffix == "events":
                parsed = EventEnvelope.model_validate_json(payload)
            else:
                parsed = CommandResult.model_validate_json(payload)
        except ValidationError:
            known = self.desks.get((parts[0], parts[1]))
            if known is None:
                self.stray += 1
            else:
                known.off_contract += 1
            return False
        view = self.desk(parts[0], parts[1])
        if suffix == "status":
            view.status = parsed
        elif suffix == "info":
            view.info = parsed
        elif suffix == "telemetry":
            view.telemetry, view.telemetry_at = parsed, now
        elif state is not None:
            self._state(view, state, parsed)
        elif suffix == "events":
            self._event(view, parsed, now)
        else:
            self.results.append((view, parsed))
        return True

    @staticmethod
    def _state(view: DeskView, name: str, on: bool) -> None:
        """The desk's own word on whether a cue or the call is active now."""
        if name == "call":
            view.in_call = on
            if not on:
                view.in_call_since = None
        elif not on:
            view.active_cues.pop(name, None)
        elif name not in view.active_cues:
            view.active_cues[name] = None  # its measurements come with its event

    def _event(self, view: DeskView, env: EventEnvelope, now: float) -> None:
        if env.id in self._ids:
            view.duplicates += 1
            return
        self._ids[env.id] = None
        while len(self._ids) > self.max_ids:
            self._ids.popitem(last=False)
        view.note_seq(env.boot_id, env.seq)
        if env.replayed:
            view.replayed += 1
        kind, data = env.type, env.data
        for phase in _CUE_PHASES:
            if kind.endswith(phase) and not kind.startswith("call."):
                cue = kind[: -len(phase)]
                if phase == ".started":
                    view.active_cues[cue] = data  # type: ignore[assignment]
                else:
                    view.active_cues.pop(cue, None)
        if kind == "call.started":
            # The desk's clock says when the call began only once it is synced (a Pi boots
            # with a clock days or years behind); until then, its stream time says how long
            # the call had run when the event was sent, counted from its arrival here.
            since = env.ts if env.clock_synced else now - max(
                env.stream_s - getattr(data, "start_s", env.stream_s), 0.0)
            view.in_call, view.in_call_since = True, since
        elif isinstance(data, CallEnded):
            view.in_call, view.in_call_since = False, None
            view.calls += 1
            view.last_call = data
        elif isinstance(data, Fault):
            if data.active:
                view.faults[data.kind] = data.fault
            else:
                view.faults.pop(data.kind, None)
        view.events.append(env)
        if kind not in _ROUTINE:
            view.last_event_at = now
        self.events.append((view, env))
