"""Accelerated soak: the whole appliance for hours of audio against a real mosquitto.

A stereo 16 kHz recording of ``--hours`` is made by recipe (the demo call, 81 s, then 20 s of
silence so that each repeat is a call of its own, repeated with sox) in ``--dir``, and
``deskcue run --source FILE --fast --pins mock`` plays it as fast as the CPU allows against a
mosquitto on loopback (`tests/broker.py`). The broker is stopped for ``--outage-h`` hours of
audio in the middle (the outbox fills: is its bound kept, is the drop report right?) and
restarted every ``--flap-min`` audio minutes outside it.

Every ``--every-min`` audio minutes (the desk's own ``stream_s``, from its telemetry) one line:
resident memory (MB), open file descriptors, threads, outbox rows and the outbox's files on
disk (MB), bytes the process wrote (``/proc/PID/io`` write_bytes, MB) and log lines so far.
At the end: growth per audio hour, and bytes written per audio hour split into what follows
the audio (events into the outbox) and what follows the wall clock (the baseline saved every
``baseline.save_interval_s`` s), projected to a year of a desk that runs around the clock.

    nice .venv/bin/python tests/bench/bench_soak.py [--hours 6] [--dir DIR] [--outage-h 1]

``--dir`` keeps the recording for the next run (24 h are 2 GB); by default a
temporary directory, removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import paho.mqtt.client as mqtt  # noqa: E402
from broker import Broker  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from firmware.demo.recording import demo_recording  # noqa: E402

GAP_S = 20.0  # silence after each call: more than the 15 s that end a call
CARD_TBW_GB = 500.0 * 32
"""What a 32 GB consumer (TLC) card takes, GB written: about 500 full writes."""


def make_recording(work: Path, hours: float) -> Path:
    """A 16 kHz stereo FLAC of ``hours`` of demo calls, each followed by ``GAP_S`` of silence
    (FLAC: a WAV longer than 18.6 h passes the 4 GB a WAV header can count)."""
    out = work / f"soak-{hours:g}h.flac"
    if out.exists():
        return out
    demo, _ = demo_recording(work)
    unit = work / "unit.wav"
    subprocess.run(["sox", "-V1", str(demo), str(unit), "pad", "0", str(GAP_S)], check=True)
    unit_s = float(subprocess.run(["soxi", "-D", str(unit)], check=True, capture_output=True,
                                  text=True).stdout)
    repeats = max(int(hours * 3600 / unit_s), 1)
    subprocess.run(["sox", "-V1", str(unit), str(out), "repeat", str(repeats)], check=True)
    return out


def proc_figures(pid: int) -> dict[str, float]:
    """RSS (MB), open fds, threads, bytes written (MB) of process ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
            "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": int(fields["Threads"]),
            "written_mb": int(io["write_bytes"]) / 1e6}


def logged_stream_s(log_path: Path) -> float:
    """The stream time (s) of the last event the desk logged: how far it is while no telemetry
    arrives (the broker is away)."""
    with log_path.open("rb") as f:
        f.seek(max(f.seek(0, os.SEEK_END) - 8192, 0))
        tail = f.read().decode(errors="replace")
    for m in reversed(list(re.finditer(r"event \S+ at ([0-9.]+) s", tail))):
        return float(m.group(1))
    return 0.0


def outbox_figures(state: Path) -> tuple[int, float]:
    """Rows in the outbox and the size of its files (db, WAL, shm) in MB."""
    size = sum(p.stat().st_size for p in state.glob("outbox.db*") if p.is_file())
    rows = -1
    db = state / "outbox.db"
    if db.exists():
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)
            try:
                rows = int(con.execute("SELECT count(*) FROM outbox").fetchone()[0])
            finally:
                con.close()
        except sqlite3.Error:
            pass
    return rows, size / 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=6.0, help="audio hours to play")
    ap.add_argument("--every-min", type=float, default=30.0, help="audio minutes between lines")
    ap.add_argument("--outage-h", type=float, default=2.0,
                    help="audio hours with the broker stopped, from a third of the way in")
    ap.add_argument("--flap-min", type=float, default=60.0,
                    help="restart the broker every this many audio minutes (0: never)")
    ap.add_argument("--outbox-max", type=int, default=100,
                    help="mqtt.outbox_max_events for the run (small, so the outage hits it)")
    ap.add_argument("--dir", type=Path, help="where the recording and the state go (kept)")
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="deskcue-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return soak(args, work)
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


