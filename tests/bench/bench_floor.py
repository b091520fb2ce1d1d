"""A floor of desks on one mosquitto: how many desks one broker on this machine carries.

Each simulated desk is the project's own link (`MqttLink`: envelope stamping, a durable
SQLite outbox in its own state directory, fsync per event, retained ``status``/``info``,
telemetry, the command subscription) with the production defaults of ``[mqtt]`` (MQTT 5,
keep-alive 30 s, one event in flight, telemetry every ``telemetry_interval_s``, 1 s).
Desks are packed ``--per-process`` to a process (multiprocessing), so 500 fit on 2 cores.

The supervisor's side consumes it all at once:

* ``deskcue monitor`` as its own process (subscribed to ``deskcue/#``, events at QoS 1, redrawing
  every second), its CPU read from ``/proc/<pid>/stat``;
* a plain QoS 1 subscriber on ``deskcue/+/+/events`` timing each event from its envelope's
  ``ts`` (stamped just before `MqttLink.publish_event`, so the figure covers the queue hand
  over, the fsync'd outbox insert, the broker and the subscriber) to its arrival.

What the desks do (per desk, independently, seeded):

* a cue every ``--cue-every`` s of floor time on average (exponential gaps; default 180 s),
  each a ``raised_voice.started`` and, 2-12 s later, its ``.ended``;
* one cue in ten is a call going wrong: a burst of 5 cues, one a second;
* telemetry every ``telemetry_interval_s`` (1 s, real time: not compressed).

Events run ``--factor`` times faster than a real floor (default 10: one load minute is ten
floor minutes of cues), so a one-minute run gives enough events for a 99th percentile; the
figures are therefore for a floor ten times as eventful as a real one.

Figures per floor size:

* event latency p50 / p99 / max, ms (``ts`` has 1 ms resolution; one clock, loopback);
* broker CPU and monitor CPU over the load window, % of one core (utime + stime deltas);
* the monitor's backlog: bytes waiting between the broker and the monitor (the monitor
  socket's receive queue plus the broker socket's send queue towards it, from
  ``/proc/net/tcp``), sampled every 0.5 s. It "keeps up" when the backlog in the last third of
  the load window is no larger on average than in the first third plus 64 KiB and it is
  back under 64 KiB within 5 s of the load ending (a monitor falling behind grows it without
  bound); MQTT 5 with the default receive maximum lets mosquitto send without waiting for
  acknowledgements, so a slow monitor shows up there and not in the broker's queue;
* events lost: envelope ids handed to `publish_event` and never received (target 0);
* the largest floor measured whose p99 is at most 100 ms.

Run (takes about 2 minutes per size)::

    nice -n 10 .venv/bin/python tests/bench/bench_floor.py --sizes 50 200 500
"""

from __future__ import annotations

import argparse
import heapq
import json
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt  # noqa: E402
from broker import Broker  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from waiting import wait_until  # noqa: E402

from firmware.config.mqtt import MqttSettings  # noqa: E402
from firmware.contract.desk import ChannelMap, Info, TelemetryReading  # noqa: E402
from firmware.link.envelope import EventStamper  # noqa: E402
from firmware.link.mqtt_client import MqttLink  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DESKCUE = ROOT / ".venv" / "bin" / "deskcue"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SITE = "floor"
KEEPUP_SLACK_B = 64 * 1024


# -- one process of desks ---------------------------------------------------------------------


def _started(i: int, t: float, burst: bool) -> dict[str, Any]:
    db = 8.0 + (i % 7)
    return {"onset_s": round(t, 2), "at_s": round(t + 1.0, 2), "duration_s": 1.0,
            "db_above_usual": db, "loudness_lufs": -27.0 + db, "cue": "raised_voice",
            "usual_lufs": -27.0,
            "summary": f"+{db:.1f} dB above your usual for 1.0 s" + (" (burst)" if burst else "")}


def _ended(start: dict[str, Any], held_s: float) -> dict[str, Any]:
    d = dict(start)
    end = start["at_s"] + held_s
    d.update({"end_s": round(end, 2), "duration_s": round(held_s + 1.0, 2),
              "peak_db_above_usual": start["db_above_usual"] + 2.0,
              "peak_loudness_lufs": start["loudness_lufs"] + 2.0,
              "summary": f"voice back near your usual after {held_s + 1.0:.1f} s"})
    return d


