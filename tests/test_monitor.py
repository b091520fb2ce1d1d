"""`deskcue monitor`: the pure state and rendering, then live against a link and mosquitto."""

from __future__ import annotations

import argparse
import json
import threading
import time
import types
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from broker import Broker, make_events, settings_for
from paho.mqtt.enums import CallbackAPIVersion
from waiting import HANG_S, wait_until

from firmware.cli import monitor
from firmware.cli.monitor import register, render
from firmware.contract.desk import OutboxDepth, Telemetry
from firmware.contract.events import CallStarted, Fault, RaisedVoiceStarted, TenseVoiceStarted
from firmware.contract.examples import EVENT_EXAMPLES, EXAMPLES
from firmware.contract.states import STATE_NAMES
from firmware.link.envelope import EventStamper
from firmware.link.floor_view import MonitorState
from firmware.link.mqtt_client import MqttLink

NOW = 1_767_225_600.0


def feed(state: MonitorState, topic: str, payload: object) -> bool:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return state.handle(topic, raw, now=NOW)


def test_state_and_render() -> None:
    s = MonitorState("deskcue")
    st = EventStamper(boot_id="a" * 32, wall_clock=lambda: NOW - 30)
    feed(s, "deskcue/site1/desk1/status", b"online")
    feed(s, "deskcue/site1/desk2/status", b"offline")
    feed(s, "deskcue/site1/desk1/info", EXAMPLES["info"].to_json())
    telemetry = EXAMPLES["telemetry"].model_copy(
        update={"level_lufs": {"agent": -21.04, "caller": -30.5},
                "outbox": OutboxDepth(depth=3, dropped=0)})
    assert feed(s, "deskcue/site1/desk1/telemetry", telemetry.to_json())
    call = st.stamp("call.started", CallStarted(call=1, start_s=0.5), stream_s=1.0).to_json()
    cue = st.stamp(
        "raised_voice.started",
        RaisedVoiceStarted(onset_s=1.0, at_s=2.0, duration_s=1.0, db_above_usual=9.14,
                           loudness_lufs=-18.0, cue="raised_voice", usual_lufs=-27.0,
                           summary="+9.1 dB above your usual for 1.0 s"),
        stream_s=2.0,
    ).to_json()
    st.seq += 1  # seq 3 never arrives
    late = st.stamp("laughter_burst", EVENT_EXAMPLES["laughter_burst"], stream_s=3.0).to_json()
    fault = st.stamp("fault", Fault(kind="audio", fault="audio: nothing from tap for 3 s",
                                    active=True), stream_s=3.5).to_json()
    for env in (call, cue, cue, {**late, "replayed": True}, fault):
        assert feed(s, "deskcue/site1/desk1/events", env)
    assert not feed(s, "other/site1/desk1/events", late)
    assert not feed(s, "deskcue/site1/desk1/events", b"{not json")
    d1 = s.desks[("site1", "desk1")]
    assert d1.duplicates == 1 and d1.missing == 1 and d1.replayed == 1
    assert d1.off_contract == 1
    assert list(d1.active_cues) == ["raised_voice"] and d1.in_call_since == NOW - 30

    screen = render(s, now=NOW)
    row1 = next(line for line in screen.splitlines() if line.startswith("site1/desk1 "))
    row2 = next(line for line in screen.splitlines() if line.startswith("site1/desk2 "))
    for text in (
        "online",
        "-21.0",
        "-30.5",
        "raised_voice +9.1dB",
        "in call 0:30",
        "   3 ",
        "missing 1",
        "replayed 1",
        "dup 1",
        "off-contract 1",
        "fault: audio: nothing from tap for 3 s",
    ):
        assert text in row1, text
    assert "offline" in row2
    assert "+9.1 dB above your usual for 1.0 s" in screen
    # under 130 columns: short words, none of them the word the state column uses for offline
    from firmware.cli.monitor import NARROW, _notes

    notes = _notes(d1, NARROW)
    assert "miss 1" in notes and "bad 1" in notes and "off" not in notes, notes
    assert "laughter_burst" in screen and "(replayed)" in screen

    end_cue = st.stamp("raised_voice.ended", EVENT_EXAMPLES["raised_voice.ended"],
                       stream_s=5.0).to_json()
    end_call = st.stamp("call.ended", EVENT_EXAMPLES["call.ended"].model_copy(
        update={"duration_s": 95.0}), stream_s=99.0).to_json()
    cleared = st.stamp("fault", Fault(kind="audio", fault="audio: nothing from tap for 3 s",
                                      active=False), stream_s=99.5).to_json()
    for env in (end_cue, end_call, cleared):
        assert feed(s, "deskcue/site1/desk1/events", env)
    row1 = next(line for line in render(s, now=NOW).splitlines() if line.startswith("site1/desk1"))
    assert "idle (1 calls, last 1:35)" in row1 and "raised_voice" not in row1
    assert "fault" not in row1


