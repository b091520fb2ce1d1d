"""`deskcue recalibrate`: forget the agent's usual voice, on the desk, now.

What a tech (or the agent) runs when a desk changes hands: the next agent must neither be cued
against the previous agent's voice nor find it on the card. With the appliance running it is
the same as MQTT ``cmd/recalibrate`` (the desk forgets it, removes ``baseline.json`` from the
state directory and learns afresh from the next speech; supervisors get a ``recalibrate``
event). With it stopped, ``baseline.json`` is removed from the state directory, so the next
start learns afresh.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from firmware.config.device import BASELINE_FILE
from firmware.config.load import load_settings
from firmware.errors import NotRunning
from firmware.platform.control_socket import request
from firmware.platform.files import remove_file

REPLY_S = 3.0  # the worker answers between audio blocks (0.1 s on a desk)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="config file (for state_dir and runtime_dir)")
    p.add_argument("--state-dir", type=Path, help="override device.state_dir")
    p.add_argument("--runtime-dir", type=Path, help="where the appliance's socket is")


def main(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    runtime = args.runtime_dir or settings.device.runtime_dir
    state = Path(args.state_dir or settings.device.state_dir)
    try:
        reply = request(runtime, {"cmd": "recalibrate"}, timeout=REPLY_S)
    except NotRunning:
        saved = state / BASELINE_FILE
        if not saved.exists():
            print(f"no usual voice kept in {state}: the desk learns afresh when it starts")
            return 0
        remove_file(saved)
        print(f"usual voice forgotten: removed {saved}; the desk learns afresh when it starts")
        return 0
    if reply is None:
        print(f"deskcue: recalibrate: sent, but the appliance did not answer within "
              f"{REPLY_S:g} s; see `deskcue status`", file=sys.stderr)
        return 1
    raw = reply.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if not reply.get("ok"):
        print(f"deskcue: recalibrate: the appliance refused it: {data.get('error')}",
              file=sys.stderr)
        return 1
    warmup = data.get("warmup_speech_s")
    print("usual voice forgotten, on the card too; the desk learns it afresh"
          + (f" from the next {warmup:g} s of speech" if isinstance(warmup, (int, float))
             else ""))
    return 0
