"""Installing a config safely: from the SD card at boot, locally, or signed over MQTT on trial.

Files (``/etc/deskcue`` on a desk; every path is a parameter for tests)::

    /etc/deskcue/deskcue.toml              the live config `deskcue run` reads
    /etc/deskcue/deskcue.toml.last-good    the config that ran before the last install
    /etc/deskcue/deskcue.toml.trial        marker: the live config came over MQTT and is on trial
    <state_dir>/config-apply.json          last apply: hash, source, time (for info and status)
    <state_dir>/config-fault.json          a rejected or rolled-back config, until cleared
    <state_dir>/config-remote.json         highest ``issued`` accepted over MQTT (anti-replay)
    <boot>/deskcue.toml                    a tech's new config, dropped on the boot partition
    <boot>/deskcue.toml.applied-<time>     ... moved aside once imported, with
    <boot>/deskcue.toml.applied-<time>.result.txt   a note saying what happened
    <boot>/deskcue.toml.rejected-<time>[.result.txt] (a bad file: every error with its line)

Rules that keep a desk from being bricked:

- A config is validated as a whole before anything is touched; a bad one changes nothing and
  is recorded as a fault (the appliance shows the fault pattern and reports it over MQTT).
- The live file is only ever replaced by rename of a fully written, fsynced temporary file,
  and the directory is fsynced: a crash at any point leaves the old or the new file, whole.
- Before a replace, the running config is kept as ``.last-good`` (the same way).
- A card import is idempotent: after a crash it is simply run again at the next boot.
- A config that arrives over MQTT must be signed (`firmware.config_signing`) and starts a
  **trial**: unless the appliance reports healthy (`TrialWatch`) within ``flash.trial_s``, or if
  the desk reboots or the service keeps crashing meanwhile, the last good config is restored.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from firmware.commands import CommandArgs
from firmware.config_cli import CheckResult, check_text, resolve_desk_text
from firmware.settings import ConfigProblem, Settings

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
IMPORT_STEPS = ("read", "checked", "last_good.partial", "last_good.written", "live.partial",
                "live.written", "installed", "recorded", "note.written", "moved_aside")

Hook = Callable[[str], None]


# -- small file helpers --------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _same_owner_as_dir(path: Path) -> None:
    """When root writes into a directory owned by the service user, keep the file theirs."""
    if os.geteuid() != 0:
        return
    with contextlib.suppress(OSError):
        st = path.parent.stat()
        os.chown(path, st.st_uid, st.st_gid)


def atomic_write(path: Path, data: bytes, *, hook: Hook | None = None, step: str = "",
                 mode: int = 0o644) -> None:
    """Replace ``path`` with ``data``: temporary file, fsync, rename, directory fsync.

    A crash at any point leaves ``path`` as it was or as ``data``, never in between.
    ``hook(step + ".partial")`` runs with half the data written (crash tests), then
    ``hook(step + ".written")`` once the new file is in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        half = len(data) // 2
        f.write(data[:half])
        if hook and step:
            f.flush()
            hook(step + ".partial")
        f.write(data[half:])
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    _same_owner_as_dir(path)
    if hook and step:
        hook(step + ".written")


