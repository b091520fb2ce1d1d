"""Commands: validation on its own, then through MqttLink and a real mosquitto."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
import pytest
from asyncapi import validate
from broker import HANG_S, Broker, Subscriber, make_events, settings_for, wait_until
from paho.mqtt.enums import CallbackAPIVersion

from firmware.contract.commands import ALL_ARG_MODELS, TXID_PATTERN
from firmware.contract.events import Snooze
from firmware.contract.examples import STATUS
from firmware.link.commands import (
    Command,
    CommandArgs,
    IdentifyArgs,
    Rejection,
    SnoozeArgs,
    parse_command,
    result_payload,
)
from firmware.link.mqtt_client import MqttLink

BASE = "deskcue/site1/desk1"
NOW = 1_767_225_600.0


def parse(name: str, payload: Any, **kw: Any) -> Command | Rejection | None:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_command(name, raw, now=NOW, **kw)


# -- validation ----------------------------------------------------------------------------------


def test_each_command_parses() -> None:
    snooze = parse("snooze", {"txid": "t1", "minutes": 10})
    assert isinstance(snooze, Command) and isinstance(snooze.args, SnoozeArgs)
    assert snooze.args.minutes == 10 and snooze.txid == "t1"
    assert isinstance(parse("snooze", {"txid": "t2"}), Command)  # default length
    ident = parse("identify", {"txid": "t3"})
    assert isinstance(ident, Command) and isinstance(ident.args, IdentifyArgs)
    assert ident.args.seconds == 10.0
    assert isinstance(parse("recalibrate", {"txid": "t4", "ts": NOW - 1}), Command)
    assert isinstance(parse("status", {"txid": "t5"}), Command)


@pytest.mark.parametrize(
    ("name", "payload", "code", "txid"),
    [
        ("snooze", b"", "malformed", None),
        ("snooze", b"not json", "malformed", None),
        ("snooze", b"\xff\xfe", "malformed", None),
        ("snooze", [1, 2], "malformed", None),
        ("snooze", {"txid": "bad txid!"}, "malformed", None),
        ("snooze", {"txid": "a", "minutes": -1}, "invalid_args", "a"),
        ("snooze", {"txid": "a", "minutes": 481}, "invalid_args", "a"),
        ("snooze", {"txid": "a", "minutes": "ten"}, "invalid_args", "a"),
        ("snooze", {"txid": "a", "hours": 1}, "invalid_args", "a"),
        ("identify", {"txid": "a", "seconds": 0}, "invalid_args", "a"),
        ("status", {"txid": "a", "verbose": True}, "invalid_args", "a"),
        ("reboot", {"txid": "a"}, "unknown_command", "a"),
        ("snooze", {"txid": "a", "ts": NOW - 3600}, "stale", "a"),
        ("snooze", {"txid": "a", "ts": NOW + 3600}, "stale", "a"),
        ("snooze", b"[" * 600 + b"]" * 600, "too_large", None),
        ("snooze", b"[" * 500 + b"]" * 500, "malformed", None),
    ],
)
def test_bad_commands_are_rejected(name: str, payload: Any, code: str, txid: str | None) -> None:
    r = parse(name, payload)
    assert isinstance(r, Rejection), r
    assert (r.code, r.txid) == (code, txid)
    result = result_payload(r.name, r.txid, False, error=(r.code, r.message), now=NOW)
    validate(f"cmd/{name}/result", result)


def test_a_command_without_txid_gets_a_fresh_one_from_the_desk() -> None:
    """A fixed payload (a dashboard button) must run every time, not once."""
    first, second = parse("snooze", {"minutes": 5}), parse("snooze", {"minutes": 5})
    assert isinstance(first, Command) and isinstance(second, Command)
    assert first.txid != second.txid
    assert all(re.match(TXID_PATTERN, c.txid) and c.txid.startswith("desk:")
               for c in (first, second))
    assert first.args.minutes == 5  # type: ignore[attr-defined]
    bad = parse("identify", {"seconds": 0})  # wrong arguments still answered, with that id
    assert isinstance(bad, Rejection) and bad.code == "invalid_args"
    assert bad.txid is not None and bad.txid.startswith("desk:")
    # a signed config is taken only with the txid its signature covers
    cfg = parse("config", {"issued": 1, "config": "x", "signature": "AA=="},
                models=ALL_ARG_MODELS)
    assert isinstance(cfg, Rejection) and (cfg.code, cfg.txid) == ("malformed", None)


def test_retained_and_unnameable_are_ignored() -> None:
    assert parse("snooze", {"txid": "a"}, retain=True) is None
    assert parse("x" * 40, {"txid": "a"}) is None
    assert parse("", {"txid": "a"}) is None


def test_stale_not_judged_without_synced_clock() -> None:
    assert isinstance(parse("snooze", {"txid": "a", "ts": NOW - 3600}, clock_synced=False), Command)


def test_fuzz_never_raises() -> None:
    rng = random.Random(5)
    atoms: list[Any] = [None, True, 0, -1, 1e308, "x", "", [], {}, "\u0000", 2**70]
    for _ in range(3000):
        kind = rng.random()
        if kind < 0.3:
            raw = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
        else:
            obj: dict[str, Any] = {}
            for key in rng.sample(["txid", "ts", "minutes", "seconds", "x", ""], rng.randint(0, 4)):
                obj[key] = rng.choice([*atoms, "t1", NOW, 5])
            raw = json.dumps(obj).encode()
        name = rng.choice(["snooze", "identify", "recalibrate", "status", "nope", "a/b"])
        r = parse_command(name, raw, now=NOW, max_bytes=256)
        assert r is None or isinstance(r, Command | Rejection)


# -- through the link ----------------------------------------------------------------------------


class Desk:
    """A link with a small real command handler, like the engine's, answering on its own."""

    def __init__(self, broker: Broker, state_dir: Path) -> None:
        self.executed: list[Command] = []
        self.link = MqttLink(
            settings_for(broker),
            site="site1",
            desk="desk1",
            state_dir=state_dir,
            on_command=self.handle,
        )

    def handle(self, cmd: Command) -> None:
        self.executed.append(cmd)
        if cmd.name == "snooze":
            minutes = 15.0 if cmd.args.minutes is None else cmd.args.minutes  # type: ignore[attr-defined]
            self.link.publish_command_result(
                cmd, True, data=Snooze(minutes=minutes, until_s=60.0 * minutes, source="mqtt")
            )
        elif cmd.name == "identify":
            self.link.publish_command_result(cmd, True, data={"seconds": cmd.args.seconds})  # type: ignore[attr-defined]
        elif cmd.name == "recalibrate":
            self.link.publish_command_result(cmd, True, data={"warmup_speech_s": 20.0})
        elif cmd.name == "status":
            self.link.publish_command_result(cmd, True, data=STATUS)


