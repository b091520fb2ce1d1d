"""A process that publishes events through `MqttLink`, driven over stdin (for kill -9 tests).

Run ``python tests/link_process.py --port P --state-dir D --boot-id B [--credentials-file F]``;
then write lines to its stdin:

- ``publish N``: hand the next N events of boot B to the link; prints ``stored K`` once the
  outbox has stored K events in all (durable, so a kill -9 after that line loses none);
- ``flush``: wait until everything is acknowledged; prints ``flushed``;
- ``connected``: wait until the link is connected; prints ``connected`` (events handed over
  before that wait in the outbox and are marked replayed when they go out);
- ``stats``: prints ``stats`` and the link's `MqttLink.stats` as JSON on one line;
- ``storage``: prints ``storage <durable 0|1> <outbox depth> <storage_fault or none>``;
- ``stop``: stop the link cleanly and exit.

It prints ``ready`` after `MqttLink.start`. With ``--answer`` it takes commands and answers
each at once (``status`` with the example status, ``identify`` with its seconds), as the
appliance would.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from broker import make_events
from waiting import HANG_S

from firmware.config.mqtt import MqttSettings
from firmware.contract.commands import IdentifyArgs
from firmware.contract.examples import STATUS
from firmware.link.commands import Command
from firmware.link.mqtt_client import MqttLink


def main() -> int:
    """Parse arguments, start the link and obey stdin until ``stop`` or EOF."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--state-dir", type=Path, required=True)
    ap.add_argument("--boot-id", required=True)
    ap.add_argument("--site", default="site1")
    ap.add_argument("--desk", default="desk1")
    ap.add_argument("--credentials-file", type=Path)
    ap.add_argument("--inflight", type=int, default=1)
    ap.add_argument("--answer", action="store_true", help="take commands and answer them")
    args = ap.parse_args()
    settings = MqttSettings(
        host=args.host,
        port=args.port,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
        keepalive_s=5,
        credentials_file=args.credentials_file,
        outbox_inflight=args.inflight,
    )

    def answer(cmd: Command) -> None:
        if isinstance(cmd.args, IdentifyArgs):
            link.publish_command_result(cmd, True, data={"seconds": cmd.args.seconds})
        elif cmd.name == "status":
            link.publish_command_result(cmd, True, data=STATUS)
        else:
            link.publish_command_result(cmd, False, error=("failed", "not in this stand-in"))

    link = MqttLink(settings, site=args.site, desk=args.desk, state_dir=args.state_dir,
                    on_command=answer if args.answer else None)
    link.start()
    print("ready", flush=True)
    events = make_events(10_000, boot_id=args.boot_id)
    sent = 0
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "publish":
            n = int(cmd[1])
            for env in events[sent : sent + n]:
                link.publish_event(env)
            sent += n
            while link.stats()["events_stored"] < sent:
                time.sleep(0.002)
            print(f"stored {sent}", flush=True)
        elif cmd[0] == "flush":
            link.flush(HANG_S)
            print("flushed", flush=True)
        elif cmd[0] == "connected":
            deadline = time.monotonic() + HANG_S
            while not link.connected and time.monotonic() < deadline:
                time.sleep(0.005)
            print("connected" if link.connected else "not connected", flush=True)
        elif cmd[0] == "stats":
            print("stats", json.dumps(link.stats()), flush=True)
        elif cmd[0] == "storage":
            st = link.stats()
            print(f"storage {int(st['outbox_durable'])} {st['outbox_depth']} "
                  f"{link.storage_fault or 'none'}", flush=True)
        elif cmd[0] == "stop":
            break
    link.stop()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
