"""`deskcue monitor`: the pure state and rendering, then live against a link and mosquitto."""

from __future__ import annotations

import argparse
import json
import threading
import time
import types
from pathlib import Path

import pytest
from broker import HANG_S, Broker, make_events, settings_for, wait_until

from firmware.cli import monitor
from firmware.cli.monitor import MonitorState, register, render
from firmware.contract.desk import OutboxDepth, Telemetry
from firmware.contract.events import CallStarted, Fault, RaisedVoiceStarted, TenseVoiceStarted
from firmware.contract.examples import EVENT_EXAMPLES, EXAMPLES
from firmware.link.envelope import EventStamper
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
    link.stop()


def test_monitor_says_clearly_when_the_broker_is_down(capsys: pytest.CaptureFixture[str]) -> None:
    from broker import dead_port

    with dead_port() as port:
        args = parse_monitor_args(["--port", str(port), "--once", "--seconds", "0"])
        assert args.func(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("deskcue monitor: cannot use broker") and err[-1] == "\n"
    assert err.count("\n") == 1
