"""A real mosquitto broker on a free loopback port, for tests and benchmarks.

`Broker` writes its own config into a work directory, starts ``mosquitto -c``, waits until the
port accepts connections, and can be stopped and restarted on the same port mid-test
(persistence off by default: a restart loses every session and queued message, as a crashed
broker would), paused with SIGSTOP, or have its users changed and reloaded with SIGHUP.

`make_pki` makes a test CA, a server certificate for 127.0.0.1/localhost, a client certificate
and a second, untrusted CA with its own server certificate, with the ``openssl`` CLI (the
``cryptography`` package is not installed here).

`Subscriber` is a small paho client that records every message on a topic filter.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from waiting import HANG_S, wait_until

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORTS = random.Random()  # not the tests' seeded generators


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, for a broker to listen on.

    Chosen below the kernel's ephemeral range, so no outgoing connection (ours or another
    process's) can take it between now and when the broker binds it, or while a broker
    restarts on it; another test session could still choose it, which `Broker.start` handles
    on a first start by moving to another port. Under pytest-xdist each worker draws from its
    own share of that range, so no worker can take a port another one's broker is restarting
    on (a restart keeps its port: the desk under test reconnects to it).
    """
    low = max(_ephemeral_low() - 1, 11000)
    first, end = 10000, low
    worker, workers = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get(
        "PYTEST_XDIST_WORKER_COUNT", "")
    if worker.startswith("gw") and worker[2:].isdigit() and workers.isdigit():
        share = (low - 10000) // int(workers)
        first = 10000 + int(worker[2:]) * share
        end = first + share
    while True:
        port = _PORTS.randrange(first, end)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