def test_monitor_shows_the_tense_voice_in_semitones() -> None:
    """The policy sends st_above_usual; the monitor once looked for semitones_above_usual and
    showed the tense cue's loudness instead."""
    s = MonitorState()
    st = EventStamper(boot_id="a" * 32, wall_clock=lambda: NOW)
    tense = EVENT_EXAMPLES["tense_voice.started"]
    assert isinstance(tense, TenseVoiceStarted) and tense.st_above_usual == 4.2
    assert feed(s, "deskcue/s/d/events", st.stamp("tense_voice.started", tense,
                                                   stream_s=40.6).to_json())
    row = next(line for line in render(s, now=NOW).splitlines() if line.startswith("s/d "))
    assert "tense_voice +4.2st" in row


def test_monitor_reads_only_telemetry_the_contract_has() -> None:
    """The monitor once read telemetry keys fault and snoozed that the desk never sent: a
    telemetry message with fault is off the contract, and faults come from fault events;
    snoozed is sent only where mqtt.publish_snooze is on."""
    assert "fault" not in Telemetry.model_fields
    assert not Telemetry.model_fields["snoozed"].is_required()
    s = MonitorState()
    good = EXAMPLES["telemetry"].to_json()
    assert feed(s, "deskcue/s/d/telemetry", good)
    assert not feed(s, "deskcue/s/d/telemetry", {**good, "snoozed": True, "fault": "x"})
    view = s.desks[("s", "d")]
    assert view.telemetry == EXAMPLES["telemetry"] and view.off_contract == 1
    row = next(line for line in render(s, now=NOW).splitlines() if line.startswith("s/d "))
    assert "snoozed" not in row and "fault" not in row


def test_render_with_nothing() -> None:
    assert "(no desk has published yet)" in render(MonitorState(), now=NOW)


def parse_monitor_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="command"))
    return p.parse_args(["monitor", *argv])


def test_monitor_once_against_a_live_desk(
    broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    link = MqttLink(settings_for(broker), site="site1", desk="desk7", state_dir=tmp_path)
    link.start()
    wait_until(lambda: link.connected)
    for e in make_events(2):
        link.publish_event(e)
    assert link.flush(HANG_S)
    # `--once` collects for a fixed --seconds; how long the retained messages take to arrive
    # depends on the machine, so here the collection ends once the desk's status was seen.
    seen = threading.Event()

    class Watched(monitor.MonitorState):
        def handle(self, topic: str, payload: bytes, now: float | None = None) -> bool:
            changed = super().handle(topic, payload, now=now)
            if topic == "deskcue/site1/desk7/status":
                seen.set()
            return changed

    monkeypatch.setattr(monitor, "MonitorState", Watched)
    clock = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if n[0] != "_"})
    clock.sleep = lambda _s: seen.wait(HANG_S)
    monkeypatch.setattr(monitor, "time", clock)
    args = parse_monitor_args(
        ["--host", broker.host, "--port", str(broker.port), "--once", "--seconds", "0.3"]
    )
    assert args.func(args) == 0
    assert seen.is_set()
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("site1/desk7"))
    assert "online" in row  # retained status, seen by a monitor started later
    assert "\x1b" not in out  # piped: a plain snapshot, no control characters
    link.stop()


