"""MqttLink against a real mosquitto on loopback: topics, outages, restarts and kill -9.

The restart tests gate the broker: it comes back first with only the subscriber's account,
the subscriber reconnects, and only then is the desk's account restored (SIGHUP). Without the
gate the desk could replay into a broker that nobody subscribes to yet (persistence is off),
which would test the subscriber, not the link.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asyncapi_check import validate
from broker import Broker, Subscriber, make_events, settings_for, unique_in_order
from broker import gated_restart as gated_restart_
from waiting import HANG_S, wait_until

from firmware.contract.desk import TelemetryReading
from firmware.link.envelope import EventStamper
from firmware.link.mqtt_client import MqttLink

BASE = "deskcue/site1/desk1"
USERS = {"sub": "sub-pw", "desk": "desk-pw"}


READING = TelemetryReading(
    level_lufs={"agent": -30.0, "caller": -40.0}, cues={}, input_overflows=0, cpu_load=0.01,
    soc_temp_c=None, uptime_s=1.0, display="ready", stream_s=0.5,
)


def comparable(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["boot_id"], e["seq"], e["type"], e["data"]) for e in events]


_LINKS: list[MqttLink] = []


@pytest.fixture(autouse=True)
def _stop_links() -> Iterator[None]:
    """Stop every link a test made, even when it fails."""
    yield
    while _LINKS:
        _LINKS.pop().stop(drain_s=0.0)


def make_link(broker: Broker, tmp_path: Path, **kw: Any) -> MqttLink:
    on_command = kw.pop("on_command", None)
    on_dropped = kw.pop("on_dropped", None)
    link = MqttLink(
        settings_for(broker, **kw),
        site="site1",
        desk="desk1",
        state_dir=tmp_path / "state",
        on_command=on_command,
        on_dropped=on_dropped,
    )
    _LINKS.append(link)
    return link


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[Broker, Path]]:
    """A broker with accounts for the subscriber and the desk; the desk's credentials file."""
    b = Broker(tmp_path / "gated", users=dict(USERS), acl=ALLOW_ALL).start()
    creds = tmp_path / "desk-credentials"
    creds.write_text('# test account\nusername = desk\npassword = "desk-pw"\n')
    creds.chmod(0o600)
    try:
        yield b, creds
    finally:
        b.stop()


def gated_restart(broker: Broker, sub: Subscriber) -> None:
    """`broker.gated_restart` with this file's accounts."""
    gated_restart_(broker, sub, USERS, "sub")


def test_live_events_status_info_in_order(
    broker: Broker, subscriber: Subscriber, tmp_path: Path
) -> None:
    link = make_link(broker, tmp_path)
    link.start()
    link.set_info(
        {
            "firmware": "0.1.0",
            "config_hash": "abc",
            "boot_id": "b" * 32,
            "audio_device": "tap",
            "channel_map": {"agent": "left", "caller": "right"},
            "config_apply": None,
        }
    )
    wait_until(lambda: link.connected)
    events = make_events(40)
    for e in events:
        link.publish_event(e)
    assert link.flush(HANG_S)
    wait_until(lambda: len(subscriber.events()) == 40)
    got = subscriber.events()
    assert comparable(got) == comparable(events)
    assert all("replayed" not in e for e in got), "live events are not marked replayed"
    assert all(not m.retain for m in subscriber.on("events"))
    status = wait_until(lambda: subscriber.on("status"))  # once commands are subscribed
    assert status[0].payload == b"online"
    wait_until(lambda: subscriber.on("info"))
    assert len(subscriber.on("info")) == 1, "info once per connection"
    for m in subscriber.messages:
        validate(m.topic[len(BASE) + 1 :], m.json() if m.payload[:1] == b"{" else m.payload)
    link.stop()
    wait_until(lambda: subscriber.on("status")[-1].payload == b"offline")
    # Retained: a newcomer sees offline status and the info document at once.
    with Subscriber(broker, f"{BASE}/#") as late:
        wait_until(lambda: late.on("status") and late.on("info"))
        assert late.on("status")[0].retain and late.on("status")[0].payload == b"offline"
        assert late.on("info")[0].json()["config_hash"] == "abc"