def soak(args: argparse.Namespace, work: Path) -> int:
    wav = make_recording(work, args.hours)
    run = work / "run"
    shutil.rmtree(run, ignore_errors=True)
    state, runtime = run / "state", run / "rt"
    # persistence: the subscriber's session (and what is queued for it) outlives each restart
    broker = Broker(run / "broker", persistence=True).start()
    cfg = run / "desk.toml"
    cfg.write_text(f'[device]\nsite = "soak"\ndesk = "d1"\nstate_dir = "{state}"\n'
                   f'runtime_dir = "{runtime}"\n'
                   f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
                   f"reconnect_min_s = 0.2\nreconnect_max_s = 1.0\n"
                   f"outbox_max_events = {args.outbox_max}\n")
    latest: dict[str, Any] = {"stream_s": 0.0}
    seen: dict[str, int] = {"events": 0, "dropped": 0, "dropped_reports": 0, "top_seq": 0}
    seqs: set[tuple[str, int]] = set()
    lock = threading.Lock()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        with lock:
            if msg.topic.endswith("/telemetry"):
                latest.update(body)
            elif msg.topic.endswith("/events"):
                seen["events"] += 1
                seqs.add((body["boot_id"], int(body["seq"])))
                seen["top_seq"] = max(seen["top_seq"], int(body["seq"]))
                if body.get("type") == "outbox_dropped":
                    seen["dropped_reports"] += 1
                    seen["dropped"] += int(body["data"]["count"])

    # one subscriber for the whole run, reconnecting by itself after each broker restart
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="soak-subscriber",
                      protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.on_connect = lambda c, *_a: c.subscribe("deskcue/soak/d1/#", qos=1)
    sub.reconnect_delay_set(0.2, 1.0)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    sub.connect(broker.host, broker.port, clean_start=False, properties=props)
    sub.loop_start()
    log_path = run / "desk.log"
    t0 = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "firmware.cli", "run", "--config",
                                 str(cfg), "--source", str(wav), "--fast", "--pins", "mock"],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    outage = (args.hours * 3600 / 3, args.hours * 3600 / 3 + args.outage_h * 3600)
    next_line, next_flap = 0.0, args.flap_min * 60 or float("inf")
    rows: list[dict[str, float]] = []
    print(f"{'audio h':>7} {'wall s':>6} {'RSS MB':>7} {'fds':>4} {'thr':>4} {'outbox':>6} "
          f"{'ob MB':>6} {'wrote MB':>8} {'log ln':>6} {'broker':>6}", flush=True)
    try:
        while proc.poll() is None:
            time.sleep(0.5)
            with lock:
                stream_s = max(float(latest.get("stream_s", 0.0)), logged_stream_s(log_path))
            if outage[0] <= stream_s < outage[1]:
                if broker.running:
                    broker.stop()
            elif not broker.running:
                broker.start()
            elif stream_s >= next_flap:
                broker.restart()
            while stream_s >= next_flap:
                next_flap += args.flap_min * 60
            if stream_s >= next_line:
                try:
                    fig = proc_figures(proc.pid)
                except (OSError, KeyError):
                    break
                ob_rows, ob_mb = outbox_figures(state)
                lines = log_path.read_bytes().count(b"\n")
                row = {"audio_h": stream_s / 3600, "wall_s": time.monotonic() - t0, **fig,
                       "outbox": ob_rows, "outbox_mb": ob_mb, "log_lines": lines}
                rows.append(row)
                print(f"{row['audio_h']:>7.2f} {row['wall_s']:>6.0f} {fig['rss_mb']:>7.1f} "
                      f"{fig['fds']:>4.0f} {fig['threads']:>4.0f} {ob_rows:>6} {ob_mb:>6.2f} "
                      f"{fig['written_mb']:>8.2f} {lines:>6} "
                      f"{'up' if broker.running else 'DOWN':>6}", flush=True)
                next_line = stream_s + args.every_min * 60
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        time.sleep(0.5)
        sub.loop_stop()
        sub.disconnect()
        broker.stop()
    wall = time.monotonic() - t0
    if code != 0:
        print(f"deskcue run exited {code}; its log: {log_path}", file=sys.stderr)
        return 1
    seen["unique"] = len(seqs)
    report(args, rows, wall, seen, log_path, state)
    return 0


