"""Durable outbox: every event is on disk before it is published, until the broker has it.

An SQLite database in WAL mode (``<state_dir>/outbox.db``) holds one row per pending event, in
the order the events were handed over (``rowid``). A row is inserted, with a full fsync, before
its event is published, and deleted only when the broker acknowledges it (QoS 1 PUBACK), so a
broker outage, a restart of the appliance or a ``kill -9`` loses nothing that was stored: the
next start publishes what is left, oldest first.

The outbox is bounded by count (``max_events``) and age (``max_age_s``). Beyond them the
oldest events are dropped; drops are merged into one persistent, not-yet-reported `Dropped`
report (how many, why, which boot ids and sequence numbers) and a persistent total, so the
link can tell the supervisor exactly which events will never arrive once it can reach them
(`take_unreported`), without a report per drop feeding more drops while the broker is away.
A report taken stays in that note until its ``outbox_dropped`` event is stored here (in the
same transaction): a power cut or a stop before then reports it again at the next start, never
loses it.

Age is only judged when it can be trusted. A Pi without a real-time clock boots with a wrong
wall clock, so an event stored in the same kernel boot is aged by the monotonic clock; one from
an earlier boot only when the wall clock was synced both when it was stored and now;
otherwise its age is unknown and it is kept (the count bound still applies).

What a power cut or a failing card does to the file is healed, never fatal. A row that cannot
be read (not UTF-8, not JSON) is moved to the ``set_aside`` table of the same file with its raw
bytes and counted (`pending`), and the rows after it go on in order. A file that is not a
database, or is damaged, is moved aside as ``outbox.db.corrupt-<unix time>`` and a fresh one
started (`move_aside`; at open `recovered` says where it went); `salvage` and `adopt` carry the
rows that can still be read into the fresh file, or into memory when the state directory cannot
be written (full, read-only): `storage_trouble` tells the cases apart for the link.

The class is not thread-safe: the link's worker thread owns it. A lock file keeps a second
process from replaying the same rows at the same time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.errors import OutboxLocked
from firmware.platform.host import clock_is_synced

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    boot_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    payload TEXT NOT NULL,
    origin TEXT NOT NULL,
    stored_wall REAL NOT NULL,
    stored_mono REAL NOT NULL,
    kernel_boot TEXT NOT NULL,
    stored_synced INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS set_aside (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id INTEGER NOT NULL,
    event_id BLOB,
    payload BLOB,
    origin BLOB,
    reason TEXT NOT NULL,
    set_aside_wall REAL NOT NULL
);
"""

# SQLite result codes (``sqlite3.Error.sqlite_errorname``) by what the link does about them.
_CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
_TRANSIENT = ("SQLITE_BUSY", "SQLITE_LOCKED")


def storage_trouble(exc: BaseException) -> str:
    """What a storage error means: ``"corrupt"`` (the file is damaged: move it aside and start
    a fresh one), ``"transient"`` (busy or locked: try again) or ``"unwritable"`` (full,
    read-only, I/O error, cannot open: keep events in memory until it can be written)."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc).lower()
    if name.startswith(_CORRUPT) or "malformed" in text or "not a database" in text:
        return "corrupt"
    if name.startswith(_TRANSIENT) or "locked" in text:
        return "transient"
    return "unwritable"


def kernel_boot_id() -> str:
    """The kernel's boot id (changes at every boot); empty where the kernel does not say."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class Pending:
    """One stored event: its delivery order (``rowid``), id, JSON payload and origin tag."""

    rowid: int
    event_id: str
    payload: str
    origin: str


