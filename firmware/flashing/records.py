"""Where a desk's configs live and the records every install leaves behind.

Files (``/etc/deskcue`` on a desk; every path is a parameter for tests)::

    /etc/deskcue/deskcue.toml              the live config `deskcue run` reads
    /etc/deskcue/deskcue.toml.last-good    the config that ran before the last install
    /etc/deskcue/deskcue.toml.trial        marker: the live config came over MQTT and is on trial
    <state_dir>/config-apply.json          last apply: hash, source, time (for info and status)
    <state_dir>/config-fault.json          a rejected or rolled-back config, until cleared
    <state_dir>/config-remote.json         highest ``issued`` accepted over MQTT (anti-replay)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from firmware.config.load import load_settings
from firmware.config.settings import Settings
from firmware.errors import ConfigError, ConfigProblem, ReplayRecordDamaged
from firmware.platform.files import atomic_write, read_json_object, remove_file, write_json
from firmware.platform.host import boot_id, clock_is_synced

log = logging.getLogger("deskcue.config")

CONFIG_NAME = "deskcue.toml"
LAST_GOOD_SUFFIX = ".last-good"
TRIAL_SUFFIX = ".trial"
APPLY_FILE = "config-apply.json"
FAULT_FILE = "config-fault.json"
REMOTE_FILE = "config-remote.json"
DEFAULT_ETC = Path("/etc/deskcue")
DEFAULT_BOOT_DIRS = (Path("/boot/firmware"), Path("/boot"))
DEFAULT_STATE = Path("/var/lib/deskcue")
RESTART_EXIT_CODE = 75  # `deskcue run` exits with this to be restarted on a new config

# Steps of a card import, in order; a test hook may crash the process at each of them.


def settings_hash(settings: Settings) -> str:
    """Short stable hash of the effective config (the same as `Appliance.info`'s
    ``config_hash``: SHA-256 of the settings' JSON, 16 hex digits)."""
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()[:16]


def iso_utc(now: float) -> str:
    """``now`` (Unix s) as UTC ISO 8601 to the second."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_stamp(now: float) -> str:
    """A file-name-safe UTC time (FAT boot partitions allow no ':')."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")


def last_good_path(config_path: Path) -> Path:
    """Where the config that ran before the last install is kept."""
    return config_path.with_name(config_path.name + LAST_GOOD_SUFFIX)


def trial_path(config_path: Path) -> Path:
    """The trial marker of ``config_path`` (present while a remote config is unconfirmed)."""
    return config_path.with_name(config_path.name + TRIAL_SUFFIX)


def state_dir_of(config_path: Path, default: Path = DEFAULT_STATE) -> Path:
    """The state directory the config at ``config_path`` names (``default`` if unreadable)."""
    try:
        return Path(load_settings(config_path).device.state_dir)
    except ConfigError:
        return default


# -- the records the appliance reads -----------------------------------------------------------


def last_apply(state_dir: Path) -> dict[str, Any]:
    """The last apply: ``hash``, ``source`` (card, mqtt, local, rollback), ``at`` (UTC ISO),
    ``clock_synced``, and ``txid``/``trial``/``confirmed_at`` for MQTT; {} when none yet or
    the record is damaged (`last_apply_shown` tells the two apart).
    """
    data = read_json_object(Path(state_dir) / APPLY_FILE)
    return data or {}


def last_apply_shown(state_dir: Path) -> tuple[dict[str, Any], str | None]:
    """`last_apply` and, when the record is there but damaged (cut short by a power cut, a
    worn card), what to tell a tech instead: for `Appliance.info` (retained ``info``) and
    `deskcue status`, where a damaged record must not read as "no config ever applied".
    """
    path = Path(state_dir) / APPLY_FILE
    rec = read_json_object(path)
    if rec is not None:
        return rec, None
    try:
        damaged = path.is_file() and os.access(path, os.R_OK)
    except OSError:  # a state directory this user cannot read (no sudo): nothing known
        damaged = False
    if not damaged:
        return {}, None
    return {}, (f"the config apply record {path} is damaged: which config was applied last, "
                "from where and when is lost (the config hash shows what runs); "
                "`journalctl -u deskcue -u deskcue-config-import` tells, and the next apply "
                "writes a fresh record")


