"""`deskcue monitor`: the supervisor's live terminal view of every desk on a broker.

Built only on MQTT: it subscribes to ``<prefix>/#`` and folds what arrives into a
`MonitorState` (one `DeskView` per site/desk): the retained ``status`` and ``info``, the
latest ``telemetry`` (agent and caller short-term loudness, LUFS), the cues active now (from
``*.started`` / ``*.ended`` events), faults (``fault`` events), calls (``call.started`` /
``call.ended``), and the last events. Every payload is parsed with its model from
`firmware.contract`; one that does not parse is counted as "off-contract", never read with
defaults. Events are de-duplicated by ``id``, and gaps in (``boot_id``, ``seq``) are counted
as "missing" until a replay fills them. `render` turns the state into text and is pure, so
tests check it.

    deskcue monitor --host broker.site1 --port 8883 --tls --ca-file ca.pem \\
                    --credentials-file ~/.config/deskcue/supervisor
    deskcue monitor --config /etc/deskcue/deskcue.toml --once
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from firmware.config.load import load_settings
from firmware.config.mqtt import MqttSettings, TlsSettings
from firmware.contract.commands import CommandResult
from firmware.contract.desk import DeskStatus, Info, Telemetry
from firmware.contract.events import (
    CallEnded,
    CueData,
    EventEnvelope,
    Fault,
    TenseVoiceStarted,
)
from firmware.errors import CredentialsError
from firmware.link.mqtt_client import SupervisorClient

ANSI_HOME_CLEAR = "\x1b[H\x1b[2J"
_CUE_PHASES = (".started", ".ended")


@dataclass
class DeskView:
    """What the monitor knows about one desk (payloads parsed with the contract's models)."""

    site: str
    desk: str
    status: str = "?"
    info: Info | None = None
    telemetry: Telemetry | None = None
    telemetry_at: float | None = None
    active_cues: dict[str, CueData] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)  # kind -> what is wrong
    in_call_since: float | None = None
    calls: int = 0
    last_call: CallEnded | None = None
    events: deque[EventEnvelope] = field(default_factory=lambda: deque(maxlen=20))
    seqs: dict[str, set[int]] = field(default_factory=dict)
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
        return sum(max(s) - len(s) for s in self.seqs.values() if s)


class MonitorState:
    """Every desk under ``prefix``, updated by `handle` from MQTT messages (no I/O here)."""

    def __init__(self, prefix: str = "deskcue", max_events: int = 50) -> None:
        self.prefix = prefix.rstrip("/")
        self.desks: dict[tuple[str, str], DeskView] = {}
        self.events: deque[tuple[DeskView, EventEnvelope]] = deque(maxlen=max_events)
        self._ids: OrderedDict[str, None] = OrderedDict()
        self.results: deque[tuple[DeskView, CommandResult]] = deque(maxlen=10)

    def desk(self, site: str, desk: str) -> DeskView:
        """The view of ``site``/``desk`` (created on first sight)."""
        key = (site, desk)
        if key not in self.desks:
            self.desks[key] = DeskView(site, desk)
        return self.desks[key]

    def handle(self, topic: str, payload: bytes, now: float | None = None) -> bool:
        """Fold one message in; returns False for topics it does not know and for payloads
        off the contract (counted per desk as ``off_contract``)."""
        now = time.time() if now is None else now
        head = self.prefix + "/"
        if not topic.startswith(head):
            return False
        parts = topic[len(head) :].split("/")
        if len(parts) < 3:
            return False
        suffix = "/".join(parts[2:])
        if suffix not in ("status", "info", "telemetry", "events") and not (
                suffix.startswith("cmd/") and suffix.endswith("/result")):
            return False
        view = self.desk(parts[0], parts[1])
        try:
            if suffix == "status":
                view.status = DeskStatus.model_validate(
                    payload.decode("utf-8", "replace").strip()).root
            elif suffix == "info":
                view.info = Info.model_validate_json(payload)
            elif suffix == "telemetry":
                view.telemetry = Telemetry.model_validate_json(payload)
                view.telemetry_at = now
            elif suffix == "events":
                self._event(view, EventEnvelope.model_validate_json(payload))
            else:
                self.results.append((view, CommandResult.model_validate_json(payload)))
        except ValidationError:
            view.off_contract += 1
            return False
        return True

    def _event(self, view: DeskView, env: EventEnvelope) -> None:
        if env.id in self._ids:
            view.duplicates += 1
            return
        self._ids[env.id] = None
        while len(self._ids) > 100_000:
            self._ids.popitem(last=False)
        view.seqs.setdefault(env.boot_id, set()).add(env.seq)
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
            view.in_call_since = env.ts
        elif isinstance(data, CallEnded):
            view.in_call_since = None
            view.calls += 1
            view.last_call = data
        elif isinstance(data, Fault):
            if data.active:
                view.faults[data.kind] = data.fault
            else:
                view.faults.pop(data.kind, None)
        view.events.append(env)
        self.events.append((view, env))