@dataclass
class Dropped:
    """Events dropped by the bounds: how many, why, and which (per boot id: first and last
    sequence number and count); ``total`` counts every drop since the outbox was made."""

    count: int
    reasons: dict[str, int]
    ranges: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0

    def merge(self, other: Dropped) -> Dropped:
        """Both reports as one (ranges merged per boot id)."""
        reasons = dict(self.reasons)
        for k, v in other.reasons.items():
            reasons[k] = reasons.get(k, 0) + v
        by_boot: dict[str, dict[str, Any]] = {}
        for r in [*self.ranges, *other.ranges]:
            cur = by_boot.get(r["boot_id"])
            if cur is None:
                by_boot[r["boot_id"]] = dict(r)
            else:
                cur["first_seq"] = min(cur["first_seq"], r["first_seq"])
                cur["last_seq"] = max(cur["last_seq"], r["last_seq"])
                cur["count"] += r["count"]
        return Dropped(
            self.count + other.count,
            reasons,
            list(by_boot.values()),
            max(self.total, other.total),
        )

    def as_event_data(self) -> dict[str, Any]:
        """The ``data`` of an ``outbox_dropped`` event describing these drops."""
        return {
            "count": self.count,
            "reasons": dict(self.reasons),
            "total": self.total,
            "ranges": [dict(r) for r in self.ranges],
        }

    @classmethod
    def from_event_data(cls, data: dict[str, Any]) -> Dropped:
        """Inverse of `as_event_data`."""
        return cls(int(data["count"]), dict(data["reasons"]), list(data["ranges"]),
                   int(data["total"]))  # fmt: skip


_SALVAGE_SQL = (
    "SELECT id, CAST(event_id AS BLOB), boot_id, seq, CAST(payload AS BLOB), CAST(origin AS BLOB),"
    " stored_wall, stored_mono, kernel_boot, stored_synced FROM outbox"
)
REPORT_LOST_S = 300.0
"""A report taken longer ago than this (s) whose ``outbox_dropped`` event was never stored is
taken as lost on its way (the appliance stores a report within a block): taken again."""
_SALVAGE_IDS = 100_000  # how far back a damaged table is searched one rowid at a time


def _readable(rowid: int, event_id: Any, payload: Any, origin: Any) -> Pending:
    """A row as a `Pending`; UnicodeDecodeError, ValueError or TypeError if it is damaged."""
    text = bytes(payload).decode("utf-8")
    env = json.loads(text)
    if not isinstance(env, dict) or not isinstance(env.get("id"), str):
        raise ValueError("not an event envelope")
    eid = bytes(event_id).decode("utf-8")
    if eid != env["id"]:
        raise ValueError("event id does not match its payload")
    return Pending(rowid, eid, text, bytes(origin).decode("utf-8"))


