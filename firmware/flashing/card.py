"""The SD-card path: a tech drops ``deskcue.toml`` on the boot partition; it is imported at boot.

    <boot>/deskcue.toml                    a tech's new config, dropped on the boot partition
    <boot>/deskcue.toml.applied-<time>     ... moved aside once imported, with
    <boot>/deskcue.toml.applied-<time>.result.txt   a note saying what happened
    <boot>/deskcue.toml.rejected-<time>[.result.txt] (a bad file: every error with its line)

A card import is idempotent: after a crash it is simply run again at the next boot.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from firmware.config.checks import CheckResult, resolve_desk_text
from firmware.config.load import load_settings, read_config_text
from firmware.errors import BootNotFound, ConfigError, ConfigProblem
from firmware.flashing.install import ApplyResult, apply_text
from firmware.flashing.records import (
    CONFIG_NAME,
    file_stamp,
    iso_utc,
    record_fault,
    settings_hash,
    state_dir_of,
)
from firmware.platform.files import Hook, atomic_write, fsync_dir
from firmware.platform.host import clock_is_synced

log = logging.getLogger("deskcue.config")

IMPORT_STEPS = ("read", "checked", "last_good.partial", "last_good.written", "live.partial",
                "live.written", "installed", "recorded", "note.written", "moved_aside")



CARD_SITE_FILE = ("a card takes one desk's file: write it with `deskcue config flash SITE.toml "
                  "--desk NAME --boot BOOT`")
"""What the card's note tells a tech who copied a whole site file onto the card."""


def find_boot_file(boot_dirs: list[Path] | tuple[Path, ...]) -> Path | None:
    """The first ``deskcue.toml`` waiting in one of ``boot_dirs``."""
    for d in boot_dirs:
        p = Path(d) / CONFIG_NAME
        if p.is_file():
            return p
    return None


def _aside_name(boot_file: Path, outcome: str, now: float) -> Path:
    base = boot_file.with_name(f"{boot_file.name}.{outcome}-{file_stamp(now)}")
    candidate, n = base, 1
    while candidate.exists() or candidate.with_name(candidate.name + ".result.txt").exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _note(result: ApplyResult, boot_file: Path, aside: Path, now: float,
          previous_hash: str | None) -> str:
    lines = [f"deskcue config import: {result.status.upper()}",
             f"file:  {boot_file.name} (now {aside.name})",
             f"when:  {iso_utc(now)} (clock synced: {'yes' if clock_is_synced() else 'no'})"]
    if result.ok:
        lines.append(f"config hash: {result.record.get('hash')} (was {previous_hash or 'none'})")
        if result.status == "unchanged":
            lines.append("This config was already installed; nothing changed.")
        lines.append("The desk uses it from this boot on.")
    else:
        lines += [f"Nothing was changed: the desk keeps running on its last good config "
                  f"(hash {previous_hash or 'none'}) and shows the config-fault pattern.",
                  "", f"{len(result.problems)} problem(s):"]
        lines += [f"  {p}" for p in result.problems]
    if result.warnings:
        lines += ["", f"{len(result.warnings)} warning(s) (not errors):"]
        lines += [f"  {w}" for w in result.warnings]
    if not result.ok:
        lines += ["", "Fix the file, check it with `deskcue config check deskcue.toml`, and put "
                  "it back on the card as deskcue.toml."]
    return "\n".join(lines) + "\n"


