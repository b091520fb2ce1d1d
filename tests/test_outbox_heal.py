"""An outbox that heals: what an SD card does after a power cut, or when it fills up or turns
read-only, never stops the desk cueing or publishing what can be published.

Damage is done with sqlite3 and plain file writes on the real file; a full card is the desk's
own process limited to files of 0 bytes (``RLIMIT_FSIZE``: every write to a file fails with
EFBIG, as on a full card every write that needs a block fails with ENOSPC). Root ignores
permission bits, and mounting a small or read-only filesystem needs privileges the tests do
not have, so the limit is the honest, hermetic way to make every write to the card fail; set
on a running desk it is a card turning read-only mid-run (EROFS on every write).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from broker import Subscriber, gated_restart, make_events, settings_for, unique_in_order
from test_e2e_outage import USERS, desk, deskcue, recordings  # noqa: F401 - fixtures
from test_mqtt_link import BASE, LinkProcess, gated  # noqa: F401 - fixtures
from waiting import HANG_S, wait_until

from firmware.appliance.assemble import build_appliance
from firmware.config.load import load_settings
from firmware.link.mqtt_client import MqttLink
from firmware.link.outbox import Outbox

EARLIER = "e" * 32  # the boot id of events left by an earlier run


def seed(state: Path, n: int) -> None:
    """``n`` events of an earlier run, pending in the outbox in ``state``."""
    state.mkdir(parents=True, exist_ok=True)
    with Outbox(state / "outbox.db") as box:
        for env in make_events(n, boot_id=EARLIER):
            box.put(env)


def poison(db: Path, rowid: int, raw: bytes) -> None:
    """Overwrite one row's payload with ``raw`` bytes, as TEXT, straight through SQLite."""
    with contextlib.closing(sqlite3.connect(db)) as c:
        c.execute("UPDATE outbox SET payload = CAST(? AS TEXT) WHERE id = ?", (raw, rowid))
        c.commit()


BAD_UTF8 = b'{"id": "\xff\xfe broken'
BAD_JSON = b'{"schema": 1, "id": "3f2a'


