"""A config pushed over MQTT (``cmd/config``): signed, checked, installed on trial.

A config that arrives over MQTT must be signed (`firmware.flashing.signing`) and starts a
**trial** (`firmware.flashing.trial`): unless the appliance reports healthy within
``flash.trial_s``, or if the desk reboots or the service keeps crashing meanwhile, the last
good config is restored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from firmware.config.checks import check_text
from firmware.config.flash import keys_path
from firmware.config.schema import dump_toml
from firmware.config.settings import Settings
from firmware.contract.commands import (
    ISSUED_AHEAD_MAX_S,
    CommandArgs,
    ConfigCommandArgs,
    ErrorCode,
)
from firmware.errors import ConfigProblem, ReplayRecordDamaged, SigningError
from firmware.flashing.install import install_text
from firmware.flashing.records import (
    clear_fault,
    iso_utc,
    last_issued,
    record_apply,
    record_fault,
    record_issued,
    settings_hash,
    trial_path,
)
from firmware.platform.files import Hook, locked_dir, write_json
from firmware.platform.host import boot_id, clock_is_synced

log = logging.getLogger("deskcue.config")

MQTT_COMMAND = ConfigCommandArgs.name  # "config"


def mqtt_extra_commands(settings: Settings) -> dict[str, tuple[type[CommandArgs], int]]:
    """``extra_commands`` for `firmware.link.mqtt_client.MqttLink`: the ``config`` command and its
    payload limit (the TOML may double in size as a JSON string)."""
    return {MQTT_COMMAND: (ConfigCommandArgs, 2 * settings.flash.max_bytes + 4096)}


def command_reply(result: RemoteResult) -> tuple[bool, dict[str, Any]]:
    """``(ok, data)`` for the appliance's command reply: on failure ``data["error"]`` is the
    (code, message) pair and ``data["problems"]`` lists each config problem with its line."""
    data = result.result_data()
    if not result.ok:
        data["error"] = (result.code, result.message)
    return result.ok, data


@dataclass
class RemoteResult:
    """The answer to a ``cmd/config``: ``ok``, an error ``code``, and what to report.

    ``restart``: the appliance must restart to run the new config (exit with
    `RESTART_EXIT_CODE`); the trial is judged from then on.
    """

    ok: bool
    code: ErrorCode | Literal["ok"]
    message: str
    txid: str | None = None
    problems: list[ConfigProblem] = field(default_factory=list)
    warnings: list[ConfigProblem] = field(default_factory=list)
    restart: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def result_data(self) -> dict[str, Any]:
        """The result payload's data (problems with their lines)."""
        out = dict(self.data)
        if self.problems:
            out["problems"] = [asdict(p) for p in self.problems]
        if self.warnings:
            out["warnings"] = [asdict(w) for w in self.warnings]
        return out


