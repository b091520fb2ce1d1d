"""`deskcue snooze`: snooze (or end a snooze of) the running appliance's cues, and say what the
appliance applied (it caps a snooze at its ``snooze.max_min``), not what was asked.

What an agent presses, so it starts as `deskcue --help` does: it reads only
``device.runtime_dir`` from the config, with `tomllib`, and the desk's answer as plain JSON.
pydantic and the settings and contract models (four fifths of its CPU when it built them: a
second on a Pi 3B) load only to say what is wrong with a config it cannot read that path from.
The rest of the config is the running desk's business: it was checked when the desk started.
"""

from __future__ import annotations

import argparse
import math
import sys
import tomllib
from pathlib import Path
from typing import Any

from firmware.contract.limits import SNOOZE_MAX_MIN
from firmware.platform.control_socket import DEFAULT_RUNTIME_DIR, request

REPLY_S = 3.0  # the worker answers between audio blocks (0.1 s on a desk)


def minutes_arg(text: str) -> float:
    """``--minutes``: a finite number of minutes from 0 to `SNOOZE_MAX_MIN`."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= SNOOZE_MAX_MIN):
        raise argparse.ArgumentTypeError(
            f"{text}: give minutes from 0 to {SNOOZE_MAX_MIN:g} (0 ends a snooze)")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    how = p.add_mutually_exclusive_group()
    how.add_argument("--minutes", type=minutes_arg,
                     help=f"how long, 0-{SNOOZE_MAX_MIN:g} min (default from the config; the "
                          "desk cuts it to its snooze.max_min)")
    how.add_argument("--cancel", action="store_true", help="end a snooze now")
    p.add_argument("--config", type=Path, help="config file (for runtime_dir)")
    p.add_argument("--runtime-dir", type=Path, help="where the appliance's socket is")


def runtime_dir_of(config: Path | None) -> Path:
    """``device.runtime_dir`` of the config file ``config`` (None: the shipped default), read
    without validating the rest; a file it cannot be read from is validated in full, so that
    its `ConfigError` (with line and key) is what the agent sees."""
    if config is None:
        return DEFAULT_RUNTIME_DIR
    try:
        data = tomllib.loads(config.read_bytes().decode("utf-8"))
        device = data.get("device", {})
        value = device.get("runtime_dir", str(DEFAULT_RUNTIME_DIR)) if isinstance(
            device, dict) else None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        value = None
    if isinstance(value, str) and value and "\0" not in value:
        return Path(value)
    from firmware.config.load import load_settings

    return load_settings(config).device.runtime_dir


def applied_minutes(data: dict[str, Any]) -> float | None:
    """The minutes in the desk's answer (its `snooze` event's payload); None if it has none."""
    value = data.get("minutes")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def main(args: argparse.Namespace) -> int:
    runtime = args.runtime_dir or runtime_dir_of(args.config)
    asked = 0.0 if args.cancel else args.minutes
    reply = request(runtime, {"cmd": "snooze", "minutes": asked}, timeout=REPLY_S)
    if reply is None:
        print(f"deskcue: snooze: sent, but the appliance did not answer within {REPLY_S:g} s; "
              "see `deskcue status`", file=sys.stderr)
        return 1
    raw = reply.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if not reply.get("ok"):
        error = data.get("error")
        why = error[-1] if isinstance(error, list) and error else error
        print(f"deskcue: snooze: the appliance refused it: {why}", file=sys.stderr)
        return 1
    applied = applied_minutes(data)
    if applied is None:
        print("deskcue: snooze: the appliance answered without the minutes it applied",
              file=sys.stderr)
        return 1
    if applied == 0:
        print("snooze cancelled")
    elif asked is not None and applied < asked:
        print(f"snoozed for {applied:g} min (asked for {asked:g}; this desk allows at most "
              f"{applied:g}: snooze.max_min)")
    else:
        print(f"snoozed for {applied:g} min")
    return 0