def test_broker_down_at_boot_never_blocks_the_caller(broker_factory: Any, tmp_path: Path) -> None:
    """Starting the link and handing it events never waits for the broker. Shown without a
    clock (a busy machine stretches any call): at boot the broker's port takes the link's
    connection and never answers it, and both calls return while the link still waits there
    for a CONNACK; its worker stores the events meanwhile. Then the broker is down (refused),
    comes up, and gets every event, in order, marked replayed."""
    import socket
    import struct

    b: Broker = broker_factory()  # made, not started
    link = make_link(b, tmp_path, keepalive_s=600)  # waits that long for a CONNACK
    with socket.socket() as hung:
        hung.bind((b.host, b.port))
        hung.listen(1)
        hung.settimeout(HANG_S)

        def boot() -> None:  # the appliance's thread: start the link, hand it events
            link.start()
            for e in make_events(200):
                link.publish_event(e)

        caller = threading.Thread(target=boot, daemon=True)
        caller.start()
        conn, _ = hung.accept()
        with conn:
            conn.settimeout(HANG_S)
            assert conn.recv(1) == b"\x10", "the link's first packet is not a CONNECT"
            caller.join(HANG_S)
            assert not caller.is_alive(), "start or publish_event waits for the broker"
            wait_until(lambda: link.stats()["events_stored"] == 200)
            assert not link.connected
            conn.setblocking(False)
            while True:  # what is left of the CONNECT, and no end: the link still waits
                try:
                    chunk = conn.recv(4096)
                except BlockingIOError:
                    break
                assert chunk, "the link gave up on its connection while the calls ran"
            # reset, not closed: a close from this side would leave the port in TIME_WAIT,
            # where the broker could not listen
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    wait_until(lambda: "refused" in link.last_error)
    assert not link.connected
    wait_until(lambda: link.stats()["events_stored"] == 200)
    b.start()
    with Subscriber(b, f"{BASE}/events") as sub:
        # The subscriber raced the link's reconnect; whatever it saw must be in order.
        wait_until(lambda: link.connected)
        assert link.flush(HANG_S)
        assert link.last_error == ""
        seqs = [e["seq"] for e in sub.events()]
        assert seqs == sorted(seqs) and all(e["replayed"] for e in sub.events())
    link.stop()


def stream_through(
    link: MqttLink, events: list[dict[str, Any]], pace_s: float, published: list[int]
) -> threading.Thread:
    """Publish ``events`` at a steady pace from a thread (the analysis thread's role)."""

    def run() -> None:
        for e in events:
            link.publish_event(e)
            published.append(e["seq"])
            time.sleep(pace_s)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


SUB_WINDOW = 20  # the supervisor's MQTT 5 Receive Maximum in the restart tests
ALLOW_ALL = "user desk\ntopic readwrite #\nuser sub\ntopic readwrite #\n"
DENY_EVENTS = (
    f"user desk\ntopic readwrite {BASE}/status\ntopic read {BASE}/cmd/#\n"
    "user sub\ntopic readwrite #\n"
)


def run_stream(
    broker: Broker,
    creds: Path,
    tmp_path: Path,
    events: list[dict[str, Any]],
    interrupt: tuple[int, int] | None,
) -> tuple[list[dict[str, Any]], MqttLink]:
    """Stream ``events`` at 3 ms intervals; with ``interrupt=(a, b)`` the broker goes down once
    the subscriber has ``a`` events and comes back once ``b`` were handed to the link.

    A broker without persistence loses what it had acknowledged but not yet delivered when it
    stops: no publisher can help that. So there the stop waits for a quiet moment: the desk's
    write access is revoked first (the link holds what the broker refuses) and the broker is
    stopped once the subscriber has everything the broker acknowledged. A persistent broker
    with a persistent subscriber session is stopped at once, with an event in flight.
    """
    sub = Subscriber(
        broker,
        f"{BASE}/events",
        username="sub",
        password=USERS["sub"],
        # its own session per run: a session kept from an earlier run would hand this one
        # that run's unacknowledged messages (the same ids) as duplicates
        client_id=f"supervisor-{tmp_path.name}",
        session_s=600 if broker.persistence else 0,
        receive_maximum=SUB_WINDOW,
    )
    sub.connect()
    link = make_link(broker, tmp_path, credentials_file=creds)
    link.start()
    wait_until(lambda: link.connected)
    published: list[int] = []
    thread = stream_through(link, events, 0.003, published)
    if interrupt is not None:
        a, b = interrupt
        wait_until(lambda: len(sub.events()) >= a)
        if not broker.persistence:
            broker.set_acl(DENY_EVENTS)
            wait_until(lambda: link.stats()["events_rejected"] >= 1)
            wait_until(lambda: len(sub.events()) == link.stats()["events_acked"])
        broker.stop()
        wait_until(lambda: len(published) >= b)
        wait_until(lambda: not link.connected and link.stats()["outbox_depth"] > 0)
        broker.acl = ALLOW_ALL
        gated_restart(broker, sub)
    thread.join()
    try:
        wait_until(lambda: len(unique_in_order(sub.events())) >= len(events))
    except TimeoutError:
        seqs = [e["seq"] for e in sub.events()]
        raise AssertionError(f"subscriber has {len(seqs)}: {seqs}; link {link.stats()}") from None
    assert link.flush(HANG_S)
    got = sub.events()
    sub.close()
    link.stop()
    return got, link


