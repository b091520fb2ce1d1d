"""The agent's snooze is private unless the site's config says otherwise (mqtt.publish_snooze).

The whole desk on real parts: a recording played in real time, gpiozero mock pins (the snooze
button pressed on its pin), the MQTT link to a real mosquitto, and a supervisor subscribed to
everything under the desk's subtree. `deskcue status` on the desk still shows the snooze.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from broker import Broker, Subscriber
from tone import tone_wav
from waiting import wait_until

from firmware.appliance.assemble import build_appliance
from firmware.appliance.worker import Appliance
from firmware.cli.main import main as deskcue
from firmware.config.settings import Settings

BASE = "deskcue/lyon/d07"




def desk_settings(tmp: Path, broker: Broker, publish_snooze: bool | None) -> Settings:
    mqtt: dict[str, Any] = {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1,
                            "reconnect_max_s": 0.5, "telemetry_interval_s": 1.0}
    if publish_snooze is not None:  # None: the shipped default
        mqtt["publish_snooze"] = publish_snooze
    return Settings.model_validate({
        "device": {"site": "lyon", "desk": "d07", "state_dir": str(tmp / "state"),
                   "runtime_dir": str(tmp / "run")},
        "audio": {"channels": 1}, "mqtt": mqtt})


@pytest.fixture
def desk(tmp_path: Path, broker: Broker, request: pytest.FixtureRequest
         ) -> Iterator[tuple[Appliance, Any]]:
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    factory = MockFactory(pin_class=MockPWMPin)
    app = build_appliance(desk_settings(tmp_path, broker, request.param),
                          recording=tone_wav(tmp_path / "call.wav", 300.0), factory=factory)
    stop = threading.Event()
    worker = threading.Thread(target=app.run, args=(stop,), daemon=True)
    worker.start()
    try:
        yield app, factory
    finally:
        stop.set()
        worker.join(30)


def local_status(tmp: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The running appliance's status as `deskcue status --json` on the desk shows it."""
    capsys.readouterr()
    assert deskcue(["status", "--runtime-dir", str(tmp / "run"), "--state-dir",
                    str(tmp / "state"), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)["appliance"]["status"]
    return status if isinstance(status, dict) else {}


def press_snooze_button(app: Appliance, factory: Any, tmp: Path,
                        capsys: pytest.CaptureFixture[str]) -> float:
    """Press and release the desk's snooze button; once the desk's own status shows the
    snooze, the stream time (s) it had then."""
    wait_until(lambda: app.pipeline is not None and local_status(tmp, capsys).get("display")
               not in (None, "off"))
    pin = factory.pin(app.settings.indicator.button_pin)
    pin.drive_low()
    status = wait_until(lambda: (s := local_status(tmp, capsys)).get("snoozed") and s)
    pin.drive_high()  # released well before the 2 s hold that would cancel it
    assert status["display"] == "snoozed"  # the agent's own desk always shows it
    return float(status["stream_s"])


def command(sub: Subscriber, name: str, txid: str, **args: Any) -> dict[str, Any]:
    """Send ``cmd/<name>`` as a supervisor would and wait for its result."""
    sub.client.publish(f"{BASE}/cmd/{name}", json.dumps({"txid": txid, **args}), qos=1)
    got = wait_until(lambda: [m.json() for m in sub.on(f"cmd/{name}/result")
                              if m.json()["txid"] == txid])
    return got[0]


def telemetry_after(sub: Subscriber, stream_s: float, n: int = 2) -> list[dict[str, Any]]:
    """The first ``n`` telemetry messages built after stream time ``stream_s`` (s)."""
    def later() -> list[dict[str, Any]]:
        return [m.json() for m in sub.on("telemetry") if m.json()["stream_s"] > stream_s]
    return wait_until(lambda: len(later()) >= n and later())[:n]


@pytest.mark.parametrize("desk", [None], indirect=True)
def test_by_default_the_agents_snooze_never_reaches_a_supervisor(
        tmp_path: Path, broker: Broker, desk: tuple[Appliance, Any],
        capsys: pytest.CaptureFixture[str]) -> None:
    app, factory = desk
    with Subscriber(broker, f"{BASE}/#") as sub:
        wait_until(lambda: sub.on("telemetry"))
        at = press_snooze_button(app, factory, tmp_path, capsys)

        # events arrive in order: once an event emitted after the snooze is here, a
        # snooze event emitted before it would have been here first
        assert command(sub, "recalibrate", "fence")["ok"]
        wait_until(lambda: any(e["type"] == "recalibrate" for e in sub.events()))
        assert [e for e in sub.events() if e["type"] == "snooze"] == []

        for t in telemetry_after(sub, at):
            assert "snoozed" not in t and t["display"] != "snoozed", t
        status = command(sub, "status", "s1")["data"]
        assert "snoozed" not in status and status["display"] != "snoozed", status
        assert "snooze_left_s" not in status, status
        assert not any(b"snooze" in m.payload for m in sub.messages
                       if not m.topic.endswith("/result"))

        # the desk still uses it, and still shows the agent
        assert app.pipeline is not None and app.pipeline.policy.snoozed
        assert local_status(tmp_path, capsys)["snoozed"] is True

        # a snooze the supervisor sends is the supervisor's act, published as such
        assert command(sub, "snooze", "sup1", minutes=5)["ok"]
        got = wait_until(lambda: [e for e in sub.events() if e["type"] == "snooze"])
        assert [e["data"]["source"] for e in got] == ["mqtt"]


@pytest.mark.parametrize("desk", [True], indirect=True)
def test_with_publish_snooze_on_the_supervisor_sees_the_snooze(
        tmp_path: Path, broker: Broker, desk: tuple[Appliance, Any],
        capsys: pytest.CaptureFixture[str]) -> None:
    app, factory = desk
    with Subscriber(broker, f"{BASE}/#") as sub:
        wait_until(lambda: sub.on("telemetry"))
        at = press_snooze_button(app, factory, tmp_path, capsys)
        got = wait_until(lambda: [e for e in sub.events() if e["type"] == "snooze"])
        assert got[0]["data"]["source"] == "button" and got[0]["data"]["minutes"] == 15.0
        for t in telemetry_after(sub, at):
            assert t["snoozed"] is True and t["display"] == "snoozed", t
        status = command(sub, "status", "s1")["data"]
        assert status["snoozed"] is True and status["display"] == "snoozed", status


def test_with_publish_laughter_off_no_supervisor_learns_of_a_laughter_cue(
        tmp_path: Path, broker: Broker) -> None:
    """`mqtt.publish_laughter = false` kept the `laughter_burst` event and `state/laughter`
    home, but telemetry and the `cmd/status` result still counted the cue (`cues.laughter`)
    and showed the light's `display = "laughter"`, and `call.ended` counted it among the
    call's cues: a supervisor learned of every laughter-like cue all the same. The desk itself
    still shows and counts it."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from firmware.demo.recording import demo_recording

    wav, _ = demo_recording(tmp_path, laugh=True)
    data = desk_settings(tmp_path, broker, None).model_dump(mode="json")
    data["audio"]["channels"] = 2
    data["mqtt"]["publish_laughter"] = False
    settings = Settings.model_validate(data)
    app = build_appliance(settings, recording=wav, fast=True,
                          factory=MockFactory(pin_class=MockPWMPin))
    seen: list[tuple[Any, Any]] = []  # (the desk's own status, a supervisor's) at the flash
    assert app.indicator is not None
    show = app.indicator.show

    def watched(want: str, **kw: Any) -> None:
        if want == "laughter":  # on the worker's thread, as it changes the light
            seen.append((app.status(), app.status(supervisor=True)))
        show(want, **kw)

    app.indicator.show = watched  # type: ignore[method-assign]
    with Subscriber(broker, f"{BASE}/#") as sub:
        assert app.run(threading.Event()) == 0
        wait_until(lambda: any(m.payload == b"offline" for m in sub.on("status")))
        assert seen, "the recording's laughter-like burst made no cue: nothing was tested"
        mine, theirs = seen[0]
        assert mine.display == "laughter" and mine.cues.get("laughter") == 1
        assert theirs.display != "laughter" and "laughter" not in theirs.cues, theirs
        events = sub.events()
        (ended,) = [e for e in events if e["type"] == "call.ended"]
        assert "laughter" not in ended["data"]["cues"], ended
        assert not [e for e in events if "laugh" in e["type"]]
        assert not sub.on("state/laughter")
        for m in sub.on("telemetry"):
            t = m.json()
            assert "laughter" not in t["cues"] and t["display"] != "laughter", t
    assert app.status().cues.get("laughter") == 1  # the desk keeps its own count


@pytest.mark.parametrize("desk", [None], indirect=True)
def test_by_default_the_agents_snooze_leaves_no_line_in_the_journal(
        tmp_path: Path, broker: Broker, desk: tuple[Appliance, Any],
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """The service's log lines go to the journal, which keeps weeks of them and which sites
    often ship to a central log server; it said ``LED -> snoozed (steady dim blue)`` at every
    snooze and ``LED -> ready`` when it ended: a dated record of each snooze that no supervisor
    may otherwise learn of, kept longer than anything the desk itself keeps."""
    app, factory = desk
    caplog.set_level(logging.DEBUG)
    press_snooze_button(app, factory, tmp_path, capsys)
    indicator = app.indicator
    assert indicator is not None
    wait_until(lambda: indicator.current == "snoozed")  # the light worker has shown it
    capsys.readouterr()
    assert deskcue(["snooze", "--runtime-dir", str(tmp_path / "run"), "--cancel"]) == 0
    wait_until(lambda: indicator.current != "snoozed")
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert not [m for m in said if "snooze" in m.lower()], said
    # nor for its end: the light going back to what it showed before is no news either
    led = [m for m in said if m.startswith("LED -> ")]
    assert all(a != b for a, b in zip(led, led[1:], strict=False)), led
