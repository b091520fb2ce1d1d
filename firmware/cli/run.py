"""`deskcue run`: the appliance's main job (systemd runs this)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from firmware.appliance.assemble import build_appliance, settings_for_run
from firmware.config.settings import Settings
from firmware.platform.control_socket import SOCKET_NAME, listening
from firmware.platform.memory import keep_freed_memory

log = logging.getLogger("deskcue")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="config file (default: the shipped default)")
    p.add_argument("--source", type=Path, metavar="AUDIO",
                   help="play this recording (WAV, FLAC or Ogg; a file, not a pipe) instead "
                        "of capturing from the headset tap")
    p.add_argument("--fast", action="store_true",
                   help="with --source: play as fast as possible instead of in real time")
    p.add_argument("--pins", choices=("auto", "mock"), default="auto",
                   help="GPIO: real pins (auto) or gpiozero mock pins (mock)")
    p.add_argument("--state-dir", type=Path, help="override device.state_dir")
    p.add_argument("--runtime-dir", type=Path, help="override device.runtime_dir")


def main(args: argparse.Namespace, _settings: Settings | None = None) -> int:
    for opt, path in (("--state-dir", args.state_dir), ("--runtime-dir", args.runtime_dir)):
        if path is not None and path.exists() and not path.is_dir():
            print(f"deskcue: run: {opt} {path} is not a directory", file=sys.stderr)
            return 2
    keep_freed_memory()
    # Loaded here, not by the command line's entry point: a config that cannot be used runs
    # the desk on its last good one instead of stopping it (see `settings_for_run`).
    settings = settings_for_run(args.config, state_dir=args.state_dir,
                                runtime_dir=args.runtime_dir)
    runtime = settings.device.runtime_dir
    if listening(runtime):
        # Two appliances on one desk share its control socket, outbox, pins and broker
        # identity: each would throw the other off the broker, and the second, ending,
        # would leave the first unreachable by `deskcue status` and `deskcue snooze`.
        print(f"deskcue: another deskcue runs on this desk (it answers on {runtime / SOCKET_NAME}"
              "): stop it first (sudo systemctl stop deskcue), or give this one its own "
              "--runtime-dir and --state-dir", file=sys.stderr)
        return 1
    app = build_appliance(settings, recording=args.source, fast=args.fast, pins=args.pins,
                          config_path=args.config)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    code = app.run(stop)
    if code != 0 and app.error:
        print(f"deskcue: {app.error}", file=sys.stderr)
    return code