def _write_json(path: Path, data: Any) -> None:
    atomic_write(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("%s unreadable (%s); ignored", path, exc)
        return None
    return data if isinstance(data, dict) else None


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        _fsync_dir(path.parent)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise installs into ``directory`` (the boot-time import vs. an MQTT apply)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".deskcue-config.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def settings_hash(settings: Settings) -> str:
    """Short stable hash of the effective config (the same as `Appliance.info`'s
    ``config_hash``: SHA-256 of the settings' JSON, 16 hex digits)."""
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()[:16]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _clock_synced() -> bool:
    try:
        from firmware.envelope import clock_is_synced
    except ImportError:  # pragma: no cover
        return False
    return bool(clock_is_synced())


def _now_iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(now: float) -> str:
    """A file-name-safe UTC time (FAT boot partitions allow no ':')."""
    return datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")


# -- paths ---------------------------------------------------------------------------------------


def last_good_path(config_path: Path) -> Path:
    """Where the config that ran before the last install is kept."""
    return config_path.with_name(config_path.name + LAST_GOOD_SUFFIX)


def trial_path(config_path: Path) -> Path:
    """The trial marker of ``config_path`` (present while a remote config is unconfirmed)."""
    return config_path.with_name(config_path.name + TRIAL_SUFFIX)


def state_dir_of(config_path: Path, default: Path = DEFAULT_STATE) -> Path:
    """The state directory the config at ``config_path`` names (``default`` if unreadable)."""
    from firmware.settings import ConfigError, load_settings

    try:
        return Path(load_settings(config_path).device.state_dir)
    except ConfigError:
        return default


# -- the records the appliance reads ---------------------------------------------------------


def last_apply(state_dir: Path) -> dict[str, Any]:
    """The last apply: ``hash``, ``source`` (card, mqtt, local, rollback), ``at`` (UTC ISO),
    ``clock_synced``, and ``txid``/``trial``/``confirmed_at`` for MQTT; {} when none yet.

    For `Appliance.info` (retained ``info`` message) and `deskcue status`.
    """
    data = _read_json(Path(state_dir) / APPLY_FILE)
    return data or {}


def fault_record(state_dir: Path) -> dict[str, Any] | None:
    """The pending config fault (what was rejected or rolled back, with its problems)."""
    return _read_json(Path(state_dir) / FAULT_FILE)


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
    _remove(path)
    return existed


def _record_fault(state_dir: Path, source: str, message: str,
                  problems: list[ConfigProblem], now: float, **extra: Any) -> None:
    _write_json(Path(state_dir) / FAULT_FILE, {
        "source": source, "message": message, "at": _now_iso(now),
        "clock_synced": _clock_synced(), **extra,
        "problems": [asdict(p) for p in problems],
    })


def _record_apply(state_dir: Path, settings: Settings, text: str, source: str, now: float,
                  **extra: Any) -> dict[str, Any]:
    rec = {
        "hash": settings_hash(settings),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "source": source,
        "at": _now_iso(now),
        "clock_synced": _clock_synced(),
        "boot_id": _boot_id(),
        **extra,
    }
    _write_json(Path(state_dir) / APPLY_FILE, rec)
    return rec


# -- installing ----------------------------------------------------------------------------------


def _install(config_path: Path, text: str, *, keep_previous: bool, fallback: str | None,
             hook: Hook | None, before_live: Callable[[], None] | None = None) -> None:
    """Keep the running config as last good (if ``keep_previous``), then put ``text`` live.

    ``fallback``: what to keep as last good when there is no live file yet. ``before_live``
    runs between the two (the trial marker is written there).
    """
    live = config_path
    if keep_previous:
        previous = live.read_bytes() if live.exists() else (
            fallback.encode("utf-8") if fallback is not None else None)
        if previous is not None:
            atomic_write(last_good_path(live), previous, hook=hook, step="last_good")
    if before_live is not None:
        before_live()
    atomic_write(live, text.encode("utf-8"), hook=hook, step="live")


def _live_text(config_path: Path) -> str | None:
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
               hook: Hook | None = None, extra: dict[str, Any] | None = None) -> ApplyResult:
    """Validate ``text`` and install it as the live config, keeping the last good one.

    A bad config changes nothing on disk except the fault record. ``state_dir`` None = the
    one the (new, else current) config names. Any trial in progress ends: a config installed
    by hand is final, and an unconfirmed trial config never becomes the last good one.
    """
    now = time.time() if now is None else now
    hook = hook or (lambda step: None)
    hook("read")
    resolved, result = resolve_desk_text(text, origin, desk)
    hook("checked")
    if not result.ok:
        state = state_dir or state_dir_of(config_path)
        msg = (f"{source} config {Path(origin).name} refused: {len(result.problems)} "
               f"problem(s), first: {result.problems[0]}")
        _record_fault(state, source, msg, result.problems, now, file=str(origin))
        return ApplyResult("rejected", source, problems=result.problems,
                           warnings=result.warnings, message=msg)
    settings = next(iter(result.configs.values()))
    state = state_dir or Path(settings.device.state_dir)
    with _locked(config_path.parent):
        on_trial = trial_path(config_path).exists()
        if _live_text(config_path) == resolved:
            status = "unchanged"  # already live (e.g. a re-run after a crash): keep last good
        else:
            _install(config_path, resolved, keep_previous=not on_trial, fallback=None,
                     hook=hook)
            status = "applied"
        hook("installed")
        _remove(trial_path(config_path))
        rec = _record_apply(state, settings, resolved, source, now, file=Path(origin).name,
                            **(extra or {}))
        clear_fault(state)
        hook("recorded")
    return ApplyResult(status, source, warnings=result.warnings, record=rec,
                       message=f"{status}: config {rec['hash']} from {source}")


