"""`deskcue snooze`: snooze (or end a snooze of) the running appliance's cues."""

from __future__ import annotations

import argparse
from pathlib import Path

from firmware.config.load import load_settings
from firmware.platform.control_socket import send


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, help="how long (default from the config)")
    p.add_argument("--cancel", action="store_true", help="end a snooze now")
    p.add_argument("--config", type=Path, help="config file (for runtime_dir)")
    p.add_argument("--runtime-dir", type=Path, help="where the appliance's socket is")


def main(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    runtime = args.runtime_dir or settings.device.runtime_dir
    minutes = 0.0 if args.cancel else args.minutes
    send(runtime, {"cmd": "snooze", "minutes": minutes})
    print("snooze cancelled" if args.cancel else
          f"snoozed for {minutes if minutes is not None else settings.snooze.default_min} min")
    return 0