def import_from_boot(boot_dirs: list[Path] | tuple[Path, ...], config_path: Path, *,
                     state_dir: Path | None = None, now: float | None = None,
                     hook: Hook | None = None) -> ApplyResult:
    """Import ``deskcue.toml`` from the first of ``boot_dirs`` that has one (boot-time unit).

    Valid: installed atomically (the running config kept as last good). Invalid: nothing is
    changed and the fault is recorded. Either way the card file is moved aside as
    ``deskcue.toml.applied-<time>`` / ``.rejected-<time>`` with a ``.result.txt`` note beside
    it. Safe to run again after a crash at any point.
    """
    now = time.time() if now is None else now
    hook = hook or (lambda step: None)
    boot_file = find_boot_file(boot_dirs)
    if boot_file is None:
        return ApplyResult("absent", "card", message="no deskcue.toml on the boot partition")
    previous_hash = _current_hash(config_path)
    stuck = _cannot_move_aside(boot_file.parent)
    if stuck is not None:
        # Installed, a file that cannot be moved aside would be installed again at every
        # boot, undoing whatever was applied since (by hand or over MQTT).
        problem = ConfigProblem("", None, (
            f"{stuck}, so {boot_file.name} cannot be marked as imported and would be "
            "installed again at every boot; nothing was changed: in a laptop, take the file off "
            "the card (and check the card: a failing card turns read-only), then install the "
            "config with `sudo deskcue config apply FILE`"))
        msg = f"card config {boot_file.name} refused: {problem}"
        try:
            record_fault(state_dir or state_dir_of(config_path), "card", msg, [problem], now,
                         file=str(boot_file))
        except OSError as err:
            log.error("cannot record the config fault: %s", err)
        return ApplyResult("rejected", "card", file=boot_file, problems=[problem], message=msg)
    try:
        text: str | None = read_config_text(boot_file)
    except ConfigError as exc:
        text, problem = None, exc.problems[0]
    if text is None:
        state = state_dir or state_dir_of(config_path)
        msg = f"card config {boot_file.name} refused: {problem}"
        try:
            record_fault(state, "card", msg, [problem], now, file=str(boot_file))
        except OSError as err:
            log.error("cannot record the config fault in %s: %s", state, err)
        result = ApplyResult("rejected", "card", problems=[problem], message=msg)
    else:
        result = apply_text(text, source="card", config_path=config_path, state_dir=state_dir,
                            origin=str(boot_file), now=now, hook=hook,
                            name_the_desk=CARD_SITE_FILE)
    result.file = boot_file
    aside = _aside_name(boot_file, "applied" if result.ok else "rejected", now)
    note = aside.with_name(aside.name + ".result.txt")
    atomic_write(note, _note(result, boot_file, aside, now, previous_hash).encode())
    hook("note.written")
    os.replace(boot_file, aside)
    fsync_dir(boot_file.parent)
    hook("moved_aside")
    result.moved_to, result.note = aside, note
    return result


def _cannot_move_aside(boot_dir: Path) -> str | None:
    """Why the card file in ``boot_dir`` cannot be renamed and a note written beside it
    (None when it can)."""
    try:
        if os.statvfs(boot_dir).f_flag & os.ST_RDONLY:
            return f"the card's boot partition {boot_dir} is mounted read-only"
    except OSError:
        pass
    if not os.access(boot_dir, os.W_OK):
        return f"{boot_dir} cannot be written by this user"
    return None


def _current_hash(config_path: Path) -> str | None:
    if not config_path.exists():
        return None
    try:
        return settings_hash(load_settings(config_path))
    except ConfigError:
        return None


def flash_to_boot(source: Path, boot_dir: Path, *, desk: str | None = None,
                  here: bool = False) -> tuple[Path | None, CheckResult]:
    """Check ``source`` (a desk file, or a site file with ``desk``) and write the desk file
    onto the boot partition ``boot_dir`` as ``deskcue.toml``; (None, result) if it has problems.

    ``here`` False (a tech's laptop): files and directories the config names that are unusable
    on this machine are warnings (the desk checks them again when it imports the file).
    Raises `ConfigError` when ``source`` cannot be read and `BootNotFound` when ``boot_dir``
    is not a directory (a card that is not mounted: nothing is written anywhere else).
    """
    text = read_config_text(source)
    resolved, result = resolve_desk_text(text, str(source), desk, here=here)
    if not result.ok:
        return None, result
    if not Path(boot_dir).is_dir():
        what = "not a directory" if Path(boot_dir).exists() else "no such directory"
        raise BootNotFound(f"{boot_dir}: {what}; mount the card and give its boot partition "
                           "(e.g. /media/$USER/bootfs)")
    target = Path(boot_dir) / CONFIG_NAME
    atomic_write(target, resolved.encode("utf-8"))
    return target, result
