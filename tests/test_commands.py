"""Commands: validation on its own, then through MqttLink and a real mosquitto."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
import pytest
from asyncapi_check import validate
from broker import Broker, Subscriber, make_events, settings_for
from paho.mqtt.enums import CallbackAPIVersion
from waiting import HANG_S, wait_until

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
        ("identify", {"txid": "a", "seconds": 121}, "invalid_args", "a"),  # blinks <= 120 s
        # strict: nothing is coerced into a valid command
        ("snooze", {"txid": "a", "minutes": "5"}, "invalid_args", "a"),
        ("snooze", {"txid": "a", "minutes": True}, "invalid_args", "a"),
        ("snooze", {"txid": "a", "minutes": None}, "invalid_args", "a"),
        ("snooze", {"txid": "a", "minutes": [5]}, "invalid_args", "a"),
        ("identify", {"txid": "a", "seconds": "5"}, "invalid_args", "a"),
        ("identify", {"txid": "a", "seconds": False}, "invalid_args", "a"),
        ("status", {"txid": "a", "ts": str(NOW)}, "invalid_args", "a"),
        ("snooze", {"txid": 7}, "malformed", None),
        ("snooze", b'{"txid": "a", "minutes": NaN}', "malformed", None),
        ("identify", b'{"txid": "a", "seconds": Infinity}', "malformed", None),
        ("snooze", b'{"txid": "a", "minutes": 5, "minutes": "x"}', "malformed", None),
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


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        ("snooze", {"txid": "a", "minutes": "5"},
         "minutes: Input should be a valid number, not a string"),
        ("identify", {"txid": "a", "seconds": True},
         "seconds: Input should be a valid number, not true/false"),
        ("identify", {"txid": "a", "seconds": 300},
         "seconds: Input should be less than or equal to 120"),
        ("status", {"txid": "a", "verbose": 1}, "verbose: unknown argument"),
        ("snooze", {"txid": "a", "minutes": None}, "minutes: may be left out, but not null"),
        ("config", {"txid": "a", "issued": 5.0, "config": ""},
         "issued: Input should be a valid integer, not a number"),
    ],
)
def test_a_refusal_names_the_field_and_what_was_wrong(name: str, payload: Any,
                                                      message: str) -> None:
    r = parse(name, payload, models=ALL_ARG_MODELS)
    assert isinstance(r, Rejection) and r.code == "invalid_args" and r.message == message, r


def test_numbers_are_taken_as_sent() -> None:
    """An integer is a JSON number: accepted for a number field, and run with that value."""
    r = parse("identify", {"txid": "a", "seconds": 120})
    assert isinstance(r, Command) and r.args.seconds == 120.0  # type: ignore[attr-defined]
    r = parse("snooze", {"txid": "a", "minutes": 0.5, "ts": NOW})
    assert isinstance(r, Command) and r.args.minutes == 0.5  # type: ignore[attr-defined]


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


@pytest.mark.parametrize(("ts", "says"), [
    (NOW - 3600, "sent 3600 s ago (limit 60)"),
    (NOW + 3600, "its ts is 3600 s ahead of the desk's clock (the sender's clock is off?) "
                 "(limit 60)"),
])
def test_stale_says_which_way_the_time_is_off(ts: float, says: str) -> None:
    """A ts in the future was answered "sent -3600 s ago"."""
    got = parse("snooze", {"txid": "a", "ts": ts})
    assert isinstance(got, Rejection) and got.code == "stale" and got.message == says


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


def test_a_config_under_a_txid_already_refused_is_still_judged(
        broker: Broker, tmp_path: Path, supervisor: tuple[mqtt.Client, Subscriber]) -> None:
    """`deskcue config sign` makes guessable txids. Junk sent first under the next one (by any
    account that may send commands) was answered, and the real signed config under that txid
    then got the junk's cached refusal, never checked. A config is one command only as its
    signed content: a different payload under the same txid is judged on its own; the same
    payload again (a QoS 1 redelivery) is still answered from the first run."""
    pub, sub = supervisor
    judged: list[Command] = []

    def handle(cmd: Command) -> None:
        judged.append(cmd)
        ok = cmd.args.signature == "real"  # type: ignore[attr-defined]
        link.publish_command_result(cmd, ok, data={"hash": "c0ffee"} if ok else None,
                                    error=None if ok else ("bad_signature", "no"))

    link = MqttLink(settings_for(broker), site="site1", desk="desk1",
                    state_dir=tmp_path / "state", on_command=handle,
                    extra_commands={"config": (ALL_ARG_MODELS["config"], 65536)})
    link.start()
    try:
        wait_until(lambda: link.commands_ready)
        junk = {"txid": "cfg-1767225600", "issued": 1767225600, "config": "x",
                "signature": "AA=="}
        real = {**junk, "config": "[device]\n", "signature": "real"}
        for payload in (junk, real, real, {**real, "ts": time.time()}):
            pub.publish(f"{BASE}/cmd/config", json.dumps(payload), qos=1)
        wait_until(lambda: len(sub.messages) == 4)
        assert [c.args.signature for c in judged] == ["AA==", "real"]  # type: ignore[attr-defined]
        assert [r["ok"] for r in results(sub)] == [False, True, True, True]
    finally:
        link.stop(drain_s=0.0)


def test_a_txid_repeated_while_it_runs_is_answered_when_it_is_done(
        broker: Broker, tmp_path: Path, supervisor: tuple[mqtt.Client, Subscriber]) -> None:
    """The appliance answers between audio blocks, later than the link hands a command over:
    a redelivery that comes meanwhile gets the same answer too, when there is one."""
    pub, sub = supervisor
    held: list[Command] = []

    def handle(cmd: Command) -> None:
        if cmd.name == "identify":
            held.append(cmd)  # answered below, as the worker would, later
        else:
            link.publish_command_result(cmd, True, data=STATUS)

    link = MqttLink(settings_for(broker), site="site1", desk="desk1",
                    state_dir=tmp_path / "state", on_command=handle)
    link.start()
    try:
        wait_until(lambda: link.commands_ready)
        for _ in range(3):
            pub.publish(f"{BASE}/cmd/identify", json.dumps({"txid": "z9", "seconds": 2}), qos=1)
        pub.publish(f"{BASE}/cmd/status", json.dumps({"txid": "after"}), qos=1)
        wait_until(lambda: [r["txid"] for r in results(sub)] == ["after"])
        assert len(held) == 1, "run once"
        link.publish_command_result(held[0], True, data={"seconds": 2})
        wait_until(lambda: len(sub.messages) == 4)
        got = [r for r in results(sub) if r["txid"] == "z9"]
        assert len(got) == 3 and all(r == got[0] and r["ok"] for r in got)
    finally:
        link.stop(drain_s=0.0)


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


def test_a_command_sent_retained_runs_once_when_sent_and_never_again(
    broker: Broker, tmp_path: Path, supervisor: tuple[mqtt.Client, Subscriber]
) -> None:
    """What docs/integrations.md says of a command published with retain set by mistake: the
    broker hands it to the listening desk live (without the retain flag: MQTT clears it on live
    delivery), so it runs, once; the copy the broker keeps is ignored, unanswered, when a desk
    connects later."""
    pub, sub = supervisor
    first = Desk(broker, tmp_path / "state")
    first.link.start()
    wait_until(lambda: first.link.commands_ready)
    pub.publish(f"{BASE}/cmd/identify", json.dumps({"txid": "kept", "seconds": 2}), qos=1,
                retain=True).wait_for_publish(2)
    wait_until(lambda: results(sub))
    assert [c.txid for c in first.executed] == ["kept"] and results(sub)[0]["ok"]
    first.link.stop(drain_s=0.0)
    again = Desk(broker, tmp_path / "state")
    again.link.start()
    try:
        wait_until(lambda: again.link.stats()["commands_ignored"] == 1)
        assert again.executed == [] and len(sub.messages) == 1
    finally:
        again.link.stop(drain_s=0.0)
        pub.publish(f"{BASE}/cmd/identify", b"", qos=1, retain=True).wait_for_publish(2)


def answered(sub: Subscriber, txid: str) -> bool:
    return any(m.json()["txid"] == txid for m in sub.messages)


def test_online_means_listening(broker: Broker, tmp_path: Path,
                                supervisor: tuple[mqtt.Client, Subscriber]) -> None:
    """A supervisor may send a command the moment it sees ``online``: by then the broker has
    confirmed the desk's command subscription, on every (re)connection."""
    pub, sub = supervisor
    seen: list[tuple[bytes, bool]] = []
    links: list[MqttLink] = []

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            return  # the previous round's "offline"
        seen.append((bytes(msg.payload), links[-1].commands_ready))
        if msg.payload == b"online":  # a command straight away, sent once
            pub.publish(f"{BASE}/cmd/status", json.dumps({"txid": f"on{len(links)}"}), qos=1)

    watch = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watch.on_message = on_message
    watch.connect(broker.host, broker.port)
    watch.loop_start()
    try:
        done = threading.Event()
        watch.on_subscribe = lambda *_a: done.set()
        watch.subscribe(f"{BASE}/status", qos=1)
        assert done.wait(HANG_S)
        for round_ in range(1, 6):
            d = Desk(broker, tmp_path / "state")
            links.append(d.link)
            d.link.start()
            wait_until(partial(answered, sub, f"on{round_}"))
            d.link.stop(drain_s=0.0)
            wait_until(lambda: seen and seen[-1][0] == b"offline")
    finally:
        watch.disconnect()
        watch.loop_stop()
    assert [ready for payload, ready in seen if payload == b"online"] == [True] * 5


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
        done = (st["commands_rejected"] + st["commands_rate_limited"]
                + st["commands_dropped"]) == len(fuzz)
        return st if done else None

    stats = wait_until(counted)
    wait_until(lambda: len(sub.messages)
               == stats["commands_rejected"] + stats["commands_rate_limited"])
    got = results(sub)
    assert desk.executed == []
    assert all(not r["ok"] for r in got)
    codes = {r["error"]["code"] for r in got}
    assert codes - {"rate_limited"} == {"malformed", "too_large", "unknown_command",
                                        "invalid_args", "stale"}  # fmt: skip


