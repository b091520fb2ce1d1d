"""`deskcue status`: which config a desk runs, where it came from, and how the appliance is.

Read from the files the appliance and the config tools keep (no root needed beyond reading
them): the live config and its hash, the last apply (source: card, mqtt, local or rollback;
time; MQTT txid), a config on trial, a pending config fault with its problems, and whether
the appliance is running. When the appliance answers a ``status`` request on its control
socket (see `send_reply`), its live status is shown too. Exit status 1 when the config is
unusable, a config fault is pending or the running appliance shows a fault; else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from firmware.config.load import load_settings
from firmware.config.settings import Settings
from firmware.contract.base import Payload
from firmware.contract.desk import ApplianceStatus
from firmware.errors import ConfigError
from firmware.flashing.records import (
    CONFIG_NAME,
    DEFAULT_ETC,
    LAST_GOOD_SUFFIX,
    fault_record,
    last_apply_shown,
    last_good_path,
    settings_hash,
)
from firmware.flashing.trial import last_good_settings, trial_damage, trial_info
from firmware.platform.control_socket import appliance_state
from firmware.platform.host import boot_id

DEFAULT_CONFIG = DEFAULT_ETC / CONFIG_NAME


def collect(config_path: Path | None, *, state_dir: Path | None = None,
            runtime_dir: Path | None = None, timeout: float = 1.0) -> dict[str, Any]:
    """Everything `deskcue status` shows, as a dict (``--json`` prints it as is)."""
    out: dict[str, Any] = {}
    settings: Settings | None = None
    if config_path is not None:
        out["config"] = {"path": str(config_path)}
        try:
            settings = load_settings(config_path)
            out["config"].update(valid=True, hash=settings_hash(settings))
        except ConfigError as exc:
            out["config"].update(valid=False, problems=[str(p) for p in exc.problems])
        good = last_good_path(config_path)
        if good.exists():
            try:
                out["config"]["last_good_hash"] = settings_hash(load_settings(good))
            except ConfigError as exc:
                # what the desk falls back on when the live file is unusable: why it cannot
                out["config"]["last_good_problems"] = [str(p) for p in exc.problems]
        trial = trial_info(config_path)
        if trial:
            out["trial"] = {k: trial.get(k) for k in ("txid", "hash", "at", "starts")}
            deadline = trial.get("deadline_mono")
            # a damaged marker is judged (rolled back) at the next start; shown, not trusted
            out["trial"]["seconds_left"] = round(deadline - time.monotonic(), 1) if (
                trial_damage(trial) is None and trial.get("boot_id") == boot_id()
                and isinstance(deadline, (int, float))) else None
    if settings is None and config_path is not None:
        # An unusable live file: the desk runs its last good config (`settings_for_run`), so
        # that config names the desk, its records and its control socket.
        settings = last_good_settings(config_path)
        if settings is not None:
            out["desk_from"] = "last_good"
    base = settings or Settings()
    out["desk"] = f"{base.device.site}/{base.device.desk}"
    state = Path(state_dir or base.device.state_dir)
    if state.exists() and not os.access(state, os.R_OK | os.X_OK):
        out["state_unreadable"] = str(state)
    out["last_apply"], damaged = last_apply_shown(state)
    if damaged:
        out["last_apply_damaged"] = damaged
    out["config_fault"] = fault_record(state)
    running, live = appliance_state(Path(runtime_dir or base.device.runtime_dir), timeout)
    out["appliance"] = {"state": running, "status": None}
    if live is not None:
        try:
            out["appliance"]["status"] = ApplianceStatus.model_validate(live)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(status)"
            out["appliance"]["status_problem"] = (f"its status answer is off the contract "
                                                  f"({where}: {first['msg']})")
    return out


def render(info: dict[str, Any]) -> str:
    """The human-readable form of `collect`'s dict."""
    lines = [f"desk:          {info['desk']}"
             + (" (its last good config)" if info.get("desk_from") == "last_good" else "")]
    c = info.get("config")
    if c:
        if c.get("valid"):
            lines.append(f"config:        {c['path']} (hash {c['hash']})")
        else:
            lines.append(f"config:        {c['path']} NOT USABLE:")
            lines += [f"                 {p}" for p in c.get("problems", [])]
        if c.get("last_good_hash"):
            lines.append(f"last good:     {c['path']}{LAST_GOOD_SUFFIX} "
                         f"(hash {c['last_good_hash']})")
        elif c.get("last_good_problems"):
            lines.append(f"last good:     {c['path']}{LAST_GOOD_SUFFIX} NOT USABLE:")
            lines += [f"                 {p}" for p in c["last_good_problems"]]
    else:
        lines.append("config:        the shipped default (no --config, no /etc/deskcue)")
    if info.get("state_unreadable"):
        lines.append(f"state:         cannot read {info['state_unreadable']}: run with sudo")
    # The records come from the card: a damaged one (a worn card, a hand edit) is shown as
    # it is, never a crash of the command a tech runs to find out what is wrong.
    a = info.get("last_apply") or {}
    if a:
        when = f"{a.get('at', '?')}" + ("" if a.get("clock_synced") else " (clock not synced)")
        extra = f", txid {a['txid']}" if a.get("txid") else ""
        if a.get("confirmed_at"):
            extra += f", confirmed healthy {a['confirmed_at']}"
        elif a.get("trial"):
            extra += ", on trial"
        if a.get("rolled_back_txid"):
            extra += f", rolled back {a['rolled_back_txid']}: {a.get('reason', '')}"
        lines.append(f"last apply:    {a.get('source', '?')} at {when}, hash "
                     f"{a.get('hash', '?')}{extra}")
    elif info.get("last_apply_damaged"):
        lines.append(f"last apply:    {info['last_apply_damaged']}")
    else:
        lines.append("last apply:    none recorded")
    t = info.get("trial")
    if t:
        left = (f", {t['seconds_left']:.0f} s left" if t.get("seconds_left") is not None
                else ", judged at the next start")
        lines.append(f"trial:         MQTT config {t.get('txid')} (start {t.get('starts')}"
                     f"{left})")
    f = info.get("config_fault")
    if f:
        lines.append(f"config fault:  {f.get('message')} [{f.get('at')}]")
        problems = f.get("problems")
        lines += [f"                 {_problem(p)}"
                  for p in (problems if isinstance(problems, list) else [])]
        lines.append("               (clear it with `deskcue config ack` once read)")
    else:
        lines.append("config fault:  none")
    ap = info["appliance"]
    lines.append(f"appliance:     {ap['state']}")
    st: ApplianceStatus | None = ap.get("status")
    if st is not None:
        fields = type(st).model_fields
        width = max(len(k) for k in fields) + 2  # "learned_speech_s:15.6" ran together
        for key in fields:
            lines.append(f"  {key + ':':<{width}}{getattr(st, key)}")
    elif ap.get("status_problem"):
        lines.append(f"  ({ap['status_problem']})")
    elif ap["state"] == "running":
        lines.append("  (no live status answer; see `journalctl -u deskcue`)")
    return "\n".join(lines)