def test_monitor_piped_prints_plain_snapshots(
    broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not on a terminal (a pipe, a log), the live mode writes a plain snapshot each tick:
    every desk, no control characters, nothing cut to a width."""
    name = "a-rather-long-desk-name-07"
    link = MqttLink(settings_for(broker), site="site1", desk=name, state_dir=tmp_path)
    link.start()
    wait_until(lambda: link.connected)
    seen = threading.Event()
    ticks = []

    class Watched(monitor.MonitorState):
        def handle(self, topic: str, payload: bytes, now: float | None = None) -> bool:
            changed = super().handle(topic, payload, now=now)
            if topic == f"deskcue/site1/{name}/status":
                seen.set()
            return changed

    def tick(seconds: float) -> None:
        # the first tick lasts until the desk's retained status is in; the second is Ctrl-C
        if seconds == monitor.REFRESH_S:
            ticks.append(seconds)
            if len(ticks) == 2:
                raise KeyboardInterrupt
            seen.wait(HANG_S)

    monkeypatch.setattr(monitor, "MonitorState", Watched)
    clock = types.SimpleNamespace(**{n: getattr(time, n) for n in dir(time) if n[0] != "_"})
    clock.sleep = tick
    monkeypatch.setattr(monitor, "time", clock)
    try:
        args = parse_monitor_args(["--host", broker.host, "--port", str(broker.port)])
        assert args.func(args) == 0
    finally:
        link.stop()
    out = capsys.readouterr().out
    assert out.count("deskcue monitor") == 2 and "\x1b" not in out
    row = next(line for line in out.splitlines() if line.startswith(f"site1/{name} "))
    assert "online" in row


def test_monitor_says_clearly_when_the_broker_is_down(capsys: pytest.CaptureFixture[str]) -> None:
    from broker import dead_port

    with dead_port() as port:
        args = parse_monitor_args(["--port", str(port), "--once", "--seconds", "0"])
        assert args.func(args) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"deskcue: monitor: cannot connect to localhost:{port}: ")
    assert err[-1] == "\n" and err.count(f":{port}") == 1, err  # the broker named once
    assert err.count("\n") == 1


def floor(n_calm: int = 24, n_offline: int = 5) -> MonitorState:
    """A floor of desks: one raising its voice, one with a fault, one that just had an event,
    calm ones and offline ones (names chosen so that urgency, not the name, orders them)."""
    s = MonitorState()
    st = EventStamper(boot_id="c" * 32, wall_clock=lambda: NOW - 5)
    for i in range(n_calm):
        feed(s, f"deskcue/f/calm{i:02d}/status", b"online")
    for i in range(n_offline):
        feed(s, f"deskcue/f/a-off{i}/status", b"offline")
    for desk in ("zz-raised", "zz-fault", "zz-recent"):
        feed(s, f"deskcue/f/{desk}/status", b"online")
        assert feed(s, f"deskcue/f/{desk}/telemetry", EXAMPLES["telemetry"].model_copy(
            update={"level_lufs": {"agent": -14.3, "caller": -30.5}}).to_json())
    assert feed(s, "deskcue/f/zz-raised/events", st.stamp(
        "raised_voice.started", EVENT_EXAMPLES["raised_voice.started"], stream_s=2.0).to_json())
    assert feed(s, "deskcue/f/zz-fault/events", st.stamp(
        "fault", Fault(kind="audio", fault="audio: nothing from hw:1 for 3 s", active=True),
        stream_s=3.0).to_json())
    assert feed(s, "deskcue/f/zz-recent/events", st.stamp(
        "laughter_burst", EVENT_EXAMPLES["laughter_burst"], stream_s=4.0).to_json())
    return s


def rows(screen: str) -> list[str]:
    return [line for line in screen.splitlines() if line.startswith("f/")]


@pytest.mark.parametrize(("width", "height"), [(80, 24), (64, 24), (50, 16), (100, 30)])
def test_a_floor_fits_the_terminal_most_urgent_desks_first(width: int, height: int) -> None:
    screen = render(floor(), now=NOW, width=width, height=height)
    lines = screen.splitlines()
    assert len(lines) <= height
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    assert "deskcue" in lines[0] and lines[1].startswith("DESK")
    assert "short-term" in lines[-1]  # the footer saying what levels are, in view
    names = [row.split()[0] for row in rows(screen)]
    # cue and fault first, then the desk with a recent event, then calm, offline last
    assert names[:3] == ["f/zz-fault", "f/zz-raised", "f/zz-recent"]
    assert names[3].startswith("f/calm")
    assert not any(n.startswith("f/a-off") for n in names)  # 32 desks do not fit
    more = next(line for line in lines if line.startswith("... "))
    assert more == f"... {32 - len(names)} more: {27 - len(names)} no cue, 5 offline"
    raised = rows(screen)[1]
    assert "-14.3" in raised and "raised +11.2dB" in raised
    assert "LAST EVENTS" in screen and "laugh" in screen


def test_all_desks_and_events_when_the_screen_has_room() -> None:
    s = floor(n_calm=3, n_offline=2)
    st = EventStamper(boot_id="d" * 32, wall_clock=lambda: NOW)
    # a call starting is routine: it does not lift a desk above the calm ones
    assert feed(s, "deskcue/f/calm02/events", st.stamp(
        "call.started", CallStarted(call=1, start_s=0.5), stream_s=1.0).to_json())
    screen = render(s, now=NOW, width=80, height=40)
    assert not any(line.startswith("... ") for line in screen.splitlines())
    names = [row.split()[0] for row in rows(screen)]
    assert names[:6] == ["f/zz-fault", "f/zz-raised", "f/zz-recent", "f/calm00", "f/calm01",
                         "f/calm02"]
    assert names[-2:] == ["f/a-off0", "f/a-off1"]  # offline last, whatever the name
    assert "raised.started" in screen and "fault" in screen


def styled(state: MonitorState, now: float, width: int = 80) -> str:
    """The screen as a 256-colour terminal receives it."""
    from io import StringIO

    from rich.console import Console, Group

    out = StringIO()
    Console(file=out, force_terminal=True, color_system="256", width=width).print(
        Group(*monitor.screen(state, now, width=width)))
    return out.getvalue()


def test_cues_in_the_desk_lights_colours_offline_grey_and_old_levels_dim() -> None:
    s = floor(n_calm=1, n_offline=1)
    out = styled(s, NOW)
    raised = next(line for line in out.splitlines() if "zz-raised" in line)
    assert "\x1b[1;38;5;208mraised +11.2dB" in raised  # bold amber, as the desk's light
    assert "\x1b[1m-14.3" in raised  # a level from a second ago: bold, live
    fault = next(line for line in out.splitlines() if "zz-fault" in line)
    assert "\x1b[1;37;41mfault audio" in fault  # white on red
    offline = next(line for line in out.splitlines() if "a-off0" in line)
    assert offline.startswith("\x1b[38;5;244mf/a-off0")  # grey50, over the whole row
    later = styled(s, NOW + monitor.LIVE_S + 1)
    assert "\x1b[2m -14*" in later and "-14.3" not in later  # older than LIVE_S: dim, marked
    gone = render(s, now=NOW + monitor.STALE_S + 1, width=80)
    assert "-14.3" not in gone  # as old as telemetry's expiry: not shown at all
    assert "\x1b" not in render(s, now=NOW, width=80)  # plain text has no control characters


@pytest.mark.parametrize("width", [None, 130, 80, 50])
def test_an_old_level_says_so_in_text_not_only_in_dim(width: int | None) -> None:
    """An old level was told apart from a live one only by being dim: piped to a log, on a
    dumb terminal or in a colour scheme without dim, a level 25 s old read as the level now,
    under a footer speaking of dim text that was not there."""
    s = floor(n_calm=1, n_offline=1)
    live = render(s, now=NOW, width=width)
    old = render(s, now=NOW + monitor.LIVE_S + 1, width=width)
    row = lambda screen: next(ln for ln in screen.splitlines() if "zz-raised" in ln)  # noqa: E731
    assert "-14.3" in row(live).split() and "*" not in row(live)
    assert "-14*" in row(old).split() and "-14.3" not in row(old)
    footer = old.splitlines()[-1]
    assert "*: " in footer and "dim" not in footer, footer


def test_a_40_column_terminal_keeps_the_footer_that_says_what_star_means() -> None:
    """Under 46 columns the footer was cut before its "*: >3 s old", the only place that
    says what the mark on an old level means."""
    s = floor(n_calm=1, n_offline=1)
    for width in (40, 50, 63):
        lines = render(s, now=NOW + monitor.LIVE_S + 1, width=width, height=20).splitlines()
        assert "-14*" in next(ln for ln in lines if "zz-raised" in ln)
        assert lines[-1].endswith("*: >3 s old") and "LUFS" in lines[-1], lines[-1]


def test_the_shipped_telemetry_rate_keeps_the_monitors_levels_live() -> None:
    """A level reaches the screen within the telemetry interval plus one redraw; at the
    shipped rate that is inside LIVE_S, so a desk's level is never shown dim (old) while it
    is connected. At the former 10 s a +11 dB cue could show the usual level."""
    from firmware.config.mqtt import MqttSettings

    assert MqttSettings().telemetry_interval_s + monitor.REFRESH_S < monitor.LIVE_S


def test_monitor_started_mid_call_and_mid_cue_shows_them_and_a_restarted_desk_clears_them(
    broker: Broker, tmp_path: Path,
) -> None:
    """The monitor read cues and calls only from events: started during a call with a raised
    voice, it showed the desk "idle" and "-"; and a desk that crashed mid-cue (its
    ``raised_voice.ended`` never sent) stayed "raised_voice" on the screen for good, though
    the desk said ``state/raised_voice OFF`` as soon as it was back."""
    desk = MqttLink(settings_for(broker), site="site1", desk="desk8", state_dir=tmp_path / "a",
                    states=STATE_NAMES)
    desk.set_state("call", True)
    desk.set_state("raised_voice", True)
    desk.start()
    wait_until(lambda: desk.connected)
    assert desk.flush(HANG_S)
    state, lock = MonitorState(), threading.Lock()
    client = monitor.connect(settings_for(broker), state, lock)

    def row() -> str:
        with lock:
            return next((line for line in render(state).splitlines()
                         if line.startswith("site1/desk8")), "")

    try:
        wait_until(lambda: "raised_voice" in row() and "in call" in row())
        (started,) = make_events(1)
        desk.publish_event(started)
        assert desk.flush(HANG_S)
        wait_until(lambda: "raised_voice +9.0dB" in row())
        desk.stop(drain_s=0)  # a crash mid-cue: the cue's end is never sent
        again = MqttLink(settings_for(broker), site="site1", desk="desk8",
                         state_dir=tmp_path / "b", states=STATE_NAMES)
        again.start()  # back with no cue and no call: every state OFF at connect
        wait_until(lambda: again.connected and "online" in row())
        wait_until(lambda: "raised_voice" not in row() and " idle " in row())
        again.stop()
    finally:
        client.close()


def test_junk_under_the_prefix_lists_no_phantom_desks(broker: Broker) -> None:
    """Each off-contract message under a new site/desk made a desk of its own: 3,000 junk
    topics put "3001 desk(s)" and 3,000 rows of "?" on the supervisor's screen, one view
    each kept in memory for as long as the monitor ran."""
    state, lock = MonitorState(), threading.Lock()
    client = monitor.connect(settings_for(broker), state, lock)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        for i in range(300):  # one publisher at QoS 1: delivered in this order
            pub.publish(f"deskcue/junk{i}/x/events", b"garbage", qos=1)
            pub.publish(f"deskcue/junk{i}/x/state/call", b"maybe", qos=1)
        pub.publish("deskcue/site1/desk1/status", b"online", qos=1).wait_for_publish(HANG_S)
        pub.publish("deskcue/site1/desk1/events", b"garbage", qos=1).wait_for_publish(HANG_S)

        def seen() -> bool:
            with lock:
                view = state.desks.get(("site1", "desk1"))
                return view is not None and view.off_contract == 1

        wait_until(seen)
        with lock:
            assert list(state.desks) == [("site1", "desk1")]
            assert state.stray == 600
            out = render(state)
        assert "1 desk(s)" in out and "600 off-contract from no known desk" in out
        assert "junk" not in out
    finally:
        pub.disconnect()
        pub.loop_stop()
        client.close()


def test_the_monitor_says_when_it_has_lost_the_broker(broker: Broker) -> None:
    """With its broker gone the monitor went on redrawing the last view with a ticking clock
    and every desk still "online": nothing told the supervisor the screen had stopped."""
    state, lock = MonitorState(), threading.Lock()
    client = monitor.connect(settings_for(broker), state, lock)

    def title() -> str:
        with lock:
            monitor.watch_broker(state, client)
            return render(state).splitlines()[0]

    try:
        assert "BROKER LOST" not in title()
        broker.stop()
        wait_until(lambda: "BROKER LOST" in title())
        broker.start()
        wait_until(lambda: "BROKER LOST" not in title())
    finally:
        client.close()


def test_a_floor_on_a_stock_broker_is_all_on_the_monitor(tmp_path: Path) -> None:
    """A stock mosquitto holds at most 1000 QoS 1 messages for a subscriber beyond the 20 in
    flight (``max_queued_messages``) and drops the rest; a floor's retained state (status,
    info and five states per desk) all comes at once on subscribing. At QoS 1 the monitor got
    1020 of 1400 retained messages of 200 desks: the rest never appeared, offline ones
    (which send no telemetry) not at all."""
    desks = 200
    b = Broker(tmp_path / "broker", max_queued_messages=1000).start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        pub.connect(b.host, b.port)
        pub.loop_start()
        info = EXAMPLES["info"].to_json()
        last = None
        for i in range(desks):
            base = f"deskcue/floor/d{i:03d}"
            pub.publish(f"{base}/info", json.dumps({**info, "boot_id": f"{i:032x}"}), qos=1,
                        retain=True)
            for name in STATE_NAMES:
                pub.publish(f"{base}/state/{name}", "OFF", qos=1, retain=True)
            last = pub.publish(f"{base}/status", "offline", qos=1, retain=True)
        assert last is not None
        last.wait_for_publish(HANG_S)
        state, lock = MonitorState(), threading.Lock()
        client = monitor.connect(settings_for(b), state, lock)
        try:
            def known() -> int:
                with lock:
                    return sum(v.status == "offline" and v.info is not None
                               for v in state.desks.values())

            wait_until(lambda: known() == desks)
        finally:
            client.close()
    finally:
        pub.disconnect()
        pub.loop_stop()
        b.stop()


def test_a_monitor_running_for_days_keeps_bounded_memory_per_desk() -> None:
    """A monitor left running for weeks sees hundreds of thousands of events per desk: what
    it keeps for a desk (measured as its pickled size) must not grow with each of them (it
    held every sequence number seen), and the count of missing ones must stay right: one in
    a hundred never arrives."""
    import pickle
    import uuid

    s = MonitorState("deskcue")
    st = EventStamper(boot_id="a" * 32, wall_clock=lambda: NOW)
    template = st.stamp("call.started", CallStarted(call=1, start_s=0.5), stream_s=1.0).to_json()

    def feed_range(first: int, last: int) -> None:
        for seq in range(first, last):
            if seq % 100 == 0:
                continue  # lost on the way
            env = {**template, "id": uuid.UUID(int=seq).hex, "seq": seq}
            assert s.handle("deskcue/site1/desk1/events", json.dumps(env).encode(), now=NOW)

    feed_range(1, 10_000)
    view = s.desks[("site1", "desk1")]
    assert view.missing == 99
    kept = len(pickle.dumps(view))
    feed_range(10_000, 60_000)
    grown = len(pickle.dumps(view)) - kept
    assert grown < 10_000, f"the desk's view grew {grown} bytes over 50,000 more events"
    assert view.missing == 599
    # a late replay still fills a recent gap; a repeat changes nothing
    late = {**template, "id": uuid.uuid4().hex, "seq": 59_900, "replayed": True}
    assert s.handle("deskcue/site1/desk1/events", json.dumps(late).encode(), now=NOW)
    assert s.handle("deskcue/site1/desk1/events", json.dumps(late).encode(), now=NOW)
    assert view.missing == 598 and view.duplicates == 1
    # a desk restarted many times: each boot's gaps still counted
    for boot in range(20):
        other = EventStamper(boot_id=f"{boot:032x}", wall_clock=lambda: NOW)
        other.seq += 1  # its first event never arrives
        env = other.stamp("call.started", CallStarted(call=1, start_s=0.5), stream_s=1.0)
        assert s.handle("deskcue/site1/desk1/events", json.dumps(env.to_json()).encode(),
                        now=NOW)
    assert view.missing == 618
    assert len(pickle.dumps(view)) - kept < 20_000


def test_a_call_on_a_desk_whose_clock_is_not_synced_shows_how_long_it_has_run() -> None:
    """A Pi has no real-time clock: until NTP answers its events carry a wrong ``ts`` (days or
    years behind, ``clock_synced`` false). The call clock must not read that as a call that
    started years ago; the desk's stream time says how long the call has run."""
    s = MonitorState("deskcue")
    st = EventStamper(boot_id="e" * 32, wall_clock=lambda: 1_600_000_000.0,
                      synced=lambda: False)
    env = st.stamp("call.started", CallStarted(call=1, start_s=100.0), stream_s=101.5)
    assert s.handle("deskcue/site1/desk1/events", json.dumps(env.to_json()).encode(), now=NOW)
    row = next(line for line in render(s, now=NOW + 60).splitlines()
               if line.startswith("site1/desk1 "))
    assert "in call 1:01" in row, row