@pytest.fixture
def desk(broker: Broker, tmp_path: Path) -> Iterator[Desk]:
    d = Desk(broker, tmp_path / "state")
    d.link.start()
    wait_until(lambda: d.link.commands_ready)
    try:
        yield d
    finally:
        d.link.stop(drain_s=0.0)


@pytest.fixture
def supervisor(broker: Broker) -> Iterator[tuple[mqtt.Client, Subscriber]]:
    """A publishing client and a subscriber to the result topics."""
    sub = Subscriber(broker, f"{BASE}/cmd/+/result").connect()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        yield pub, sub
    finally:
        pub.disconnect()
        pub.loop_stop()
        sub.close()


def results(sub: Subscriber) -> list[dict[str, Any]]:
    out = []
    for m in sub.messages:
        validate(m.topic[len(BASE) + 1 :], m.json())
        out.append(m.json())
    return out


def test_each_command_works(desk: Desk, supervisor: tuple[mqtt.Client, Subscriber]) -> None:
    pub, sub = supervisor
    sent = {
        "snooze": {"txid": "s1", "minutes": 10, "ts": time.time()},
        "identify": {"txid": "i1", "seconds": 3},
        "recalibrate": {"txid": "r1"},
        "status": {"txid": "q1"},
    }
    for name, payload in sent.items():
        validate(f"cmd/{name}", payload)
        pub.publish(f"{BASE}/cmd/{name}", json.dumps(payload), qos=1)
    wait_until(lambda: len(sub.messages) == 4)
    by_txid = {r["txid"]: r for r in results(sub)}
    assert by_txid["s1"]["ok"] and by_txid["s1"]["data"]["minutes"] == 10
    assert by_txid["i1"]["data"] == {"seconds": 3}
    assert by_txid["r1"]["cmd"] == "recalibrate" and by_txid["q1"]["data"]["display"] == "ready"
    assert [m.topic.split("/")[-2] for m in sub.messages] == list(sent)
    # A repeated txid (a QoS 1 redelivery) is not run twice; the same answer comes back.
    pub.publish(f"{BASE}/cmd/snooze", json.dumps(sent["snooze"]), qos=1)
    wait_until(lambda: len(sub.messages) == 5)
    assert len(desk.executed) == 4 and results(sub)[-1] == by_txid["s1"]