def desk_process(first: int, count: int, port: int, state_root: str, load_s: float,
                 factor: float, cue_every_s: float, seed: int, ready: Any, go: Any,
                 results: Any) -> None:
    """Run ``count`` desks (numbers ``first``...) until ``load_s`` after ``go`` is set; put
    (ids handed over, counters) on ``results``."""
    settings = MqttSettings(host="127.0.0.1", port=port)
    rng = random.Random(seed)
    links: list[MqttLink] = []
    stampers: list[EventStamper] = []
    for i in range(first, first + count):
        desk = f"d{i:03d}"
        link = MqttLink(settings, site=SITE, desk=desk, state_dir=Path(state_root) / desk)
        stamper = EventStamper()
        link.start()
        link.set_info(Info(firmware="bench", config_hash="0" * 8, boot_id=stamper.boot_id,
                           audio_device="bench", channel_map=ChannelMap(agent="left",
                                                                         caller="right"),
                           config_apply=None))
        links.append(link)
        stampers.append(stamper)
    wait_until(lambda: all(link.commands_ready for link in links), timeout=300)
    ready.put(count)
    go.wait()
    t0 = time.monotonic()
    end = t0 + load_s
    # (when, order, desk index, kind, payload)
    plan: list[tuple[float, int, int, str, Any]] = []
    order = 0

    def push(at: float, j: int, kind: str, payload: Any) -> None:
        nonlocal order
        order += 1
        heapq.heappush(plan, (at, order, j, kind, payload))

    for j in range(count):
        push(t0 + rng.uniform(0, settings.telemetry_interval_s), j, "telemetry", None)
        push(t0 + rng.expovariate(factor / cue_every_s), j, "cue", None)
    handed: list[str] = []
    n_cues = [0] * count
    while plan:
        at, _, j, kind, payload = heapq.heappop(plan)
        if at >= end:
            continue
        delay = at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        stream_s = (time.monotonic() - t0) * factor
        if kind == "telemetry":
            links[j].publish_telemetry(TelemetryReading(
                level_lufs={"agent": -27.0, "caller": -30.0}, cues={"raised_voice": n_cues[j]},
                input_overflows=0, cpu_load=0.1, soc_temp_c=None, uptime_s=stream_s,
                display="ready", stream_s=stream_s))
            push(at + settings.telemetry_interval_s, j, "telemetry", None)
            continue
        if kind == "cue":
            burst = rng.random() < 0.1
            for k in range(5 if burst else 1):
                push(at + k * 1.0 / factor, j, "started", burst)
            push(at + rng.expovariate(factor / cue_every_s), j, "cue", None)
            continue
        if kind == "started":
            data = _started(n_cues[j], stream_s, payload)
            n_cues[j] += 1
            push(at + rng.uniform(2.0, 12.0) / factor, j, "ended", data)
            env = stampers[j].stamp("raised_voice.started", data, stream_s=stream_s)
        else:
            data = _ended(payload, rng.uniform(2.0, 12.0))
            env = stampers[j].stamp("raised_voice.ended", data, stream_s=stream_s)
        links[j].publish_event(env)
        handed.append(env.id)
    for link in links:
        link.flush(timeout=30.0)
    counters: dict[str, int] = {}
    for link in links:
        for k, v in link.stats().items():
            if isinstance(v, int) and not isinstance(v, bool):
                counters[k] = counters.get(k, 0) + v
        link.stop(drain_s=5.0)
    results.put((handed, counters))


# -- the supervisor's side --------------------------------------------------------------------


class LatencyProbe:
    """A plain QoS 1 MQTT 5 subscriber to every desk's events: arrival time and payload.

    It also times the broker alone: `ping` publishes a QoS 1 message stamped with the time
    from a second client of this process (no outbox, no desk process), received here."""

    def __init__(self, port: int) -> None:
        self.got: list[tuple[float, bytes]] = []
        self.transit: list[float] = []
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="floor-probe",
                                  protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(f"deskcue/{SITE}/+/events", 1), ("floorprobe/ping", 1)])
        self.client.on_subscribe = lambda *_: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not self._ready.wait(30):
            raise TimeoutError("probe not subscribed")
        self.pinger = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="floor-pinger",
                                  protocol=mqtt.MQTTv5)
        self.pinger.connect("127.0.0.1", port, keepalive=30)
        self.pinger.loop_start()

    def ping(self) -> None:
        self.pinger.publish("floorprobe/ping", repr(time.perf_counter()), qos=1)

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == "floorprobe/ping":
            self.transit.append(time.perf_counter() - float(msg.payload))
            return
        self.got.append((time.time(), bytes(msg.payload)))  # parsed later, off this thread

    def close(self) -> None:
        for c in (self.client, self.pinger):
            c.disconnect()
            c.loop_stop()