# -- the SD card import --------------------------------------------------------------------------


def find_boot_file(boot_dirs: list[Path] | tuple[Path, ...]) -> Path | None:
    """The first ``deskcue.toml`` waiting in one of ``boot_dirs``."""
    for d in boot_dirs:
        p = Path(d) / CONFIG_NAME
        if p.is_file():
            return p
    return None


def _aside_name(boot_file: Path, outcome: str, now: float) -> Path:
    base = boot_file.with_name(f"{boot_file.name}.{outcome}-{_stamp(now)}")
    candidate, n = base, 1
    while candidate.exists() or candidate.with_name(candidate.name + ".result.txt").exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _note(result: ApplyResult, boot_file: Path, aside: Path, now: float,
          previous_hash: str | None) -> str:
    lines = [f"deskcue config import: {result.status.upper()}",
             f"file:  {boot_file.name} (now {aside.name})",
             f"when:  {_now_iso(now)} (clock synced: {'yes' if _clock_synced() else 'no'})"]
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
    try:
        text = boot_file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        text = None
        problem = ConfigProblem("", None, f"not UTF-8 text: {exc}")
    if text is None:
        state = state_dir or state_dir_of(config_path)
        msg = f"card config {boot_file.name} refused: not UTF-8 text"
        _record_fault(state, "card", msg, [problem], now, file=str(boot_file))
        result = ApplyResult("rejected", "card", problems=[problem], message=msg)
    else:
        result = apply_text(text, source="card", config_path=config_path, state_dir=state_dir,
                            origin=str(boot_file), now=now, hook=hook)
    result.file = boot_file
    aside = _aside_name(boot_file, "applied" if result.ok else "rejected", now)
    note = aside.with_name(aside.name + ".result.txt")
    atomic_write(note, _note(result, boot_file, aside, now, previous_hash).encode())
    hook("note.written")
    os.replace(boot_file, aside)
    _fsync_dir(boot_file.parent)
    hook("moved_aside")
    result.moved_to, result.note = aside, note
    return result


def _current_hash(config_path: Path) -> str | None:
    from firmware.settings import ConfigError, load_settings

    if not config_path.exists():
        return None
    try:
        return settings_hash(load_settings(config_path))
    except ConfigError:
        return None


def flash_to_boot(source: Path, boot_dir: Path, *, desk: str | None = None
                  ) -> tuple[Path | None, CheckResult]:
    """Check ``source`` (a desk file, or a site file with ``desk``) and write the desk file
    onto the boot partition ``boot_dir`` as ``deskcue.toml``; (None, result) if it has problems.
    """
    text = Path(source).read_text(encoding="utf-8")
    resolved, result = resolve_desk_text(text, str(source), desk)
    if not result.ok:
        return None, result
    target = Path(boot_dir) / CONFIG_NAME
    atomic_write(target, resolved.encode("utf-8"))
    return target, result


# -- over MQTT, signed, on trial -----------------------------------------------------------------

MQTT_COMMAND = "config"


class ConfigCommandArgs(CommandArgs):
    """``cmd/config``: install a signed config on trial (see `firmware.config_signing`)."""

    name: ClassVar[str] = MQTT_COMMAND
    issued: int = Field(..., ge=0, description="Signer's counter (Unix seconds); must grow.")
    config: str = Field(..., description="The complete config, as TOML text.")
    signature: str | None = Field(None, description="Base64 Ed25519 signature.")
    key_id: str | None = Field(None, max_length=64, description="Which key signed (for logs).")


def mqtt_extra_commands(settings: Settings) -> dict[str, tuple[type[CommandArgs], int]]:
    """``extra_commands`` for `firmware.mqtt_link.MqttLink`: the ``config`` command and its
    payload limit (the TOML may double in size as a JSON string)."""
    return {MQTT_COMMAND: (ConfigCommandArgs, 2 * settings.flash.max_bytes + 4096)}


