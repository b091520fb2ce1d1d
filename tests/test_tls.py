"""TLS and credentials: a broker with certificates made by the test, secrets kept secret."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from broker import Broker, Pki, Subscriber, make_events, settings_for
from waiting import wait_until

from firmware.config.mqtt import MqttSettings, TlsSettings
from firmware.link.credentials import (
    CredentialsError,
    Secret,
    load_credentials,
    parse_credentials,
    tls_files,
)
from firmware.link.mqtt_client import MqttLink

BASE = "deskcue/site1/desk1"
PASSWORD = "p4ss-w0rd-never-logged"


@pytest.fixture
def links() -> Iterator[list[MqttLink]]:
    made: list[MqttLink] = []
    yield made
    for link in made:
        link.stop(drain_s=0.0)


def start_link(broker: Broker, tmp_path: Path, links: list[MqttLink], **kw: Any) -> MqttLink:
    link = MqttLink(
        settings_for(broker, **kw), site="site1", desk="desk1", state_dir=tmp_path / "state"
    )
    links.append(link)
    link.start()
    return link


def test_tls_with_ca_verification_and_password_from_systemd_credentials(
    broker_factory: Any,
    pki: Pki,
    tmp_path: Path,
    links: list[MqttLink],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    b: Broker = broker_factory(
        tls=(pki.server_cert, pki.server_key, pki.ca), users={"desk": PASSWORD, "sub": "s"}
    )
    b.start()
    creds_dir = tmp_path / "creds"
    creds_dir.mkdir(mode=0o700)
    (creds_dir / "mqtt").write_text(f"username = desk\npassword = {PASSWORD}\n")
    (creds_dir / "mqtt").chmod(0o600)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds_dir))
    with Subscriber(b, f"{BASE}/#", username="sub", password="s", tls_ca=pki.ca) as sub:
        link = start_link(b, tmp_path, links, tls=TlsSettings(enabled=True, ca_file=pki.ca))
        wait_until(lambda: link.connected)
        for e in make_events(3):
            link.publish_event(e)
        wait_until(lambda: len(sub.events()) == 3)
        link.stop()
        wait_until(lambda: sub.on("status")[-1].payload == b"offline")
    assert PASSWORD not in caplog.text and PASSWORD not in repr(load_credentials(link.settings))


def test_refuses_a_broker_whose_certificate_does_not_verify(
    broker_factory: Any, pki: Pki, tmp_path: Path, links: list[MqttLink]
) -> None:
    b: Broker = broker_factory(tls=(pki.rogue_server_cert, pki.rogue_server_key, pki.rogue_ca))
    b.start()
    link = start_link(b, tmp_path, links, tls=TlsSettings(enabled=True, ca_file=pki.ca))
    wait_until(lambda: "certificate verify failed" in link.last_error)
    assert not link.connected
    for e in make_events(5):
        link.publish_event(e)  # still accepted, kept for a broker that can be trusted
    wait_until(lambda: link.stats()["outbox_depth"] == 5)
    assert not link.connected


def test_tls_to_a_plain_port_fails_cleanly(
    broker: Broker, pki: Pki, tmp_path: Path, links: list[MqttLink]
) -> None:
    link = start_link(broker, tmp_path, links, tls=TlsSettings(enabled=True, ca_file=pki.ca))
    wait_until(lambda: link.last_error.startswith("cannot connect"))
    assert not link.connected


def test_client_certificate_authentication(
    broker_factory: Any, pki: Pki, tmp_path: Path, links: list[MqttLink]
) -> None:
    b: Broker = broker_factory(
        tls=(pki.server_cert, pki.server_key, pki.ca), require_certificate=True
    )
    b.start()
    without = start_link(b, tmp_path / "a", links, tls=TlsSettings(enabled=True, ca_file=pki.ca))
    with_cert = start_link(
        b,
        tmp_path / "b",
        links,
        client_id="with-cert",
        tls=TlsSettings(
            enabled=True, ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key
        ),
    )
    wait_until(lambda: with_cert.connected)
    wait_until(lambda: without.last_error != "")
    assert not without.connected


def test_client_key_from_systemd_credentials(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds_dir = tmp_path / "creds"
    creds_dir.mkdir()
    (creds_dir / "mqtt.key").write_bytes(pki.client_key.read_bytes())
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds_dir))
    s = MqttSettings(tls=TlsSettings(enabled=True, ca_file=pki.ca, cert_file=pki.client_cert))
    files = tls_files(s)
    assert files is not None and files.key_file == creds_dir / "mqtt.key"


def test_a_client_key_others_can_read_is_used_and_warned_about(
    pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As the password file already was: the key is the desk's secret, said by path only."""
    key = tmp_path / "client.key"
    key.write_bytes(pki.client_key.read_bytes())
    s = MqttSettings(tls=TlsSettings(enabled=True, ca_file=pki.ca, cert_file=pki.client_cert,
                                     key_file=key))
    for mode, warned in ((0o600, False), (0o644, True)):
        key.chmod(mode)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            files = tls_files(s)
        assert files is not None and files.key_file == key
        said = [r.getMessage() for r in caplog.records]
        assert (said == [f"TLS client key {key} is readable by others; chmod 600 it"]) is warned
        assert "PRIVATE KEY" not in " ".join(said)


