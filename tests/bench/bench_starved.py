"""The appliance on a starved CPU, in real time: does it keep up, or degrade honestly?

A Pi 3B-class desk has four cores each 4-6 times slower than a desktop's, and throttles under
a hot lamp. This bench runs ``deskcue run`` as a child process in a cgroup (v1 ``cpu``
controller: ``cpu.cfs_quota_us``) limited to a share of one core (default 100, 5, 2, 1,
0.7 and 0.5 %: the analysis needs 1.5-2 % of a desktop core, so the last ones starve it), on
the real capture path: PyAudio reading ALSA's ``file`` plugin, whose input file is a FIFO
that a writer outside the cgroup fills in real time (48 kHz stereo, one 0.1 s block every
0.1 s; a full FIFO drops the block, as a sound card overruns). The desk publishes to a
real mosquitto on loopback; systemd's notify socket is played by the bench (WATCHDOG_USEC =
30 s, as the unit's WatchdogSec), so the gaps between the desk's WATCHDOG=1 are measured.

Per quota it prints: the desk's own CPU load (telemetry), blocks dropped (by the desk's queue,
from telemetry, with the seconds of audio it lost, and by the device FIFO), how far the
analysis was behind the sound at worst (written audio minus what the FIFO dropped minus the
desk's stream time, which counts what it lost, from each telemetry message), cue events heard
and the worst delay of one against the same cue in the first run, the worst watchdog gap,
whether the broker saw the desk go offline (its last will: a keepalive lost), the peak RSS
(VmHWM), how many "dropped" lines the journal (stderr) got, and the exit code and wall time
of a `deskcue snooze` run 25 s in from outside the group (what an agent presses). The first
row (100 %) is the baseline of the same run.

Needs root (it makes cgroups under /sys/fs/cgroup/cpu) and mosquitto.

    python tests/bench/bench_starved.py [--quota 100 5 2 1 0.7 0.5] [--seconds 75]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from alsa_tap import DEVICE_NAME, AlsaTap  # noqa: E402
from broker import Broker, Subscriber  # noqa: E402
from peak_rss import status_mb  # noqa: E402
from waiting import wait_until  # noqa: E402

from firmware.audio.recording import read_whole  # noqa: E402
from firmware.demo.recording import demo_recording  # noqa: E402

CGROUP = Path("/sys/fs/cgroup/cpu")
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ, named in the module from Python 3.12
RATE = 48000
BLOCK_S = 0.1
CUES = ("raised_voice.started", "tense_voice.started", "caller.started", "laughter_burst")
# The FIFO's room: 0.34 s of 48 kHz stereo, about a sound card's ring; a larger one would
# hold audio back ahead of the desk's queue when its capture thread is starved too.
PIPE_BYTES = 1 << 16


class PacedWriter(threading.Thread):
    """Feeds ``pcm`` (int16 bytes, interleaved stereo) into the FIFO in real time, one block
    per `BLOCK_S`; a block that does not fit is dropped (a device overrun). Keeps (time,
    frames written, frames dropped) after every block."""

    def __init__(self, fifo: Path, pcm: bytes):
        super().__init__(daemon=True)
        self.fd = os.open(fifo, os.O_RDWR)  # never EPIPE, whoever opens and closes it
        fcntl.fcntl(self.fd, F_SETPIPE_SZ, PIPE_BYTES)
        self.pcm = pcm
        self.go = threading.Event()
        self.stop = threading.Event()
        self.t0 = 0.0
        self.log: list[tuple[float, int, int]] = []

    def run(self) -> None:
        self.go.wait()
        step = int(RATE * BLOCK_S) * 4
        written = dropped = 0
        self.t0 = time.perf_counter()
        k = 0
        while not self.stop.is_set() and (k + 1) * step <= len(self.pcm):
            due = self.t0 + (k + 1) * BLOCK_S
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            queued = struct.unpack("i", fcntl.ioctl(self.fd, termios.FIONREAD, b"\0" * 4))[0]
            if PIPE_BYTES - queued >= step:  # room: the write cannot block
                os.write(self.fd, self.pcm[k * step:(k + 1) * step])
                written += step // 4
            else:
                dropped += step // 4
            k += 1
            self.log.append((time.perf_counter(), written + dropped, dropped))

    def frames_at(self, t: float) -> tuple[int, int]:
        """(frames produced, frames dropped by the device) at perf_counter ``t``."""
        best = (0, 0)
        for when, produced, dropped in self.log:
            if when > t:
                break
            best = (produced, dropped)
        return best


class NotifySocket(threading.Thread):
    """Plays systemd's notify socket: keeps (time, message) of every datagram."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.5)
        self.got: list[tuple[float, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                data = self.sock.recv(4096)
                self.got.append((time.perf_counter(), data.decode(errors="replace")))

    def watchdog_gaps(self, until: float) -> float:
        """The longest time between WATCHDOG=1 (or from the last one to ``until``), s."""
        times = [t for t, m in self.got if "WATCHDOG=1" in m]
        if not times:
            return float("inf")
        return max(np.diff([*times, until]).max(initial=0.0), 0.0)


def make_call(work: Path, seconds: float) -> np.ndarray:
    """The demo call (agent left, caller right) at 48 kHz, repeated to ``seconds``."""
    path, _ = demo_recording(work)
    x, rate = read_whole(path)
    if rate != RATE:
        from scipy.signal import resample_poly

        x = resample_poly(x, RATE, rate, axis=0).astype(np.float32)
    if x.shape[1] == 1:
        x = np.repeat(x, 2, axis=1)
    reps = int(np.ceil(seconds * RATE / x.shape[0]))
    return np.tile(x, (reps, 1))[: int(seconds * RATE)]


def one_run(tmp: Path, broker: Broker, call: np.ndarray, quota_pct: float,
            seconds: float) -> dict[str, Any]:
    name = f"q{quota_pct:g}".replace(".", "_")  # a desk name: letters, digits, _ and -
    work = tmp / name
    work.mkdir()
    tap = AlsaTap(work)  # sets ALSA_CONFIG_PATH in os.environ (inherited by the desk)
    tap.raw.unlink()
    os.mkfifo(tap.raw)
    pcm = np.clip(np.round(call * 32767.0), -32768, 32767).astype("<i2").tobytes()
    writer = PacedWriter(tap.raw, pcm)
    writer.start()
    notify = NotifySocket(work / "notify")
    notify.start()
    cfg = work / "deskcue.toml"
    cfg.write_text(
        f'[device]\nsite = "bench"\ndesk = "{name}"\nstate_dir = "{work / "state"}"\n'
        f'runtime_dir = "{work / "run"}"\n'
        f'[audio]\ndevice = "{DEVICE_NAME}"\nchannels = 2\nrate_hz = {RATE}\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nkeepalive_s = 15\n'
        '[baseline]\nwarmup_speech_s = 10.0\n')
    group = CGROUP / f"deskcue-bench-{os.getpid()}-{name}"
    group.mkdir()
    # the kernel's least quota is 1 ms: below 1 % the period grows instead (bursts of 1 ms)
    period_us = max(100_000, int(100_000 / quota_pct))
    (group / "cpu.cfs_period_us").write_text(str(period_us))
    (group / "cpu.cfs_quota_us").write_text(str(max(1000, round(quota_pct * period_us / 100))))
    sub = Subscriber(broker, f"deskcue/bench/{name}/#", check_schema=False).connect()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": str(work / "notify"),
           "WATCHDOG_USEC": "30000000"}
    err = (work / "stderr").open("wb")
    desk = subprocess.Popen(
        ["sh", "-c", f'echo $$ > {group / "cgroup.procs"} && exec "$@"', "sh",
         sys.executable, "-m", "firmware.cli", "run", "--config", str(cfg), "--pins", "mock"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_until(lambda: any("READY=1" in m for _, m in notify.got), timeout=600,
                   alive=lambda: desk.poll() is None)
        wait_until(lambda: b"listening on" in (work / "stderr").read_bytes(), timeout=600,
                   alive=lambda: desk.poll() is None)
        writer.go.set()
        start = time.perf_counter()
        end = start + seconds
        hwm = 0.0
        snooze: tuple[int, float] | None = None
        while time.perf_counter() < end and desk.poll() is None:
            time.sleep(1.0)
            hwm = max(hwm, status_mb(desk.pid, "VmHWM"))
            if snooze is None and time.perf_counter() > start + 25.0:
                # what an agent presses, from outside the starved group: answered, how soon?
                t = time.perf_counter()
                code = subprocess.run(
                    [sys.executable, "-m", "firmware.cli", "snooze", "--runtime-dir",
                     str(work / "run"), "--minutes", "0.05"], cwd=ROOT, env=env,
                    capture_output=True).returncode
                snooze = (code, time.perf_counter() - t)
        t_end = time.perf_counter()
        hwm = max(hwm, status_mb(desk.pid, "VmHWM"))
    finally:
        writer.stop.set()
        desk.terminate()
        try:
            desk.wait(60)
        except subprocess.TimeoutExpired:
            desk.kill()
            desk.wait()
        err.close()
        notify.stop.set()
        sub.close()
        with contextlib.suppress(OSError):
            group.rmdir()
    rate_frames = float(RATE)
    lags, loads, overflows, lost_s = [], [], 0, 0.0
    for m in sub.on("telemetry"):
        tel = m.json()
        produced, dev_dropped = writer.frames_at(m.t)
        overflows = max(overflows, int(tel["input_overflows"]))
        lost_s = max(lost_s, float(tel.get("lost_audio_s", 0.0)))
        # stream_s counts the audio the desk lost too (not what the device FIFO dropped)
        lag = (produced - dev_dropped) / rate_frames - float(tel["stream_s"])
        lags.append(lag)
        loads.append(float(tel["cpu_load"]))
    # each cue's arrival, s after the writer's first block: the 100 % run is the reference
    cue_at = [(m.json()["type"], m.t - writer.t0) for m in sub.on("events")
              if m.json()["type"] in CUES and m.t <= t_end]
    statuses = [m.payload.decode() for m in sub.on("status") if m.t <= t_end]
    log = (work / "stderr").read_text(errors="replace")
    return {
        "quota": quota_pct,
        "load": float(np.median(loads)) if loads else float("nan"),
        "desk_drops": overflows,
        "lost_s": lost_s,
        "device_drops": writer.log[-1][2] // int(RATE * BLOCK_S) if writer.log else 0,
        "lag_max": max(lags) if lags else float("nan"),
        "lag_end": lags[-1] if lags else float("nan"),
        "cue_at": cue_at,
        "watchdog_gap": notify.watchdog_gaps(t_end),
        "offline": statuses.count("offline"),
        "hwm_mb": hwm,
        "drop_lines": log.count("the analysis fell behind"),
        "telemetry": len(loads),
        "snooze_exit": snooze[0] if snooze else -1,
        "snooze_s": snooze[1] if snooze else float("nan"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quota", type=float, nargs="+", default=[100, 5, 2, 1, 0.7, 0.5],
                    help="CPU quota, percent of one core")
    ap.add_argument("--seconds", type=float, default=75.0, help="real-time seconds per quota")
    opts = ap.parse_args()
    if not os.access(CGROUP, os.W_OK):
        print(f"needs a writable cgroup v1 cpu controller at {CGROUP} (root)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="deskcue-starved-") as tmp_name:
        tmp = Path(tmp_name)
        call = make_call(tmp, opts.seconds + 30.0)
        with Broker(tmp / "broker") as broker:
            rows = [one_run(tmp, broker, call, q, opts.seconds) for q in opts.quota]
    # A cue's delay: its arrival against the same cue's in the first (unstarved) run, plus
    # that run's own delay behind the sound (the hold the cue waits for is not delay).
    reference = rows[0]["cue_at"]
    for r in rows:
        late = [at - ref for (kind, at), (ref_kind, ref) in zip(r["cue_at"], reference,
                                                                 strict=False)
                if kind == ref_kind]
        r["cues"] = len(r["cue_at"])
        r["cue_delay_max"] = max(late) if late else float("nan")
    print(f"{'quota':>5} {'load':>5} {'drops':>5} {'lost s':>6} {'dev':>4} {'lag max':>7} "
          f"{'lag end':>7} "
          f"{'cues':>4} {'cue late':>8} {'wd gap':>6} {'offline':>7} {'RSS MB':>6} {'log':>3} "
          f"{'snooze':>9}")
    for r in rows:
        print(f"{r['quota']:>4g}% {r['load']:5.2f} {r['desk_drops']:5d} {r['lost_s']:6.1f} "
              f"{r['device_drops']:4d} "
              f"{r['lag_max']:7.2f} {r['lag_end']:7.2f} {r['cues']:4d} "
              f"{r['cue_delay_max']:8.2f} {r['watchdog_gap']:6.1f} {r['offline']:7d} "
              f"{r['hwm_mb']:6.1f} {r['drop_lines']:3d} "
              f"{r['snooze_exit']:>2d} {r['snooze_s']:5.2f}s")
    print(json.dumps(rows))
    print("lag: how far the analysis was behind the sound at worst (s; stream time counts the "
          "audio the desk lost, not what the device FIFO dropped); lost s: audio the desk lost "
          "(telemetry lost_audio_s); cue late: later than the same cue in the first run (s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