def command_reply(result: RemoteResult) -> tuple[bool, dict[str, Any]]:
    """``(ok, data)`` for the appliance's command reply: on failure ``data["error"]`` is the
    (code, message) pair and ``data["problems"]`` lists each config problem with its line."""
    data = result.result_data()
    if not result.ok:
        data["error"] = (result.code, result.message)
    return result.ok, data



class ConfigPayload(BaseModel):
    """A ``cmd/config`` payload (see `firmware.config_signing` for the signature)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    txid: str = Field(..., pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="Transaction id.")
    issued: int = Field(..., ge=0, description="Signer's counter (Unix seconds); must grow.")
    config: str = Field(..., description="The complete config, as TOML text.")
    signature: str | None = Field(None, description="Base64 Ed25519 signature.")
    key_id: str | None = Field(None, max_length=64, description="Which key signed (for logs).")
    ts: float | None = Field(None, description="Send time, Unix seconds (staleness check).")


@dataclass
class RemoteResult:
    """The answer to a ``cmd/config``: ``ok``, an error ``code``, and what to report.

    ``restart``: the appliance must restart to run the new config (exit with
    `RESTART_EXIT_CODE`); the trial is judged from then on.
    """

    ok: bool
    code: str
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
    from firmware.config_signing import SigningError, load_public_keys, verify
    from firmware.flash_settings import keys_path

    now = time.time() if now is None else now
    now_mono = time.monotonic() if now_mono is None else now_mono
    flash = current.flash
    state = Path(current.device.state_dir)

    def refuse(code: str, message: str, txid: str | None = None,
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
        cmd = ConfigPayload.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return refuse("malformed", f"{where}: {first['msg']}", txid)
    if credentials_dir is None:
        credentials_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    try:
        keys = load_public_keys(keys_path(flash, credentials_dir))
        signer = verify(keys, txid=cmd.txid, issued=cmd.issued, config_text=cmd.config,
                        signature=cmd.signature)
    except SigningError as exc:
        return refuse(exc.code, str(exc), cmd.txid)
    last = (_read_json(state / REMOTE_FILE) or {}).get("issued")
    if isinstance(last, int) and cmd.issued <= last:
        return refuse("replayed", f"issued {cmd.issued} is not newer than the last accepted "
                      f"config ({last}); refused", cmd.txid)
    result = check_text(cmd.config, f"cmd/config {cmd.txid}")
    if result.site_file:
        return refuse("invalid", "a site file cannot be pushed; push one desk's config",
                      cmd.txid)
    if not result.ok:
        _record_fault(state, "mqtt", f"MQTT config {cmd.txid} refused: "
                      f"{len(result.problems)} problem(s), first: {result.problems[0]}",
                      result.problems, now, txid=cmd.txid)
        return refuse("invalid", f"{len(result.problems)} problem(s) in the config",
                      cmd.txid, result.problems)
    new = next(iter(result.configs.values()))
    here = (current.device.site, current.device.desk)
    if (new.device.site, new.device.desk) != here:
        return refuse("wrong_desk", f"config is for {new.device.site}/{new.device.desk}, this "
                      f"desk is {here[0]}/{here[1]}; refused", cmd.txid)
    from firmware.config_schema import dump_toml

    with _locked(config_path.parent):
        on_trial = trial_path(config_path).exists()
        fallback = dump_toml(_without_none(current.model_dump(mode="json")),
                             ["the config this desk ran before its first remote config"])
        trial = {"txid": cmd.txid, "issued": cmd.issued, "hash": settings_hash(new),
                 "sha256": hashlib.sha256(cmd.config.encode("utf-8")).hexdigest(),
                 "key": signer.fingerprint, "boot_id": _boot_id(),
                 "deadline_mono": now_mono + new.flash.trial_s, "trial_s": new.flash.trial_s,
                 "healthy_s": new.flash.healthy_s, "max_starts": new.flash.trial_max_starts,
                 "starts": 0, "at": _now_iso(now), "state_dir": str(new.device.state_dir)}
        # The marker goes down before the new config does: a crash in between leaves a marker
        # that does not match the live file, which `startup_check` then drops.
        _install(config_path, cmd.config, keep_previous=not on_trial, fallback=fallback,
                 hook=hook, before_live=lambda: _write_json(trial_path(config_path), trial))
        _write_json(state / REMOTE_FILE, {"issued": cmd.issued, "txid": cmd.txid})
        new_state = Path(new.device.state_dir)
        rec = _record_apply(new_state, new, cmd.config, "mqtt", now, txid=cmd.txid,
                            trial=True, key=signer.fingerprint)
        clear_fault(new_state)
        if new_state != state:
            _write_json(new_state / REMOTE_FILE, {"issued": cmd.issued, "txid": cmd.txid})
    log.info("cmd/config %s installed on trial (%s, %.0f s to prove healthy)", cmd.txid,
             rec["hash"], new.flash.trial_s)
    return RemoteResult(True, "ok", f"installed on trial; restarting to run config "
                        f"{rec['hash']}", cmd.txid, warnings=result.warnings, restart=True,
                        data={"hash": rec["hash"], "trial_s": new.flash.trial_s,
                              "healthy_s": new.flash.healthy_s})


def _without_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _without_none(v) if isinstance(v, dict) else v
            for k, v in d.items() if v is not None}


def trial_info(config_path: Path) -> dict[str, Any] | None:
    """The trial marker of ``config_path`` (None when no config is on trial)."""
    return _read_json(trial_path(config_path))


def rollback(config_path: Path, reason: str, *, now: float | None = None,
             state_dir: Path | None = None, fault: bool = True) -> bool:
    """Put the last good config back live, end the trial and (``fault``) record a fault.

    Returns False when there is no last good config to go back to (nothing is changed then).
    """
    now = time.time() if now is None else now
    good = last_good_path(config_path)
    trial = trial_info(config_path) or {}
    with _locked(config_path.parent):
        try:
            text = good.read_text(encoding="utf-8")
        except (FileNotFoundError, UnicodeDecodeError):
            log.error("cannot roll back %s: no last good config", config_path)
            return False
        atomic_write(config_path, text.encode("utf-8"))
        _remove(trial_path(config_path))
    from firmware.settings import ConfigError, parse_settings

    try:
        restored = parse_settings(text, good)
    except ConfigError:
        restored = Settings()
    state = state_dir or Path(restored.device.state_dir)
    txid = trial.get("txid")
    msg = (f"MQTT config {txid} rolled back: {reason}" if txid
           else f"config rolled back: {reason}")
    if fault:
        _record_fault(state, "rollback", msg, [], now, txid=txid)
    else:
        clear_fault(state)
    _record_apply(state, restored, text, "rollback", now, rolled_back_txid=txid, reason=reason)
    log.error("%s; running the last good config again", msg)
    return True


@dataclass(frozen=True)
class StartupCheck:
    """What `startup_check` found: ``action`` is none, trial or rolled_back."""

    action: str
    message: str = ""
    remaining_s: float = 0.0


def startup_check(config_path: Path, *, now_mono: float | None = None,
                  boot_id: str | None = None, now: float | None = None) -> StartupCheck:
    """Run first thing in `deskcue run`, before the config is used.

    A config on trial is rolled back when its deadline has passed, the desk rebooted since it
    was installed, or the appliance started ``max_starts`` times under it without confirming
    it (a crash loop). Otherwise the start is counted and the trial goes on.
    """
    config_path = Path(config_path)
    trial = trial_info(config_path)
    if trial is None:
        return StartupCheck("none")
    live_sha = hashlib.sha256(config_path.read_bytes()).hexdigest() \
        if config_path.exists() else None
    if trial.get("sha256") != live_sha:
        _remove(trial_path(config_path))  # the install never finished: the old config is live
        return StartupCheck("none", "an unfinished remote install was abandoned")
    now_mono = time.monotonic() if now_mono is None else now_mono
    boot_id = _boot_id() if boot_id is None else boot_id
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
        _remove(trial_path(config_path))
        return StartupCheck("none", f"{reason}, but there is no last good config to restore")
    trial["starts"] = starts
    _write_json(trial_path(config_path), trial)
    return StartupCheck("trial", f"config {trial.get('txid')} on trial (start {starts})",
                        float(trial["deadline_mono"]) - now_mono)


def confirm_trial(config_path: Path, *, now: float | None = None) -> bool:
    """The config on trial proved healthy: end the trial and note it in the apply record."""
    trial = trial_info(config_path)
    if trial is None:
        return False
    now = time.time() if now is None else now
    state = Path(trial.get("state_dir") or state_dir_of(config_path))
    rec = last_apply(state)
    if rec.get("txid") == trial.get("txid"):
        rec.update(trial=False, confirmed_at=_now_iso(now))
        _write_json(state / APPLY_FILE, rec)
    # The marker goes last: once it is gone the record says confirmed (a crash in between
    # leaves the trial to be confirmed again, never a record stuck "on trial").
    _remove(trial_path(config_path))
    log.info("config %s confirmed healthy", trial.get("txid"))
    return True


class TrialWatch:
    """Judges a config on trial from inside the running appliance.

    Call `tick` from the analysis loop. Healthy = ``healthy_s`` seconds of audio (stream time)
    with no fault, and the broker connected when one is required. Returns ``"none"`` (no trial),
    ``"pending"``, ``"confirmed"`` (trial ended, keep running) or ``"rollback"`` (the last good
    config is live again: exit with `RESTART_EXIT_CODE` to run it).
    """

    def __init__(self, config_path: Path | None, *,
                 clock: Callable[[], float] = time.monotonic):
        self.config_path = Path(config_path) if config_path is not None else None
        self.clock = clock
        self.trial = trial_info(self.config_path) if self.config_path is not None else None
        self._healthy_since: float | None = None
        self.state = "pending" if self.trial else "none"

    @property
    def active(self) -> bool:
        """True while a trial is being judged."""
        return self.state == "pending"

    def tick(self, *, audio_s: float, fault: str | None,
             broker_connected: bool | None = None) -> str:
        """Feed the appliance's health; see the class docstring for the answers."""
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
        if healthy_for >= float(self.trial["healthy_s"]):
            confirm_trial(self.config_path)
            self.state = "confirmed"
        elif self.clock() > float(self.trial["deadline_mono"]):
            why = fault or ("broker not connected" if broker_connected is False else "no audio")
            rollback(self.config_path, f"not healthy within {self.trial['trial_s']} s ({why})")
            self.state = "rollback"
        return self.state


