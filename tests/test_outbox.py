"""The durable outbox on its own: order, durability, bounds and drop reports."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from broker import make_events

from firmware.link.envelope import EventStamper
from firmware.link.outbox import REPORT_LOST_S, Dropped, Outbox, OutboxLocked


class Clock:
    """Settable wall and monotonic clocks (seconds)."""

    def __init__(self) -> None:
        self.wall = 1_767_225_600.0
        self.mono = 1000.0
        self.synced = True

    def advance(self, s: float) -> None:
        self.wall += s
        self.mono += s


def make_box(path: Path | None, clock: Clock, boot: str = "k1", **kw: float) -> Outbox:
    return Outbox(
        path,
        wall=lambda: clock.wall,
        mono=lambda: clock.mono,
        synced=lambda: clock.synced,
        kernel_boot=boot,
        **kw,  # type: ignore[arg-type]
    )


def test_stores_in_order_and_removes_on_ack(tmp_path: Path) -> None:
    clock = Clock()
    with make_box(tmp_path / "o.db", clock) as box:
        events = make_events(5)
        rowids = [box.put(e, origin="x") for e in events]
        assert rowids == sorted(rowids) and len(box) == 5
        pending = box.pending(limit=10)
        assert [json.loads(p.payload)["seq"] for p in pending] == [1, 2, 3, 4, 5]
        assert box.put(events[0]) is None, "a stored id is not stored twice"
        assert box.remove([rowids[0], rowids[2]]) == 2
        assert [json.loads(p.payload)["seq"] for p in box.pending()] == [2, 4, 5]
        assert [p.rowid for p in box.pending(after=rowids[1])] == rowids[3:]
        assert len(box) == 3


def test_survives_reopen_and_uses_wal(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "o.db"
    with make_box(path, clock) as box:
        for e in make_events(3):
            box.put(e)
    with make_box(path, clock) as box:
        assert [json.loads(p.payload)["seq"] for p in box.pending()] == [1, 2, 3]
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_kill_9_after_put_loses_nothing(tmp_path: Path) -> None:
    """A process killed right after `put` returns leaves its events on disk."""
    path = tmp_path / "o.db"
    script = (
        "import sys, os, signal; sys.path.insert(0, sys.argv[2])\n"
        "from broker import make_events\n"
        "from firmware.link.outbox import Outbox\n"
        "box = Outbox(sys.argv[1])\n"
        "for e in make_events(50): box.put(e)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    tests_dir = str(Path(__file__).parent)
    proc = subprocess.run([sys.executable, "-c", script, str(path), tests_dir], check=False)
    assert proc.returncode == -9
    with make_box(path, Clock()) as box:
        assert [json.loads(p.payload)["seq"] for p in box.pending(limit=100)] == list(range(1, 51))


def test_count_bound_drops_oldest_and_reports(tmp_path: Path) -> None:
    clock = Clock()
    with make_box(tmp_path / "o.db", clock, max_events=10) as box:
        for e in make_events(15):
            box.put(e)
        first = box.pending(limit=1)[0].rowid
        drops = box.enforce(keep=[first])  # the in-flight one is never dropped
        assert len(drops) == 1 and drops[0].reasons == {"max_events": 5} and drops[0].count == 5
        assert drops[0].ranges == [{"boot_id": "b" * 32, "first_seq": 2, "last_seq": 6, "count": 5}]
        assert [json.loads(p.payload)["seq"] for p in box.pending(limit=100)] == [1, *range(7, 16)]
        assert box.dropped_total == 5
        box.put(make_events(1, start_seq=16)[0])
        box.enforce()  # drops seq 1 (no longer kept), merged into the one report
    with make_box(tmp_path / "o.db", clock, max_events=10) as box:
        assert box.dropped_total == 6, "the drop total persists"
        report = box.take_unreported()
        assert report is not None
        assert report.as_event_data() == {
            "count": 6,
            "reasons": {"max_events": 6},
            "total": 6,
            "ranges": [{"boot_id": "b" * 32, "first_seq": 1, "last_seq": 6, "count": 6}],
        }
        assert box.take_unreported() is None
        box.put(report_event(report))
    with make_box(tmp_path / "o.db", clock, max_events=10) as box:
        assert box.unreported is None, "a report stored as its event stays reported"


def report_event(report: Dropped, seq: int = 100) -> dict[str, Any]:
    """The ``outbox_dropped`` event envelope the appliance makes of ``report``."""
    stamper = EventStamper(boot_id="c" * 32, seq=seq - 1, wall_clock=lambda: 1_767_225_600.0)
    return stamper.stamp("outbox_dropped", report.as_event_data(), stream_s=1.0).to_json()


def test_a_report_taken_but_never_stored_as_its_event_is_not_lost(tmp_path: Path) -> None:
    """The note of unreported drops was deleted when the report was taken, before the
    appliance had made and stored its event: a power cut or a stop in between (a pushed
    config restarts the service) lost the report for good. It now leaves the note only with
    its event, in one transaction; drops that come meanwhile join it."""
    clock = Clock()
    path = tmp_path / "o.db"
    with make_box(path, clock, max_events=4) as box:
        for e in make_events(6):
            box.put(e)
        box.enforce()  # seq 1-2 dropped
        taken = box.take_unreported()
        assert taken is not None and taken.count == 2
        assert box.take_unreported() is None, "one report at a time"
        for e in make_events(2, start_seq=7):
            box.put(e)
        box.enforce()  # seq 3-4 dropped while the report is on its way
    # the power went before the report's event was stored: both come back, as one
    with make_box(path, clock, max_events=4) as box:
        again = box.take_unreported()
        assert again is not None and again.count == 4 and again.ranges == [
            {"boot_id": "b" * 32, "first_seq": 1, "last_seq": 4, "count": 4}]
        box.put(report_event(again))
        assert box.unreported is None
        # an event lost on its way (never stored) is taken again after REPORT_LOST_S
        for e in make_events(2, start_seq=9):
            box.put(e)
        box.enforce()  # seq 5-7 dropped (the stored report is one of the rows kept)
        lost = box.take_unreported()
        assert lost is not None and lost.count == 3
        clock.advance(REPORT_LOST_S - 1)
        assert box.take_unreported() is None
        clock.advance(2)
        retaken = box.take_unreported()
        assert retaken is not None and retaken.as_event_data() == lost.as_event_data()
    with make_box(path, clock, max_events=4) as box:
        stored = box.take_unreported()
        assert stored is not None and stored.count == 3, "still there until its event is"


def test_age_bound_same_boot_uses_monotonic_clock(tmp_path: Path) -> None:
    clock = Clock()
    with make_box(tmp_path / "o.db", clock, max_age_s=100.0) as box:
        for e in make_events(3):
            box.put(e)
        clock.advance(50)
        for e in make_events(2, start_seq=4):
            box.put(e)
        clock.mono += 60  # 110 s for the first three, 60 s for the last two
        clock.wall -= 10_000  # a wall-clock jump does not matter within a boot
        drops = box.enforce()
        assert [(d.reasons, d.count) for d in drops] == [({"max_age": 3}, 3)]
        assert len(box) == 2


def test_age_across_boots_only_when_clock_synced(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "o.db"
    clock.synced = False
    with make_box(path, clock, boot="k1", max_age_s=100.0) as box:
        box.put(make_events(1)[0])  # stored with an unsynced clock
    clock.synced = True
    with make_box(path, clock, boot="k1", max_age_s=100.0) as box:
        box.put(make_events(1, start_seq=2)[0])  # stored with a synced clock
    clock.advance(1000)
    with make_box(path, clock, boot="k2", max_age_s=100.0) as box:
        drops = box.enforce()
        # The synced one is judged by wall time and dropped; the unsynced one's age is unknown.
        assert [(d.count, d.ranges[0]["first_seq"]) for d in drops] == [(1, 2)]
        assert [json.loads(p.payload)["seq"] for p in box.pending()] == [1]
    clock.synced = False
    with make_box(path, clock, boot="k3", max_age_s=100.0) as box:
        assert box.enforce() == [], "nothing is aged while the clock is not synced"


def test_second_process_is_locked_out(tmp_path: Path) -> None:
    with make_box(tmp_path / "o.db", Clock()), pytest.raises(OutboxLocked):
        make_box(tmp_path / "o.db", Clock())


def test_corrupt_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    path.write_bytes(b"this is not a database" * 100)
    with make_box(path, Clock()) as box:
        box.put(make_events(1)[0])
        assert len(box) == 1
    assert list(tmp_path.glob("o.db.corrupt-*"))


def test_memory_fallback() -> None:
    with make_box(None, Clock()) as box:
        assert not box.durable
        box.put(make_events(1)[0])
        assert len(box) == 1


def test_a_drop_is_logged_with_the_file_the_bound_and_what_to_do(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`outbox: dropped 5 event(s) (max_events), 5 dropped in all` told a support engineer
    grepping the journal neither which file, nor which setting was reached, nor why events
    piled up (the broker out of reach) and what to look at."""
    clock = Clock()
    with make_box(tmp_path / "o.db", clock, max_events=10, max_age_s=3600.0) as box:
        for e in make_events(15):
            box.put(e)
        with caplog.at_level("WARNING", logger="firmware.link.outbox"):
            box.enforce()
            clock.advance(7200.0)
            box.enforce()
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(lines) == 2, lines
    count, age = lines
    for line in lines:
        assert str(tmp_path / "o.db") in line and "broker" in line, line
    assert "mqtt.outbox_max_events = 10" in count and "5 " in count, count
    assert "mqtt.outbox_max_age_h = 1" in age, age