@contextlib.contextmanager
def dead_port() -> Iterator[int]:
    """A loopback port where nothing listens for as long as the block runs: a socket holds it
    bound without listening, so connecting is refused and no one else can listen there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


@dataclass(frozen=True)
class Pki:
    """Paths of the test certificates (PEM)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path
    rogue_server_cert: Path
    rogue_server_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(directory: Path) -> Pki:
    """Make a CA, server and client certificates, and an untrusted CA + server, in ``directory``.

    EC P-256 keys, valid one day; the server certificates name ``localhost`` and ``127.0.0.1``.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ext = d / "server.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    client_ext = d / "client.ext"
    client_ext.write_text("extendedKeyUsage=clientAuth\n")
    for ca in ("ca", "rogue-ca"):
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{ca}.key", cwd=d)
        _openssl(
            "req",
            "-x509",
            "-new",
            "-key",
            f"{ca}.key",
            "-days",
            "1",
            "-subj",
            f"/CN=deskcue test {ca}",
            "-out",
            f"{ca}.pem",
            cwd=d,
        )
    for name, ca, extfile, cn in (
        ("server", "ca", ext, "localhost"),
        ("rogue-server", "rogue-ca", ext, "localhost"),
        ("client", "ca", client_ext, "site1-desk1"),
    ):
        key = f"{name}.key"
        _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key, cwd=d)
        _openssl(
            "req", "-new", "-key", f"{name}.key", "-subj", f"/CN={cn}", "-out", f"{name}.csr", cwd=d
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            f"{ca}.pem",
            "-CAkey",
            f"{ca}.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            str(extfile),
            "-out",
            f"{name}.pem",
            cwd=d,
        )
    return Pki(
        ca=d / "ca.pem",
        server_cert=d / "server.pem",
        server_key=d / "server.key",
        client_cert=d / "client.pem",
        client_key=d / "client.key",
        rogue_ca=d / "rogue-ca.pem",
        rogue_server_cert=d / "rogue-server.pem",
        rogue_server_key=d / "rogue-server.key",
    )


@dataclass
class Broker:
    """One mosquitto process on 127.0.0.1:``port`` with a generated config.

    ``persistence`` keeps sessions and queued messages across `restart` (as a production
    broker does; off by default, so a restart loses everything). ``users`` (name -> password)
    turns off anonymous access; ``tls`` = (cert, key, ca) serves
    TLS; ``require_certificate`` makes clients present a certificate signed by that CA (its CN
    becomes the username). ``max_queued_messages``: QoS 1 messages the broker holds for a client
    beyond those in flight (beyond it drops them); large unless a test wants a stock broker's.
    """

    workdir: Path
    port: int = field(default_factory=free_port)
    users: dict[str, str] | None = None
    tls: tuple[Path, Path, Path] | None = None
    require_certificate: bool = False
    acl: str | None = None
    persistence: bool = False
    max_queued_messages: int = 100000  # mosquitto's own default is 1000
    process: subprocess.Popen[bytes] | None = None

    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "mosquitto.conf"
        self.passwd_path = self.workdir / "passwd"
        self.log_path = self.workdir / "mosquitto.log"
        self.acl_path = self.workdir / "acl"
        self._started_once = False

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1",
            # As root mosquitto would switch to user "mosquitto", who cannot read the test's
            # files: keep the invoking user.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            "persistence true" if self.persistence else "persistence false",
            f"persistence_location {self.workdir}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            f"max_queued_messages {self.max_queued_messages}",
        ]
        if self.users is None:
            lines.append("allow_anonymous true")
        else:
            self._write_passwd(self.users)
            lines += ["allow_anonymous false", f"password_file {self.passwd_path}"]
        if self.acl is not None:
            self.acl_path.write_text(self.acl)
            lines.append(f"acl_file {self.acl_path}")
        if self.tls is not None:
            cert, key, ca = self.tls
            lines += [f"certfile {cert}", f"keyfile {key}", f"cafile {ca}"]
            if self.require_certificate:
                lines += ["require_certificate true", "use_identity_as_username true"]
        self.config_path.write_text("\n".join(lines) + "\n")

    def _write_passwd(self, users: dict[str, str]) -> None:
        tmp = self.passwd_path.with_suffix(".new")
        tmp.write_text("")
        for name, password in users.items():
            subprocess.run(
                [MOSQUITTO_PASSWD, "-b", str(tmp), name, password], check=True, capture_output=True
            )
        tmp.chmod(0o600)
        tmp.replace(self.passwd_path)

    def start(self, timeout: float = HANG_S) -> Broker:
        """Start the broker and wait until its port accepts connections.

        On its first start a broker whose port was taken meanwhile moves to another one."""
        while True:
            try:
                return self._start(timeout)
            except RuntimeError as exc:
                if self._started_once or "Address already in use" not in str(exc):
                    raise
                self.port = free_port()

    def _start(self, timeout: float) -> Broker:
        if self.process is not None and self.process.poll() is None:
            return self
        self._write_config()
        log = self.log_path.open("ab")
        since = log.tell()
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config_path)], stdout=log, stderr=log
        )
        log.close()

        def accepting() -> bool:
            if self.process is not None and self.process.poll() is not None:
                said = self.log_path.read_bytes()[since:].decode(errors="replace")
                raise RuntimeError(f"mosquitto exited: {said[-2000:]}")
            with socket.socket() as s:
                s.settimeout(0.2)
                return s.connect_ex((self.host, self.port)) == 0

        wait_until(accepting, timeout=timeout, interval=0.005)
        self._started_once = True
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker (SIGTERM, then SIGKILL); its sessions and queues are lost."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        self.process = None

    def restart(self) -> Broker:
        """Stop and start again on the same port."""
        self.stop()
        return self.start()

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing is acknowledged."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Continue a paused broker (SIGCONT)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def set_users(self, users: dict[str, str]) -> None:
        """Replace the password file (and reload it with SIGHUP if running)."""
        self.users = dict(users)
        self._write_passwd(self.users)
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGHUP)

    def set_acl(self, acl: str) -> None:
        """Replace the ACL file (mosquitto syntax) and reload it with SIGHUP if running."""
        self.acl = acl
        self.acl_path.write_text(acl)
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGHUP)

    @property
    def running(self) -> bool:
        """True while the mosquitto process is alive."""
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Received:
    """One message a `Subscriber` got: topic, raw payload, retain flag, arrival time."""

    topic: str
    payload: bytes
    retain: bool
    t: float
    properties: Any = None

    def json(self) -> Any:
        """The payload parsed as JSON."""
        return json.loads(self.payload)


class Subscriber:
    """A paho MQTT 5 client that records every message on ``topic`` (a filter) at QoS ``qos``.

    It does not reconnect by itself: after a broker restart call `connect` again. With
    ``session_s`` > 0 (and a fixed ``client_id``) its session outlives a disconnect, like a
    supervisor's should: with a persistent broker nothing acknowledged to a publisher is lost
    to it across a broker restart. ``receive_maximum`` (MQTT 5) bounds how many messages the
    broker sends it unacknowledged, hence how many it can re-send after a restart. With
    ``check_schema`` (default) every message under ``deskcue/`` is validated against
    docs/asyncapi.yaml and its contract model when the subscriber closes, and `close` fails
    the test if any was off-spec.
    """

    def __init__(
        self,
        broker: Broker,
        topic: str = "#",
        *,
        qos: int = 1,
        username: str | None = None,
        password: str | None = None,
        client_id: str = "",
        tls_ca: Path | None = None,
        check_schema: bool = True,
        session_s: int = 0,
        receive_maximum: int = 0,
    ) -> None:
        self.broker = broker
        self.check_schema = check_schema
        self.session_s = session_s
        self.receive_maximum = receive_maximum
        self.invalid: list[tuple[str, str]] = []
        self._unchecked: list[tuple[str, bytes]] = []
        self.topic = topic
        self.qos = qos
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.reconnect_on_failure = False
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_connect = self._on_connect

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure:
            client.subscribe(self.topic, qos=self.qos)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if self.check_schema and msg.topic.startswith("deskcue/"):
            # checked in close(): validation costs about a millisecond a message, which on
            # this thread would compete with the timing the test measures
            self._unchecked.append((msg.topic, bytes(msg.payload)))
        with self.lock:
            self.messages.append(
                Received(
                    msg.topic,
                    bytes(msg.payload),
                    bool(msg.retain),
                    time.perf_counter(),
                    msg.properties,
                )
            )

    def connect(self, timeout: float = HANG_S) -> Subscriber:
        """Connect, subscribe and wait for the SUBACK."""
        self._subscribed.clear()
        self.client.loop_stop()
        props = None
        if self.session_s or self.receive_maximum:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)
            if self.session_s:  # a persistent session: the broker queues for us while away
                props.SessionExpiryInterval = self.session_s
            if self.receive_maximum:  # at most this many unacknowledged messages to us
                props.ReceiveMaximum = self.receive_maximum
        self.client.connect(
            self.broker.host,
            self.broker.port,
            keepalive=30,
            clean_start=not self.session_s,
            properties=props,
        )
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            raise TimeoutError("subscription not acknowledged")
        return self

    def close(self) -> None:
        """Disconnect and stop the network thread; fail if a message broke docs/asyncapi.yaml."""
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()
        self._check()
        if self.invalid:
            bad, self.invalid = self.invalid, []
            raise AssertionError(f"{len(bad)} message(s) off docs/asyncapi.yaml: {bad[:3]}")

    def _check(self) -> None:
        """Validate the messages received since the last check (see `asyncapi`)."""
        from asyncapi_check import validate_message

        todo, self._unchecked = self._unchecked, []
        for topic, payload in todo:
            try:
                validate_message(topic, payload)
            except Exception as exc:  # noqa: BLE001 - reported by close()
                self.invalid.append((topic, str(exc)[:300]))

    def on(self, suffix: str) -> list[Received]:
        """Messages whose topic ends with ``/suffix``, in arrival order."""
        with self.lock:
            return [m for m in self.messages if m.topic.endswith("/" + suffix)]

    def events(self) -> list[dict[str, Any]]:
        """Payloads of every message on an ``.../events`` topic, in arrival order."""
        return [m.json() for m in self.on("events")]

    def __enter__(self) -> Subscriber:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()


def settings_for(broker: Broker, **overrides: Any) -> Any:
    """`MqttSettings` pointing at ``broker``, with fast reconnects for tests."""
    from firmware.config.mqtt import MqttSettings

    values: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "keepalive_s": 5,
    }
    values.update(overrides)
    return MqttSettings(**values)


def site_acl(tmp: Path, site_text: str, supervisor: str) -> str:
    """The ACL `deskcue config acl` makes for the site file ``site_text`` (written in
    ``tmp``) with ``supervisor`` as the supervisors' account, run as a tech runs it."""
    import sys

    site, out = tmp / "site.toml", tmp / "acl"
    site.write_text(site_text)
    proc = subprocess.run([sys.executable, "-m", "firmware.cli", "config", "acl", str(site),
                           "--supervisor", supervisor, "--out", str(out)],
                          cwd=Path(__file__).resolve().parent.parent, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return out.read_text()


def make_events(n: int, boot_id: str = "b" * 32, start_seq: int = 1) -> list[dict[str, Any]]:
    """``n`` deterministic event envelopes (the JSON `EventStamper` makes) for one boot:
    raised-voice cues started and ended, as the contract has them."""
    from firmware.link.envelope import EventStamper

    stamper = EventStamper(boot_id=boot_id, seq=start_seq - 1, wall_clock=lambda: 1_767_225_600.0)
    out = []
    for i in range(n):
        onset, at = round(i * 2.0, 2), round(i * 2.0 + 1.0, 2)
        data: dict[str, Any] = {"onset_s": onset, "at_s": at, "duration_s": 1.0,
                                "db_above_usual": 9.0, "loudness_lufs": -18.0,
                                "cue": "raised_voice", "usual_lufs": -27.0,
                                "summary": "+9.0 dB above your usual for 1.0 s"}
        kind = "raised_voice.started"
        if i % 2:
            kind = "raised_voice.ended"
            data.update({"end_s": at + 3.0, "duration_s": 4.0, "peak_db_above_usual": 11.5,
                         "peak_loudness_lufs": -15.5,
                         "summary": "voice back near your usual after 4.0 s (peak +11.5 dB)"})
        out.append(stamper.stamp(kind, data, stream_s=i * 2.0 + 1.0).to_json())
    return out


def unique_in_order(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop duplicates by ``id``, keeping first arrivals (what a consumer does)."""
    seen: set[str] = set()
    out = []
    for e in events:
        if e["id"] not in seen:
            seen.add(e["id"])
            out.append(e)
    return out


def gated_restart(broker: Broker, sub: Subscriber, users: dict[str, str], sub_user: str) -> None:
    """Restart ``broker`` so that ``sub`` is back before any publisher can connect.

    The broker comes back with only ``sub_user``'s account, ``sub`` reconnects, then every
    account in ``users`` is restored (SIGHUP). Without this gate a desk could replay into a
    fresh broker that nobody subscribes to yet, which would test the subscriber, not the desk.
    """
    broker.stop()
    broker.users = {sub_user: users[sub_user]}
    broker.start()
    sub.connect()
    broker.set_users(users)
