"""Property-based fuzz of command payloads: random JSON and bytes on every command topic.

Whatever arrives, `parse_command` answers with a `Command` whose arguments are exactly the
values sent (nothing coerced, nothing unknown) or a `Rejection` whose result is on the
contract; through a running link and a real mosquitto, every command that can be answered
gets exactly one result, none ends in an internal error, and the desk's events flow on.

Bounded: a few hundred examples for the parser (milliseconds each), a few dozen batches
through the broker; no per-example deadline.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from asyncapi_check import validate
from broker import Broker, Subscriber, make_events, settings_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from test_commands import BASE, NOW, Desk
from waiting import HANG_S, wait_until

from firmware.contract.commands import ALL_ARG_MODELS
from firmware.link.commands import NAME_RE, Command, Rejection, parse_command, result_payload
from firmware.link.mqtt_client import MqttLink

NAMES = [*ALL_ARG_MODELS, "reboot", "SNOOZE", "x" * 33, "a.b", "é", "-"]
FIELDS = ["txid", "ts", "minutes", "seconds", "issued", "config", "signature", "key_id",
          "verbose", ""]

leaf = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
        | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
        | st.sampled_from(["5", "10.0", "true", "", "t1", NOW, NOW - 3600, 0, 0.5, 120, 480]))
json_values = st.recursive(leaf, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                           max_leaves=6)
plausible = st.integers(0, 600) | st.floats(0, 600) | st.just(NOW)


TRICKY = st.sampled_from(["5", "10.0", "1e3", "", "true", True, False, None, [5], {"v": 5},
                          5, 5.0, 0, -1, 121, 481, 2**63, 1e300, "z1"])


@st.composite
def command_object(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """A JSON object near a real ``name`` command: each of its own keys left out, right or
    wrong (a number as text, true/false, null, an array, out of bounds); now and then an
    unknown key; mostly a valid txid."""
    model = ALL_ARG_MODELS[name]
    obj: dict[str, Any] = {}
    for key in model.model_fields:
        if key == "txid" or draw(st.booleans()):
            continue
        good = st.just(NOW) if key == "ts" else plausible | st.text(max_size=8)
        obj[key] = draw(st.one_of(good, TRICKY))
    if draw(st.integers(0, 4)) == 0:
        obj[draw(st.sampled_from(FIELDS) | st.text(max_size=6))] = draw(TRICKY | json_values)
    txid = st.integers(0, 2**40).map(lambda n: f"z{n}")
    choice = draw(st.one_of(txid, txid, txid, TRICKY | json_values, st.just(ABSENT)))
    if choice is not ABSENT:
        obj["txid"] = choice
    return obj


ABSENT = object()


@st.composite
def near_command(draw: st.DrawFn) -> tuple[str, bytes]:
    """A real command's name and a JSON object close to its arguments."""
    name = draw(st.sampled_from(list(ALL_ARG_MODELS)))
    return name, json.dumps(draw(command_object(name))).encode()


@st.composite
def noise(draw: st.DrawFn, names: st.SearchStrategy[str]) -> tuple[str, bytes]:
    """Anything else: bytes, other JSON, a command cut short, a repeated key, NaN."""
    name = draw(names)
    kind = draw(st.sampled_from(["bytes", "other", "cut", "dup", "nan"]))
    if kind == "bytes":
        return name, draw(st.binary(max_size=64))
    if kind == "other":
        return name, json.dumps(draw(json_values)).encode()
    _, raw = draw(near_command())
    if kind == "cut":
        return name, raw[:draw(st.integers(0, len(raw)))]
    if kind == "dup" and raw != b"{}":
        return name, raw[:-1] + b', "txid": "again"}'
    return name, raw.replace(b"}", b', "minutes": NaN}', 1)


ANY_NAME = st.sampled_from(NAMES)


def command(names: st.SearchStrategy[str] = ANY_NAME) -> st.SearchStrategy[tuple[str, bytes]]:
    """(command name, payload bytes) as a supervisor, a broken tool or an attacker might
    send them: mostly close to a real command, where coercion would show."""
    return st.one_of(near_command(), near_command(), near_command(), noise(names))


def loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def same_txid(obj: Any, txid: str | None) -> bool:
    """``txid`` is the one sent, or one the desk made for a command sent without one."""
    if isinstance(obj, dict) and "txid" not in obj:
        return txid is not None and txid.startswith("desk:")
    return isinstance(obj, dict) and obj.get("txid") == txid


def taken_as_sent(cmd: Command, raw: bytes) -> None:
    """The command runs with exactly what was sent: only the model's keys, the same values,
    the same JSON types (an integer for a number is the one widening allowed)."""
    obj = json.loads(raw)
    model = ALL_ARG_MODELS[cmd.name]
    assert set(obj) <= set(model.model_fields), obj
    for key, sent in obj.items():
        got = getattr(cmd.args, key)
        assert type(sent) is type(got) or (type(sent) is int and type(got) is float), \
            (key, sent, got)
        assert sent == got, (key, sent, got)
    validate(f"cmd/{cmd.name}", obj)