class Outbox:
    """The durable outbox in ``path`` (an SQLite file; created with its directory if absent).

    ``path`` None keeps the outbox in memory (not durable: the fallback when the state
    directory cannot be written).

    ``max_events`` and ``max_age_s`` (seconds) bound it. ``wall``, ``mono`` and ``synced`` are
    the clocks (Unix seconds, monotonic seconds, clock-synced flag), swappable for tests.
    """

    def __init__(
        self,
        path: Path | str | None,
        *,
        max_events: int = 10000,
        max_age_s: float = 72 * 3600.0,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        synced: Callable[[], bool] = clock_is_synced,
        kernel_boot: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.max_events = max_events
        self.max_age_s = max_age_s
        self._wall = wall
        self._mono = mono
        self._synced = synced
        self._kernel_boot = kernel_boot_id() if kernel_boot is None else kernel_boot
        self._lock_fd = -1
        self._count = 0
        self.recovered: Path | None = None  # where a damaged file was moved at open
        self.salvaged = (0, 0)  # rows carried from it into the fresh file, rows lost
        self._new_set_aside = 0
        # A report taken (`take_unreported`) whose outbox_dropped event is not stored yet, and
        # when (monotonic s): it stays in the persistent note until then.
        self._reporting: Dropped | None = None
        self._reporting_since = 0.0
        if self.path is None:
            self._db = self._open(":memory:")
            self._load()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = self._lock(self.path)
        try:
            try:
                self._db = self._open(str(self.path))
                self._load()
            except sqlite3.DatabaseError as exc:
                unusable = self.path.exists() and not self.path.is_file()
                if storage_trouble(exc) != "corrupt" and not unusable:
                    raise
                rows, lost = self.salvage() if hasattr(self, "_db") else ([], 0)
                self.recovered = self.move_aside(exc)
                self._db = self._open(str(self.path))
                self._load()
                self.adopt(rows)
                self.salvaged = (len(rows), lost)
        except BaseException:
            self.close()
            raise

    def _load(self) -> None:
        """Read the count and the persistent totals (raises on a damaged file)."""
        self._count = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        self._db.execute("SELECT COUNT(*) FROM set_aside").fetchone()
        row = self._db.execute("SELECT value FROM meta WHERE key = 'dropped_total'").fetchone()
        self.dropped_total = int(row[0]) if row else 0
        row = self._db.execute("SELECT value FROM meta WHERE key = 'set_aside_total'").fetchone()
        self.set_aside_total = int(row[0]) if row else 0
        row = self._db.execute("SELECT value FROM meta WHERE key = 'unreported'").fetchone()
        self._unreported = None
        self._reporting = None
        if row:
            try:
                self._unreported = Dropped.from_event_data(json.loads(row[0]))
            except (TypeError, ValueError, KeyError) as exc:
                log.error("outbox: the unreported-drops note is unreadable (%s); forgotten", exc)

    @property
    def durable(self) -> bool:
        """True when events are kept on disk (False for the in-memory fallback)."""
        return self.path is not None

    def move_aside(self, exc: BaseException) -> Path:
        """Close the database and move its files aside, kept for a tech as
        ``<name>.corrupt-<unix time>`` (with ``-wal`` / ``-shm`` beside it); returns where.
        The caller opens a fresh one at `path`."""
        assert self.path is not None
        with contextlib.suppress(Exception):
            self._db.close()
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        n = 0
        while Path(str(aside)).exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}-{n}")
        log.error("outbox %s unreadable (%s); moved aside to %s", self.path, exc, aside)
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(self.path) + suffix)
            if src.exists() or src.is_symlink():
                src.replace(str(aside) + suffix)
        return aside

    @staticmethod
    def _lock(path: Path) -> int:
        fd = os.open(str(path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OutboxLocked(f"outbox {path} is in use by another process") from None
        return fd

    @staticmethod
    def _open(target: str) -> sqlite3.Connection:
        db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            # A delivered event is gone from the card, not only from the table: its bytes
            # are zeroed in the freed pages (and `remove` empties the log once all are sent).
            db.execute("PRAGMA secure_delete=ON")
            db.executescript(_SCHEMA)
            db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    # -- storing and reading -------------------------------------------------------------------

    def put(self, envelope: dict[str, Any], *, origin: str = "") -> int | None:
        """Store ``envelope`` durably (fsync'd) and return its rowid; None if its id is stored.

        ``origin`` tags who stored it when (the link uses it to tell live from replayed).
        """
        payload = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)
        if self._reporting is not None and envelope.get("type") == "outbox_dropped":
            # The report is stored as an event: out of the note, in the same transaction.
            self._db.execute("BEGIN")
            try:
                rowid = self._insert(envelope, payload, origin)
                self._write_note(self._unreported)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._reporting = None
            return rowid
        return self._insert(envelope, payload, origin)

    def _insert(self, envelope: dict[str, Any], payload: str, origin: str) -> int | None:
        cur = self._db.execute(
            "INSERT OR IGNORE INTO outbox (event_id, boot_id, seq, payload, origin, stored_wall,"
            " stored_mono, kernel_boot, stored_synced) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(envelope["id"]),
                str(envelope.get("boot_id", "")),
                int(envelope.get("seq", 0)),
                payload,
                origin,
                float(self._wall()),
                float(self._mono()),
                self._kernel_boot,
                int(bool(self._synced())),
            ),
        )
        if cur.rowcount == 0:
            return None
        self._count += 1
        return int(cur.lastrowid or 0)

    def pending(self, after: int = 0, limit: int = 100) -> list[Pending]:
        """Up to ``limit`` stored events with rowid > ``after``, oldest first.

        A row that cannot be read (payload or id not UTF-8, payload not a JSON object with an
        ``id``: what a power cut can leave on an SD card) is moved to the ``set_aside`` table
        with its raw bytes, kept for a tech and counted (`set_aside_total`, `take_set_aside`),
        and the rows after it are returned as if it had never been there.
        """
        out: list[Pending] = []
        while len(out) < limit:
            want = limit - len(out)
            rows = self._db.execute(
                "SELECT id, CAST(event_id AS BLOB), CAST(payload AS BLOB), CAST(origin AS BLOB)"
                " FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after, want),
            ).fetchall()
            bad: list[tuple[int, str]] = []
            for rowid, event_id, payload, origin in rows:
                try:
                    out.append(_readable(int(rowid), event_id, payload, origin))
                except (UnicodeDecodeError, ValueError, TypeError) as exc:
                    bad.append((int(rowid), f"{type(exc).__name__}: {exc}"[:200]))
            if bad:
                self._set_aside(bad)
            if len(rows) < want:
                break
            after = int(rows[-1][0])
        return out

    def _set_aside(self, bad: list[tuple[int, str]]) -> None:
        """Move unreadable rows to the ``set_aside`` table, in one transaction."""
        now = float(self._wall())
        self._db.execute("BEGIN")
        try:
            for rowid, reason in bad:
                self._db.execute(
                    "INSERT INTO set_aside (outbox_id, event_id, payload, origin, reason,"
                    " set_aside_wall) SELECT id, CAST(event_id AS BLOB), CAST(payload AS BLOB),"
                    " CAST(origin AS BLOB), ?, ? FROM outbox WHERE id = ?",
                    (reason, now, rowid),
                )
                self._db.execute("DELETE FROM outbox WHERE id = ?", (rowid,))
            total = self.set_aside_total + len(bad)
            self._set_meta("set_aside_total", total)
            self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        self.set_aside_total = total
        self._new_set_aside += len(bad)
        self._count -= len(bad)
        for rowid, reason in bad:
            log.error("outbox: row %d unreadable (%s); set aside in %s, table set_aside",
                      rowid, reason, self.path or "memory")

    def continue_after(self, rowid: int) -> None:
        """Give events stored from now on rowids above ``rowid`` (the link's cursor: what it
        has already handed to paho from the outbox this one replaces)."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)",
                             (rowid,))
        elif int(row[0]) < rowid:
            self._db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'outbox'", (rowid,))

    def check_writable(self) -> None:
        """Write (and commit, with an fsync) a small note: raises `sqlite3.Error` when the
        storage cannot take a write (full, read-only)."""
        self._set_meta("checked_wall", float(self._wall()))

    def take_set_aside(self) -> int:
        """How many rows were set aside since the last call."""
        n, self._new_set_aside = self._new_set_aside, 0
        return n

    def salvage(self) -> tuple[list[tuple[Any, ...]], int]:
        """Every pending row that can still be read, whole, for `adopt` (a damaged or
        unwritable database is being left), and how many could not be read. Never raises.

        A scan in rowid order stops at the first damaged page; the rows after it are then
        looked up one rowid at a time (through the table's interior pages, which may be
        whole), over the last `_SALVAGE_IDS` rowids ever given."""
        rows: list[tuple[Any, ...]] = []
        bad = 0
        last = 0
        try:
            for r in self._db.execute(_SALVAGE_SQL + " ORDER BY id"):
                last = int(r[0])
                bad += self._salvaged(r, rows)
        except sqlite3.Error as exc:
            log.error("outbox: reading stopped after rowid %d: %s", last, exc)
            try:
                seq = self._db.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
                top = int(seq[0]) if seq else last
            except sqlite3.Error:
                top = last + _SALVAGE_IDS
            for rowid in range(max(last + 1, top - _SALVAGE_IDS + 1), top + 1):
                try:
                    r = self._db.execute(_SALVAGE_SQL + " WHERE id = ?", (rowid,)).fetchone()
                except sqlite3.Error:
                    continue
                if r is not None:
                    bad += self._salvaged(r, rows)
        lost = max(bad, self._count - len(rows))
        return rows, lost

    @staticmethod
    def _salvaged(r: tuple[Any, ...], rows: list[tuple[Any, ...]]) -> int:
        """Append row ``r`` (as `_SALVAGE_SQL` reads it) to ``rows``; 1 if it is unreadable."""
        try:
            p = _readable(int(r[0]), r[1], r[4], r[5])
        except (UnicodeDecodeError, ValueError, TypeError):
            return 1
        rows.append((p.rowid, p.event_id, r[2], r[3], p.payload, p.origin, *r[6:]))
        return 0

    def adopt(self, rows: list[tuple[Any, ...]]) -> int:
        """Store rows from `salvage` under their own rowids (ids already stored are skipped);
        returns how many were added."""
        if not rows:
            return 0
        self._db.execute("BEGIN")
        try:
            n = 0
            for r in rows:
                n += self._db.execute(
                    "INSERT OR IGNORE INTO outbox (id, event_id, boot_id, seq, payload, origin,"
                    " stored_wall, stored_mono, kernel_boot, stored_synced)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    r,
                ).rowcount
            self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        self._count += n
        return n

    def remove(self, rowids: Iterable[int]) -> int:
        """Delete acknowledged events; returns how many were still stored.

        Without a full fsync: losing a delete to a power cut only re-sends an event, which
        consumers drop by id.
        """
        ids = list(rowids)
        if not ids:
            return 0
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._db.execute("BEGIN")
            n = 0
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                cur = self._db.execute(
                    f"DELETE FROM outbox WHERE id IN ({','.join('?' * len(chunk))})", chunk
                )
                n += cur.rowcount
            self._db.execute("COMMIT")
        finally:
            self._db.execute("PRAGMA synchronous=FULL")
        if n and n == self._count:
            # Nothing left to send: copy the zeroed pages into the database and cut the
            # write-ahead log to nothing, or it keeps each delivered event's bytes (as first
            # written) until the log wraps, hundreds of events later.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._count -= n
        return n

    def __len__(self) -> int:
        return self._count

    # -- bounds ---------------------------------------------------------------------------------

    def enforce(self, keep: Iterable[int] = ()) -> list[Dropped]:
        """Drop events beyond the age and count bounds, except rowids in ``keep`` (in flight).

        Returns one `Dropped` per reason that dropped anything (age first, then count).
        """
        keep_ids = sorted(set(keep))
        reports = []
        now_wall, now_mono, now_synced = float(self._wall()), float(self._mono()), self._synced()
        age_where = "(kernel_boot = ? AND stored_mono < ?)"
        params: list[Any] = [self._kernel_boot, now_mono - self.max_age_s]
        if now_synced:
            age_where = (
                f"({age_where} OR (kernel_boot != ? AND stored_synced = 1 AND stored_wall < ?))"
            )
            params += [self._kernel_boot, now_wall - self.max_age_s]
        report = self._drop_where(age_where, params, keep_ids, "max_age")
        if report:
            reports.append(report)
        excess = self._count - self.max_events
        if excess > 0:
            exclude = f" AND id NOT IN ({','.join('?' * len(keep_ids))})" if keep_ids else ""
            row = self._db.execute(
                f"SELECT id FROM outbox WHERE 1{exclude} ORDER BY id LIMIT 1 OFFSET ?",
                [*keep_ids, excess - 1],
            ).fetchone()
            if row is not None:
                report = self._drop_where("id <= ?", [int(row[0])], keep_ids, "max_events")
                if report:
                    reports.append(report)
        return reports

    def _drop_where(
        self, where: str, params: list[Any], keep_ids: list[int], reason: str
    ) -> Dropped | None:
        if keep_ids:
            where = f"{where} AND id NOT IN ({','.join('?' * len(keep_ids))})"
            params = [*params, *keep_ids]
        groups = self._db.execute(
            f"SELECT boot_id, MIN(seq), MAX(seq), COUNT(*), MIN(id) FROM outbox WHERE {where} "
            "GROUP BY boot_id ORDER BY MIN(id)",
            params,
        ).fetchall()
        count = sum(int(g[3]) for g in groups)
        if count == 0:
            return None
        self._db.execute("BEGIN")
        try:
            n = self._db.execute(f"DELETE FROM outbox WHERE {where}", params).rowcount
            total = self.dropped_total + n
            ranges = [
                {"boot_id": str(g[0]), "first_seq": int(g[1]), "last_seq": int(g[2]),
                 "count": int(g[3])}
                for g in groups
            ]  # fmt: skip
            dropped = Dropped(count=n, reasons={reason: n}, ranges=ranges, total=total)
            unreported = dropped if self._unreported is None else self._unreported.merge(dropped)
            self._set_meta("dropped_total", total)
            self._write_note(self._reporting, unreported)
            self._db.execute("COMMIT")
            self.dropped_total = total
            self._unreported = unreported
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._count -= n
        bound = (f"more than mqtt.outbox_max_events = {self.max_events} waiting"
                 if reason == "max_events"
                 else f"older than mqtt.outbox_max_age_h = {self.max_age_s / 3600.0:g}")
        log.warning(
            "outbox %s: dropped the %d oldest event(s), %s (%d dropped in all): the broker has "
            "not taken them for that long; the supervisor gets an outbox_dropped event once it "
            "does. Check the desk's link to the broker (`deskcue status`, its mqtt fault)",
            self.path or "in memory", n, bound, self.dropped_total,
        )
        return dropped

    def _set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @property
    def unreported(self) -> Dropped | None:
        """Drops not yet reported (kept across restarts), merged into one report."""
        return self._unreported

    def take_unreported(self) -> Dropped | None:
        """Return the drops not yet reported, for an ``outbox_dropped`` event. They stay in the
        persistent note until that event is `put` here; until then (or `REPORT_LOST_S`) no new
        report is taken. A report whose event never came (a handler that lost it) is taken
        again with what was dropped since: at least once, never lost."""
        if self._reporting is not None:
            if self._mono() - self._reporting_since < REPORT_LOST_S:
                return None
            self._unreported = (self._reporting if self._unreported is None
                                else self._reporting.merge(self._unreported))
            self._reporting = None
        report = self._unreported
        if report is not None:
            self._reporting, self._reporting_since = report, self._mono()
            self._unreported = None
        return report

    def _write_note(self, *parts: Dropped | None) -> None:
        """Persist the drops not yet stored as an event (``parts`` merged: the report taken,
        the drops since); no note when there are none."""
        note: Dropped | None = None
        for part in parts:
            if part is not None:
                note = part if note is None else note.merge(part)
        if note is None:
            self._db.execute("DELETE FROM meta WHERE key = 'unreported'")
        else:
            self._set_meta("unreported", json.dumps(note.as_event_data()))

    def note_lost(self, envelope: dict[str, Any], reason: str = "storage_error") -> None:
        """Count an event that could not be stored at all (best effort: the disk may be bad)."""
        self.dropped_total += 1
        seq = int(envelope.get("seq", 0))
        r = {"boot_id": str(envelope.get("boot_id", "")), "first_seq": seq, "last_seq": seq,
             "count": 1}  # fmt: skip
        lost = Dropped(1, {reason: 1}, [r], self.dropped_total)
        self._unreported = lost if self._unreported is None else self._unreported.merge(lost)
        with contextlib.suppress(sqlite3.Error):
            self._set_meta("dropped_total", self.dropped_total)
            self._write_note(self._reporting, self._unreported)

    def close(self) -> None:
        """Close the database and release the lock (idempotent)."""
        with contextlib.suppress(Exception):
            self._db.close()
        if self._lock_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