def apply_remote(payload: bytes | str | dict[str, Any], *, config_path: Path,
                 current: Settings, credentials_dir: str | None = None,
                 now: float | None = None, now_mono: float | None = None,
                 hook: Hook | None = None) -> RemoteResult:
    """Verify, validate and install a ``cmd/config`` payload on trial.

    Refused (nothing changed): remote config off, malformed, unsigned, no key installed, bad
    signature, not newer than the last accepted (``issued``), invalid config (every problem
    with its line), or a config for another site/desk. Accepted: installed with the running
    config kept as last good, a trial marker written, ``restart`` set. ``credentials_dir``
    None = ``$CREDENTIALS_DIRECTORY``.
    """
    now = time.time() if now is None else now
    now_mono = time.monotonic() if now_mono is None else now_mono
    flash = current.flash
    state = Path(current.device.state_dir)

    def refuse(code: ErrorCode, message: str, txid: str | None = None,
               problems: list[ConfigProblem] | None = None) -> RemoteResult:
        log.warning("cmd/config %s refused: %s", txid or "?", message)
        return RemoteResult(False, code, message, txid, problems or [])

    if not flash.remote:
        return refuse("refused", "remote config is off on this desk (flash.remote = false)")
    try:
        obj = json.loads(payload) if isinstance(payload, bytes | str) else payload
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as exc:
        return refuse("malformed", f"payload is not a JSON object: {exc}")
    txid = obj.get("txid") if isinstance(obj.get("txid"), str) else None
    if isinstance(obj.get("config"), str) and len(obj["config"].encode()) > flash.max_bytes:
        return refuse("too_large", f"config is larger than flash.max_bytes = {flash.max_bytes}",
                      txid)
    try:
        # strict: a signed payload is taken exactly as signed (no "5" for 5)
        cmd = ConfigCommandArgs.model_validate(obj, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return refuse("malformed", f"{where}: {first['msg']}", txid)
    if credentials_dir is None:
        credentials_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    # cryptography only when a config comes: ~10 MB resident on every desk that never gets one
    from firmware.flashing.signing import load_public_keys, verify

    try:
        keys = load_public_keys(keys_path(flash, credentials_dir))
        signer = verify(keys, txid=cmd.txid, issued=cmd.issued, config_text=cmd.config,
                        signature=cmd.signature)
    except SigningError as exc:
        return refuse(exc.code, str(exc), cmd.txid)
    try:
        last = last_issued(state)
    except ReplayRecordDamaged as exc:
        # Fail closed: without a trustworthy record any older signed config could be replayed.
        _record_fault_safely(state, f"MQTT config {cmd.txid} refused: {exc}", now, cmd.txid)
        return refuse("replay_record_damaged", str(exc), cmd.txid)
    if last is not None and cmd.issued <= last:
        return refuse("replayed", f"issued {cmd.issued} is not newer than the last accepted "
                      f"config ({last}); refused", cmd.txid)
    if cmd.issued > now + ISSUED_AHEAD_MAX_S and clock_is_synced():
        return refuse("invalid_args", f"issued {cmd.issued} is {cmd.issued - now:.0f} s ahead of "
                      f"the desk's clock (at most {ISSUED_AHEAD_MAX_S} s): accepted, it would "
                      "make every config signed before it a replay; sign it again with the "
                      "right time", cmd.txid)
    result = check_text(cmd.config, f"cmd/config {cmd.txid}")
    if result.site_file:
        return refuse("invalid", "a site file cannot be pushed; push one desk's config",
                      cmd.txid)
    if not result.ok:
        _record_fault_safely(state, f"MQTT config {cmd.txid} refused: "
                             f"{len(result.problems)} problem(s), first: {result.problems[0]}",
                             now, cmd.txid, result.problems)
        return refuse("invalid", f"{len(result.problems)} problem(s) in the config",
                      cmd.txid, result.problems)
    new = next(iter(result.configs.values()))
    here = (current.device.site, current.device.desk)
    if (new.device.site, new.device.desk) != here:
        return refuse("wrong_desk", f"config is for {new.device.site}/{new.device.desk}, this "
                      f"desk is {here[0]}/{here[1]}; refused", cmd.txid)
    new_state = Path(new.device.state_dir)
    installed = False
    try:
        with locked_dir(config_path.parent):
            on_trial = trial_path(config_path).exists()
            fallback = dump_toml(_without_none(current.model_dump(mode="json")),
                                 ["the config this desk ran before its first remote config"])
            trial = {"txid": cmd.txid, "issued": cmd.issued, "hash": settings_hash(new),
                     "sha256": hashlib.sha256(cmd.config.encode("utf-8")).hexdigest(),
                     "key": signer.fingerprint, "boot_id": boot_id(),
                     "deadline_mono": now_mono + new.flash.trial_s,
                     "trial_s": new.flash.trial_s, "healthy_s": new.flash.healthy_s,
                     "max_starts": new.flash.trial_max_starts, "starts": 0,
                     "at": iso_utc(now), "state_dir": str(new.device.state_dir)}
            # `issued` is spent before anything is installed: a failure after this point can
            # only make the supervisor sign again, never let an older config through.
            record_issued(state, cmd.issued, cmd.txid)
            if new_state != state:
                record_issued(new_state, cmd.issued, cmd.txid)
            # The marker goes down before the new config does: a crash in between leaves a
            # marker that does not match the live file, which `startup_check` then drops.
            install_text(config_path, cmd.config, keep_previous=not on_trial,
                         fallback=fallback, hook=hook,
                         before_live=lambda: write_json(trial_path(config_path), trial))
            installed = True
            rec = record_apply(new_state, new, cmd.config, "mqtt", now, txid=cmd.txid,
                               trial=True, key=signer.fingerprint)
            clear_fault(new_state)
    except OSError as exc:
        if not installed:
            return refuse("install_failed", f"could not install the config ({exc}); nothing "
                          "was changed", cmd.txid)
        # Live and on trial, but its apply record could not be written: the trial judges it.
        log.error("cmd/config %s installed, but its apply record was not written: %s",
                  cmd.txid, exc)
        rec = {"hash": settings_hash(new)}
    log.info("cmd/config %s installed on trial (%s, %.0f s to prove healthy)", cmd.txid,
             rec["hash"], new.flash.trial_s)
    return RemoteResult(True, "ok", f"installed on trial; restarting to run config "
                        f"{rec['hash']}", cmd.txid, warnings=result.warnings, restart=True,
                        data={"hash": rec["hash"], "trial_s": new.flash.trial_s,
                              "healthy_s": new.flash.healthy_s})


def _record_fault_safely(state: Path, message: str, now: float, txid: str,
                         problems: list[ConfigProblem] | None = None) -> None:
    """Record a refusal as the pending config fault; a state directory that cannot take it
    is logged, and the refusal still stands (the supervisor gets the answer either way)."""
    try:
        record_fault(state, "mqtt", message, problems or [], now, txid=txid)
    except OSError as exc:
        log.error("cannot record the config fault in %s: %s", state, exc)


def _without_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _without_none(v) if isinstance(v, dict) else v
            for k, v in d.items() if v is not None}