def _num(value: float | int | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _level(view: DeskView, channel: str) -> str:
    t = view.telemetry
    return _num(t.level_lufs.get(channel)) if t is not None else "-"  # type: ignore[call-overload]


def _cue(cue: str, data: CueData) -> str:
    """A cue as it stands: pitch in semitones for the tense voice, else loudness in dB."""
    if isinstance(data, TenseVoiceStarted):
        return f"{cue} +{data.st_above_usual:.1f}st"
    if hasattr(data, "db_above_usual"):
        return f"{cue} +{data.db_above_usual:.1f}dB"
    return cue


def _cues(view: DeskView) -> str:
    if not view.active_cues:
        return "-"
    return ", ".join(_cue(cue, data) for cue, data in view.active_cues.items())


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h"


def _call(view: DeskView, now: float) -> str:
    if view.in_call_since is not None:
        return f"in call {_duration(now - view.in_call_since)}"
    if view.calls:
        last = f", last {_duration(view.last_call.duration_s)}" if view.last_call else ""
        return f"idle ({view.calls} calls{last})"
    return "idle"


def describe_event(env: EventEnvelope) -> str:
    """One line for an event: its summary if it has one, else its first numbers."""
    summary = getattr(env.data, "summary", None)
    if summary:
        return str(summary)
    bits = []
    for k, v in env.data.to_json().items():
        if isinstance(v, bool | str | int | float):
            bits.append(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}")
        if len(bits) == 4:
            break
    return " ".join(bits)


def render(state: MonitorState, now: float | None = None, *, events: int = 10) -> str:
    """The monitor screen as text: one row per desk, then the latest ``events`` events."""
    now = time.time() if now is None else now
    header = (
        f"{'DESK':<22} {'STATE':<8} {'AGENT':>6} {'CALLER':>6}  {'CUES NOW':<26} "
        f"{'CALL':<26} {'OUTBOX':>6} NOTES"
    )
    lines = [
        f"deskcue monitor - {len(state.desks)} desk(s) - "
        f"{time.strftime('%H:%M:%S', time.localtime(now))}",
        "",
        header,
        "-" * len(header),
    ]
    for key in sorted(state.desks):
        v = state.desks[key]
        depth = v.telemetry.outbox.depth if v.telemetry is not None else None
        notes = []
        if v.missing:
            notes.append(f"missing {v.missing}")
        if v.replayed:
            notes.append(f"replayed {v.replayed}")
        if v.duplicates:
            notes.append(f"dup {v.duplicates}")
        if v.off_contract:
            notes.append(f"off-contract {v.off_contract}")
        notes += [f"fault: {why}" for why in v.faults.values()]
        lines.append(
            f"{v.name:<22.22} {v.status:<8.8} {_level(v, 'agent'):>6} {_level(v, 'caller'):>6}  "
            f"{_cues(v):<26.26} {_call(v, now):<26.26} {_num(depth, '{:d}'):>6} "
            + "; ".join(notes)
        )
    if not state.desks:
        lines.append("(no desk has published yet)")
    lines += ["", "levels: short-term loudness, LUFS", "", "LAST EVENTS"]
    recent = list(state.events)[-events:]
    if not recent:
        lines.append("(none yet)")
    for view, env in reversed(recent):
        when = time.strftime("%H:%M:%S", time.localtime(env.ts))
        flag = " (replayed)" if env.replayed else ""
        lines.append(
            f"{when}  {view.name:<22.22} {env.type:<24} {describe_event(env)}{flag}"
        )
    return "\n".join(lines) + "\n"


# -- command line ---------------------------------------------------------------------------------


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``monitor`` subcommand to the `deskcue` CLI's subparsers."""
    p = subparsers.add_parser(
        "monitor", help="live view of every desk on a broker (supervisor's terminal)"
    )
    p.add_argument("--config", type=Path, help="take broker, TLS and credentials from this config")
    p.add_argument("--host", help="broker host (default: config or localhost)")
    p.add_argument("--port", type=int, help="broker port (default: config or 1883)")
    p.add_argument("--prefix", help="topic prefix (default: config or deskcue)")
    p.add_argument("--tls", action="store_true", help="connect with TLS (CA verified)")
    p.add_argument("--ca-file", type=Path, help="CA bundle for the broker's certificate")
    p.add_argument("--cert-file", type=Path, help="client certificate (PEM)")
    p.add_argument("--key-file", type=Path, help="client certificate key (PEM)")
    p.add_argument("--credentials-file", type=Path, help="file with username/password lines")
    p.add_argument("--once", action="store_true", help="collect for --seconds, print, exit")
    p.add_argument(
        "--seconds",
        type=float,
        help="how long to collect (--once: default 1.5) or to run (default: until Ctrl-C)",
    )
    p.add_argument("--events", type=int, default=10, help="last events shown (default 10)")
    p.set_defaults(func=main, needs_settings=False)
    return p


def _settings(args: argparse.Namespace) -> Any:
    base = MqttSettings()
    if args.config is not None:
        base = load_settings(args.config).mqtt
    tls = base.tls
    if args.tls or args.ca_file or args.cert_file:
        tls = TlsSettings(
            enabled=True,
            ca_file=args.ca_file or tls.ca_file,
            cert_file=args.cert_file or tls.cert_file,
            key_file=args.key_file or tls.key_file,
        )
    return base.model_copy(
        update={
            "host": args.host or base.host,
            "port": args.port or base.port,
            "topic_prefix": args.prefix or base.topic_prefix,
            "credentials_file": args.credentials_file or base.credentials_file,
            "tls": tls,
        }
    )


def connect(settings: Any, state: MonitorState, lock: threading.Lock) -> SupervisorClient:
    """A client that folds ``<prefix>/#`` into ``state``; raises `BrokerError` or
    `CredentialsError` when the broker cannot be used."""

    def on_message(topic: str, payload: bytes, _retain: bool) -> None:
        with lock:
            state.handle(topic, payload)

    client = SupervisorClient(settings, on_message=on_message)
    try:
        client.connect()
        client.subscribe(f"{state.prefix}/#", qos=1)
    except BaseException:
        client.close()
        raise
    return client


def main(args: argparse.Namespace) -> int:
    """Run the monitor; one-line errors, exit code 1 when the broker cannot be used."""
    try:
        settings = _settings(args)
    except (CredentialsError, ValueError, OSError) as exc:
        print(f"deskcue monitor: {exc}", file=sys.stderr)
        return 2
    state = MonitorState(settings.topic_prefix)
    lock = threading.Lock()
    where = f"{settings.host}:{settings.port}"
    try:
        client = connect(settings, state, lock)
    except (CredentialsError, OSError) as exc:  # BrokerError is an OSError
        print(f"deskcue monitor: cannot use broker {where}: {exc}", file=sys.stderr)
        return 1
    try:
        if args.once:
            time.sleep(1.5 if args.seconds is None else args.seconds)
            with lock:
                sys.stdout.write(render(state, events=args.events))
            return 0
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        while deadline is None or time.monotonic() < deadline:
            with lock:
                screen = render(state, events=args.events)
            sys.stdout.write(ANSI_HOME_CLEAR + screen)
            sys.stdout.flush()
            time.sleep(1.0)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()
