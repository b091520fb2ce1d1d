"""The generated broker ACL, against a real mosquitto: each desk stays in its own subtree."""

from __future__ import annotations

import json
import os
import pwd
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from broker import Broker, Pki, Subscriber, make_events, settings_for, site_acl
from paho.mqtt.enums import CallbackAPIVersion
from waiting import wait_until

from firmware.config.mqtt import TlsSettings
from firmware.contract.examples import EXAMPLES
from firmware.link.acl import desk_account, mosquitto_acl, passwords_script
from firmware.link.mqtt_client import MqttLink

ROOT = Path(__file__).resolve().parent.parent
SITE = """\
[device]
site = "lyon"
[mqtt]
host = "127.0.0.1"
[desks.d01]
[desks.d02]
"""
USERS = {"lyon-d01": "pw1", "lyon-d02": "pw2", "boss": "pw3"}


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture
def site_broker(tmp_path: Path):
    b = Broker(tmp_path / "broker", users=dict(USERS),
               acl=site_acl(tmp_path, SITE, "boss")).start()
    try:
        yield b
    finally:
        b.stop()


def client(broker: Broker, user: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, USERS[user])
    c.connect(broker.host, broker.port)
    c.loop_start()
    return c


def publish(c: mqtt.Client, topic: str, payload: str) -> None:
    # QoS 1: the broker acknowledges even a publish its ACL drops, so this is a sync point
    c.publish(topic, payload, qos=1).wait_for_publish(5)


def test_a_desk_cannot_publish_or_read_in_another_desks_subtree(site_broker, tmp_path):
    sup = Subscriber(site_broker, "deskcue/lyon/#", qos=1, username="boss",
                     password=USERS["boss"], check_schema=False).connect()
    d1 = client(site_broker, "lyon-d01")
    snooped: list[str] = []
    d1.on_message = lambda _c, _u, m: snooped.append(m.topic)
    d1.subscribe("deskcue/lyon/d02/cmd/+", qos=1)
    d1.subscribe("deskcue/lyon/#", qos=1)
    try:
        publish(d1, "deskcue/lyon/d02/events", "forged")   # another desk's events
        publish(d1, "deskcue/lyon/d02/status", "offline")  # another desk's status
        publish(d1, "deskcue/lyon/d02/cmd/snooze", "{}")   # commanding another desk
        publish(d1, "deskcue/lyon/d01/cmd/snooze", "{}")   # commanding itself
        publish(d1, "deskcue/lyon/d01/events", "mine")     # its own events: allowed
        boss = client(site_broker, "boss")
        publish(boss, "deskcue/lyon/d02/cmd/identify", "{}")  # supervisors may command
        wait_until(lambda: any(m.topic.endswith("d02/cmd/identify") for m in sup.messages))
        wait_until(lambda: any(m.topic.endswith("d01/events") for m in sup.messages))
        got = [(m.topic, m.payload) for m in sup.messages]
        assert ("deskcue/lyon/d01/events", b"mine") in got
        assert not [t for t, _ in got if "/d02/" in t and not t.endswith("cmd/identify")]
        assert ("deskcue/lyon/d01/cmd/snooze", b"{}") not in got
        # the supervisor's command to d02 was published while d01 subscribed to everything:
        # d01 saw nothing of d02's subtree
        assert not [t for t in snooped if "/d02/" in t]
        boss.loop_stop()
        boss.disconnect()
    finally:
        d1.loop_stop()
        d1.disconnect()
        sup.close()


def test_the_real_desk_link_works_under_its_acl(site_broker, tmp_path):
    # Everything the desk's own link publishes (status with its will, info, events, command
    # results) is allowed for its account, and it receives its commands.
    creds = tmp_path / "d01.credentials"
    creds.write_text('username = "lyon-d01"\npassword = "pw1"\n')
    creds.chmod(0o600)
    sup = Subscriber(site_broker, "deskcue/lyon/#", qos=1, username="boss",
                     password=USERS["boss"], check_schema=False).connect()
    commands = []
    link = MqttLink(settings_for(site_broker, credentials_file=creds), site="lyon", desk="d01",
                    state_dir=tmp_path / "state", on_command=commands.append)
    link.start()
    try:
        wait_until(lambda: link.connected)
        link.set_info(EXAMPLES["info"])
        for e in make_events(3):
            link.publish_event(e)
        wait_until(lambda: len(sup.events()) == 3)
        wait_until(lambda: any(m.topic.endswith("/info") for m in sup.messages))
        wait_until(lambda: sup.on("status"))  # "online" once commands are subscribed
        assert [m.payload for m in sup.on("status")][-1] == b"online"
        boss = client(site_broker, "boss")
        publish(boss, "deskcue/lyon/d01/cmd/identify",
                json.dumps({"txid": "t1", "seconds": 1, "ts": time.time()}))
        wait_until(lambda: commands)
        boss.loop_stop()
        boss.disconnect()
    finally:
        link.stop(drain_s=1.0)
        sup.close()