def test_a_desk_whose_retained_status_is_cleared_leaves_the_view() -> None:
    """Desks come and go over the weeks a monitor runs. A desk taken off the floor has its
    retained topics cleared (an empty retained message); a monitor started afterwards never
    lists it, so one that was running must forget it too, events and all."""
    s = MonitorState("deskcue")
    st = EventStamper(boot_id="a" * 32, wall_clock=lambda: NOW)
    for desk in ("desk1", "desk2"):
        feed(s, f"deskcue/site1/{desk}/status", b"online")
        env = st.stamp("call.started", CallStarted(call=1, start_s=0.5), stream_s=1.0)
        assert feed(s, f"deskcue/site1/{desk}/events", env.to_json())
    feed(s, "deskcue/site1/desk2/status", b"offline")
    assert feed(s, "deskcue/site1/desk2/status", b"")
    assert list(s.desks) == [("site1", "desk1")]
    assert "desk2" not in render(s, now=NOW)
    assert s.desks[("site1", "desk1")].off_contract == 0 and s.stray == 0


def test_a_long_watch_holds_no_memory_per_event() -> None:
    """A monitor left open on a floor: every event's sequence number was kept in a set per
    desk and boot (to count the missing ones), and scanned at every redraw, so memory and
    redraw CPU grew with the events seen: ~5 MB and growing per 100 000 events on a 500-desk
    floor that sends that many in a day. Only the gaps need keeping."""
    import tracemalloc

    from firmware.contract.events import EventEnvelope

    s = MonitorState()
    s.max_ids = 1000  # the id memory (duplicates) is bounded on its own; keep it small here
    envs = [EventEnvelope.model_validate(e) for e in make_events(2)]
    view = s.desk("site1", "desk1")

    def feed_seqs(first: int, last: int, skip: int | None = None) -> None:
        for seq in range(first, last + 1):
            if seq != skip:
                env = envs[seq % 2].model_copy(update={"seq": seq, "id": f"{seq:032x}"})
                s._event(view, env, NOW)

    feed_seqs(1, 5_000)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        feed_seqs(5_001, 60_000, skip=59_000)  # one lost on the way
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert view.missing == 1
    # bounded by `SEQ_WINDOW` (numbers seen above an open gap), not by the events: a set of
    # every number seen held ~2.7 MB here
    assert grown < 512 * 1024, f"{grown / 1e6:.1f} MB more after 55 000 events"
    feed_seqs(59_000, 59_000)  # a replay fills the (recent: `SEQ_WINDOW`) gap
    assert view.missing == 0