@pytest.mark.parametrize("persistent", [False, True], ids=["broker-forgets", "broker-persists"])
def test_broker_restart_mid_stream_loses_nothing(
    gated: tuple[Broker, Path], tmp_path: Path, persistent: bool
) -> None:
    broker, creds = gated
    if persistent:
        broker.persistence = True
        broker.restart()
    events = make_events(150)
    reference, _ = run_stream(broker, creds, tmp_path / "a", events, None)
    got, link = run_stream(broker, creds, tmp_path / "b", events, (40, 100))
    first = unique_in_order(got)
    assert comparable(first) == comparable(reference) == comparable(events)
    # QoS 1 is at-least-once: an event in flight when the broker stopped may arrive twice:
    # from the link (its in-flight window, 1) or from the broker, which re-sends whatever it
    # had sent the subscriber without having processed its PUBACK yet - on a busy machine
    # that can be everything since the last one, so the subscriber bounds it (SUB_WINDOW).
    seen: set[str] = set()
    dups = []
    for i, e in enumerate(got):
        if e["id"] in seen:
            dups.append((i, e["seq"]))
        seen.add(e["id"])
    assert len(got) - len(first) <= (SUB_WINDOW + 1 if persistent else 0), f"duplicates: {dups}"
    replayed = [e["seq"] for e in first if e.get("replayed")]
    assert replayed, "events stored during the outage are marked replayed"
    assert replayed == list(range(replayed[0], replayed[-1] + 1))
    assert link.stats()["outbox_depth"] == 0


def test_outbox_bound_drops_are_reported(broker_factory: Any, tmp_path: Path) -> None:
    """A full outbox drops the oldest; one outbox_dropped event says which, once delivered."""
    b: Broker = broker_factory(users={"sub": USERS["sub"]})  # the desk is shut out for now
    b.start()
    creds = tmp_path / "creds"
    creds.write_text("username = desk\npassword = desk-pw\n")
    creds.chmod(0o600)
    stamper = EventStamper(boot_id="c" * 32)
    lock = threading.Lock()  # the engine stamps from one thread at a time
    link: MqttLink

    def on_dropped(data: dict[str, Any]) -> None:
        with lock:
            link.publish_event(stamper.stamp("outbox_dropped", data, stream_s=0.0))

    link = make_link(
        b, tmp_path, credentials_file=creds, outbox_max_events=10, on_dropped=on_dropped
    )
    link.start()
    for _ in range(15):
        with lock:
            link.publish_event(stamper.stamp(
                "snooze", {"minutes": 5.0, "until_s": 301.0, "source": "mqtt"}, stream_s=1.0))
    wait_until(lambda: link.stats()["outbox_dropped"] == 5)
    assert "Not authorized" in link.last_error or "refused" in link.last_error
    with Subscriber(b, f"{BASE}/events", username="sub", password=USERS["sub"]) as sub:
        b.set_users(USERS)
        wait_until(lambda: any(e["type"] == "outbox_dropped" for e in sub.events()))
        assert link.flush(HANG_S)
        got = sub.events()
    for e in got:
        validate("events", e)
    assert [e["seq"] for e in got] == list(range(6, 17)), "seqs 1-5 dropped, 16 is the report"
    report = got[-1]["data"]
    assert report == {
        "count": 5,
        "reasons": {"max_events": 5},
        "total": 5,
        "ranges": [{"boot_id": "c" * 32, "first_seq": 1, "last_seq": 5, "count": 5}],
    }