def _as_sent(cmd: Command, raw: bytes) -> bool:
    try:
        taken_as_sent(cmd, raw)
    except AssertionError:
        return False
    return True


PARSE = settings(max_examples=600, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow])


@PARSE
@given(sent=command())
def test_every_payload_is_run_as_sent_or_refused_on_the_contract(sent: tuple[str, bytes]
                                                                  ) -> None:
    name, raw = sent
    r = parse_command(name, raw, now=NOW, max_bytes=512, models=ALL_ARG_MODELS)
    if not NAME_RE.match(name):
        assert r is None
        return
    assert isinstance(r, Command | Rejection), r
    if isinstance(r, Command):
        taken_as_sent(r, raw)
        return
    result = result_payload(r.name, r.txid, False, error=(r.code, r.message), now=NOW)
    validate(f"cmd/{name}/result", result)
    obj = loads(raw)
    if r.txid is not None:
        assert same_txid(obj, r.txid), (obj, r.txid)
    assert r.message and "\n" not in r.message


# -- through the link and a real mosquitto --------------------------------------------------------


class Errors(logging.Handler):
    """Every ERROR record from the link: an internal error, whatever was caught."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def rig(broker: Broker, tmp_path: Path) -> Iterator[tuple[Desk, mqtt.Client, Subscriber,
                                                          Subscriber, Errors]]:
    errors = Errors()
    logging.getLogger("firmware.link").addHandler(errors)
    desk = Desk(broker, tmp_path / "state")
    # Every command reaches validation: the rate limit has tests of its own.
    desk.link = MqttLink(settings_for(broker), site="site1", desk="desk1",
                         state_dir=tmp_path / "state", on_command=desk.handle,
                         command_rate=(1e6, 1e6))
    desk.link.start()
    wait_until(lambda: desk.link.commands_ready)
    results = Subscriber(broker, f"{BASE}/cmd/+/result").connect()
    events = Subscriber(broker, f"{BASE}/events").connect()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        yield desk, pub, results, events, errors
    finally:
        pub.disconnect()
        pub.loop_stop()
        results.close()
        events.close()
        desk.link.stop(drain_s=0.0)
        logging.getLogger("firmware.link").removeHandler(errors)


LINK = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])
TOPIC_NAMES = st.sampled_from(NAMES) | st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789_-.:é ", min_size=1, max_size=40)


@LINK
@given(batch=st.lists(command(TOPIC_NAMES), min_size=1, max_size=8))
def test_every_command_through_the_broker_gets_one_answer(
        rig: tuple[Desk, mqtt.Client, Subscriber, Subscriber, Errors],
        batch: list[tuple[str, bytes]]) -> None:
    desk, pub, results, events, errors = rig
    before = desk.link.stats()
    answers_before, runs_before = len(results.messages), len(desk.executed)
    seen = len(events.events())
    desk.link.publish_event(make_events(1, start_seq=seen + 1)[0])
    for name, raw in batch:
        pub.publish(f"{BASE}/cmd/{name}", raw, qos=1).wait_for_publish(HANG_S)

    def settled() -> dict[str, Any] | None:
        st_ = desk.link.stats()
        done = st_["commands"] - before["commands"] == len(batch)
        return st_ if done else None

    after = wait_until(settled)
    ignored = after["commands_ignored"] - before["commands_ignored"]
    assert ignored == sum(not NAME_RE.match(name) for name, _ in batch)
    wait_until(lambda: len(results.messages) - answers_before == len(batch) - ignored)
    got = results.messages[answers_before:]
    answerable = [(n, r) for n, r in batch if NAME_RE.match(n)]
    # one answer per command, on its own topic, in the order sent, each on the contract
    assert [m.topic.rsplit("/", 2)[-2] for m in got] == [n for n, _ in answerable]
    for m in got:
        validate(m.topic[len(BASE) + 1:], m.json())
    for (name, raw), m in zip(answerable, got, strict=True):
        result = m.json()
        obj = loads(raw)
        if result["ok"]:
            assert result["cmd"] == name and same_txid(obj, result["txid"])
        elif result["txid"] is not None:
            assert same_txid(obj, result["txid"]), (obj, result["txid"])
        assert result.get("error", {}).get("code") != "rate_limited"
    # nothing ran with arguments other than those sent
    for cmd in desk.executed[runs_before:]:
        sent = [r for n, r in answerable if n == cmd.name and same_txid(loads(r), cmd.txid)]
        # a command sent without a txid: one of those with no txid is the one that ran
        assert any(_as_sent(cmd, r) for r in sent), (cmd, sent)
    assert not errors.records, [r.getMessage() for r in errors.records]
    # the desk kept publishing through it
    wait_until(lambda: len(events.events()) == seen + 1)
    assert [e["seq"] for e in events.events()] == list(range(1, seen + 2))
    assert threading.active_count() < 50