def test_after_an_upgrade_the_desks_on_another_build_say_which() -> None:
    """A supervisor checking an upgrade needs the desks that did not take it: with more than
    one build on the floor the title counts the builds and each desk off the most common
    one names its build in NOTES; one build everywhere adds nothing."""
    info = EXAMPLES["info"].to_json()
    state = MonitorState()
    for desk, build in (("d1", "0.1.1.dev680+g1a2b3c4d5"), ("d2", "0.1.1.dev680+g1a2b3c4d5"),
                        ("d3", "0.1.0")):
        feed(state, f"deskcue/floor/{desk}/status", b"online")
        feed(state, f"deskcue/floor/{desk}/info", {**info, "firmware": build})
    text = render(state, width=140)
    assert "2 builds" in text.splitlines()[0]
    (d3,) = [line for line in text.splitlines() if line.startswith("floor/d3")]
    assert "build 0.1.0" in d3
    assert not [line for line in text.splitlines()
                if line.startswith(("floor/d1", "floor/d2")) and "build" in line]
    feed(state, "deskcue/floor/d3/info", {**info, "firmware": "0.1.1.dev680+g1a2b3c4d5"})
    assert "build" not in render(state, width=140)


def test_a_desk_that_lost_audio_says_how_much() -> None:
    """A starved desk drops audio and builds no cue across it; the supervisor's screen is
    where a tech hears of it, not only the desk's journal."""
    state = MonitorState()
    feed(state, "deskcue/floor/d1/status", b"online")
    feed(state, "deskcue/floor/d1/telemetry", EXAMPLES["telemetry"].to_json())
    assert "lost" not in render(state, width=140)
    feed(state, "deskcue/floor/d1/telemetry",
         EXAMPLES["telemetry"].model_copy(update={"lost_audio_s": 2.7}).to_json())
    (row,) = [line for line in render(state, width=140).splitlines()
              if line.startswith("floor/d1")]
    assert "audio lost 2.7 s" in row
