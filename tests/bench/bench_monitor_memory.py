"""`deskcue monitor` on a floor of desks: its resident memory over a long watch.

One paho client on a real mosquitto (loopback) plays a floor of ``--desks`` desks: retained
``status`` and ``info`` for each, ``telemetry`` from each every second, and events (raised-voice
started/ended envelopes, one sequence per desk) at ``--events-per-s`` over the floor, which
runs far faster than a real floor so that a run of a minute shows what a day would. The monitor
runs as its own process (output piped to /dev/null: one plain snapshot a second); its VmRSS is
read from /proc. Printed: the RSS once the floor is announced, at half time, at the end, the
peak (VmHWM), the events sent, and the growth per 100 000 events over the second half, once
the bounded memories (100 000 event ids, 20 events per desk) are full: flat when the monitor
keeps nothing per event.

    python tests/bench/bench_monitor_memory.py [--desks 500] [--seconds 180] [--events-per-s 2000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from broker import Broker, make_events  # noqa: E402
from peak_rss import status_mb as rss_mb  # noqa: E402

from firmware.contract.examples import EXAMPLES  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--desks", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--events-per-s", type=float, default=2000.0)
    opts = ap.parse_args()
    info = EXAMPLES["info"].to_json()
    telemetry = json.dumps(EXAMPLES["telemetry"].to_json())
    templates = make_events(2)
    with tempfile.TemporaryDirectory(prefix="deskcue-monitor-") as tmp, \
            Broker(Path(tmp) / "broker") as broker:
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        pub.max_queued_messages_set(0)
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        desks = [f"deskcue/site1/d{i:03d}" for i in range(opts.desks)]
        for d in desks:
            pub.publish(d + "/status", "online", qos=1, retain=True)
            pub.publish(d + "/info", json.dumps(info), qos=1, retain=True)
        monitor = subprocess.Popen(
            [sys.executable, "-m", "firmware.cli", "monitor", "--host", broker.host, "--port",
             str(broker.port), "--seconds", str(opts.seconds + 60), "--width", "200"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(5.0)
        announced = rss_mb(monitor.pid)
        sent = 0
        seq = [0] * opts.desks
        start = time.monotonic()
        next_tel = start
        half: tuple[int, float] | None = None
        while time.monotonic() < start + opts.seconds:
            now = time.monotonic()
            if now >= next_tel:
                for d in desks:
                    pub.publish(d + "/telemetry", telemetry, qos=0)
                next_tel = now + 1.0
            due = int((now - start) * opts.events_per_s)
            while sent < due:
                k = sent % opts.desks
                seq[k] += 1
                env = {**templates[seq[k] % 2], "seq": seq[k],
                       "id": f"{k:08x}{seq[k]:024x}"}
                pub.publish(desks[k] + "/events", json.dumps(env), qos=0)
                sent += 1
            if half is None and now > start + opts.seconds / 2:
                half = (sent, rss_mb(monitor.pid))
            time.sleep(0.01)
        time.sleep(2.0)  # the monitor takes what is queued
        end, peak = rss_mb(monitor.pid), rss_mb(monitor.pid, "VmHWM")
        monitor.terminate()
        monitor.wait(30)
        pub.loop_stop()
        pub.disconnect()
    assert half is not None
    growth = (end - half[1]) / max(sent - half[0], 1) * 100_000
    print(f"desks {opts.desks}  events {sent}  RSS announced {announced:.1f} MB  half-time "
          f"{half[1]:.1f} MB  end {end:.1f} MB  peak {peak:.1f} MB  growth over the second "
          f"half {growth:.1f} MB per 100 000 events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