def test_a_fixed_payload_runs_every_time_a_repeated_txid_once(
        desk: Desk, supervisor: tuple[mqtt.Client, Subscriber]) -> None:
    pub, sub = supervisor
    for _ in range(3):  # a dashboard button pressed three times
        pub.publish(f"{BASE}/cmd/identify", json.dumps({"seconds": 2}), qos=1)
    wait_until(lambda: len(sub.messages) == 3)
    got = results(sub)
    assert len(desk.executed) == 3 and all(r["ok"] for r in got)
    txids = [r["txid"] for r in got]
    assert len(set(txids)) == 3 and all(t.startswith("desk:") for t in txids)
    assert txids == [c.txid for c in desk.executed]
    for _ in range(2):  # the same txid twice: run once, answered twice
        pub.publish(f"{BASE}/cmd/identify", json.dumps({"txid": "b1", "seconds": 2}), qos=1)
    wait_until(lambda: len(sub.messages) == 5)
    assert len(desk.executed) == 4 and results(sub)[-1] == results(sub)[-2]


def test_retained_command_is_ignored(
    broker: Broker, tmp_path: Path, supervisor: tuple[mqtt.Client, Subscriber]
) -> None:
    pub, sub = supervisor
    pub.publish(
        f"{BASE}/cmd/snooze", json.dumps({"txid": "old"}), qos=1, retain=True
    ).wait_for_publish(2)
    d = Desk(broker, tmp_path / "state")
    d.link.start()
    wait_until(lambda: d.link.stats()["commands_ignored"] == 1)
    pub.publish(f"{BASE}/cmd/status", json.dumps({"txid": "new"}), qos=1)
    wait_until(lambda: sub.messages)
    assert [r["txid"] for r in results(sub)] == ["new"] and [c.txid for c in d.executed] == ["new"]
    pub.publish(f"{BASE}/cmd/snooze", b"", qos=1, retain=True)  # clear the retained message
    d.link.stop(drain_s=0.0)


def fuzz_payloads(n: int, seed: int = 7) -> list[tuple[str, bytes, bool]]:
    """(command name, payload, expect a result) for malformed, oversized, unknown, stale ones."""
    rng = random.Random(seed)
    out: list[tuple[str, bytes, bool]] = []
    for i in range(n):
        k = i % 6
        if k == 0:
            out.append(
                ("snooze", bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 40))), True)
            )
        elif k == 1:
            out.append(
                ("snooze", json.dumps({"txid": f"f{i}", "minutes": "x" * 2000}).encode(), True)
            )
        elif k == 2:
            out.append(
                (
                    rng.choice(["reboot", "shell", "SNOOZE"]),
                    json.dumps({"txid": f"f{i}"}).encode(),
                    True,
                )
            )
        elif k == 3:
            out.append(("identify", json.dumps({"txid": f"f{i}", "seconds": -5}).encode(), True))
        elif k == 4:
            out.append(("status", json.dumps({"txid": f"f{i}", "ts": 1.0}).encode(), True))
        else:
            out.append(("snooze", b"[" * 400 + b"]" * 400, True))
    return out