# -- the command line ----------------------------------------------------------------------------


def _print_result(result: ApplyResult) -> None:
    stream = sys.stdout if result.ok else sys.stderr
    print(result.message or result.status, file=stream)
    for p in result.problems:
        print(f"  {p}", file=stream)
    for w in result.warnings:
        print(f"  warning: {w}", file=stream)
    if result.note is not None:
        print(f"note: {result.note}", file=stream)


def _cmd_flash(a: argparse.Namespace, _s: Any = None) -> int:
    target, result = flash_to_boot(a.file, a.boot, desk=a.desk)
    for line in result.lines():
        print(line, file=sys.stderr if not result.ok else sys.stdout)
    if target is None:
        print(f"{a.file}: {len(result.problems)} problem(s); nothing written", file=sys.stderr)
        return 1
    print(f"wrote {target}: the desk installs it at its next boot (the result is left next "
          f"to it as {CONFIG_NAME}.applied-<time>.result.txt)")
    return 0


def _cmd_import(a: argparse.Namespace, _s: Any = None) -> int:
    config = a.etc / CONFIG_NAME
    result = import_from_boot(a.boot or list(DEFAULT_BOOT_DIRS), config, state_dir=a.state)
    _print_result(result)
    return 0 if result.ok else 1


def _cmd_apply(a: argparse.Namespace, _s: Any = None) -> int:
    text = a.file.read_text(encoding="utf-8")
    result = apply_text(text, source="local", config_path=a.etc / CONFIG_NAME,
                        state_dir=a.state, desk=a.desk, origin=str(a.file))
    _print_result(result)
    if result.ok and result.status == "applied":
        print("restart the appliance to use it: systemctl restart deskcue")
    return 0 if result.ok else 1