def fault_record(state_dir: Path) -> dict[str, Any] | None:
    """The pending config fault (what was rejected or rolled back, with its problems).

    A record the card damaged is still a pending fault, one that says what is known: a
    refusal or rollback nobody has acknowledged must not look like none.
    """
    path = Path(state_dir) / FAULT_FILE
    rec = read_json_object(path)
    try:
        damaged = rec is None and path.is_file() and os.access(path, os.R_OK)
    except OSError:  # a state directory this user cannot read (no sudo): nothing known
        damaged = False
    if damaged:
        return {"source": "damaged", "message": (
            f"the config fault record {path} is damaged: a config was refused or rolled back "
            "and which is lost; `journalctl -u deskcue -u deskcue-config-import` tells, "
            "`sudo deskcue config ack` clears it once read")}
    return rec


def pending_fault(state_dir: Path) -> str | None:
    """A one-line description of a config that was refused or rolled back, or None.

    The appliance calls this at start: a fault shows the fault pattern and is reported over
    MQTT while the desk runs on its last good config. It stays until a config is applied
    successfully or a tech runs `deskcue config ack`.
    """
    rec = fault_record(state_dir)
    if not rec:
        return None
    return f"config: {rec.get('message', 'a new config was refused')}"


def clear_fault(state_dir: Path) -> bool:
    """Forget the pending config fault (`deskcue config ack`); True if there was one."""
    path = Path(state_dir) / FAULT_FILE
    existed = path.exists()
    remove_file(path)
    return existed


def record_fault(state_dir: Path, source: str, message: str,
                  problems: list[ConfigProblem], now: float, **extra: Any) -> None:
    write_json(Path(state_dir) / FAULT_FILE, {
        "source": source, "message": message, "at": iso_utc(now),
        "clock_synced": clock_is_synced(), **extra,
        "problems": [asdict(p) for p in problems],
    })


def record_apply(state_dir: Path, settings: Settings, text: str, source: str, now: float,
                  **extra: Any) -> dict[str, Any]:
    rec = {
        "hash": settings_hash(settings),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "source": source,
        "at": iso_utc(now),
        "clock_synced": clock_is_synced(),
        "boot_id": boot_id(),
        **extra,
    }
    write_json(Path(state_dir) / APPLY_FILE, rec)
    return rec


# -- anti-replay: the highest ``issued`` accepted over MQTT ------------------------------------

def last_issued(state_dir: Path) -> int | None:
    """The highest ``issued`` accepted over MQTT; None when this desk never accepted one.

    Fails closed: `ReplayRecordDamaged` when the record is unreadable or malformed, or when it
    is missing although the last apply came over MQTT (the record was lost).
    """
    path = Path(state_dir) / REMOTE_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if last_apply(state_dir).get("source") == "mqtt":
            raise ReplayRecordDamaged(path, "is missing although the running config came "
                                      "over MQTT") from None
        return None
    except OSError as exc:
        raise ReplayRecordDamaged(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ReplayRecordDamaged(path, "is damaged (not JSON)") from None
    issued = data.get("issued") if isinstance(data, dict) else None
    if isinstance(issued, bool) or not isinstance(issued, int) or issued < 0:
        raise ReplayRecordDamaged(path, "is damaged (no whole-number `issued`)")
    return issued


def record_issued(state_dir: Path, issued: int, txid: str | None, **extra: Any) -> None:
    """Remember ``issued`` as the highest accepted over MQTT (atomically)."""
    write_json(Path(state_dir) / REMOTE_FILE, {"issued": issued, "txid": txid, **extra})


def reset_replay(state_dir: Path, issued: int, now: float) -> tuple[int | None, Path | None]:
    """A tech's reset of the anti-replay record: remote configs must have ``issued`` above
    ``issued`` from now on. A damaged record is kept as ``config-remote.json.damaged-<time>``.

    Returns (the value it had, or None if it was damaged or absent; where the damaged file was
    moved). A sound record is never lowered: the higher of the two is kept.
    """
    path = Path(state_dir) / REMOTE_FILE
    try:
        before = last_issued(state_dir)
    except ReplayRecordDamaged:
        before = None
    aside = None
    if path.exists() and before is None:
        aside = path.with_name(f"{path.name}.damaged-{file_stamp(now)}")
        with contextlib.suppress(OSError):
            atomic_write(aside, path.read_bytes())
    keep = max(issued, before) if before is not None else issued
    record_issued(state_dir, keep, None, reset_at=iso_utc(now), reset_by="tech")
    return before, aside