def test_a_command_run_by_hand_takes_the_client_key_the_unit_would_load(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Outside the unit (`sudo deskcue selftest`, field-tech.md §3) the password is read from
    # /etc/credstore/deskcue-mqtt, the file the unit loads; the client key was not read from
    # /etc/credstore/deskcue-mqtt.key, where field-tech.md §1 puts it for the unit, so the
    # self-test failed the broker step on a desk whose service logged in fine.
    store = tmp_path / "credstore"
    store.mkdir()
    (store / "deskcue-mqtt.key").write_bytes(pki.client_key.read_bytes())
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.setenv("DESKCUE_CREDSTORE", str(store))
    s = MqttSettings(tls=TlsSettings(enabled=True, ca_file=pki.ca, cert_file=pki.client_cert))
    files = tls_files(s)
    assert files is not None and files.key_file == store / "deskcue-mqtt.key"


def test_a_client_certificate_without_its_key_says_where_the_key_is_looked_for(
    broker: Broker, pki: Pki, tmp_path: Path, links: list[MqttLink],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shipped unit loads no `mqtt.key` credential, so a desk given only cert_file (the
    # config's description says the key may come from that credential) had the fault
    # "TLS files unusable: [SSL] PEM lib (_ssl.c:3926)", which names neither the key nor
    # where it is looked for.
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))  # the unit's: no mqtt.key
    link = start_link(broker, tmp_path, links, tls=TlsSettings(
        enabled=True, ca_file=pki.ca, cert_file=pki.client_cert))
    assert not link.connected
    assert str(pki.client_cert) in link.last_error
    assert "mqtt.tls.key_file" in link.last_error and "mqtt.key" in link.last_error


def test_credentials_file_parsing_never_echoes_secrets() -> None:
    c = parse_credentials('# desk 1\nusername = desk1\npassword = "a b=c"\n')
    assert c.username == "desk1" and c.password == Secret("a b=c")
    assert "a b=c" not in repr(c) and f"{c.password}" == "***"
    with pytest.raises(CredentialsError) as err:
        parse_credentials("username = desk1\nhunter2\n")
    assert "hunter2" not in str(err.value) and "line 2" in str(err.value)
    with pytest.raises(CredentialsError):
        parse_credentials("password = x\n")


def test_missing_credentials_file_is_reported_not_raised(
    broker: Broker, tmp_path: Path, links: list[MqttLink]
) -> None:
    link = start_link(broker, tmp_path, links, credentials_file=tmp_path / "nope")
    assert "not found" in link.last_error and not link.connected
    link.publish_event(make_events(1)[0])  # still never raises


def test_config_has_no_way_to_skip_verification() -> None:
    with pytest.raises(ValueError, match="insecure"):
        TlsSettings.model_validate({"enabled": True, "insecure": True})
    with pytest.raises(ValueError, match="password"):
        MqttSettings.model_validate({"password": "x"})
