"""After a broker outage, when do the desks of a floor come back? The reconnect wave, measured.

Starts a real mosquitto on loopback and ``--desks`` of the desk's own links (`MqttLink`, the
production ``[mqtt]`` reconnect settings unless overridden), 50 to a process (paho waits on
``select``, which takes no file descriptor above 1023), waits until all are connected, stops
the broker for ``--outage`` seconds and starts it again, then records when each desk is
connected again (seconds after the broker accepts connections; one monotonic clock).

Printed: how many desks reconnected within the first 0.1 / 0.5 / 1 / 5 s, the spread (first
to last), and the largest number that came in any 100 ms window: the burst the broker takes
at once. Desks that back off without jitter come back in one such window.

Run::

    nice .venv/bin/python tests/bench/bench_reconnect.py --desks 200 --outage 20
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broker import Broker  # noqa: E402
from waiting import wait_until  # noqa: E402

from firmware.config.mqtt import MqttSettings  # noqa: E402
from firmware.link.mqtt_client import MqttLink  # noqa: E402

PER_PROCESS = 50


def desks(first: int, count: int, settings: dict[str, Any], root: str, pipe: Connection) -> None:
    """Run ``count`` links; say "up" when all are connected, then, once told "watch", report
    each link's monotonic time of connecting again; stop on "stop"."""
    s = MqttSettings(**settings)
    links = [MqttLink(s, site="floor", desk=f"d{i:04d}", state_dir=Path(root) / f"d{i:04d}")
             for i in range(first, first + count)]
    for link in links:
        link.start()
    wait_until(lambda: all(link.connected for link in links), timeout=300)
    pipe.send("up")
    assert pipe.recv() == "down"
    wait_until(lambda: not any(link.connected for link in links), timeout=60)
    pipe.send("down")
    back: dict[int, float] = {}
    while len(back) < len(links):
        for i, link in enumerate(links):
            if i not in back and link.connected:
                back[i] = time.monotonic()
        time.sleep(0.005)
    pipe.send(sorted(back.values()))
    pipe.recv()
    for link in links:
        link.stop(drain_s=0)


def main() -> int:
    """Parse arguments, run one outage, print the wave."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--desks", type=int, default=200)
    ap.add_argument("--outage", type=float, default=20.0, help="seconds the broker is down")
    ap.add_argument("--reconnect-min", type=float, default=None)
    ap.add_argument("--reconnect-max", type=float, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp) / "broker").start()
        settings: dict[str, Any] = {"host": broker.host, "port": broker.port,
                                    "telemetry_interval_s": 30}
        if args.reconnect_min is not None:
            settings["reconnect_min_s"] = args.reconnect_min
        if args.reconnect_max is not None:
            settings["reconnect_max_s"] = args.reconnect_max
        shown = MqttSettings(**settings)
        pipes, procs = [], []
        for first in range(0, args.desks, PER_PROCESS):
            mine, theirs = mp.Pipe()
            p = mp.Process(target=desks, args=(first, min(PER_PROCESS, args.desks - first),
                                               settings, tmp, theirs))
            p.start()
            pipes.append(mine)
            procs.append(p)
        try:
            for pipe in pipes:
                assert pipe.recv() == "up"
            broker.stop()
            for pipe in pipes:
                pipe.send("down")
            for pipe in pipes:
                assert pipe.recv() == "down"
            time.sleep(args.outage)  # the outage itself: a duration, not a wait for an event
            broker.start()
            t0 = time.monotonic()
            times = sorted(t - t0 for pipe in pipes for t in pipe.recv())
            for pipe in pipes:
                pipe.send("stop")
            for p in procs:
                p.join(30)
        finally:
            for p in procs:
                if p.is_alive():
                    p.kill()
            broker.stop()
    best = 0
    j = 0
    for i, t in enumerate(times):
        while times[j] < t - 0.1:
            j += 1
        best = max(best, i - j + 1)
    within = {w: sum(t <= w for t in times) for w in (0.1, 0.5, 1.0, 5.0)}
    print(f"desks {args.desks}, outage {args.outage:g} s, reconnect_min_s "
          f"{shown.reconnect_min_s:g}, reconnect_max_s {shown.reconnect_max_s:g}")
    print(f"reconnected {len(times)}; first {times[0]:.2f} s, last {times[-1]:.2f} s after the "
          f"broker was back, spread {times[-1] - times[0]:.2f} s")
    print("within 0.1 / 0.5 / 1 / 5 s: " + " / ".join(str(within[w]) for w in within))
    print(f"largest burst in any 100 ms: {best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