def cpu_s(pid: int) -> float:
    """utime + stime of ``pid``, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def monitor_backlog(pid: int, broker_port: int) -> int:
    """Bytes between the broker and process ``pid``'s connection to it: the process's receive
    queue plus the broker's send queue towards it (IPv4 loopback, /proc/net/tcp)."""
    inodes = _socket_inodes(pid)
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    mine: list[int] = []
    total = 0
    for r in rows:
        local_port = int(r[1].split(":")[1], 16)
        remote_port = int(r[2].split(":")[1], 16)
        if r[9] in inodes and remote_port == broker_port:
            mine.append(local_port)
            total += int(r[4].split(":")[1], 16)  # rx_queue
    for r in rows:
        if int(r[1].split(":")[1], 16) == broker_port and int(r[2].split(":")[1], 16) in mine:
            total += int(r[4].split(":")[0], 16)  # tx_queue
    return total


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) by nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


@dataclass
class FloorResult:
    desks: int
    events: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    broker_cpu: float
    monitor_cpu: float
    backlog_first_b: float
    backlog_last_b: float
    backlog_max_b: int
    drained: bool
    lost: int
    duplicates: int
    transit_p50_ms: float
    transit_p99_ms: float
    desks_cpu: float
    load: str

    @property
    def keeps_up(self) -> bool:
        return self.drained and self.backlog_last_b <= self.backlog_first_b + KEEPUP_SLACK_B