def test_the_desks_own_self_test_passes_under_its_acl(site_broker, tmp_path):
    # field-tech.md §3: `deskcue selftest` checks the broker with the desk's own account by a
    # round trip on <prefix>/<site>/<desk>/selftest; the ACL granted neither the write nor
    # the read there, so on a site that used it the broker step always failed ("never came
    # back") and sent techs looking for a fault that was not there.
    creds = tmp_path / "d01.credentials"
    creds.write_text('username = "lyon-d01"\npassword = "pw1"\n')
    creds.chmod(0o600)
    cfg = tmp_path / "d01.toml"
    cfg.write_text(f'[device]\nsite = "lyon"\ndesk = "d01"\nstate_dir = "{tmp_path}/state"\n'
                   f'runtime_dir = "{tmp_path}/run"\n[mqtt]\nhost = "{site_broker.host}"\n'
                   f'port = {site_broker.port}\ncredentials_file = "{creds}"\n')
    proc = subprocess.run([sys.executable, "-m", "firmware.cli", "selftest", "--config",
                           str(cfg), "--pins", "mock", "--yes", "--skip", "audio"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS  broker" in proc.stdout


def test_acl_refuses_shared_usernames():
    a = desk_account("deskcue", "lyon", "d01", "{site}")
    b = desk_account("deskcue", "lyon", "d02", "{site}")
    with pytest.raises(ValueError, match="more than once: lyon"):
        mosquitto_acl([a, b], ["boss"])


@pytest.mark.skipif(os.geteuid() != 0, reason="the recipe runs as root on the broker")
@pytest.mark.skipif(not _has_user("mosquitto"), reason="no mosquitto user (Debian's package)")
def test_passwords_script_leaves_the_password_file_to_the_brokers_user(tmp_path):
    # Run as root (umask 077), the recipe left the password file root's and 0600; Debian's
    # mosquitto reads it after dropping to its user `mosquitto`, so it refused to start:
    # 'Error: Unable to open pwfile'. (The test broker keeps root as its user, so the other
    # tests never saw it.)
    desks = [desk_account("deskcue", "lyon", "d01")]
    script = tmp_path / "accounts.sh"
    passwd = tmp_path / "passwd"
    script.write_text(passwords_script(desks, ["boss"], passwd_file=str(passwd),
                                       out_dir=str(tmp_path / "creds")))
    proc = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    broker_user = pwd.getpwnam("mosquitto")
    st = passwd.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (
        broker_user.pw_uid, broker_user.pw_gid, 0o600)
    creds = tmp_path / "creds" / "lyon-d01.credentials"
    assert creds.stat().st_uid == 0 and creds.stat().st_mode & 0o777 == 0o600


def test_acl_refuses_desks_that_share_a_home_assistant_node(tmp_path):
    # The discovery node turns "-" into "_": desks d-1 and d_1 of one site both got
    # `topic readwrite homeassistant/+/deskcue_lyon_d_1/#`, so either could rewrite the
    # other's discovery configs, e.g. point its "Identify" button at another desk's
    # cmd/recalibrate, which Home Assistant then sends with the supervisor's account.
    site = tmp_path / "site.toml"
    site.write_text(SITE + "[desks.d-1]\n[desks.d_1]\n")
    proc = subprocess.run([sys.executable, "-m", "firmware.cli", "config", "acl", str(site),
                           "--supervisor", "boss"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "lyon/d-1 and lyon/d_1" in proc.stderr and "deskcue_lyon_d_1" in proc.stderr
    a = desk_account("deskcue", "a_b", "c")
    b = desk_account("deskcue", "a", "b_c")
    with pytest.raises(ValueError, match="deskcue_a_b_c"):
        mosquitto_acl([a, b], ["boss"])


def test_passwords_script_makes_every_account(tmp_path):
    # The recipe runs as written: a password file mosquitto accepts, one file per desk.
    desks = [desk_account("deskcue", "lyon", d) for d in ("d01", "d02")]
    script = tmp_path / "accounts.sh"
    script.write_text(passwords_script(desks, ["boss"], passwd_file=str(tmp_path / "passwd"),
                                       out_dir=str(tmp_path / "creds")))
    proc = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (tmp_path / "creds").iterdir())
    assert names == ["lyon-d01.credentials", "lyon-d02.credentials",
                     "supervisor-boss.credentials"]
    users = [line.split(":")[0] for line in (tmp_path / "passwd").read_text().splitlines()]
    assert users == ["lyon-d01", "lyon-d02", "boss"]
    text = (tmp_path / "creds" / "lyon-d01.credentials").read_text()
    assert text.startswith('username = "lyon-d01"\npassword = "') and len(text) > 40
    assert ((tmp_path / "creds" / "lyon-d01.credentials").stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize("outputs, said", [
    (["--script", "{dir}"], "--script {dir} is a directory"),
    (["--out", "{dir}/none/acl"], "--out {dir}/none/acl: no directory {dir}/none"),
    (["--out", "{dir}/x", "--script", "{dir}/x"], "--out and --script name the same file"),
])
def test_acl_outputs_that_cannot_be_written_are_refused_before_anything_is(
        tmp_path, capsys, outputs, said):
    """Not the ACL printed and then a failure: nothing is written, one line says why."""
    from firmware.cli.main import main as deskcue

    site = tmp_path / "site.toml"
    site.write_text(SITE)
    args = [o.format(dir=tmp_path) for o in outputs]
    assert deskcue(["config", "acl", str(site), "--supervisor", "boss", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"deskcue: config acl: {said.format(dir=tmp_path)}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site.toml"]


def _password(credentials: Path) -> str:
    return re.search(r'^password = "(.*)"$', credentials.read_text(), re.M).group(1)


def test_the_site_broker_of_field_tech_runs_as_written(tmp_path, pki: Pki):
    """docs/field-tech.md §1's broker, as written: the `config acl` line (with the password
    file in this test's directory), the recipe, the mosquitto config (its paths and port
    here). Desks log in over TLS with their files and only the supervisors read them; a
    packet over max_packet_size is refused."""
    guide = (ROOT / "docs" / "field-tech.md").read_text()
    section = guide.split("### Once per site: the broker")[1].split("\n## ")[0]
    sh = re.search(r"```sh\n(.*?)```", section, re.S).group(1).splitlines()
    conf = re.search(r"```conf\n(.*?)```", section, re.S).group(1)
    (tmp_path / "site.toml").write_text(SITE)
    acl_cmd = shlex.split(sh[0])
    assert acl_cmd[:3] == ["deskcue", "config", "acl"]
    passwd = tmp_path / "deskcue.passwd"
    proc = subprocess.run([sys.executable, "-m", "firmware.cli", *acl_cmd[1:],
                           "--passwd-file", str(passwd)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert shlex.split(sh[2].split("#")[0]) == ["sudo", "sh", "accounts.sh"]
    proc = subprocess.run(["sh", "accounts.sh"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    creds = tmp_path / "desk-credentials"
    conf = (conf.replace("/etc/mosquitto/deskcue.passwd", str(passwd))
            .replace("/etc/mosquitto/deskcue.acl", str(tmp_path / "deskcue.acl"))
            .replace("/etc/mosquitto/certs/broker.pem", str(pki.server_cert))
            .replace("/etc/mosquitto/certs/broker.key", str(pki.server_key)))

    class DocBroker(Broker):
        def _write_config(self) -> None:
            own = conf.replace("listener 8883", f"listener {self.port} 127.0.0.1")
            assert own != conf
            self.config_path.write_text(
                f"user {pwd.getpwuid(os.getuid()).pw_name}\npersistence false\n"
                f"log_dest stderr\n{own}")

    b = DocBroker(tmp_path / "broker").start()
    ops = Subscriber(b, "deskcue/lyon/#", username="ops", password=_password(
        creds / "supervisor-ops.credentials"), tls_ca=pki.ca, check_schema=False).connect()
    link = MqttLink(settings_for(b, credentials_file=creds / "lyon-d01.credentials",
                                 tls=TlsSettings(enabled=True, ca_file=pki.ca)),
                    site="lyon", desk="d01", state_dir=tmp_path / "state")
    link.start()
    try:
        for e in make_events(2):
            link.publish_event(e)
        wait_until(lambda: len(ops.events()) == 2)
        # the other desk's account may not publish as d01, nor read it
        other = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        other.username_pw_set("lyon-d02", _password(creds / "lyon-d02.credentials"))
        other.tls_set(ca_certs=str(pki.ca))
        other.connect(b.host, b.port)
        other.loop_start()
        publish(other, "deskcue/lyon/d01/events", "forged")
        # over max_packet_size: the broker drops the sender, so nothing more gets through
        other.publish("deskcue/lyon/d02/events", b"x" * 300_000, qos=1)
        wait_until(lambda: not other.is_connected())
        other.loop_stop()
        for e in make_events(1, start_seq=3):
            link.publish_event(e)
        wait_until(lambda: len(ops.events()) == 3)
        assert all(m.topic.startswith("deskcue/lyon/d01/") for m in ops.messages)
        assert b"forged" not in [m.payload for m in ops.messages]
    finally:
        link.stop(drain_s=0.5)
        ops.close()
        b.stop()
