"""State on a desk's card written by earlier builds, read by this one, and the other way round
(a site that rolls a bad rollout back): the usual voice, the outbox, the config records.

Each fixture is written here the way the build named beside it wrote it (its SQL, its JSON
keys), not made by running that build: no old checkout is needed. These formats were checked
by running the builds themselves on each other's state (docs/decisions.md, "Upgrades,
rollbacks and removal"); the tests keep them readable.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from firmware.appliance.pipeline import make_usual_voice
from firmware.config.settings import Settings
from firmware.flashing.records import fault_record, last_apply, last_issued, pending_fault
from firmware.flashing.trial import trial_damage
from firmware.link.outbox import Outbox
from firmware.platform.files import read_json

# firmware/outbox.py at 5183c61 (2026-11-23): the schema, and the SQL that build reads with.
OUTBOX_SCHEMA_5183C61 = """
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
"""
READS_5183C61 = (
    "SELECT COUNT(*) FROM outbox",
    "SELECT value FROM meta WHERE key = 'dropped_total'",
    "SELECT value FROM meta WHERE key = 'unreported'",
)
PENDING_5183C61 = ("SELECT id, event_id, payload, origin FROM outbox WHERE id > ? ORDER BY id "
                   "LIMIT ?")
BOOT_5183C61 = "f6a42cf7ffd844f2ae3d0d87aa0f21c9"


def envelope(seq: int, event_type: str, data: dict[str, object]) -> dict[str, object]:
    """An event as 5183c61 stored it (schema 1 envelope; no ``replayed`` key)."""
    return {"schema": 1, "id": f"{seq:032x}", "boot_id": BOOT_5183C61, "seq": seq,
            "ts": 1796437739.0 + seq, "ts_iso": f"2026-12-05T02:28:{59 - 10 + seq:02d}.000Z",
            "clock_synced": True, "stream_s": float(seq), "type": event_type, "data": data}


OLD_EVENTS = [
    envelope(1, "call.started", {"call": 1, "at_s": 1.0}),
    envelope(2, "usual_voice_learned", {"speech_s": 29.3, "usual_lufs": -26.0}),
]


def write_outbox_5183c61(path: Path) -> None:
    """Two events queued while the broker was away, and a drop note, as 5183c61 left them
    (``origin`` "": stored with no connection; WAL, as that build opened the file)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(OUTBOX_SCHEMA_5183C61)
    for env in OLD_EVENTS:
        db.execute(
            "INSERT OR IGNORE INTO outbox (event_id, boot_id, seq, payload, origin, stored_wall,"
            " stored_mono, kernel_boot, stored_synced) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (env["id"], env["boot_id"], env["seq"], json.dumps(env, separators=(",", ":")),
             "", env["ts"], 1000.0, "2b1a1304-375c-43ce-923c-47c3e2e55fdc", 1))
    db.execute("INSERT INTO meta (key, value) VALUES ('dropped_total', 3)")
    db.execute("INSERT INTO meta (key, value) VALUES ('unreported', ?)", (json.dumps(
        {"count": 3, "reasons": {"max_events": 3}, "total": 3,
         "ranges": [{"boot_id": BOOT_5183C61, "first_seq": 1, "last_seq": 3}]}),))
    db.close()