def test_broker_refusing_events_holds_them_in_order(broker_factory: Any, tmp_path: Path) -> None:
    """A PUBACK with a failure code (here: ACL denial) keeps the event and retries it."""
    acl_deny = (
        f"user desk\ntopic readwrite {BASE}/status\ntopic read {BASE}/cmd/#\n"
        "user sub\ntopic read #\n"
    )
    b: Broker = broker_factory(users=dict(USERS), acl=acl_deny)
    b.start()
    creds = tmp_path / "creds"
    creds.write_text("username = desk\npassword = desk-pw\n")
    creds.chmod(0o600)
    link = make_link(b, tmp_path, credentials_file=creds)
    with Subscriber(b, f"{BASE}/events", username="sub", password=USERS["sub"]) as sub:
        link.start()
        for e in make_events(5):
            link.publish_event(e)
        wait_until(lambda: link.stats()["events_rejected"] >= 1)
        assert "refused an event" in link.last_error
        b.set_acl(f"user desk\ntopic readwrite {BASE}/#\nuser sub\ntopic read #\n")
        wait_until(lambda: len(sub.events()) == 5)
        assert [e["seq"] for e in sub.events()] == [1, 2, 3, 4, 5]
    link.stop()


def test_telemetry_is_qos0_and_expires(
    broker: Broker, subscriber: Subscriber, tmp_path: Path
) -> None:
    link = make_link(broker, tmp_path, telemetry_interval_s=5.0, telemetry_expiry_s=15)
    link.start()
    wait_until(lambda: link.connected)
    link.publish_telemetry(READING)
    wait_until(lambda: subscriber.on("telemetry"))
    msg = subscriber.on("telemetry")[0]
    assert not msg.retain
    assert 0 < msg.properties.MessageExpiryInterval <= 15
    payload = msg.json()
    assert payload["outbox"] == {"depth": 0, "dropped": 0, "set_aside": 0, "durable": True}
    assert "ts" in payload
    validate("telemetry", payload)
    link.stop()


# -- kill -9 of a process publishing through the outbox ------------------------------------------