def run_floor(desks: int, args: argparse.Namespace) -> FloorResult:
    with tempfile.TemporaryDirectory(prefix="deskcue-floor-") as tmp:
        work = Path(tmp)
        broker = Broker(work / "broker").start()
        monitor: subprocess.Popen[bytes] | None = None
        try:
            probe = LatencyProbe(broker.port)
            ctx = mp.get_context("spawn")
            ready, go, results = ctx.Queue(), ctx.Event(), ctx.Queue()
            procs = []
            for n, first in enumerate(range(0, desks, args.per_process)):
                count = min(args.per_process, desks - first)
                p = ctx.Process(target=desk_process, args=(
                    first, count, broker.port, str(work / "desks"), args.seconds, args.factor,
                    args.cue_every, args.seed * 1000 + n, ready, go, results), daemon=True)
                p.start()
                procs.append(p)
            connected = 0
            while connected < desks:
                connected += ready.get(timeout=600)
            monitor = subprocess.Popen(
                [str(DESKCUE), "monitor", "--host", "127.0.0.1", "--port", str(broker.port),
                 "--seconds", str(args.seconds + 120)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # the monitor is up once it holds a connection to the broker
            wait_until(lambda: _connected_to(monitor.pid, broker.port), timeout=120)
            time.sleep(2.0)  # its first redraws of the retained status/info of every desk
            assert broker.process is not None
            pids = [p.pid for p in procs if p.pid is not None]
            b0, m0, t0 = cpu_s(broker.process.pid), cpu_s(monitor.pid), time.monotonic()
            d0 = sum(cpu_s(pid) for pid in pids)
            go.set()
            backlog: list[tuple[float, int]] = []
            next_sample = 0.0
            while time.monotonic() - t0 < args.seconds:
                probe.ping()
                if time.monotonic() - t0 >= next_sample:
                    next_sample += 0.5
                    backlog.append((time.monotonic() - t0, monitor_backlog(monitor.pid,
                                                                           broker.port)))
                time.sleep(0.05)
            wall = time.monotonic() - t0
            b1, m1 = cpu_s(broker.process.pid), cpu_s(monitor.pid)
            d1 = sum(cpu_s(pid) for pid in pids)
            load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            handed: list[str] = []
            for _ in procs:
                ids, _counters = results.get(timeout=600)
                handed += ids
            for p in procs:
                p.join(60)
            drain_t = time.monotonic()
            drained = False
            while time.monotonic() - drain_t < 5.0:
                if monitor_backlog(monitor.pid, broker.port) < KEEPUP_SLACK_B:
                    drained = True
                    break
                time.sleep(0.1)
            want = set(handed)
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline:
                if len(probe.got) >= len(want):
                    break
                time.sleep(0.1)
            probe.close()
        finally:
            if monitor is not None:
                monitor.terminate()
                monitor.wait(10)
            broker.stop()
    got = [(t, json.loads(p)) for t, p in probe.got]
    seen: set[str] = set()
    lat: list[float] = []
    dups = 0
    for t, env in got:
        if env["id"] in seen:
            dups += 1
            continue
        seen.add(env["id"])
        lat.append((t - env["ts"]) * 1000.0)
    third = max(1, len(backlog) // 3)
    first = [b for _, b in backlog[:third]]
    last = [b for _, b in backlog[-third:]]
    return FloorResult(
        desks=desks, events=len(want), p50_ms=percentile(lat, 0.5) if lat else float("nan"),
        p99_ms=percentile(lat, 0.99) if lat else float("nan"),
        max_ms=max(lat) if lat else float("nan"),
        broker_cpu=100.0 * (b1 - b0) / wall, monitor_cpu=100.0 * (m1 - m0) / wall,
        backlog_first_b=sum(first) / len(first), backlog_last_b=sum(last) / len(last),
        backlog_max_b=max(b for _, b in backlog), drained=drained,
        lost=len(want - seen), duplicates=dups,
        transit_p50_ms=percentile(probe.transit, 0.5) * 1000.0,
        transit_p99_ms=percentile(probe.transit, 0.99) * 1000.0,
        desks_cpu=100.0 * (d1 - d0) / wall, load=load)


def _connected_to(pid: int, broker_port: int) -> bool:
    inodes = _socket_inodes(pid)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        r = line.split()
        if r[9] in inodes and int(r[2].split(":")[1], 16) == broker_port and r[3] == "01":
            return True
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 500])
    ap.add_argument("--per-process", type=int, default=50, help="desks per process")
    ap.add_argument("--seconds", type=float, default=60.0, help="load window per size, s")
    ap.add_argument("--factor", type=float, default=10.0,
                    help="events run this many times faster than a real floor")
    ap.add_argument("--cue-every", type=float, default=180.0,
                    help="mean floor time between cues at one desk, s")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"floor bench: {args.seconds:g} s load per size, events x{args.factor:g} "
          f"(a cue every {args.cue_every:g} s of floor time per desk, 1 in 10 a burst of 5), "
          f"telemetry every {MqttSettings().telemetry_interval_s:g} s, "
          f"{args.per_process} desks per process, "
          f"{os.cpu_count()} cores", flush=True)
    header = (f"{'desks':>5} {'events':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
              f"{'broker p50/p99 ms':>17} {'broker %':>8} {'monitor %':>9} {'desks %':>7} "
              f"{'backlog KiB first/last/max':>27} {'keeps up':>8} {'lost':>4} {'dups':>4}  "
              f"load 1/5/15 min")
    rows = []
    for n in args.sizes:
        r = run_floor(n, args)
        rows.append(r)
        if len(rows) == 1:
            print(header)
        backlog = (f"{r.backlog_first_b / 1024:.1f}/{r.backlog_last_b / 1024:.1f}/"
                   f"{r.backlog_max_b / 1024:.1f}")
        transit = f"{r.transit_p50_ms:.1f}/{r.transit_p99_ms:.1f}"
        print(f"{r.desks:>5} {r.events:>6} {r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {r.max_ms:>7.1f} "
              f"{transit:>17} {r.broker_cpu:>8.1f} {r.monitor_cpu:>9.1f} {r.desks_cpu:>7.1f} "
              f"{backlog:>27} {'yes' if r.keeps_up else 'NO':>8} {r.lost:>4} "
              f"{r.duplicates:>4}  {r.load}", flush=True)
    ok = [r.desks for r in rows if r.p99_ms <= 100.0 and r.lost == 0]
    print(f"largest floor with p99 <= 100 ms and nothing lost: "
          f"{max(ok) if ok else 'none'} desks (of {', '.join(str(r.desks) for r in rows)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