def test_a_flood_is_answered_rate_limited(desk: Desk,
                                          supervisor: tuple[mqtt.Client, Subscriber]) -> None:
    """300 commands at once: a burst is run, the excess answered ``rate_limited`` with its
    txid (not silence), what is beyond even that counted as dropped; the link stays alive."""
    pub, sub = supervisor
    for i in range(300):
        pub.publish(f"{BASE}/cmd/status", json.dumps({"txid": f"x{i}"}), qos=0)

    def counted() -> dict[str, Any] | None:
        st = desk.link.stats()
        done = st["commands"] + st["commands_rate_limited"] + st["commands_dropped"] == 300
        return st if done else None

    stats = wait_until(counted)
    assert stats["commands_rate_limited"] > 0
    wait_until(lambda: len(sub.messages) == stats["commands"] + stats["commands_rate_limited"])
    got = results(sub)
    limited = [r for r in got if not r["ok"]]
    assert len(limited) == stats["commands_rate_limited"]
    assert len(desk.executed) == stats["commands"]
    assert all(r["error"]["code"] == "rate_limited" and r["txid"].startswith("x")
               for r in limited)
    assert len({r["txid"] for r in got}) == len(got), "one answer per command"
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


def test_the_broker_never_hands_the_desk_a_packet_larger_than_it_takes(
        desk: Desk, supervisor: tuple[mqtt.Client, Subscriber]) -> None:
    """A payload is refused `too_large` only once it is in the desk's memory: a 60 MB one to
    cmd/snooze took the appliance from 98 to 274 MB resident, so one near 150 MB, retained,
    would have the kernel kill it (MemoryMax=512M) at every reconnect. The desk tells an
    MQTT 5 broker the largest packet it takes; a larger one never reaches it."""
    pub, sub = supervisor
    pub.publish(f"{BASE}/cmd/status", b"x" * 2_000_000, qos=1).wait_for_publish(10)
    pub.publish(f"{BASE}/cmd/status", b"x" * 4096, qos=1)  # over the limit, still answered
    pub.publish(f"{BASE}/cmd/status", json.dumps({"txid": "after"}), qos=1)
    wait_until(lambda: answered(sub, "after"))
    assert [(r["txid"], r["ok"]) for r in results(sub)] == [(None, False), ("after", True)]
    assert results(sub)[0]["error"]["code"] == "too_large"
    assert desk.link.stats()["commands"] == 2