def test_an_outbox_queued_by_5183c61_is_delivered_whole_by_this_build(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    write_outbox_5183c61(path)
    box = Outbox(path)
    try:
        assert box.recovered is None  # read as it is, not taken for a damaged file
        assert len(box) == 2 and box.dropped_total == 3
        rows = box.pending()
        assert [json.loads(r.payload) for r in rows] == OLD_EVENTS
        assert [r.origin for r in rows] == ["", ""]  # no live connection: sent as replayed
        unreported = box.take_unreported()
        assert unreported is not None and unreported.count == 3
    finally:
        box.close()


def test_an_outbox_this_build_wrote_stays_readable_to_5183c61(tmp_path: Path) -> None:
    """A rollback to 5183c61 finds the events this build queued, with that build's SQL."""
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    try:
        for env in OLD_EVENTS:
            assert box.put(env) is not None
    finally:
        box.close()
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.executescript(OUTBOX_SCHEMA_5183C61)  # what 5183c61 runs at every open
        assert [db.execute(q).fetchone() for q in READS_5183C61][0] == (2,)
        rows = db.execute(PENDING_5183C61, (0, 100)).fetchall()
        assert [json.loads(payload) for _, _, payload, _ in rows] == OLD_EVENTS
    finally:
        db.close()


def histogram(lo: float, step: float, centre: float, weights: list[float]) -> dict[str, object]:
    """One measure's histogram as `RobustStat.to_dict` has written it since 6fe4db8: the
    layout (lo, hi, step) and the non-zero bins around ``centre``."""
    hi = {-90.0: 0.0, -24.0: 36.0, 0.0: 12.0, -50.0: 10.0}[lo]
    first = round((centre - lo) / step) - len(weights) // 2
    return {"lo": lo, "hi": hi, "step": step, "bins": list(range(first, first + len(weights))),
            "weights": weights}


# baseline.json as 5183c61 and 853aeb2 wrote it (version 2), after 29.3 s of speech at about
# -26 LUFS (the demo call); the weights are a smaller set of the same shape.
BASELINE_V2 = {
    "version": 2, "speech_s": 29.29,
    "loudness": histogram(-90.0, 0.25, -26.0, [0.98, 2.0, 7.9, 2.0, 0.99]),
    "pitch": histogram(-24.0, 0.25, -4.5, [1.0, 4.0, 1.0]),
    "rate": histogram(0.0, 0.1, 0.5, [31.4, 50.4, 3.9]),
    "alpha": histogram(-50.0, 0.25, -11.5, [2.0, 27.6, 7.9]),
}


def test_the_usual_voice_saved_by_earlier_builds_is_restored(tmp_path: Path) -> None:
    """An upgrade restarts the service: the agent's usual voice must come back, not be learned
    again from the next calls (the cues would wait for a new warm-up)."""
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(BASELINE_V2, indent=1, sort_keys=True) + "\n")
    usual = make_usual_voice(Settings())
    usual.load(read_json(path))
    assert usual.learned and usual.ready
    assert usual.usual_lufs == pytest.approx(-26.0, abs=0.25)
    # and what this build saves, an earlier one loads: the same keys and layout
    saved = usual.to_dict()
    assert saved.keys() == BASELINE_V2.keys() and saved["version"] == 2
    for measure in ("loudness", "pitch", "rate", "alpha"):
        old, new = BASELINE_V2[measure], saved[measure]
        assert isinstance(old, dict) and isinstance(new, dict)
        assert (new["lo"], new["hi"], new["step"]) == (old["lo"], old["hi"], old["step"])
        assert np.allclose(new["weights"], old["weights"]) and new["bins"] == old["bins"]


def test_config_records_and_a_trial_from_5183c61_are_read(tmp_path: Path) -> None:
    """The records of firmware/config_flash.py at 5183c61 (its `_write_json`: indent 1, sorted
    keys): a refused card config, the last MQTT apply, the anti-replay counter, and the trial
    marker of a config pushed just before the upgrade."""
    def write(name: str, data: dict[str, object]) -> None:
        (tmp_path / name).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")

    write("config-fault.json", {
        "at": "2026-12-05T02:30:48Z", "clock_synced": True, "file": "/boot/deskcue.toml",
        "message": "card config deskcue.toml refused: 1 problem(s), first: line 6: "
                   "audio.rate_hz: wrong type",
        "problems": [{"key": "audio.rate_hz", "line": 6, "message": "wrong type"}],
        "source": "card"})
    write("config-apply.json", {
        "at": "2026-12-05T02:35:43Z", "boot_id": "2b1a1304-375c-43ce-923c-47c3e2e55fdc",
        "clock_synced": True, "hash": "34d95c9034bc3422", "key": "46528adcabc06566",
        "sha256": "8d85217688c4f5015cabca08dbc9c04361162b44c93a6647f06aa65495c8cf0d",
        "source": "mqtt", "trial": True, "txid": "cfg-1796438136"})
    write("config-remote.json", {"issued": 1796438136, "txid": "cfg-1796438136"})
    trial = {
        "at": "2026-12-05T02:35:43Z", "boot_id": "2b1a1304-375c-43ce-923c-47c3e2e55fdc",
        "deadline_mono": 19439.375747307, "hash": "34d95c9034bc3422", "healthy_s": 20.0,
        "issued": 1796438136, "key": "46528adcabc06566", "max_starts": 3,
        "sha256": "8d85217688c4f5015cabca08dbc9c04361162b44c93a6647f06aa65495c8cf0d",
        "starts": 0, "state_dir": str(tmp_path), "trial_s": 180.0, "txid": "cfg-1796438136"}

    fault = fault_record(tmp_path)
    assert fault is not None and fault["problems"][0]["line"] == 6
    assert pending_fault(tmp_path) == f"config: {fault['message']}"
    assert last_apply(tmp_path)["txid"] == "cfg-1796438136"
    assert last_issued(tmp_path) == 1796438136  # anti-replay carried: no older config passes
    assert trial_damage(trial) is None  # its trial goes on, it is not taken for damage