def _json(value: Any) -> Any:
    """JSON for `--json`: a contract model as its payload, anything else as text."""
    return value.to_json() if isinstance(value, Payload) else str(value)


def _problem(p: Any) -> str:
    if not isinstance(p, dict):
        return str(p)
    where = f"line {p['line']}: " if p.get("line") else ""
    return f"{where}{p.get('key') or '(file)'}: {p.get('message')}"


def main(args: argparse.Namespace, _settings: Any = None) -> int:
    """`deskcue status`."""
    config = args.config
    if config is None and DEFAULT_CONFIG.exists():
        config = DEFAULT_CONFIG
    info = collect(config, state_dir=args.state_dir, runtime_dir=args.runtime_dir)
    print(json.dumps(info, indent=1, default=_json) if args.json else render(info))
    # 1 when the desk needs a look, so a script over many desks can ask `deskcue status ||`:
    # its config is unusable, a config fault is pending, or the running desk shows a fault.
    c = info.get("config")
    live: ApplianceStatus | None = info["appliance"].get("status")
    needs_a_look = ((c and not c.get("valid")) or info.get("config_fault")
                    or (live is not None and live.fault))
    return 1 if needs_a_look else 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``deskcue status`` to the command's subparsers."""
    p = sub.add_parser("status", help="the config in use, its last apply, faults, and the "
                       "running appliance's status (exit 1 when any of them needs a look)")
    p.add_argument("--config", type=Path,
                   help=f"config file (default {DEFAULT_CONFIG} if it exists)")
    p.add_argument("--state-dir", type=Path, help="override device.state_dir")
    p.add_argument("--runtime-dir", type=Path, help="override device.runtime_dir")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=main, needs_settings=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(argparse.Namespace(config=None, state_dir=None, runtime_dir=None,
                                     json=False)))