def test_every_command_refusal_is_listed_for_field_techs(
        desk: Desk, supervisor: tuple[mqtt.Client, Subscriber]) -> None:
    """The messages a supervisor can get are the ones docs/field-tech.md explains."""
    guide = (Path(__file__).resolve().parent.parent / "docs" / "field-tech.md").read_text()
    refusals = [
        parse("snooze", {"txid": "a", "minutes": "5"}),
        parse("identify", {"txid": "a", "seconds": 300}),
        parse("snooze", {"txid": "a", "minutes": 481}),
        parse("status", {"txid": "a", "verbose": True}),
        parse("snooze", {"txid": "a", "minutes": None}),
        parse("snooze", b'{"txid": "a", "txid": "b"}'),
        parse("snooze", b'{"txid": "a", "minutes": NaN}'),
        parse("snooze", b"\xff"),
        parse("snooze", [1]),
        parse("snooze", {"txid": None, "minutes": 1}),
        parse("snooze", b"{" + b" " * 2000 + b"}"),
        parse("reboot", {"txid": "a"}),
        parse("snooze", {"txid": "a", "ts": NOW - 3600}),
    ]
    for r in refusals:
        assert isinstance(r, Rejection) and f"`{r.code}`: " in guide, r
        assert f"`{r.message}`" in guide or f"/ `{r.message}`" in guide, r.message
    # the link's own answer to a command over the rate, as sent
    pub, sub = supervisor
    for i in range(100):
        pub.publish(f"{BASE}/cmd/status", json.dumps({"txid": f"r{i}"}), qos=0)
    limited = wait_until(lambda: [r for r in results(sub) if not r["ok"]])
    assert f"`rate_limited`: `{limited[0]['error']['message']}`" in guide