def _cmd_ack(a: argparse.Namespace, _s: Any = None) -> int:
    state = a.state or state_dir_of(a.etc / CONFIG_NAME)
    print("config fault cleared" if clear_fault(state) else "no config fault pending")
    return 0


def _cmd_rollback(a: argparse.Namespace, _s: Any = None) -> int:
    config = a.etc / CONFIG_NAME
    if not rollback(config, "rolled back by hand", state_dir=a.state, fault=False):
        print(f"no last good config next to {config}", file=sys.stderr)
        return 1
    print(f"{config}: last good config restored; restart the appliance: "
          "systemctl restart deskcue")
    return 0


def _cmd_keygen(a: argparse.Namespace, _s: Any = None) -> int:
    from firmware.config_signing import generate_keypair

    try:
        line = generate_keypair(a.private, a.public, a.comment or "")
    except FileExistsError:
        print(f"{a.private} exists; refusing to overwrite a private key", file=sys.stderr)
        return 1
    print(f"private key: {a.private} (keep it off the desks)\npublic key:  {a.public}\n{line}")
    return 0


def _cmd_sign(a: argparse.Namespace, _s: Any = None) -> int:
    from firmware.config_signing import load_private_key, sign_config

    text = a.file.read_text(encoding="utf-8")
    resolved, result = resolve_desk_text(text, str(a.file), a.desk)
    if not result.ok:
        for line in result.lines():
            print(line, file=sys.stderr)
        return 1
    issued = a.issued if a.issued is not None else int(time.time())
    txid = a.txid or f"cfg-{issued}"
    payload = sign_config(load_private_key(a.key), resolved, txid=txid, issued=issued,
                          key_id=a.key_id)
    print(json.dumps(payload))
    return 0


