"""`deskcue snooze`: snooze (or end a snooze of) the running appliance's cues, and say what the
appliance applied (it caps a snooze at its ``snooze.max_min``), not what was asked."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from firmware.config.load import load_settings
from firmware.contract.commands import SNOOZE_MAX_MIN
from firmware.contract.events import Snooze
from firmware.platform.control_socket import request

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


def main(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    runtime = args.runtime_dir or settings.device.runtime_dir
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
    try:  # the desk answers with its `snooze` event's payload
        applied = Snooze.model_validate(data).minutes
    except ValidationError:
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