def report(args: argparse.Namespace, rows: list[dict[str, float]], wall: float,
           seen: dict[str, int], log_path: Path, state: Path) -> None:
    if len(rows) < 3:
        print("too few samples for growth figures (play more hours)")
        return
    # growth from the second sample on (the first is start-up)
    a, b = rows[1], rows[-1]
    hours = max(b["audio_h"] - a["audio_h"], 1e-9)
    print(f"\n{rows[-1]['audio_h']:.2f} audio h in {wall:.0f} s wall "
          f"({rows[-1]['audio_h'] * 3600 / wall:.0f}× real time)")
    print(f"growth per audio hour after the first sample: RSS "
          f"{(b['rss_mb'] - a['rss_mb']) / hours:+.2f} MB, "
          f"fds {(b['fds'] - a['fds']) / hours:+.2f},"
          f" threads {(b['threads'] - a['threads']) / hours:+.2f}")
    lines = log_path.read_text(errors="replace").splitlines()
    print(f"log: {len(lines)} lines, {len(lines) / rows[-1]['audio_h']:.0f} per audio hour")
    kinds: dict[str, int] = {}
    for line in lines:
        key = " ".join(line.split()[3:6]) if line.count(" ") > 5 else line[:40]
        kinds[key] = kinds.get(key, 0) + 1
    for key, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {n:>6}  {key}")
    wrote = b["written_mb"] - a["written_mb"]
    print(f"written by the desk: {wrote:.2f} MB over {hours:.2f} audio h, "
          f"{wrote / hours:.2f} MB per audio hour (baseline saves: one a minute of wall time, "
          f"few in an accelerated run)")
    print(f"events a subscriber got: {seen['events']} ({seen['unique']} distinct, highest seq "
          f"{seen['top_seq']}); outbox_dropped reports {seen['dropped_reports']} counting "
          f"{seen['dropped']} events; not accounted for: "
          f"{seen['top_seq'] - seen['unique'] - seen['dropped']}")
    ob_rows, ob_mb = outbox_figures(state)
    print(f"outbox at the end: {ob_rows} rows, {ob_mb:.2f} MB on disk; "
          f"max during the run {max(r['outbox'] for r in rows)} rows "
          f"(bound {args.outbox_max}), {max(r['outbox_mb'] for r in rows):.2f} MB")
    card(state, events_per_h=seen["unique"] / rows[-1]["audio_h"])


def written_bytes() -> int:
    """Bytes this process has sent to storage so far (``/proc/self/io`` write_bytes)."""
    io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(io["write_bytes"])


def card(state: Path, *, events_per_h: float, call_h: float = 8.0, n: int = 200) -> None:
    """What a desk writes to its card, measured here on the state directory's file system:
    one event through the outbox (stored with a full fsync, removed once acknowledged) and one
    baseline save (the run's own baseline.json, replaced atomically); then a day of
    ``call_h`` hours of calls at the run's event rate, with the baseline saved every minute
    of them (it is saved only when it changed: while the agent speaks)."""
    from firmware.link.outbox import Outbox
    from firmware.platform.files import write_json

    probe = state.parent / "card-probe"
    shutil.rmtree(probe, ignore_errors=True)
    probe.mkdir()
    box = Outbox(probe / "outbox.db")
    env = {"id": "", "boot_id": "b" * 32, "seq": 0, "type": "call.started", "ts": 0.0,
           "data": {"call": 1, "start_s": 0.0}}
    before = written_bytes()
    for i in range(n):
        rowid = box.put({**env, "id": f"{i:032x}", "seq": i + 1})
        box.remove([rowid] if rowid is not None else [])
    per_event = (written_bytes() - before) / n
    box.close()
    baseline = state / "baseline.json"
    data = json.loads(baseline.read_text()) if baseline.exists() else {"speech_s": 0.0}
    before = written_bytes()
    for _ in range(n // 4):
        write_json(probe / "baseline.json", data)
    per_save = (written_bytes() - before) / (n // 4)
    shutil.rmtree(probe, ignore_errors=True)
    day = events_per_h * call_h * per_event + 60 * call_h * per_save
    year_gb = day * 365 / 1e9
    print(f"card: {per_event / 1e3:.1f} kB written per event (outbox put + remove), "
          f"{per_save / 1e3:.1f} kB per baseline save; a day of {call_h:g} h of calls at "
          f"{events_per_h:.0f} events/h: {day / 1e6:.1f} MB, {year_gb:.1f} GB a year (a card "
          f"rated {CARD_TBW_GB / 1000:.0f} TB written: {CARD_TBW_GB / max(year_gb, 1e-9):.0f}"
          f" years; the card's own write amplification for small writes comes on top)")


if __name__ == "__main__":
    sys.exit(main())