def register_cli(csub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add flash, import, apply, ack, rollback, keygen and sign under ``deskcue config``."""
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--etc", type=Path, default=DEFAULT_ETC,
                       help=f"config directory (default {DEFAULT_ETC})")
        p.add_argument("--state", type=Path,
                       help="state directory (default: the config's device.state_dir)")

    f = csub.add_parser("flash", help="check a config and put it on a desk's SD card")
    f.add_argument("file", type=Path)
    f.add_argument("--boot", type=Path, required=True,
                   help="the card's boot partition, mounted (e.g. /media/$USER/bootfs)")
    f.add_argument("--desk", help="for a site file: which desk's config to write")
    f.set_defaults(func=_cmd_flash, needs_settings=False)

    i = csub.add_parser("import", help="install deskcue.toml from the boot partition "
                        "(run at boot by deskcue-config-import.service)")
    i.add_argument("--boot", type=Path, action="append",
                   help="boot partition to look in (repeatable; default /boot/firmware, /boot)")
    common(i)
    i.set_defaults(func=_cmd_import, needs_settings=False)

    ap = csub.add_parser("apply", help="install a config file on this desk now")
    ap.add_argument("file", type=Path)
    ap.add_argument("--desk", help="for a site file: which desk's config to install")
    common(ap)
    ap.set_defaults(func=_cmd_apply, needs_settings=False)

    ack = csub.add_parser("ack", help="clear a pending config fault (after reading it)")
    common(ack)
    ack.set_defaults(func=_cmd_ack, needs_settings=False)

    rb = csub.add_parser("rollback", help="put the last good config back")
    common(rb)
    rb.set_defaults(func=_cmd_rollback, needs_settings=False)

    kg = csub.add_parser("keygen", help="make an Ed25519 key pair for signing configs")
    kg.add_argument("--private", type=Path, required=True, help="private key file to create")
    kg.add_argument("--public", type=Path, required=True, help="public key file for the desks")
    kg.add_argument("--comment", help="comment on the public key line")
    kg.set_defaults(func=_cmd_keygen, needs_settings=False)

    sg = csub.add_parser("sign", help="make a signed cmd/config payload (JSON on stdout)")
    sg.add_argument("file", type=Path)
    sg.add_argument("--key", type=Path, required=True, help="Ed25519 private key (PEM)")
    sg.add_argument("--desk", help="for a site file: which desk's config to sign")
    sg.add_argument("--txid", help="transaction id (default cfg-<issued>)")
    sg.add_argument("--issued", type=int, help="counter that must grow (default: now, Unix s)")
    sg.add_argument("--key-id", help="name of the key, for the desk's log")
    sg.set_defaults(func=_cmd_sign, needs_settings=False)
