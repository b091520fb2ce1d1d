"""Benchmark of the supervisor link on this machine, against a real mosquitto on loopback.

Prints:

* the delay from `MqttLink.publish_event` (what the engine calls when a cue fires) to the
  event's arrival at a subscriber: median, 99th percentile and maximum over ``--events``
  events published at a steady pace (each stored with an fsync before it is published);
* the outbox's throughput: events/s stored (durable insert, fsync'd) and removed;
* the replay throughput: events/s delivered from a full outbox after an outage, for each
  in-flight window in ``--inflight``.

Run: ``.venv/bin/python tests/bench/bench_mqtt.py [--events 500] [--replay 2000]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broker import Broker, Subscriber, make_events, settings_for  # noqa: E402
from waiting import wait_until  # noqa: E402

from firmware.link.mqtt_client import OUTBOX_FILE, MqttLink  # noqa: E402
from firmware.link.outbox import Outbox  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) by nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def latency(broker: Broker, work: Path, n: int, inflight: int, pace_s: float) -> list[float]:
    """Seconds from publish_event to arrival, for ``n`` events ``pace_s`` apart."""
    sub = Subscriber(broker, "deskcue/+/+/events", check_schema=False).connect()
    link = MqttLink(
        settings_for(broker, outbox_inflight=inflight), site="bench", desk="d1", state_dir=work
    )
    link.start()
    wait_until(lambda: link.connected)
    events = make_events(n, boot_id=f"{inflight:032d}")
    sent: dict[int, float] = {}
    t_next = time.perf_counter()
    for e in events:
        while time.perf_counter() < t_next:
            time.sleep(0.0005)
        sent[e["seq"]] = time.perf_counter()
        link.publish_event(e)
        t_next += pace_s
    wait_until(lambda: len(sub.on("events")) >= n, timeout=60)
    delays = [m.t - sent[m.json()["seq"]] for m in sub.on("events")]
    link.stop()
    sub.close()
    return delays


def outbox_throughput(work: Path, n: int) -> tuple[float, float]:
    """(events/s stored, events/s removed one by one) for the durable outbox."""
    events = make_events(n, boot_id="e" * 32)
    with Outbox(work / "throughput.db", max_events=n + 10) as box:
        t0 = time.perf_counter()
        rowids = [box.put(e) for e in events]
        t_put = time.perf_counter() - t0
        t0 = time.perf_counter()
        for r in rowids:
            box.remove([r])
        t_remove = time.perf_counter() - t0
    return n / t_put, n / t_remove


def replay(broker: Broker, work: Path, n: int, inflight: int) -> float:
    """Events/s delivered from an outbox holding ``n`` events when the link (re)connects."""
    state = work / f"replay-{inflight}"
    with Outbox(state / OUTBOX_FILE, max_events=n + 10) as box:
        for e in make_events(n, boot_id=f"{inflight:032x}"):
            box.put(e)
    sub = Subscriber(broker, "deskcue/+/+/events", check_schema=False).connect()
    link = MqttLink(
        settings_for(broker, outbox_inflight=inflight, outbox_max_events=n + 10),
        site="bench",
        desk="replay",
        state_dir=state,
    )
    t0 = time.perf_counter()
    link.start()
    wait_until(lambda: len(sub.on("events")) >= n, timeout=120, interval=0.002)
    elapsed = time.perf_counter() - t0
    seqs = [m.json()["seq"] for m in sub.on("events")]
    assert seqs == list(range(1, n + 1)), "replay out of order"
    link.stop()
    sub.close()
    return n / elapsed


def main() -> int:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=500, help="events for the delay figures")
    ap.add_argument("--pace-ms", type=float, default=5.0, help="gap between them, ms")
    ap.add_argument("--replay", type=int, default=2000, help="events in the replayed outbox")
    ap.add_argument("--inflight", default="1,4,16", help="in-flight windows to compare")
    args = ap.parse_args()
    windows = [int(w) for w in args.inflight.split(",")]
    with tempfile.TemporaryDirectory(prefix="deskcue-bench-") as tmp:
        work = Path(tmp)
        with Broker(work / "broker") as broker:
            print(f"deskcue MQTT link benchmark (mosquitto on loopback, outbox in {tmp})")
            for w in windows:
                d = latency(broker, work / f"lat-{w}", args.events, w, args.pace_ms / 1000)
                print(
                    f"publish_event -> subscriber, {len(d)} events {args.pace_ms:g} ms apart, "
                    f"inflight={w}: median {statistics.median(d) * 1000:.2f} ms, "
                    f"p99 {percentile(d, 0.99) * 1000:.2f} ms, max {max(d) * 1000:.2f} ms"
                )
            put_rate, remove_rate = outbox_throughput(work, args.replay)
            print(
                f"outbox: {put_rate:,.0f} events/s stored (fsync'd), "
                f"{remove_rate:,.0f} events/s removed"
            )
            for w in windows:
                rate = replay(broker, work, args.replay, w)
                print(
                    f"replay of {args.replay} stored events, inflight={w}: "
                    f"{rate:,.0f} events/s delivered in order"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
