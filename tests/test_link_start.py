"""A link that cannot start (a credentials or TLS file missing) is retried with backoff and is
a fault until it works: the red blink, the status line and `deskcue status`, and a ``fault``
event the supervisor receives once the link can publish. Real mosquitto, mock pins, a WAV."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from broker import Broker, Pki, Subscriber, settings_for
from tone import tone_wav
from waiting import wait_until

from firmware.appliance.assemble import build_appliance
from firmware.appliance.worker import Appliance
from firmware.cli.main import main as deskcue
from firmware.config.mqtt import TlsSettings
from firmware.config.settings import Settings
from firmware.link.mqtt_client import MqttLink

BASE = "deskcue/lyon/d07"
RECONNECT_MAX_S = 0.5
# The link retries every reconnect_max_s at the latest, checked on its 0.5 s tick; a connect
# to loopback then takes milliseconds. Bounds below allow several such rounds.
RETRY_BOUND_S = 10 * (RECONNECT_MAX_S + 0.5)




@pytest.fixture
def running(tmp_path: Path) -> Iterator[list[tuple[Appliance, threading.Event, threading.Thread]]]:
    apps: list[tuple[Appliance, threading.Event, threading.Thread]] = []
    yield apps
    for _app, stop, thread in apps:
        stop.set()
        thread.join(30)


def start_appliance(settings: Settings, audio: Path,
                    running: list[tuple[Appliance, threading.Event, threading.Thread]]
                    ) -> Appliance:
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    app = build_appliance(settings, recording=audio, factory=MockFactory(pin_class=MockPWMPin))
    stop = threading.Event()
    thread = threading.Thread(target=app.run, args=(stop,), daemon=True)
    thread.start()
    running.append((app, stop, thread))
    return app


def test_missing_credentials_are_a_fault_until_the_file_appears(tmp_path, broker_factory,
                                                                running, capsys):
    broker: Broker = broker_factory(users={"d07": "pw", "sup": "s"})
    broker.start()
    creds = tmp_path / "mqtt-credentials"
    settings = Settings.model_validate({
        "device": {"site": "lyon", "desk": "d07", "state_dir": str(tmp_path / "state"),
                   "runtime_dir": str(tmp_path / "run")},
        "audio": {"channels": 1},
        "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1,
                 "reconnect_max_s": RECONNECT_MAX_S, "credentials_file": str(creds)},
    })
    with Subscriber(broker, f"{BASE}/#", username="sup", password="s") as sub:
        app = start_appliance(settings, tone_wav(tmp_path / "call.wav", 120.0), running)

        # not started, and said so: the fault pattern, the status line, `deskcue status`
        wait_until(lambda: "mqtt" in app.faults, timeout=RETRY_BOUND_S)
        assert str(creds) in app.faults["mqtt"] and "not found" in app.faults["mqtt"]
        wait_until(lambda: app.status().display == "fault", timeout=RETRY_BOUND_S)
        assert deskcue(["status", "--runtime-dir", str(tmp_path / "run"), "--state-dir",
                        str(tmp_path / "state"), "--json"]) == 1, "a fault: needs a look"
        live = json.loads(capsys.readouterr().out)["appliance"]["status"]
        assert str(creds) in live["fault"]

        # the tech puts the file in place: the link starts by itself, the fault clears and
        # the supervisor hears both halves of it (the raise was kept in the outbox)
        creds.write_text("username = d07\npassword = pw\n")
        creds.chmod(0o600)

        def fault_events() -> list[dict[str, Any]]:
            return [e["data"] for e in sub.events() if e["type"] == "fault"
                    and e["data"].get("kind") == "mqtt"]

        got = wait_until(lambda: len(fault_events()) >= 2 and fault_events(),
                         timeout=RETRY_BOUND_S)
        assert [f["active"] for f in got[:2]] == [True, False]
        assert str(creds) in got[0]["fault"]
        assert "mqtt" not in app.faults and app.link.connected
        assert not sub.invalid, sub.invalid


def test_a_missing_tls_ca_is_retried_until_it_is_there(tmp_path, broker_factory, pki: Pki):
    broker: Broker = broker_factory(tls=(pki.server_cert, pki.server_key, pki.ca))
    broker.start()
    ca = tmp_path / "broker-ca.pem"
    link = MqttLink(settings_for(broker, reconnect_min_s=0.1, reconnect_max_s=RECONNECT_MAX_S,
                                 tls=TlsSettings(enabled=True, ca_file=ca)),
                    site="lyon", desk="d07", state_dir=tmp_path / "state")
    try:
        link.start()  # never raises
        assert link.start_error is not None and str(ca) in link.start_error
        assert not link.connected
        ca.write_bytes(pki.ca.read_bytes())
        wait_until(lambda: link.connected, timeout=RETRY_BOUND_S)
        assert link.start_error is None
    finally:
        link.stop(drain_s=0.0)


def desk_with_password(tmp_path: Path, broker: Broker, password: str,
                       **mqtt: Any) -> Settings:
    """A mono desk d07 of site lyon whose credentials file gives the broker ``password``."""
    creds = tmp_path / "mqtt-credentials"
    creds.write_text(f"username = d07\npassword = {password}\n")
    creds.chmod(0o600)
    return Settings.model_validate({
        "device": {"site": "lyon", "desk": "d07", "state_dir": str(tmp_path / "state"),
                   "runtime_dir": str(tmp_path / "run")},
        "audio": {"channels": 1},
        "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1,
                 "credentials_file": str(creds), **mqtt},
    })


def test_a_moment_of_refusal_is_no_fault(tmp_path, broker_factory, running):
    """A broker reloading its accounts refuses a desk for a moment: no red light, no fault
    event, for less than mqtt.refused_fault_s."""
    broker: Broker = broker_factory(users={"sup": "s"})  # the desk's account not there yet
    broker.start()
    settings = desk_with_password(tmp_path, broker, "pw", reconnect_max_s=0.2,
                                  refused_fault_s=3600.0)
    with Subscriber(broker, f"{BASE}/#", username="sup", password="s") as sub:
        app = start_appliance(settings, tone_wav(tmp_path / "call.wav", 120.0), running)
        wait_until(lambda: "Not authorized" in app.link.last_error)  # refused at least once
        # the first log line already says who logged in, and from which file (the fault's
        # words came only after refused_fault_s)
        assert str(tmp_path / "mqtt-credentials") in app.link.last_error
        assert "user 'd07'" in app.link.last_error
        broker.set_users({"d07": "pw", "sup": "s"})
        wait_until(lambda: app.link.connected)
        wait_until(lambda: any(m.payload == b"online" for m in sub.on("status")))
        assert "mqtt" not in app.faults
        assert not [e for e in sub.events() if e["type"] == "fault"]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_a_broker_refusing_the_desks_password_is_a_fault_until_it_accepts(
        tmp_path, broker_factory, running, capsys, protocol):
    """A wrong password (the broker's accounts changed, a credentials file from another desk)
    left the desk looking healthy: no fault, a normal light, `deskcue status` "fault: None",
    while every event waited in its outbox; only a log line said "Not authorized"."""
    broker: Broker = broker_factory(users={"d07": "new", "sup": "s"})
    broker.start()
    settings = desk_with_password(tmp_path, broker, "old", reconnect_max_s=RECONNECT_MAX_S,
                                  protocol=protocol, refused_fault_s=0.0)
    with Subscriber(broker, f"{BASE}/#", username="sup", password="s") as sub:
        app = start_appliance(settings, tone_wav(tmp_path / "call.wav", 120.0), running)

        wait_until(lambda: "mqtt" in app.faults)
        assert "credentials file" in app.faults["mqtt"]
        wait_until(lambda: app.status().display == "fault")
        assert deskcue(["status", "--runtime-dir", str(tmp_path / "run"), "--state-dir",
                        str(tmp_path / "state"), "--json"]) == 1, "a fault: needs a look"
        live = json.loads(capsys.readouterr().out)["appliance"]["status"]
        assert "broker refused the connection" in live["fault"]

        # the broker's admin gives the desk its password back: the link gets in by itself,
        # the fault clears, and the supervisor hears both halves of it
        broker.set_users({"d07": "old", "sup": "s"})

        def fault_events() -> list[dict[str, Any]]:
            return [e["data"] for e in sub.events() if e["type"] == "fault"
                    and e["data"].get("kind") == "mqtt"]

        got = wait_until(lambda: len(fault_events()) >= 2 and fault_events())
        assert [f["active"] for f in got[:2]] == [True, False]
        assert "mqtt" not in app.faults and app.link.connected
        assert not sub.invalid, sub.invalid


def test_a_broker_certificate_the_desk_cannot_verify_is_a_fault_until_it_can(
        tmp_path, broker_factory, pki: Pki, running):
    """A broker serving a certificate from another CA (or a wrong mqtt.tls.ca_file) left the
    desk looking healthy, its events waiting in the outbox, with only a log line."""
    broker: Broker = broker_factory(tls=(pki.rogue_server_cert, pki.rogue_server_key,
                                         pki.rogue_ca))
    broker.start()
    settings = Settings.model_validate({
        "device": {"site": "lyon", "desk": "d07", "state_dir": str(tmp_path / "state"),
                   "runtime_dir": str(tmp_path / "run")},
        "audio": {"channels": 1},
        "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1,
                 "reconnect_max_s": RECONNECT_MAX_S, "refused_fault_s": 0.0,
                 "tls": {"enabled": True, "ca_file": str(pki.ca)}},
    })
    app = start_appliance(settings, tone_wav(tmp_path / "call.wav", 120.0), running)
    wait_until(lambda: "mqtt" in app.faults)
    assert "TLS certificate cannot be verified" in app.faults["mqtt"]
    # the CA file by path and the name the certificate must carry: what to compare
    assert f"mqtt.tls.ca_file {pki.ca}" in app.faults["mqtt"], app.faults["mqtt"]
    assert f"mqtt.host {broker.host}" in app.faults["mqtt"], app.faults["mqtt"]
    wait_until(lambda: app.status().display == "fault")

    broker.tls = (pki.server_cert, pki.server_key, pki.ca)  # the broker's proper certificate
    broker.restart()
    wait_until(lambda: app.link.connected and "mqtt" not in app.faults)


def test_a_refused_login_names_the_credentials_file_and_user_never_the_password(
        tmp_path, broker_factory, running):
    """`not authorized (the credentials file, ...)` sent a tech hunting for which file (the
    config's, systemd's credential, or /etc/credstore's) and as whom the desk logged in; and
    a desk with no credentials file at all, logging in anonymously, was told the same."""
    broker: Broker = broker_factory(users={"d07": "new", "sup": "s"})
    broker.start()
    settings = desk_with_password(tmp_path, broker, "old-secret", refused_fault_s=0.0,
                                  reconnect_max_s=RECONNECT_MAX_S)
    app = start_appliance(settings, tone_wav(tmp_path / "call.wav", 120.0), running)
    wait_until(lambda: "mqtt" in app.faults)
    fault = app.faults["mqtt"]
    assert str(settings.mqtt.credentials_file) in fault and "'d07'" in fault, fault
    assert "old-secret" not in fault

    anonymous = Settings.model_validate({
        "device": {"site": "lyon", "desk": "d08", "state_dir": str(tmp_path / "state8"),
                   "runtime_dir": str(tmp_path / "run8")},
        "audio": {"channels": 1},
        "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1,
                 "reconnect_max_s": RECONNECT_MAX_S, "refused_fault_s": 0.0},
    })
    app = start_appliance(anonymous, tone_wav(tmp_path / "call8.wav", 120.0), running)
    wait_until(lambda: "mqtt" in app.faults)
    fault = app.faults["mqtt"]
    assert "anonymously" in fault and "/deskcue-mqtt" in fault, fault
