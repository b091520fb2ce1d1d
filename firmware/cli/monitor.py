"""`deskcue monitor`: the supervisor's live terminal view of every desk on a broker.

Built only on MQTT: it subscribes to what the desks under ``<prefix>`` publish (`SUBSCRIPTIONS`:
the retained state at QoS 0, events at QoS 1) and folds what arrives into a `MonitorState`
(`firmware.link.floor_view`: one `DeskView` per site/desk, every payload parsed with the
contract's models, duplicates and gaps counted).

`screen` lays the state out for a terminal (pure, so tests check it): a layout chosen by the
width (`layout_for`), desks most urgent first (`urgency`), as many as the height holds, cues
in the desk light's colours, offline desks grey, levels dim once older than `LIVE_S`.
`render` is the same as plain text. On a terminal the view is redrawn full-screen with
rich's `Live`; piped, each snapshot is plain text, every desk, no control characters.

    deskcue monitor --host broker.site1 --port 8883 --tls --ca-file ca.pem \\
                    --credentials-file ~/.config/deskcue/supervisor
    deskcue monitor --config /etc/deskcue/deskcue.toml --once
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from firmware.cli.args import number_in
from firmware.config.load import load_settings
from firmware.config.mqtt import MqttSettings, TlsSettings
from firmware.contract.events import (
    CueData,
    EventEnvelope,
    Fault,
    TenseVoiceStarted,
)
from firmware.errors import CredentialsError
from firmware.link.floor_view import DeskView, MonitorState
from firmware.link.supervisor_client import SupervisorClient

# -- the screen -----------------------------------------------------------------------------------

RECENT_S = 60.0
"""A desk with a notable event (not a call starting or ending) received this recently (s)
ranks above those with no cue."""
LIVE_S = 3.0
"""A level older than this (s) is dimmed: it is no longer "now" (telemetry comes every
``mqtt.telemetry_interval_s``, 1 s by default)."""
STALE_S = 30.0
"""A level older than this (s, telemetry's default expiry) is not shown at all."""

# The colours of the desk's own light, so a supervisor and an agent mean the same thing.
CUE_STYLE = {"raised_voice": "bold dark_orange", "tense_voice": "bold magenta",
             "caller": "bold dark_cyan", "laughter": "bold bright_cyan"}
FAULT_STYLE = "bold white on red"
OFFLINE_STYLE = "grey50"
SHORT_CUE = {"raised_voice": "raised", "tense_voice": "tense", "caller": "caller",
             "laughter_burst": "laugh", "usual_voice_learned": "usual learned",
             "outbox_dropped": "outbox dropped"}


@dataclass(frozen=True)
class Layout:
    """Column widths (characters) of one screen layout; 0 drops a column."""

    name: str
    desk: int
    state: int
    level: int
    caller: bool
    now: int  # 0 = whatever is left of the line
    call: int
    outbox: int  # 0 = the depth goes into the notes when it is not 0
    notes: bool
    short: bool  # abbreviated words (cue names, counters)
    event_desk: int
    event_type: int


WIDE = Layout("wide", desk=22, state=7, level=6, caller=True, now=34, call=26, outbox=6,
              notes=True, short=False, event_desk=22, event_type=24)
NARROW = Layout("narrow", desk=14, state=3, level=5, caller=True, now=24, call=10, outbox=0,
                notes=True, short=True, event_desk=14, event_type=17)
TINY = Layout("tiny", desk=12, state=3, level=5, caller=False, now=0, call=0, outbox=0,
              notes=False, short=True, event_desk=12, event_type=14)


def layout_for(width: int | None) -> Layout:
    """The layout for a terminal ``width`` columns wide (None: unlimited, e.g. piped)."""
    if width is None or width >= 130:
        return WIDE
    return NARROW if width >= 64 else TINY


def urgency(view: DeskView, now: float) -> int:
    """0 a cue or fault now, 1 a cue, fault or other notable event (not a call starting or
    ending) in the last `RECENT_S`, 2 no cue (said of the desk's sound, never "calm": a
    word for how the agent feels), 3 offline."""
    if view.status == "offline":
        return 3
    if view.active_cues or view.faults:
        return 0
    if view.last_event_at is not None and now - view.last_event_at <= RECENT_S:
        return 1
    return 2


CUT = "~"
"""Ends a cut word or line. ASCII, as everything the monitor writes: a serial console or a
C locale shows a Unicode ellipsis as three bytes of junk and the columns after it slide."""
OLD = "*"
"""Follows a level older than `LIVE_S` (shown dim too): plain text, a dumb terminal and some
colour schemes show no dim, and an old level must not read as the level now."""


def _cut(t: Text, width: int) -> None:
    if t.cell_len > width:
        t.truncate(max(width - len(CUT), 0))
        if width >= len(CUT):
            t.append(CUT)


def _fit(text: Text | str, width: int, justify: str = "left") -> Text:
    t = (text.copy() if isinstance(text, Text) else Text(text))
    _cut(t, width)
    t.align(justify, width)  # type: ignore[arg-type]
    return t


def _num(value: float | int | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _level(view: DeskView, channel: str, now: float) -> Text:
    """Short-term loudness (LUFS) from the latest telemetry: bold while live; when older
    than `LIVE_S` dim, in whole LUFS and marked `OLD` (it fits the narrow column); ``-``
    when offline, unknown or older than `STALE_S`."""
    t, at = view.telemetry, view.telemetry_at
    if t is None or at is None or view.status == "offline" or now - at > STALE_S:
        return Text("-")
    value = t.level_lufs.get(channel)  # type: ignore[call-overload]
    if value is None:
        return Text("-")
    if now - at <= LIVE_S:
        return Text(f"{value:.1f}", style="bold")
    return Text(f"{value:.0f}{OLD}", style="dim")


def _cue(cue: str, data: CueData | None, short: bool = False) -> str:
    """A cue as it stands: pitch in semitones for the tense voice, else loudness in dB."""
    name = SHORT_CUE.get(cue, cue) if short else cue
    if isinstance(data, TenseVoiceStarted):
        return f"{name} +{data.st_above_usual:.1f}st"
    if data is not None and hasattr(data, "db_above_usual"):
        return f"{name} +{data.db_above_usual:.1f}dB"
    return name


def _now(view: DeskView, short: bool) -> Text:
    """What is going on at the desk now: each active cue in its colour, then each fault."""
    parts = [Text(_cue(cue, data, short), style=CUE_STYLE.get(cue, "bold"))
             for cue, data in view.active_cues.items()]
    parts += [Text(f"fault {kind}" if short else f"FAULT {kind}", style=FAULT_STYLE)
              for kind in view.faults]
    return Text(" " if short else ", ").join(parts) if parts else Text("-")


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h"


def _call(view: DeskView, now: float, short: bool = False) -> str:
    if view.in_call_since is not None:
        return f"{'call' if short else 'in call'} {_duration(now - view.in_call_since)}"
    if view.in_call:
        return "call" if short else "in call"
    if short:
        return f"idle {view.calls}" if view.calls else "idle"
    if view.calls:
        last = f", last {_duration(view.last_call.duration_s)}" if view.last_call else ""
        return f"idle ({view.calls} calls{last})"
    return "idle"


def odd_build(views: list[DeskView]) -> tuple[int, str | None]:
    """How many builds (``info.firmware``) the desks run, and the one most of them run when
    there are several (None with one build, or when no build has more desks than another:
    then every desk says its build)."""
    builds = Counter(v.info.firmware for v in views if v.info is not None)
    if len(builds) < 2:
        return len(builds), None
    (first, n), (_, second) = builds.most_common(2)
    return len(builds), first if n > second else None


def _notes(view: DeskView, layout: Layout, builds: int = 1, common: str | None = None) -> str:
    counts = [("missing", "miss", view.missing), ("replayed", "rep", view.replayed),
              ("dup", "dup", view.duplicates), ("off-contract", "bad", view.off_contract)]
    # ("bad", not "off": the STATE column says "off" for a desk that is offline)
    if not layout.outbox and view.telemetry is not None:
        counts.append(("outbox", "outbox", view.telemetry.outbox.depth))
    bits = [f"fault: {why}" for why in view.faults.values()]  # first: it needs a person
    bits += [f"{short if layout.short else long} {n}" for long, short, n in counts if n]
    # a desk that could not keep up with the sound (starved CPU): no cue spans what it lost
    lost = view.telemetry.lost_audio_s if view.telemetry is not None else 0.0
    if lost > 0:
        bits.append(f"{'lost' if layout.short else 'audio lost'} {lost:.1f} s")
    # after an upgrade, the desks that did not take it (or took another)
    if builds > 1 and view.info is not None and view.info.firmware != common:
        bits.append(f"build {view.info.firmware}")
    return "; ".join(bits)


def _state(view: DeskView, layout: Layout) -> Text:
    word = {"online": "on", "offline": "off"}.get(view.status, view.status) \
        if layout.short else view.status
    style = {"online": "green", "offline": OFFLINE_STYLE}.get(view.status, "yellow")
    return _fit(Text(word, style=style), layout.state)


def _header(layout: Layout) -> Text:
    cells = [_fit("DESK", layout.desk), _fit("ST" if layout.short else "STATE", layout.state),
             _fit("AGENT", layout.level, "right")]
    if layout.caller:
        cells.append(_fit("CALLR" if layout.short else "CALLER", layout.level, "right"))
    cells.append(_fit("NOW", layout.now) if layout.now else Text("NOW"))
    if layout.call:
        cells.append(_fit("CALL", layout.call))
    if layout.outbox:
        cells.append(_fit("OUTBOX", layout.outbox, "right"))
    if layout.notes:
        cells.append(Text("NOTES"))
    return Text(" ").join(cells)


def _row(view: DeskView, layout: Layout, now: float, builds: int = 1,
         common: str | None = None) -> Text:
    cells = [_fit(view.name, layout.desk), _state(view, layout),
             _fit(_level(view, "agent", now), layout.level, "right")]
    if layout.caller:
        cells.append(_fit(_level(view, "caller", now), layout.level, "right"))
    cells.append(_fit(_now(view, layout.short), layout.now) if layout.now
                 else _now(view, layout.short))
    if layout.call:
        cells.append(_fit(_call(view, now, layout.short), layout.call))
    if layout.outbox:
        depth = view.telemetry.outbox.depth if view.telemetry is not None else None
        cells.append(_fit(_num(depth, "{:d}"), layout.outbox, "right"))
    if layout.notes:
        cells.append(Text(_notes(view, layout, builds, common)))
    row = Text(" ").join(cells)
    if view.status == "offline":
        row.stylize(OFFLINE_STYLE)  # greyed over any cue colour: it is not live
    return row


def describe_event(env: EventEnvelope) -> str:
    """One line for an event: its summary if it has one, else its first numbers."""
    if isinstance(env.data, Fault):
        return env.data.fault + ("" if env.data.active else " (cleared)")
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


def _event_line(view: DeskView, env: EventEnvelope, layout: Layout) -> Text:
    when = time.strftime("%H:%M:%S", time.localtime(env.ts))
    kind: str = env.type
    cue = kind.rsplit(".", 1)[0]
    if layout.short:
        head, _, tail = kind.partition(".")
        kind = SHORT_CUE.get(head, head) + ("." + tail if tail else "")
    style = CUE_STYLE.get("laughter" if cue == "laughter_burst" else cue,
                          FAULT_STYLE if cue == "fault" else "")
    flag = " (replayed)" if env.replayed else ""
    line = Text(" ").join([Text(when + " "), _fit(view.name, layout.event_desk),
                           _fit(Text(kind, style=style), layout.event_type),
                           Text(describe_event(env) + flag)])
    if view.status == "offline":
        line.stylize(OFFLINE_STYLE)
    return line


def screen(state: MonitorState, now: float | None = None, *, width: int | None = None,
           height: int | None = None, events: int = 10) -> list[Text]:
    """The monitor screen as styled lines, each at most ``width`` columns, at most ``height``
    lines (None: no limit). Desks most urgent first (`urgency`), then by name; when they do
    not all fit, those with no cue and the offline ones are counted on one line instead."""
    now = time.time() if now is None else now
    layout = layout_for(width)
    views = sorted(state.desks.values(), key=lambda v: (urgency(v, now), v.name))
    if width is None:  # piped: columns as wide as their longest text, nothing cut
        desk = max([layout.desk, *(len(v.name) for v in views)])
        layout = replace(layout, desk=desk, event_desk=desk,
                         now=max([layout.now, *(len(_now(v, False)) for v in views)]),
                         call=max([layout.call, *(len(_call(v, now)) for v in views)]))
    ranks = [urgency(v, now) for v in views]
    builds, common = odd_build(views)
    clock = time.strftime("%H:%M:%S", time.localtime(now))
    tiny = layout is TINY
    title = Text.assemble(
        f"{clock} ", ("deskcue" if tiny else "deskcue monitor", "bold"),
        f": {len(views)} desk(s), ",
        (f"{ranks.count(0)} {'cue/fault' if tiny else 'cueing or faulty'}",
         "bold red" if 0 in ranks else ""),
        f", {ranks.count(3)} {'off' if tiny else 'offline'}",
        f", {builds} builds" if builds > 1 else "",
        (f", {state.stray} {'bad' if tiny else 'off-contract from no known desk'}"
         if state.stray else "", "yellow"))
    if state.broker_lost_at is not None:
        lost = time.strftime("%H:%M:%S", time.localtime(state.broker_lost_at))
        title.append(f" - BROKER LOST at {lost}, reconnecting; shown: as it was then",
                     style="bold white on red")
    footer = Text(f"levels: short-term loudness, LUFS ({OLD}: more than 3 s old)", style="dim")
    if tiny:  # 35 columns: what the mark on an old level means must not be cut off
        footer = Text(f"AGENT: short-term LUFS; {OLD}: >3 s old", style="dim")
    elif layout.short:
        footer = Text(f"AGENT, CALLR: short-term loudness, LUFS; {OLD}: >3 s old", style="dim")
    recent = list(state.events)[-events:][::-1] if events > 0 else []
    shown_desks, shown_events = len(views), len(recent)
    if height is not None:
        room = height - 5  # title, header, blank, LAST EVENTS, footer
        desk_room = room - min(3, max(1, len(recent)))  # keep a few events in view
        desk_lines = max(len(views), 1)
        if len(views) > desk_room:
            shown_desks = max(desk_room - 1, 0)  # and one line says how many are hidden
            desk_lines = shown_desks + 1
        shown_events = max(min(len(recent), room - desk_lines), 0)
    lines: list[Text] = [title, _header(layout).copy()]
    lines[1].stylize("bold")
    lines += [_row(v, layout, now, builds, common) for v in views[:shown_desks]]
    if shown_desks < len(views):
        hidden = ranks[shown_desks:]
        kinds = ", ".join(f"{hidden.count(rank)} {word}" for rank, word in enumerate(
            ("cueing or faulty", "recent", "no cue", "offline")) if rank in hidden)
        lines.append(Text(f"... {len(hidden)} more: {kinds}", style="italic"))
    if not views:
        lines.append(Text("(no desk has published yet)"))
    lines += [Text(""), Text("LAST EVENTS", style="bold")]
    lines += [_event_line(v, env, layout) for v, env in recent[:shown_events]]
    if not recent:
        lines.append(Text("(none yet)"))
    lines.append(footer)
    for line in lines:
        line.rstrip()
        if width is not None:
            _cut(line, width)
        line.no_wrap = True
    return lines if height is None else lines[:height]


def render(state: MonitorState, now: float | None = None, *, width: int | None = None,
           height: int | None = None, events: int = 10) -> str:
    """`screen` as plain text (no control characters), one line per line."""
    return "".join(line.plain + "\n"
                   for line in screen(state, now, width=width, height=height, events=events))


# -- command line ---------------------------------------------------------------------------------


def _prefix(text: str) -> str:
    """An argparse ``type``: a topic prefix as the desk's config allows it (a trailing ``/``
    dropped); a wildcard or an empty level would make the subscription itself fail."""
    prefix = text.rstrip("/")
    try:
        MqttSettings(topic_prefix=prefix)
    except ValidationError:
        raise argparse.ArgumentTypeError(
            f"{text}: must be letters, digits, _ and -, up to four levels separated by /"
        ) from None
    return prefix


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``monitor`` subcommand to the `deskcue` CLI's subparsers."""
    p = subparsers.add_parser(
        "monitor", help="live view of every desk on a broker (supervisor's terminal)"
    )
    p.add_argument("--config", type=Path, help="take broker, TLS and credentials from this config")
    p.add_argument("--host", help="broker host (default: config or localhost)")
    p.add_argument("--port", type=number_in(1, 65535, whole=True),
                   help="broker port (default: config or 1883)")
    p.add_argument("--prefix", type=_prefix, help="topic prefix (default: config or deskcue)")
    p.add_argument("--tls", action="store_true", help="connect with TLS (CA verified)")
    p.add_argument("--ca-file", type=Path, help="CA bundle for the broker's certificate")
    p.add_argument("--cert-file", type=Path, help="client certificate (PEM)")
    p.add_argument("--key-file", type=Path, help="client certificate key (PEM)")
    p.add_argument("--credentials-file", type=Path, help="file with username/password lines")
    p.add_argument("--once", action="store_true", help="collect for --seconds, print, exit")
    p.add_argument(
        "--seconds",
        type=number_in(0.0),
        help="how long to collect (--once: default 1.5) or to run (default: until Ctrl-C)",
    )
    p.add_argument("--events", type=number_in(0, whole=True), default=10,
                   help="last events shown (default 10; fewer when the terminal is short)")
    p.add_argument("--width", type=number_in(30, whole=True),
                   help="columns to lay out for, at least 30 (default: the terminal's; "
                   "unlimited when piped)")
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


SUBSCRIPTIONS = (
    ("+/+/status", 0), ("+/+/info", 0), ("+/+/state/+", 0), ("+/+/telemetry", 0),
    ("+/+/events", 1), ("+/+/cmd/+/result", 1),
)
"""What the monitor subscribes to under the prefix, with the QoS of each. Retained state at
QoS 0: on subscribing, every desk's status, info and states (seven per desk) come at once, and
a broker holds at most ``max_queued_messages`` QoS 1 messages for a subscriber beyond those in
flight (1000 in a stock mosquitto) and drops the rest: at QoS 1 the monitor of a 500-desk floor
got 1020 of 3500 (146 desks). A connection that drops loses nothing of it: the next
subscription brings the retained state again. Events and command results stay QoS 1."""


def connect(settings: Any, state: MonitorState, lock: threading.Lock,
            changed: threading.Event | None = None) -> SupervisorClient:
    """A client that folds what the desks under the prefix publish into ``state``
    (`SUBSCRIPTIONS`; setting ``changed`` when an event or a status arrives, so the screen need
    not wait for its next tick); raises `BrokerError` or `CredentialsError` when the broker
    cannot be used."""

    def on_message(topic: str, payload: bytes, _retain: bool) -> None:
        with lock:
            state.handle(topic, payload)
        if changed is not None and topic.endswith(("/events", "/status")):
            changed.set()

    client = SupervisorClient(settings, on_message=on_message)
    try:
        client.connect()
        for topic, qos in SUBSCRIPTIONS:
            client.subscribe(f"{state.prefix}/{topic}", qos=qos)
    except BaseException:
        client.close()
        raise
    return client


REFRESH_S = 1.0
"""The screen is redrawn at least this often (s): levels and call clocks move."""
MIN_REDRAW_S = 0.2
"""And at most this often (s), however fast events arrive (a replay after an outage)."""


def watch_broker(state: MonitorState, client: SupervisorClient) -> None:
    """Note in ``state`` whether the monitor's own connection to the broker is up."""
    if client.connected:
        state.broker_lost_at = None
    elif state.broker_lost_at is None:
        state.broker_lost_at = time.time()


def _run_live(args: argparse.Namespace, state: MonitorState, lock: threading.Lock,
              changed: threading.Event, client: SupervisorClient) -> None:
    """Redraw until ``--seconds`` pass or Ctrl-C: a full-screen view on a terminal (resized
    with it), else a plain snapshot per tick."""
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    console = Console(highlight=False)
    # a dumb terminal (TERM=dumb: an editor's shell, some serial consoles) cannot redraw in
    # place: rich's Live shows it nothing until it stops, so it gets a snapshot per tick
    tty = sys.stdout.isatty() and not console.is_dumb_terminal
    width = args.width or (console.width if sys.stdout.isatty() else None)
    live = Live(console=console, screen=True, auto_refresh=False, redirect_stdout=False,
                redirect_stderr=False) if tty else None
    try:
        if live is not None:
            live.start()
        while deadline is None or time.monotonic() < deadline:
            drawn = time.monotonic()
            with lock:
                watch_broker(state, client)
                if live is not None:
                    cols, rows = console.size
                    live.update(Group(*screen(state, width=args.width or cols, height=rows,
                                              events=args.events)), refresh=True)
                else:
                    sys.stdout.write(render(state, width=width, events=args.events) + "\n")
                    sys.stdout.flush()
            if live is not None:  # a person watching: show an event at once
                changed.wait(REFRESH_S)
            else:  # a log: one snapshot a tick, however busy the floor
                time.sleep(REFRESH_S)
            changed.clear()
            rest = MIN_REDRAW_S - (time.monotonic() - drawn)
            if rest > 0:
                time.sleep(rest)
    finally:
        if live is not None:
            live.stop()


def main(args: argparse.Namespace) -> int:
    """Run the monitor; one-line errors, exit code 1 when the broker cannot be used."""
    try:
        settings = _settings(args)
    except (CredentialsError, ValueError, OSError) as exc:
        print(f"deskcue: monitor: {exc}", file=sys.stderr)
        return 2
    state = MonitorState(settings.topic_prefix)
    lock = threading.Lock()
    changed = threading.Event()
    where = f"{settings.host}:{settings.port}"
    try:
        client = connect(settings, state, lock, changed)
    except (CredentialsError, OSError) as exc:  # BrokerError is an OSError
        why = str(exc)  # the link's errors name the broker already; credentials' do not
        print(f"deskcue: monitor: {why}" if where in why else
              f"deskcue: monitor: cannot use broker {where}: {why}", file=sys.stderr)
        return 1
    try:
        if args.once:
            time.sleep(1.5 if args.seconds is None else args.seconds)
            with lock:
                watch_broker(state, client)
                if sys.stdout.isatty():  # colour for a person; piped, plain text for a file
                    console = Console(highlight=False)
                    console.print(Group(*screen(state, width=args.width or console.width,
                                                events=args.events)))
                else:
                    sys.stdout.write(render(state, width=args.width, events=args.events))
            return 0
        _run_live(args, state, lock, changed, client)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()