# -- through the appliance -----------------------------------------------------------------------


def test_the_appliance_does_what_it_answers(broker: Broker, tmp_path: Path) -> None:
    """The whole desk (no audio device: commands are still taken): identify blinks as long
    as it says, a bound or a type the contract refuses is refused, and ``status`` counts what
    the link did with the commands."""
    from firmware.appliance.assemble import make_link
    from firmware.appliance.worker import Appliance
    from firmware.config.settings import Settings
    from firmware.errors import AudioError

    settings = Settings.model_validate({
        "device": {"site": "site1", "desk": "desk1", "state_dir": str(tmp_path / "state"),
                   "runtime_dir": str(tmp_path / "run")},
        "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1,
                 "reconnect_max_s": 0.5, "keepalive_s": 5},
    })

    def no_audio() -> Any:
        raise AudioError("no audio device in this test")

    app = Appliance(settings, open_source=no_audio, persist=False, retry_s=3600.0)
    app.link = make_link(settings, app)
    stop = threading.Event()
    worker = threading.Thread(target=app.run, args=(stop,))
    worker.start()
    sub = Subscriber(broker, f"{BASE}/cmd/+/result").connect()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        wait_until(lambda: app.link.commands_ready, alive=worker.is_alive)  # type: ignore[union-attr]

        def ask(name: str, payload: dict[str, Any]) -> dict[str, Any]:
            pub.publish(f"{BASE}/cmd/{name}", json.dumps(payload), qos=1)
            return dict(wait_until(lambda: next((r for r in results(sub)
                                                 if r["txid"] == payload["txid"]), None),
                                   alive=worker.is_alive))

        for txid, seconds in (("i1", "5"), ("i2", True), ("i3", 300)):
            r = ask("identify", {"txid": txid, "seconds": seconds})
            assert r["error"]["code"] == "invalid_args", r
            assert r["error"]["message"].startswith("seconds: "), r
        assert app.status().display != "identify"
        r = ask("identify", {"txid": "i4", "seconds": 120})
        assert r["ok"] and r["data"] == {"seconds": 120.0}, r
        assert app.status().display == "identify"  # for the 120 s it said
        status = ask("status", {"txid": "q1"})["data"]
        assert status["commands"] == {"checked": 5, "refused": 3, "ignored": 0,
                                      "rate_limited": 0, "dropped": 0}, status
    finally:
        pub.disconnect()
        pub.loop_stop()
        sub.close()
        stop.set()
        worker.join(HANG_S)
