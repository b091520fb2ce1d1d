"""A config on trial: confirmed when the appliance proves healthy, else rolled back.

The rules a tech can rely on (also in docs/field-tech.md): a config pushed over MQTT is on
trial until the appliance has run ``flash.healthy_s`` seconds of audio (stream time, counted
from its first healthy moment) with no fault and the broker connected. It is rolled back to
the last good config when ``flash.trial_s`` passes first, when the desk reboots during the
trial, when the service starts more than ``flash.trial_max_starts`` times without proving
healthy, or when its trial marker is found damaged at a start.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from firmware.config.load import parse_settings
from firmware.config.settings import Settings
from firmware.errors import ConfigError
from firmware.flashing.records import (
    APPLY_FILE,
    clear_fault,
    iso_utc,
    last_apply,
    last_good_path,
    record_apply,
    record_fault,
    state_dir_of,
    trial_path,
)
from firmware.platform.files import (
    Hook,
    atomic_write,
    locked_dir,
    read_json_object,
    remove_file,
    write_json,
)
from firmware.platform.host import boot_id as current_boot_id

log = logging.getLogger("deskcue.config")


def trial_info(config_path: Path) -> dict[str, Any] | None:
    """The trial marker of ``config_path`` (None when no config is on trial)."""
    return read_json_object(trial_path(config_path))


# What `startup_check` and `TrialWatch` read from a trial marker, as `apply_remote` writes it.
_MARKER_TEXT = ("sha256", "boot_id")
_MARKER_NUMBERS = ("deadline_mono", "trial_s", "healthy_s")
_MARKER_COUNTS = ("starts", "max_starts")


def trial_damage(trial: dict[str, Any]) -> str | None:
    """What is wrong with a trial marker's fields (None when each has its type)."""
    if not trial:
        return "not a JSON object"
    for key in _MARKER_TEXT:
        if not isinstance(trial.get(key), str):
            return f"{key} is not text"
    for key in _MARKER_NUMBERS + _MARKER_COUNTS:
        v = trial.get(key)
        whole = key in _MARKER_COUNTS
        if isinstance(v, bool) or not isinstance(v, int if whole else (int, float)) \
                or not math.isfinite(v):
            return f"{key} is not {'a whole number' if whole else 'a number'}"
    return None


ROLLBACK_STEPS = ("recorded", "live.partial", "live.written", "trial_ended")
"""The steps `rollback` reports to its ``hook`` (crash tests)."""


def rollback(config_path: Path, reason: str, *, now: float | None = None,
             state_dir: Path | None = None, fault: bool = True,
             hook: Hook | None = None) -> bool:
    """Put the last good config back live, end the trial and (``fault``) record a fault.

    Returns False when there is no last good config to go back to (nothing is changed then).
    With a trial on, the records (the fault and the apply record) are written first: a crash
    after them leaves the trial in place and the next start rolls back again, whereas a crash
    after the live file but before the trial ended would leave a trial record that the next
    start takes for an unfinished install, and a rollback nobody is told of. Without one (a
    rollback by hand), the records follow the live file, so they never claim a rollback
    that could not be written.
    """
    now = time.time() if now is None else now
    good = last_good_path(config_path)
    on_trial = trial_path(config_path).exists()
    trial = trial_info(config_path) or {}
    with locked_dir(config_path.parent):
        text, why = _last_good(good)
        if text is None:
            log.error("cannot roll back %s: %s", config_path, why)
            return False
        restored = parse_settings(text, good)
        state = state_dir or Path(restored.device.state_dir)
        txid = trial.get("txid")
        msg = (f"MQTT config {txid} rolled back: {reason}" if txid
               else f"config rolled back: {reason}")

        def record() -> None:
            if fault:
                record_fault(state, "rollback", msg, [], now, txid=txid)
            else:
                clear_fault(state)
            record_apply(state, restored, text, "rollback", now, rolled_back_txid=txid,
                         reason=reason)
            if hook:
                hook("recorded")

        if on_trial:
            record()
        atomic_write(config_path, text.encode("utf-8"), hook=hook, step="live")
        remove_file(trial_path(config_path))
        if hook:
            hook("trial_ended")
        if not on_trial:
            record()
    log.error("%s; running the last good config again", msg)
    return True


