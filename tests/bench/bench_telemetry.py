"""What telemetry costs at a given rate: bytes per desk, the broker's CPU, the monitor's CPU.

Against a real mosquitto on loopback, ``--desks`` desks (spread over ``--connections`` MQTT
connections) publish the telemetry message the link sends (same JSON, QoS 0, MQTT 5 message
expiry) ``--rates`` times a second each, while ``--subscribers`` supervisors subscribe to
``deskcue/#``. For each rate it prints:

* messages/s into the broker and out to each supervisor, and the bytes of one message on the
  wire (MQTT PUBLISH packet; TCP/IP headers come on top);
* the broker's CPU time per wall second (mosquitto's utime + stime from /proc);
* the monitor's CPU time per wall second to fold that stream into its state
  (`MonitorState.handle`, the contract's pydantic parsing included), replayed after receipt;
* what building and serialising one telemetry message costs the desk.

Run: ``.venv/bin/python tests/bench/bench_telemetry.py [--desks 500] [--rates 0.1,1]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt  # noqa: E402
from broker import Broker  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402
from waiting import wait_until  # noqa: E402

from firmware.config.mqtt import MqttSettings  # noqa: E402
from firmware.contract.desk import OutboxDepth, Telemetry  # noqa: E402
from firmware.contract.examples import EXAMPLES  # noqa: E402
from firmware.link.floor_view import MonitorState  # noqa: E402


def telemetry_json() -> bytes:
    """One telemetry payload as the link builds it (`MqttLink._send_telemetry`)."""
    reading = EXAMPLES["telemetry"]
    data = Telemetry(**{k: v for k, v in dict(reading).items() if k not in ("ts", "outbox")},
                     ts=round(time.time(), 3), outbox=OutboxDepth(depth=0, dropped=0)).to_json()
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def publish_size(topic: str, payload: bytes) -> int:
    """Bytes of an MQTT 5 QoS 0 PUBLISH with a message expiry property."""
    props = 1 + 4  # MessageExpiryInterval: identifier + four-byte integer
    rest = 2 + len(topic.encode()) + 1 + props + len(payload)  # topic, property length, ...
    varint = 1 if rest < 128 else 2 if rest < 16384 else 3
    return 1 + varint + rest


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def desk_cost_us(n: int = 2000) -> float:
    t0 = time.process_time()
    for _ in range(n):
        telemetry_json()
    return (time.process_time() - t0) / n * 1e6


def run(broker: Broker, desks: int, rate: float, seconds: float, connections: int,
        subscribers: int, expiry_s: int) -> dict[str, float]:
    received: list[list[tuple[str, bytes]]] = [[] for _ in range(subscribers)]
    subs = []
    for i in range(subscribers):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        done = threading.Event()
        c.on_subscribe = lambda *a, d=done: d.set()
        c.on_message = lambda _c, _u, m, r=received[i]: r.append((m.topic, bytes(m.payload)))
        c.connect(broker.host, broker.port)
        c.loop_start()
        c.subscribe("deskcue/#", qos=0)
        assert done.wait(30)
        subs.append(c)
    pubs = []
    for _ in range(connections):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        c.connect(broker.host, broker.port)
        c.loop_start()
        pubs.append(c)
    props = Properties(PacketTypes.PUBLISH)
    props.MessageExpiryInterval = expiry_s
    topics = [f"deskcue/bench/desk-{i:04d}/telemetry" for i in range(desks)]
    payload = telemetry_json()
    total = int(desks * rate * seconds)
    tick = 0.05
    cpu0, t0 = cpu_s(broker.process.pid), time.monotonic()  # type: ignore[union-attr]
    sent = 0
    while sent < total:
        due = min(total, int((time.monotonic() - t0) * desks * rate) + 1)
        while sent < due:
            pubs[sent % connections].publish(topics[sent % desks], payload, qos=0,
                                             properties=props)
            sent += 1
        time.sleep(tick)
    wait_until(lambda: all(len(r) >= total * 0.999 for r in received), timeout=60)
    wall = time.monotonic() - t0
    broker_cpu = cpu_s(broker.process.pid) - cpu0  # type: ignore[union-attr]
    for c in pubs + subs:
        c.disconnect()
        c.loop_stop()
    state = MonitorState()
    f0 = time.process_time()
    for topic, raw in received[0]:
        state.handle(topic, raw)
    fold = time.process_time() - f0
    return {"sent": sent, "got": min(len(r) for r in received), "wall": wall,
            "broker_cpu": broker_cpu, "fold_cpu": fold,
            "bytes": publish_size(topics[0], payload), "payload": len(payload)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--desks", type=int, default=500)
    ap.add_argument("--rates", default="0.1,1", help="telemetry messages per second per desk")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--connections", type=int, default=10)
    ap.add_argument("--subscribers", type=int, default=1)
    args = ap.parse_args()
    expiry = MqttSettings().telemetry_expiry_s
    print(f"desk: {desk_cost_us():.0f} us CPU to build and serialise one telemetry message")
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp)).start()
        try:
            for rate in (float(r) for r in args.rates.split(",")):
                r = run(broker, args.desks, rate, args.seconds, args.connections,
                        args.subscribers, expiry)
                per_s = r["sent"] / r["wall"]
                print(f"{args.desks} desks at {rate:g}/s: {per_s:.0f} msg/s in, "
                      f"{r['got'] / r['wall']:.0f} msg/s out to each of {args.subscribers} "
                      f"supervisor(s); {r['bytes']:.0f} B per message ({r['payload']:.0f} B "
                      f"payload) = {r['bytes'] * rate / 1000:.2f} kB/s per desk, "
                      f"{r['bytes'] * per_s / 1000:.0f} kB/s in; broker CPU "
                      f"{r['broker_cpu'] / r['wall'] * 100:.1f} % of a core; monitor fold CPU "
                      f"{r['fold_cpu'] / r['wall'] * 100:.1f} % of a core "
                      f"({r['fold_cpu'] / max(r['got'], 1) * 1e6:.0f} us/msg); lost "
                      f"{r['sent'] - r['got']:.0f}")
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