class LinkProcess:
    """tests/link_process.py in a subprocess, driven over stdin."""

    def __init__(self, broker: Broker, state_dir: Path, boot_id: str, creds: Path) -> None:
        script = Path(__file__).parent / "link_process.py"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(script),
                "--port",
                str(broker.port),
                "--state-dir",
                str(state_dir),
                "--boot-id",
                boot_id,
                "--credentials-file",
                str(creds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.expect("ready")

    def expect(self, word: str, timeout: float = HANG_S) -> str:
        assert self.proc.stdout is not None
        result: list[str] = []

        def read() -> None:
            assert self.proc.stdout is not None
            result.append(self.proc.stdout.readline())

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        assert result and result[0].startswith(word), f"expected {word!r}, got {result}"
        self.last = result[0]
        return result[0]

    def send(self, line: str, expect: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        self.expect(expect)

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(HANG_S)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.send("stop", "stopped")
            self.proc.wait(HANG_S)


def test_kill9_with_events_pending_then_restart(gated: tuple[Broker, Path], tmp_path: Path) -> None:
    broker, creds = gated
    state = tmp_path / "state"
    boot1, boot2 = "1" * 32, "2" * 32
    sub = Subscriber(broker, f"{BASE}/#", qos=1, username="sub", password=USERS["sub"])
    sub.connect()
    p1 = LinkProcess(broker, state, boot1, creds)
    p1.send("connected", "connected")  # the first 20 go out live, not from the outbox
    p1.send("publish 20", "stored 20")
    p1.send("flush", "flushed")  # all 20 acknowledged: nothing in flight when the broker dies
    wait_until(lambda: len(sub.events()) == 20)
    broker.stop()
    p1.send("publish 30", "stored 50")  # durable in the outbox, broker away
    p1.kill9()
    gated_restart(broker, sub)
    p2 = LinkProcess(broker, state, boot2, creds)
    p2.send("connected", "connected")
    p2.send("publish 10", "stored 10")
    wait_until(lambda: len(unique_in_order(sub.events())) >= 60)
    p2.stop()
    sub.close()
    got = sub.events()
    first = unique_in_order(got)
    expected = make_events(50, boot_id=boot1) + make_events(10, boot_id=boot2)
    assert comparable(first) == comparable(expected)
    assert len(got) == len(first), "no duplicates when nothing was in flight"
    assert all(e.get("replayed") for e in first[20:50])
    assert not any(e.get("replayed") for e in first[:20] + first[50:])
    assert sub.on("status")[-1].payload == b"offline"


def test_kill9_with_an_event_in_flight(gated: tuple[Broker, Path], tmp_path: Path) -> None:
    """Killed while the broker had not acknowledged: the event may arrive twice, never lost."""
    broker, creds = gated
    state = tmp_path / "state"
    sub = Subscriber(broker, f"{BASE}/#", qos=1, username="sub", password=USERS["sub"])
    sub.connect()
    p1 = LinkProcess(broker, state, "1" * 32, creds)
    p1.send("publish 5", "stored 5")
    p1.send("flush", "flushed")
    broker.pause()  # connection open, nothing acknowledged
    p1.send("publish 5", "stored 10")
    p1.kill9()
    broker.resume()
    # The broker reads what the dead process had sent and publishes its last will.
    wait_until(lambda: sub.on("status") and sub.on("status")[-1].payload == b"offline")
    p2 = LinkProcess(broker, state, "2" * 32, creds)
    wait_until(lambda: len(unique_in_order(sub.events())) >= 10)
    p2.stop()
    sub.close()
    got = sub.events()
    first = unique_in_order(got)
    assert [e["seq"] for e in first] == list(range(1, 11))
    seen: set[str] = set()
    second_copies = []
    for e in got:
        if e["id"] in seen:
            second_copies.append(e)
        seen.add(e["id"])
    assert len(second_copies) <= 1 and all(e.get("replayed") for e in second_copies)


def test_mqtt_311_for_old_brokers(broker: Broker, subscriber: Subscriber, tmp_path: Path) -> None:
    """Protocol 3.1.1: the same topics and delivery; telemetry just cannot expire."""
    link = make_link(broker, tmp_path, protocol="3.1.1")
    link.start()
    wait_until(lambda: link.commands_ready)
    for e in make_events(5):
        link.publish_event(e)
    link.publish_telemetry(READING)
    assert link.flush(HANG_S)
    wait_until(lambda: len(subscriber.events()) == 5 and subscriber.on("telemetry"))
    assert [e["seq"] for e in subscriber.events()] == [1, 2, 3, 4, 5]
    link.stop()
    wait_until(lambda: subscriber.on("status")[-1].payload == b"offline")


def test_events_around_stop_are_kept_for_the_next_run(broker: Broker, tmp_path: Path) -> None:
    """Handed over before start, after stop, or to a link never started: all delivered later."""
    never = make_link(broker, tmp_path)
    never.publish_event(make_events(1)[0])
    never.stop()
    never.publish_event(make_events(1, start_seq=2)[0])
    with Subscriber(broker, f"{BASE}/events") as sub:
        link = make_link(broker, tmp_path)
        link.start()
        wait_until(lambda: len(sub.events()) == 2)
        link.stop()
        link.publish_event(make_events(1, start_seq=3)[0])
        again = make_link(broker, tmp_path)
        again.start()
        wait_until(lambda: len(sub.events()) == 3)
        assert [e["seq"] for e in sub.events()] == [1, 2, 3]
        assert all(e["replayed"] for e in sub.events())


def test_events_handed_over_once_connected_are_live_even_after_a_slow_connect(
    broker: Broker, subscriber: Subscriber, tmp_path: Path
) -> None:
    """`connected` turns true in paho's thread before the link's worker hears of the connection
    (a busy machine can stretch that to seconds): an event handed over in between went out on
    this connection, so it is live, never marked replayed."""
    link = make_link(broker, tmp_path)
    released = threading.Event()
    make_client = link._make_client

    def slow_connect_client() -> Any:
        client = make_client()
        subscribe = client.subscribe

        def slow_subscribe(*args: Any, **kwargs: Any) -> Any:
            # the rest of the connect callback runs only once the test has handed an event over
            assert released.wait(30), "the test never released the connect callback"
            return subscribe(*args, **kwargs)

        client.subscribe = slow_subscribe  # type: ignore[method-assign]
        return client

    link._make_client = slow_connect_client  # type: ignore[method-assign]
    link.start()
    wait_until(lambda: link.connected)
    events = make_events(3)
    for e in events:
        link.publish_event(e)
    wait_until(lambda: link.stats()["events_stored"] == 3)  # stored before the worker knew
    released.set()
    assert link.flush(HANG_S)
    wait_until(lambda: len(subscriber.events()) == 3)
    assert comparable(subscriber.events()) == comparable(events)
    assert not [e["seq"] for e in subscriber.events() if e.get("replayed")]


def test_stop_drains_pending_events_even_before_the_link_has_connected(
    broker_factory: Any, tmp_path: Path
) -> None:
    """A stop given ``drain_s`` waits for pending events until then even while the link is
    still connecting (a `--fast` run can end before the broker's CONNACK)."""
    b: Broker = broker_factory(users={"sub": USERS["sub"]})  # the desk is refused for now
    b.start()
    creds = tmp_path / "creds"
    creds.write_text("username = desk\npassword = desk-pw\n")
    creds.chmod(0o600)
    link = make_link(b, tmp_path, credentials_file=creds)
    link.start()
    for e in make_events(3):
        link.publish_event(e)
    wait_until(lambda: link.stats()["events_stored"] == 3
               and ("refused" in link.last_error or "Not authorized" in link.last_error))
    with Subscriber(b, f"{BASE}/events", username="sub", password=USERS["sub"]) as sub:
        stopper = threading.Thread(target=link.stop, kwargs={"drain_s": HANG_S})
        stopper.start()
        wait_until(lambda: link._stop_deadline is not None)  # the worker got the stop
        assert not link.connected
        b.set_users(USERS)  # now the desk may connect
        stopper.join(HANG_S + 10)
        assert not stopper.is_alive()
        assert link.stats()["outbox_depth"] == 0, "the drain delivered what was pending"
        wait_until(lambda: len(sub.events()) == 3)
    assert [e["seq"] for e in sub.events()] == [1, 2, 3]


@pytest.mark.parametrize("how", ["kill9", "stop"])
def test_a_lost_connection_is_named_for_what_ended_it(
        broker_factory: Any, tmp_path: Path, how: str) -> None:
    """A broker killed or stopped (mosquitto sends no DISCONNECT on either) reads as a lost
    connection in the log and the mqtt fault, not as paho's "Unspecified error"."""
    b: Broker = broker_factory()
    b.start()
    link = make_link(b, tmp_path)
    link.start()
    try:
        wait_until(lambda: link.connected)
        if how == "kill9":
            assert b.process is not None
            os.kill(b.process.pid, signal.SIGKILL)
            b.process.wait()
        else:
            b.stop()
        wait_until(lambda: "disconnected from broker" in link.last_error)
        assert link.last_error == ("disconnected from broker: connection lost (the network or "
                                   "the broker dropped it)")
    finally:
        link.stop()


def test_reconnect_waits_are_jittered_so_a_floor_does_not_come_back_in_step(
        tmp_path: Path) -> None:
    """Desks that lost one broker at one moment must not retry it at the same moments: each
    wait is drawn between half and all of the backoff. Without jitter no wait can be shorter
    than the backoff (paho sleeps until then, a busy machine only makes it later), so a wait
    well under it is a wait the jitter shortened."""
    import socket

    from firmware.config.mqtt import MqttSettings

    accepts: list[float] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        server.settimeout(HANG_S)

        def accept_and_close() -> None:
            # What the desk sees of a broker going down: the connection closes before a CONNACK.
            for _ in range(9):
                conn, _ = server.accept()
                accepts.append(time.monotonic())
                conn.close()

        t = threading.Thread(target=accept_and_close, daemon=True)
        t.start()
        settings = MqttSettings(host="127.0.0.1", port=server.getsockname()[1],
                                reconnect_min_s=0.5, reconnect_max_s=0.5)
        link = MqttLink(settings, site="site1", desk="desk1", state_dir=tmp_path / "state")
        _LINKS.append(link)
        link.start()
        t.join(HANG_S)
        assert not t.is_alive()
    waits = [b - a for a, b in zip(accepts, accepts[1:], strict=False)]
    assert min(waits) < 0.45, f"every wait was the full backoff: {waits}"
