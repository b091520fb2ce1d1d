"""What each `deskcue` command costs to start: imports, CPU and peak RSS, per command.

Every command runs as a child of a small fresh interpreter that reads its resource usage with
``os.wait4`` (user + system CPU seconds, peak RSS: what ``/usr/bin/time -v`` prints) and its
``python -X importtime`` lines: which of the heavy packages (numpy, scipy, pydantic, paho,
cryptography, rich, soundfile, gpiozero, pyaudio) it loaded and the cumulative import time
of each. The baseline in the same run is ``deskcue --help``; every command's CPU is
also given as a ratio to it (the figures scale with the machine: a Pi 3B core is about 4-6
times slower than a desktop core, so multiply the seconds accordingly).

A desk runs meanwhile (``deskcue run`` on a quiet recording in real time, MQTT off) so that
``snooze`` and ``status`` measure a real round trip; a mosquitto on loopback serves
``monitor --once`` and the selftest's broker step.

    python tests/bench/bench_startup.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from broker import Broker  # noqa: E402
from quiet_desk import quiet_wav  # noqa: E402
from waiting import wait_until  # noqa: E402

HEAVY = ("numpy", "scipy", "pydantic", "paho", "cryptography", "rich", "soundfile",
         "gpiozero", "pyaudio", "matplotlib")

TRAMPOLINE = """
import json, os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_RDWR)
    os.dup2(fd, 0)
    os.dup2(fd, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "kb": usage.ru_maxrss,
                  "cpu": usage.ru_utime + usage.ru_stime}))
"""


def measure(argv: list[str], env: dict[str, str]) -> dict[str, object]:
    """Run ``python -X importtime -m firmware.cli ARGV``: its exit code, CPU s, peak RSS MB,
    the heavy packages it loaded and the cumulative import ms of each."""
    cmd = [sys.executable, "-X", "importtime", "-m", "firmware.cli", *argv]
    proc = subprocess.run([sys.executable, "-c", TRAMPOLINE, *cmd], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    packages: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        parts = line.split("|")
        name = parts[2].strip()
        if name in HEAVY:  # the package's own line: its cumulative time, at whatever depth
            packages[name] = max(packages.get(name, 0.0), int(parts[1]) / 1000.0)
    loaded = [h for h in HEAVY if h in packages]
    return {"code": got["code"], "cpu": got["cpu"], "mb": got["kb"] / 1024.0,
            "packages": packages, "heavy": loaded}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per command (median shown)")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="deskcue-startup-") as tmp_name:
        tmp = Path(tmp_name)
        broker = Broker(tmp / "broker").start()
        cfg = tmp / "deskcue.toml"
        cfg.write_text(f'[device]\nstate_dir = "{tmp / "state"}"\nruntime_dir = "{tmp / "run"}"\n'
                       f'[mqtt]\nenabled = false\nhost = "127.0.0.1"\nport = {broker.port}\n')
        tested = tmp / "selftest.toml"  # the desk's broker on, a mono tap like the recording
        tested.write_text(f'[device]\nstate_dir = "{tmp / "state3"}"\n'
                          f'runtime_dir = "{tmp / "run3"}"\n[audio]\nchannels = 1\n'
                          f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n')
        quiet = quiet_wav(tmp / "quiet.wav", seconds=600.0)
        short = quiet_wav(tmp / "short.wav", seconds=10.0)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        desk = subprocess.Popen([sys.executable, "-m", "firmware.cli", "run", "--config",
                                 str(cfg), "--source", str(quiet), "--pins", "mock"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: (tmp / "run" / "control.sock").exists(), timeout=60)
            time.sleep(1.0)  # the desk has audio, so snooze gets an answer
            commands: list[tuple[str, list[str]]] = [
                ("--help", ["--help"]),
                ("snooze --minutes 5", ["snooze", "--config", str(cfg), "--minutes", "5"]),
                ("snooze --cancel --runtime-dir", ["snooze", "--runtime-dir",
                                                   str(tmp / "run"), "--cancel"]),
                ("status", ["status", "--config", str(cfg)]),
                ("status --json", ["status", "--config", str(cfg), "--json"]),
                ("config check", ["config", "check", str(cfg)]),
                ("selftest (mock pins, 2 s file, broker)",
                 ["selftest", "--config", str(tested), "--pins", "mock", "--yes", "--force",
                  "--source", str(short), "--seconds", "2"]),
                ("monitor --once", ["monitor", "--host", "127.0.0.1", "--port",
                                    str(broker.port), "--once", "--seconds", "0.5"]),
                ("analyze 10 s --events", ["analyze", str(short), "--events"]),
                ("run --fast 10 s", ["run", "--config", str(cfg), "--source", str(short),
                                     "--fast", "--pins", "mock", "--runtime-dir",
                                     str(tmp / "run2"), "--state-dir", str(tmp / "state2")]),
            ]
            rows = []
            for label, argv in commands:
                runs = [measure(argv, env) for _ in range(opts.repeat)]
                cpu = statistics.median(float(r["cpu"]) for r in runs)  # type: ignore[arg-type]
                mb = statistics.median(float(r["mb"]) for r in runs)  # type: ignore[arg-type]
                rows.append((label, runs[0]["code"], cpu, mb, runs[0]["heavy"],
                             runs[0]["packages"]))
        finally:
            desk.terminate()
            desk.wait(30)
            broker.stop()
    base = rows[0][2]
    print(f"{'command':40} {'exit':>4} {'cpu s':>6} {'x help':>6} {'peak MB':>7}  heavy packages "
          "loaded (cumulative import ms)")
    for label, code, cpu, mb, heavy, packages in rows:
        loaded = ", ".join(f"{h} {packages[h]:.0f}" for h in heavy) or "-"
        print(f"{label:40} {code:>4} {cpu:6.3f} {cpu / base:6.1f} {mb:7.1f}  {loaded}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