def test_fuzz_gets_error_results_and_the_event_stream_flows_on(
    desk: Desk, supervisor: tuple[mqtt.Client, Subscriber], broker: Broker
) -> None:
    """Bad commands at the rate limit while events stream: every one answered with an error,
    nothing executed, every event delivered in order. (What the link costs the analysis
    loop is measured by the benches, not asserted here against the clock.)"""
    pub, sub = supervisor
    events_sub = Subscriber(broker, f"{BASE}/events").connect()
    fuzz = fuzz_payloads(60)
    events = make_events(120)

    def analysis() -> None:  # a 10 ms hop loop that publishes an event every other hop
        for e in events:
            desk.link.publish_event(e)
            time.sleep(0.01)

    thread = threading.Thread(target=analysis)
    thread.start()
    for name, payload, _ in fuzz:
        pub.publish(f"{BASE}/cmd/{name}", payload, qos=0)
        time.sleep(0.02)  # 50/s offered; the link answers 20/s after a burst of 40
    thread.join()
    wait_until(lambda: len(events_sub.events()) == len(events))
    assert [e["seq"] for e in events_sub.events()] == [e["seq"] for e in events]
    events_sub.close()

    def counted() -> dict[str, Any] | None:
        st = desk.link.stats()
        done = st["commands_rejected"] + st["commands_rate_limited"] == len(fuzz)
        return st if done else None

    stats = wait_until(counted)
    wait_until(lambda: len(sub.messages) == stats["commands_rejected"])
    got = results(sub)
    assert desk.executed == []
    assert all(not r["ok"] for r in got)
    assert {r["error"]["code"] for r in got} == {"malformed", "too_large", "unknown_command",
                                                 "invalid_args", "stale"}  # fmt: skip


def test_a_flood_is_rate_limited(desk: Desk, supervisor: tuple[mqtt.Client, Subscriber]) -> None:
    """300 commands at once: a burst is answered, the rest dropped unanswered, link alive."""
    pub, sub = supervisor
    t0 = time.monotonic()
    for i in range(300):
        pub.publish(f"{BASE}/cmd/status", json.dumps({"txid": f"x{i}"}), qos=0)
    wait_until(
        lambda: desk.link.stats()["commands"] + desk.link.stats()["commands_rate_limited"] == 300
    )
    elapsed = time.monotonic() - t0
    answered = desk.link.stats()["commands"]
    assert answered <= 40 + 20 * elapsed + 1 and desk.link.stats()["commands_rate_limited"] > 0
    wait_until(lambda: len(sub.messages) == answered)
    desk.link.publish_event(make_events(1)[0])
    assert desk.link.flush(HANG_S)


class BlobArgs(CommandArgs):
    """An extra command with a large payload (like a signed config)."""

    name: ClassVar[str] = "blob"
    text: str


def test_extra_commands_extend_the_allow_list(
    broker: Broker, tmp_path: Path, supervisor: tuple[mqtt.Client, Subscriber]
) -> None:
    pub, sub = supervisor
    got: list[Command] = []
    link = MqttLink(
        settings_for(broker),
        site="site1",
        desk="desk1",
        state_dir=tmp_path,
        on_command=got.append,
        extra_commands={"blob": (BlobArgs, 16384)},
    )
    link.start()
    wait_until(lambda: link.commands_ready)
    pub.publish(f"{BASE}/cmd/blob", json.dumps({"txid": "b1", "text": "x" * 8000}), qos=1)
    pub.publish(f"{BASE}/cmd/status", json.dumps({"txid": "s1", "pad": "x" * 8000}), qos=1)
    wait_until(lambda: got and sub.messages)
    assert isinstance(got[0].args, BlobArgs) and len(got[0].args.text) == 8000
    assert sub.messages[0].json()["error"]["code"] == "too_large"
    link.stop(drain_s=0.0)
