"""Installing a config safely, by hand or from the card: checked whole, then atomically live.

Rules that keep a desk from being bricked:

- A config is validated as a whole before anything is touched; a bad one changes nothing and
  is recorded as a fault (the appliance shows the fault pattern and reports it over MQTT).
- The live file is only ever replaced by rename of a fully written, fsynced temporary file,
  and the directory is fsynced: a crash at any point leaves the old or the new file, whole.
- Before a replace, the running config is kept as ``.last-good`` (the same way).
- A config installed here is final: any trial of a remote config ends (`firmware.flashing.trial`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.config.checks import NAME_THE_DESK, resolve_desk_text
from firmware.config.load import parse_settings
from firmware.errors import ConfigError, ConfigProblem
from firmware.flashing.records import (
    clear_fault,
    last_good_path,
    record_apply,
    record_fault,
    state_dir_of,
    trial_path,
)
from firmware.platform.files import Hook, atomic_write, locked_dir, remove_file

log = logging.getLogger("deskcue.config")


def install_text(config_path: Path, text: str, *, keep_previous: bool, fallback: str | None,
             hook: Hook | None, before_live: Callable[[], None] | None = None) -> None:
    """Keep the running config as last good (if ``keep_previous``), then put ``text`` live.

    ``fallback``: what to keep as last good when there is no live file yet. ``before_live``
    runs between the two (the trial marker is written there).
    """
    live = config_path
    if keep_previous:
        previous = live.read_bytes() if live.exists() else (
            fallback.encode("utf-8") if fallback is not None else None)
        # A live file that is no usable config (edited by hand, damaged on the card) is not
        # what the desk ran on; the last good config it ran on instead stays.
        if previous is not None and _runnable(previous, live):
            atomic_write(last_good_path(live), previous, hook=hook, step="last_good")
    if before_live is not None:
        before_live()
    atomic_write(live, text.encode("utf-8"), hook=hook, step="live")


def _runnable(data: bytes, path: Path) -> bool:
    """Whether ``data`` is a config this firmware runs."""
    try:
        parse_settings(data.decode("utf-8"), path)
    except (ConfigError, UnicodeDecodeError):
        return False
    return True


def live_text(config_path: Path) -> str | None:
    try:
        return config_path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return None


@dataclass
class ApplyResult:
    """What an import or apply did: ``status`` is applied, unchanged, rejected or absent."""

    status: str
    source: str
    file: Path | None = None
    moved_to: Path | None = None
    note: Path | None = None
    problems: list[ConfigProblem] = field(default_factory=list)
    warnings: list[ConfigProblem] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    @property
    def ok(self) -> bool:
        """True unless the config was rejected."""
        return self.status != "rejected"


def apply_text(text: str, *, source: str, config_path: Path, state_dir: Path | None = None,
               desk: str | None = None, origin: str = "<config>", now: float | None = None,
               hook: Hook | None = None, extra: dict[str, Any] | None = None,
               name_the_desk: str = NAME_THE_DESK) -> ApplyResult:
    """Validate ``text`` and install it as the live config, keeping the last good one.

    A bad config changes nothing on disk except the fault record. ``state_dir`` None = the
    one the (new, else current) config names. Any trial in progress ends: a config installed
    by hand is final, and an unconfirmed trial config never becomes the last good one.
    """
    now = time.time() if now is None else now
    hook = hook or (lambda step: None)
    hook("read")
    resolved, result = resolve_desk_text(text, origin, desk, name_the_desk=name_the_desk)
    hook("checked")
    if not result.ok:
        msg = (f"{source} config {Path(origin).name} refused: {len(result.problems)} "
               f"problem(s), first: {result.problems[0]}")
        _record_fault_safely(state_dir or state_dir_of(config_path), source, msg,
                             result.problems, now, origin)
        return ApplyResult("rejected", source, problems=result.problems,
                           warnings=result.warnings, message=msg)
    settings = next(iter(result.configs.values()))
    state = state_dir or Path(settings.device.state_dir)
    status = "unchanged"
    try:
        with locked_dir(config_path.parent):
            on_trial = trial_path(config_path).exists()
            if live_text(config_path) != resolved:
                install_text(config_path, resolved, keep_previous=not on_trial, fallback=None,
                             hook=hook)
                status = "applied"
            # else: already live (e.g. a re-run after a crash): keep last good
            hook("installed")
            remove_file(trial_path(config_path))
            rec = record_apply(state, settings, resolved, source, now, file=Path(origin).name,
                               **(extra or {}))
            clear_fault(state)
            hook("recorded")
    except OSError as exc:
        if live_text(config_path) == resolved:
            raise  # live already: only a record is missing; the caller reports the error
        problem = ConfigProblem("", None, f"could not install it: {exc}; nothing was changed")
        msg = f"{source} config {Path(origin).name} refused: {problem}"
        _record_fault_safely(state_dir or state_dir_of(config_path), source, msg, [problem],
                             now, origin)
        return ApplyResult("rejected", source, problems=[problem], warnings=result.warnings,
                           message=msg)
    return ApplyResult(status, source, warnings=result.warnings, record=rec,
                       message=f"{status}: config {rec['hash']} from {source}")


def _record_fault_safely(state: Path, source: str, message: str,
                         problems: list[ConfigProblem], now: float, origin: str) -> None:
    """Record a refusal as the pending config fault; if the state directory cannot take it,
    log it: the refusal stands and is still reported (card note, command output)."""
    try:
        record_fault(state, source, message, problems, now, file=str(origin))
    except OSError as exc:
        log.error("cannot record the config fault in %s: %s", state, exc)