def _last_good(good: Path) -> tuple[str | None, str]:
    """The last good config's text, or None and why it cannot be put back. A file that is not
    a config this firmware runs (damaged on the card, or from a version whose keys this one
    does not know) is never installed: at the next start it would stop the desk for good."""
    try:
        text = good.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, f"no last good config ({good.name})"
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"the last good config {good} cannot be read ({exc})"
    try:
        parse_settings(text, good)
    except ConfigError as exc:
        return None, f"the last good config {good} is not usable ({exc})"
    return text, ""


def last_good_settings(config_path: Path) -> Settings | None:
    """The last good config kept beside ``config_path``, as settings; None when there is
    none this firmware can run."""
    good = last_good_path(config_path)
    text, _why = _last_good(good)
    return None if text is None else parse_settings(text, good)


def last_good_problem(config_path: Path) -> str | None:
    """Why `rollback` could not put the last good config back (None if it could)."""
    return _last_good(last_good_path(config_path))[1] or None


@dataclass(frozen=True)
class StartupCheck:
    """What `startup_check` found: ``action`` is none, trial or rolled_back."""

    action: str
    message: str = ""


def startup_check(config_path: Path, *, now_mono: float | None = None,
                  boot_id: str | None = None, now: float | None = None) -> StartupCheck:
    """Run first thing in `deskcue run`, before the config is used.

    A config on trial is rolled back when its deadline has passed, the desk rebooted since it
    was installed, or the appliance started ``max_starts`` times under it without confirming
    it (a crash loop), and when its trial marker is damaged (it can no longer judge the
    config). Otherwise the start is counted and the trial goes on.
    """
    config_path = Path(config_path)
    trial = trial_info(config_path)
    if trial is None:
        if not trial_path(config_path).exists():
            return StartupCheck("none")
        trial = {}  # there, but not a JSON object: damaged
    live_sha = hashlib.sha256(config_path.read_bytes()).hexdigest() \
        if config_path.exists() else None
    if isinstance(trial.get("sha256"), str) and trial["sha256"] != live_sha:
        remove_file(trial_path(config_path))  # the install never finished: the old config is live
        return StartupCheck("none", "an unfinished remote install was abandoned")
    damaged = trial_damage(trial)
    if damaged is not None:
        # The config on trial never proved healthy, and this record can no longer judge it:
        # what a trial promises is the last good config back (a crash here at every start
        # would leave the desk dark, and ignoring the record would keep an unproven config).
        why = f"its trial record {trial_path(config_path).name} is damaged ({damaged})"
        if rollback(config_path, why, now=now):
            return StartupCheck("rolled_back", why)
        remove_file(trial_path(config_path))
        return StartupCheck("none", f"{why}, but "
                            f"{last_good_problem(config_path) or 'it could not be put back'}")
    now_mono = time.monotonic() if now_mono is None else now_mono
    boot_id = current_boot_id() if boot_id is None else boot_id
    starts = int(trial.get("starts", 0)) + 1
    reason = None
    if trial.get("boot_id") != boot_id:
        reason = "the desk rebooted before the config proved healthy"
    elif now_mono > float(trial.get("deadline_mono", 0)):
        reason = f"not healthy within {trial.get('trial_s', '?')} s"
    elif starts > int(trial.get("max_starts", 3)):
        reason = f"the appliance restarted {starts - 1} times without proving healthy"
    if reason is not None:
        if rollback(config_path, reason, now=now):
            return StartupCheck("rolled_back", reason)
        remove_file(trial_path(config_path))
        return StartupCheck("none", f"{reason}, but "
                            f"{last_good_problem(config_path) or 'it could not be put back'}")
    trial["starts"] = starts
    write_json(trial_path(config_path), trial)
    _record_install(config_path, trial)
    return StartupCheck("trial", f"config {trial.get('txid')} on trial (start {starts})")


def _record_install(config_path: Path, trial: dict[str, Any]) -> None:
    """The apply record of the config on trial, when the install was cut short (kill -9, a
    power cut) between the live file and its record: without it `deskcue status` and the
    retained ``info`` would name the config before it, even once this one is confirmed."""
    state = Path(trial.get("state_dir") or state_dir_of(config_path))
    if last_apply(state).get("txid") == trial.get("txid"):
        return
    try:
        text = config_path.read_text(encoding="utf-8")
        settings = parse_settings(text, config_path)
    except (OSError, UnicodeDecodeError, ConfigError):
        return  # judged by the trial as it is; nothing sound to record
    extra = {"txid": trial.get("txid"), "trial": True}
    if isinstance(trial.get("key"), str):
        extra["key"] = trial["key"]
    try:  # when it was installed, not now
        at = datetime.fromisoformat(str(trial.get("at"))).timestamp()
    except ValueError:
        at = time.time()
    record_apply(state, settings, text, "mqtt", at, **extra)
    log.info("config %s: its apply record, cut short at install, written from its trial "
             "record", trial.get("txid"))