def test_unreadable_rows_are_set_aside_and_the_rest_stay_in_order(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    seed(tmp_path, 6)
    poison(db, 2, BAD_UTF8)
    poison(db, 4, BAD_JSON)
    with Outbox(db) as box:
        assert len(box) == 6
        got = box.pending(limit=3)
        assert [json.loads(p.payload)["seq"] for p in got] == [1, 3, 5], "limit still filled"
        assert [json.loads(p.payload)["seq"] for p in box.pending()] == [1, 3, 5, 6]
        assert len(box) == 4 and box.set_aside_total == 2 and box.take_set_aside() == 2
        assert box.take_set_aside() == 0
    with contextlib.closing(sqlite3.connect(db)) as c:
        kept = c.execute("SELECT outbox_id, payload, reason FROM set_aside ORDER BY id").fetchall()
    assert [(r[0], bytes(r[1])) for r in kept] == [(2, BAD_UTF8), (4, BAD_JSON)]
    assert "UnicodeDecodeError" in kept[0][2] and "JSONDecodeError" in kept[1][2]
    with Outbox(db) as box:
        assert box.set_aside_total == 2, "the count is kept across restarts"
        assert [json.loads(p.payload)["seq"] for p in box.pending()] == [1, 3, 5, 6]


def test_link_sets_poisoned_rows_aside_and_delivers_the_rest(broker, tmp_path: Path) -> None:
    state = tmp_path / "state"
    seed(state, 6)
    poison(state / "outbox.db", 2, BAD_UTF8)
    poison(state / "outbox.db", 5, BAD_JSON)
    sub = Subscriber(broker, "deskcue/site1/desk1/events", qos=1).connect()
    link = MqttLink(settings_for(broker), site="site1", desk="desk1", state_dir=state)
    try:
        link.start()
        wait_until(lambda: len(sub.events()) >= 4)
        # The fault's words follow the set-aside count at the link's next housekeeping tick,
        # which may come after the events behind the second damaged row went out.
        wait_until(lambda: "2 unreadable outbox row(s) set aside" in str(link.storage_fault))
        later = make_events(1, start_seq=10)[0]
        link.publish_event(later)  # the worker is alive and goes on
        wait_until(lambda: any(e["id"] == later["id"] for e in sub.events()))
        assert link.stats()["outbox_set_aside"] == 2
        assert link.outbox_depth().set_aside == 2
    finally:
        link.stop(drain_s=5.0)
        sub.close()
    assert [e["seq"] for e in unique_in_order(sub.events())] == [1, 3, 4, 6, 10]


def damage_page(db: Path, page: int) -> None:
    """Overwrite one 4 KiB page of the database file (its WAL folded in first) with noise."""
    with contextlib.closing(sqlite3.connect(db)) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with db.open("r+b") as f:
        f.seek(page * 4096)
        f.write(os.urandom(4096))


@pytest.mark.parametrize("page", [1, 6, 12])
def test_damaged_page_file_moved_aside_readable_events_go_on(broker, tmp_path, page):
    """Page 1 is the root of the events' table: found when they are read, mid-run, and none
    can be read. Page 6 (an index) is found at open, and every event is carried over. Page 12
    holds some of the events: those on other pages, after it too, are carried over."""
    state = tmp_path / "state"
    seed(state, 60)
    damage_page(state / "outbox.db", page)
    sub = Subscriber(broker, "deskcue/site1/desk1/events", qos=1).connect()
    link = MqttLink(settings_for(broker), site="site1", desk="desk1", state_dir=state)
    later = make_events(1, start_seq=100)[0]
    try:
        link.start()
        wait_until(lambda: link.storage_fault)
        link.publish_event(later)
        wait_until(lambda: any(e["id"] == later["id"] for e in sub.events()))
    finally:
        link.stop(drain_s=5.0)
        sub.close()
    # by path: the tech copies it off the card from there
    assert f"storage: {state / 'outbox.db'} was " in str(link.storage_fault)
    assert f"moved aside to {state / 'outbox.db.corrupt-'}" in str(link.storage_fault)
    assert len(list(state.glob("outbox.db.corrupt-*"))) == 1
    seqs = [e["seq"] for e in unique_in_order(sub.events())]
    assert seqs[-1] == 100 and seqs == sorted(seqs), "what could be read, in order, then on"
    read = seqs[:-1]
    if page == 1:
        assert read == []
    elif page == 6:
        assert read == list(range(1, 61))
    else:
        assert 0 < len(read) < 60 and read[-1] == 60, "rows past the damaged page, too"
    assert f"{len(read)} pending event(s) carried over" in str(link.storage_fault)


def run_desk(cfg: Path) -> tuple[Any, list[dict[str, Any]]]:
    """The whole appliance in this process on the cue recording (fast), to its end."""
    settings = load_settings(cfg)
    app = build_appliance(settings, recording=cfg.parent / "cues.wav", fast=True, pins="mock")
    emitted: list[dict[str, Any]] = []
    app.on_event = emitted.append
    assert app.run(threading.Event()) == 0
    return app, emitted


def storage_faults(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["type"] == "fault" and e["data"]["kind"] == "storage"]


@pytest.mark.e2e
def test_poisoned_outbox_row_keeps_the_desk_cueing_and_publishing(desk, recordings, tmp_path):  # noqa: F811
    broker, cfg, state = desk
    (cfg.parent / "cues.wav").write_bytes(recordings["cues"].read_bytes())
    seed(state, 4)
    poison(state / "outbox.db", 3, BAD_UTF8)
    sub = Subscriber(broker, "deskcue/s/d/events", qos=1, username="sub",
                     password=USERS["sub"]).connect()
    try:
        app, emitted = run_desk(cfg)
        wait_until(lambda: len(unique_in_order(sub.events())) >= 3 + len(emitted))
    finally:
        sub.close()
    got = unique_in_order(sub.events())
    assert [e["seq"] for e in got if e["boot_id"] == EARLIER] == [1, 2, 4]
    faults = storage_faults(got)
    assert len(faults) == 1 and faults[0]["active"]
    assert "1 unreadable outbox row(s) set aside" in faults[0]["fault"]
    mine = [e for e in got if e["boot_id"] != EARLIER]
    assert [e["seq"] for e in mine] == list(range(1, len(mine) + 1)), "in order, no gap"
    assert [e["type"] for e in mine].count("raised_voice.started") == 2, "cueing went on"
    st = app.status()
    assert st.outbox is not None and st.outbox.set_aside == 1
    assert st.fault and "set aside" in st.fault


@pytest.mark.e2e
def test_garbage_outbox_file_is_moved_aside_and_a_fresh_one_started(desk, recordings):  # noqa: F811
    broker, cfg, state = desk
    (cfg.parent / "cues.wav").write_bytes(recordings["cues"].read_bytes())
    garbage = os.urandom(4096) + b"SD card after a power cut" * 100
    state.mkdir(exist_ok=True)
    (state / "outbox.db").write_bytes(garbage)
    sub = Subscriber(broker, "deskcue/s/d/events", qos=1, username="sub",
                     password=USERS["sub"]).connect()
    try:
        app, emitted = run_desk(cfg)
        wait_until(lambda: len(unique_in_order(sub.events())) >= len(emitted))
    finally:
        sub.close()
    got = unique_in_order(sub.events())
    assert [e["id"] for e in got] == [e["id"] for e in emitted]
    faults = storage_faults(got)
    assert len(faults) == 1 and f"moved aside to {state / 'outbox.db.corrupt-'}" in \
        faults[0]["fault"]
    aside = list(state.glob("outbox.db.corrupt-*"))
    assert [p.read_bytes() for p in aside if p.name.count("-") == 1] == [garbage], "kept"
    assert [e["type"] for e in got].count("raised_voice.started") == 2
    with Outbox(state / "outbox.db") as box:  # the fresh file is a working outbox
        assert len(box) == 0


def limit_file_size() -> None:
    """In the desk's process: no file may grow past 0 bytes (every write fails, EFBIG)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))


@pytest.mark.e2e
@pytest.mark.parametrize("when", ["at_start", "mid_run"])
def test_unwritable_state_dir_faults_and_the_desk_goes_on(desk, recordings, when):  # noqa: F811
    broker, cfg, state = desk
    sub = Subscriber(broker, "deskcue/s/d/events", qos=1, username="sub",
                     password=USERS["sub"]).connect()
    p = subprocess.Popen(deskcue("run", "--config", str(cfg), "--source", str(recordings["cues"]),
                                 "--fast", "--pins", "mock"),
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                         preexec_fn=limit_file_size if when == "at_start" else None)
    assert p.stderr is not None
    lines: list[str] = []
    try:
        for line in p.stderr:
            lines.append(line)
            if when == "mid_run" and " event call.started " in line:
                # the card turns read-only under the running desk, before its first cue
                resource.prlimit(p.pid, resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        assert p.wait(HANG_S) == 0, "".join(lines[-30:])
        logged = [ln.split("event ", 1)[1].split()[0] for ln in lines if " event " in ln]
        wait_until(lambda: len(unique_in_order(sub.events())) >= len(logged))
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(HANG_S)
        sub.close()
    got = unique_in_order(sub.events())
    assert [e["type"] for e in got] == logged, "every event published, in order"
    assert [e["seq"] for e in got] == list(range(1, len(got) + 1))
    faults = storage_faults(got)
    assert faults and faults[0]["active"] and "not durable" in faults[0]["fault"]
    assert logged.count("raised_voice.started") == 2, "cueing went on"
    text = "".join(lines)
    assert "mqtt worker failed" not in text
    fault_at = text.index("LED -> fault")
    assert "LED -> raised voice" in text[fault_at:], "the cue shows after the fault"


def file_size_limit(pid: int, limit: int) -> None:
    """Limit the files process ``pid`` may grow to ``limit`` bytes (RLIM_INFINITY: lifted)."""
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def test_full_card_mid_run_then_writable_again(gated, tmp_path: Path) -> None:  # noqa: F811
    """Events go on through memory while the card takes no write, those already on it
    included; once it takes writes again, events are on disk again (a kill -9 after that
    loses nothing) and what memory delivered meanwhile is not left pending there."""
    broker, creds = gated
    state = tmp_path / "state"
    sub = Subscriber(broker, f"{BASE}/events", qos=1, username="sub",
                     password=USERS["sub"]).connect()
    p1 = LinkProcess(broker, state, "1" * 32, creds)

    def storage() -> str:
        p1.send("storage", "storage")
        return p1.last.strip()

    try:
        p1.send("publish 3", "stored 3")
        p1.send("flush", "flushed")
        broker.stop()
        p1.send("publish 3", "stored 6")  # pending on the card
        file_size_limit(p1.proc.pid, 0)
        p1.send("publish 3", "stored 9")
        assert storage().startswith("storage 0 6 storage: outbox not durable")
        # which file on which card, for the tech who reads it in `deskcue status`
        assert f"({state / 'outbox.db'}: " in storage(), storage()
        gated_restart(broker, sub, USERS, "sub")
        wait_until(lambda: len(unique_in_order(sub.events())) >= 9)  # delivered from memory
        file_size_limit(p1.proc.pid, resource.RLIM_INFINITY)
        wait_until(lambda: storage() == "storage 1 0 none", interval=0.2)
        broker.stop()
        p1.send("publish 3", "stored 12")  # on disk again, the broker away
        p1.kill9()
        gated_restart(broker, sub, USERS, "sub")
        p2 = LinkProcess(broker, state, "2" * 32, creds)
        wait_until(lambda: len(unique_in_order(sub.events())) >= 12)
        p2.stop()
    finally:
        if p1.proc.poll() is None:
            p1.kill9()
        sub.close()
    assert [e["seq"] for e in unique_in_order(sub.events())] == list(range(1, 13))
