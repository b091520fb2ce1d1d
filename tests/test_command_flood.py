"""A flood of commands on a real mosquitto: every command is run, answered ``rate_limited`` or
counted as dropped; the desk's memory stays bounded and its events keep flowing.

The desk is tests/link_process.py (`MqttLink` answering commands) in its own process, so its
peak resident memory (``VmHWM`` in /proc) is its own; the flood comes from ``mosquitto_pub``.
The bound is behavioural: after a warm-up flood has brought paho's buffers and the allocator
to their working size, a flood four times as large must not raise the peak by more than a few
megabytes (a desk that queued an answer, or anything else, per command would).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from broker import Broker, Subscriber
from test_mqtt_link import LinkProcess
from waiting import HANG_S, wait_until

BASE = "deskcue/site1/desk1"
MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
WARMUP, FLOOD = 5_000, 20_000
GROWTH_MB = 8.0  # what a flood four times the warm-up may add to the desk's peak RSS


class AnsweringDesk(LinkProcess):
    """tests/link_process.py with ``--answer``, on a broker without accounts."""

    def __init__(self, broker: Broker, state_dir: Path) -> None:  # noqa: D107
        script = Path(__file__).parent / "link_process.py"
        self.proc = subprocess.Popen(
            [sys.executable, str(script), "--port", str(broker.port), "--state-dir",
             str(state_dir), "--boot-id", "f" * 32, "--answer", "--inflight", "8"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.expect("ready")

    def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.expect("stats").split(" ", 1)[1]))

    def peak_rss_mb(self) -> float:
        """Peak resident memory of the desk process so far (VmHWM), MB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
        raise AssertionError("no VmHWM in /proc")


def flood(broker: Broker, prefix: str, n: int) -> None:
    """``n`` status commands with txids ``<prefix>0`` ... as fast as mosquitto_pub sends."""
    lines = "".join(json.dumps({"txid": f"{prefix}{i}"}) + "\n" for i in range(n))
    subprocess.run([MOSQUITTO_PUB, "-h", broker.host, "-p", str(broker.port), "-q", "1",
                    "-t", f"{BASE}/cmd/status", "-l"], input=lines.encode(), check=True,
                   timeout=HANG_S)


def counted(desk: AnsweringDesk, n: int) -> dict[str, Any] | None:
    st = desk.stats()
    return st if st["commands"] + st["commands_rate_limited"] + st["commands_dropped"] == n \
        else None


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_flood_is_answered_and_survived_within_bounded_memory(broker: Broker,
                                                                tmp_path: Path) -> None:
    results = Subscriber(broker, f"{BASE}/cmd/+/result").connect()
    watch = Subscriber(broker, f"{BASE}/#", check_schema=False).connect()
    desk = AnsweringDesk(broker, tmp_path / "state")
    try:
        # "online" comes once the desk listens: a command sent on seeing it is answered.
        wait_until(lambda: any(m.payload == b"online" for m in watch.on("status")),
                   alive=lambda: desk.proc.poll() is None)
        flood(broker, "first", 1)
        wait_until(lambda: results.messages, alive=lambda: desk.proc.poll() is None)
        assert results.messages[0].json()["txid"] == "first0"

        flood(broker, "w", WARMUP)
        wait_until(lambda: counted(desk, 1 + WARMUP), alive=lambda: desk.proc.poll() is None)
        before = desk.peak_rss_mb()
        desk.send("publish 50", "stored 50")
        flood(broker, "f", FLOOD)
        desk.send("publish 50", "stored 100")
        st = wait_until(lambda: counted(desk, 1 + WARMUP + FLOOD),
                        alive=lambda: desk.proc.poll() is None)
        after = desk.peak_rss_mb()
        print(f"\ndesk peak RSS {before:.1f} MB after {WARMUP} commands, {after:.1f} MB after "
              f"{FLOOD} more; {st['commands']} run, {st['commands_rate_limited']} answered "
              f"rate_limited, {st['commands_dropped']} dropped")
        assert after - before < GROWTH_MB, (before, after)

        # Every command run or refused has exactly one answer, with its txid.
        answered = st["commands"] + st["commands_rate_limited"]
        wait_until(lambda: len(results.messages) >= answered,
                   alive=lambda: desk.proc.poll() is None)
        got = [m.json() for m in results.messages]
        assert len(got) == answered and len({r["txid"] for r in got}) == answered
        limited = [r for r in got if not r["ok"]]
        assert len(limited) == st["commands_rate_limited"] > 0
        assert {r["error"]["code"] for r in limited} == {"rate_limited"}
        # The desk kept publishing through the flood, in order, and is still answering.
        wait_until(lambda: len(watch.events()) == 100, alive=lambda: desk.proc.poll() is None)
        assert [e["seq"] for e in watch.events()] == list(range(1, 101))
        desk.send("flush", "flushed")
        n = len(results.messages)
        flood(broker, "after", 1)
        wait_until(lambda: len(results.messages) > n)
        assert results.messages[-1].json()["txid"] == "after0"
    finally:
        desk.stop()
        results.close()
        watch.close()