def confirm_trial(config_path: Path, *, now: float | None = None) -> bool:
    """The config on trial proved healthy: end the trial and note it in the apply record."""
    trial = trial_info(config_path)
    if trial is None:
        return False
    now = time.time() if now is None else now
    # The record first, the marker last: whoever sees the trial ended (`deskcue status`, a
    # tech) also sees it confirmed, and a crash in between only confirms it again.
    state = Path(trial.get("state_dir") or state_dir_of(config_path))
    rec = last_apply(state)
    if rec.get("txid") == trial.get("txid"):
        rec.update(trial=False, confirmed_at=iso_utc(now))
        write_json(state / APPLY_FILE, rec)
    remove_file(trial_path(config_path))
    log.info("config %s confirmed healthy", trial.get("txid"))
    return True


class TrialWatch:
    """Judges a config on trial from inside the running appliance.

    Call `tick` from the analysis loop. Healthy = ``healthy_s`` seconds of audio (stream time)
    with no fault, and the broker connected when one is required. Returns ``"none"`` (no trial),
    ``"pending"``, ``"confirmed"`` (trial ended, keep running), ``"rollback"`` (the last good
    config is live again: exit with `RESTART_EXIT_CODE` to run it) or ``"failed"`` (the card
    took neither: keep running and show `problem` as a fault).
    """

    def __init__(self, config_path: Path | None, *,
                 clock: Callable[[], float] = time.monotonic):
        self.config_path = Path(config_path) if config_path is not None else None
        self.clock = clock
        self.trial = trial_info(self.config_path) if self.config_path is not None else None
        self._healthy_since: float | None = None
        self.state = "pending" if self.trial else "none"
        self.problem = ""
        """Why the trial could not be ended (state ``failed``), as a fault line."""

    @property
    def active(self) -> bool:
        """True while a trial is being judged."""
        return self.state == "pending"

    def tick(self, *, audio_s: float, fault: str | None,
             broker_connected: bool | None = None, broker_error: str = "") -> str:
        """Feed the appliance's health; see the class docstring for the answers.
        ``broker_error``: the link's last connection problem, said in a rollback for the
        broker (a wrong host or port in the config on trial, or the broker down)."""
        if self.state != "pending" or self.trial is None or self.config_path is None:
            return self.state
        ok = fault is None and broker_connected is not False
        if not ok:
            self._healthy_since = None
        elif self._healthy_since is None:
            self._healthy_since = audio_s
        # `is None`, not truthiness: a desk healthy from its first tick starts at stream time 0.0.
        since = self._healthy_since
        healthy_for = audio_s - since if ok and since is not None else -1.0
        try:
            if healthy_for >= float(self.trial["healthy_s"]):
                confirm_trial(self.config_path)
                self.state = "confirmed"
            elif self.clock() > float(self.trial["deadline_mono"]):
                broker = f"broker not connected: {broker_error}" if broker_error \
                    else "broker not connected"
                why = fault or (broker if broker_connected is False else "no audio")
                rollback(self.config_path,
                         f"not healthy within {self.trial['trial_s']} s ({why})")
                self.state = "rollback"
        except OSError as exc:
            # A card that takes no write (full, or turned read-only): dying of it would only
            # restart the desk into the same failure, dark in between. The desk goes on as it
            # is and says why; the next start judges the trial again.
            what = "confirmed" if healthy_for >= float(self.trial["healthy_s"]) \
                else "rolled back"
            where = self.trial.get("state_dir") or "/var/lib/deskcue"
            self.problem = (
                f"config: MQTT config {self.trial.get('txid')} could not be {what} "
                f"({exc.strerror or exc}: {exc.filename}): free space on the card "
                f"(df -h {where}) or replace it if it turned read-only, then restart "
                "deskcue (sudo systemctl restart deskcue)")
            self.state = "failed"
        return self.state
