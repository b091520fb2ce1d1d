"""What the whole program costs, as ratios to Praat's pitch tracker measured in the same run.

Issue "Field-ready" asks for figures a desk and a quality reviewer actually pay, not the
analyzer alone:

(a) the whole ``deskcue analyze FILE --events`` process on 10 min of stereo 16 kHz speech:
    the child's CPU time (user + sys), imports, file reading, analyzer, policy and JSON
    included; target <= 1.0 x Praat's ``to_pitch_ac`` (parselmouth, default settings) on ONE
    channel of the same audio, in this process;
(b) the live path in-process: a 48 kHz stereo capture fed to the appliance's `Pipeline`
    (48 -> 16 kHz resampler + analyzer + cue policy) in blocks of ``audio.block_s``, CPU per
    audio second; target <= 1.0 x Praat per audio second;
(c) the CPU time of ``deskcue --help`` (target <= 0.3 s);
(d) the time from starting ``deskcue run --source FILE --pins mock`` (MQTT off, fresh state)
    to its sd_notify ``READY=1`` on a NOTIFY_SOCKET bound here (target <= 1.5 s), and the
    child's CPU by then.

``--live-blocks 0.2 0.5 1`` adds (b) at other block lengths, interleaved with the rest: what
the live path costs if the appliance analysed longer blocks (a block's cue decisions wait for
the block to be complete, so its length adds to every cue's latency).

The speech is made by recipe, nothing is stored: FDA speakers rl (agent, left) and sb (caller,
right), resampled to 16 kHz and repeated to length, written to a temporary directory that is
removed afterwards. CPU figures on a shared machine are noisy: each measurement runs
``--repeats`` times, interleaved with the Praat baseline, and min and median are printed;
ratios are min/min and median/median.

    python tests/bench/bench_program.py [--minutes 10] [--live-seconds 120] [--repeats 5]
                                        [--live-blocks S ...]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `deskcue` runs (firmware.cli.main)

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
from scipy.signal import resample_poly  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from firmware.appliance.pipeline import Pipeline  # noqa: E402
from firmware.config.settings import Settings  # noqa: E402
from firmware.platform.memory import keep_freed_memory  # noqa: E402

FDA = ROOT.parent / "shared" / "data" / "pitch" / "fda"
RATE = 16000


def speaker(name: str, seconds: float) -> np.ndarray:
    """All of FDA speaker ``name`` at 16 kHz, repeated to ``seconds``."""
    parts = []
    for p in sorted(FDA.glob(f"{name}*.wav")):
        x, rate = soundfile.read(p, dtype="float64", always_2d=True)
        parts.append(resample_poly(x[:, 0], RATE, rate))
    y = np.concatenate(parts)
    n = int(seconds * RATE)
    return np.tile(y, -(-n // y.size))[:n]


def deskcue() -> list[str]:
    script = Path(sys.executable).parent / "deskcue"
    return [str(script)] if script.exists() else [sys.executable, "-m", "firmware.cli"]


def child_cpu(cmd: list[str], **kw) -> float:
    """User + sys CPU seconds of ``cmd`` run to its end (stdout discarded)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True, **kw)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu(fn: Callable[[], object]) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def time_to_ready(cmd: list[str], work: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds from spawn to READY=1, the child's CPU seconds when it is stopped right
    after READY). The child is stopped with SIGTERM and waited for."""
    path = work / "notify.sock"
    path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(60)
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, env={**env, "NOTIFY_SOCKET": str(path)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            while True:
                msg = sock.recv(4096).decode()
                if "READY=1" in msg.split("\n"):
                    wall = time.monotonic() - t0
                    break
        finally:
            proc.terminate()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.stderr is not None:
                proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime


def stats(v: list[float]) -> tuple[float, float]:
    return min(v), statistics.median(v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="length of (a)'s recording")
    ap.add_argument("--live-seconds", type=float, default=120.0, help="audio for (b)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--live-blocks", type=float, nargs="*", default=[], metavar="S",
                    help="also time (b) at these block lengths (s)")
    args = ap.parse_args()
    keep_freed_memory()  # as `deskcue run` sets it for the live path (b)
    # Byte-compiled, as an installed package is (pip compiles what it installs): otherwise an
    # environment with PYTHONDONTWRITEBYTECODE compiles our ~100 modules on every start.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "dsp"),
                    str(ROOT / "firmware")], check=True)
    settings = Settings()
    seconds = args.minutes * 60
    x = np.vstack([speaker("rl", seconds), speaker("sb", seconds)])  # (2, n) at 16 kHz
    work = Path(tempfile.mkdtemp(prefix="deskcue-bench-"))
    try:
        wav16 = work / "speech16.wav"
        soundfile.write(wav16, x.T, RATE, subtype="PCM_16")
        x = soundfile.read(wav16, dtype="float64")[0].T.copy()  # what the file holds
        live_n = int(args.live_seconds * RATE)
        x48 = resample_poly(x[:, :live_n], 3, 1, axis=1).T.copy()  # (n, 2) 48 kHz capture
        wav48 = work / "capture48.wav"
        soundfile.write(wav48, x48, 48000, subtype="PCM_16")
        import parselmouth

        agent = parselmouth.Sound(x[0], sampling_frequency=RATE)
        agent_live = parselmouth.Sound(x[0, :live_n], sampling_frequency=RATE)
        def live_in(block_s: float) -> Callable[[], None]:
            n48 = max(1, int(round(block_s * 48000)))

            def live() -> None:
                p = Pipeline(settings, source_rate=48000, source_channels=2)
                for i in range(0, x48.shape[0], n48):
                    p.process(x48[i:i + n48])
            return live

        live = live_in(settings.audio.block_s)
        other_blocks: dict[float, list[float]] = {b: [] for b in args.live_blocks}

        cfg = work / "nomqtt.toml"
        cfg.write_text(f'[device]\nstate_dir = "{work}/state"\nruntime_dir = "{work}/run"\n'
                       "[mqtt]\nenabled = false\n")
        run_cmd = [*deskcue(), "run", "--config", str(cfg), "--source", str(wav48),
                   "--pins", "mock"]
        env = dict(os.environ)
        analyze_cmd = [*deskcue(), "analyze", str(wav16), "--events"]
        praat, praat_live, whole, live_s, help_s, ready, ready_cpu = [], [], [], [], [], [], []
        for _ in range(args.repeats):  # interleaved, so load changes hit both sides alike
            praat.append(cpu(agent.to_pitch_ac))
            whole.append(child_cpu(analyze_cmd, cwd=work))
            praat_live.append(cpu(agent_live.to_pitch_ac) / args.live_seconds)
            live_s.append(cpu(live) / args.live_seconds)
            for b, got in other_blocks.items():
                got.append(cpu(live_in(b)) / args.live_seconds)
            help_s.append(child_cpu([*deskcue(), "--help"]))
            shutil.rmtree(work / "state", ignore_errors=True)
            w, c = time_to_ready(run_cmd, work, env)
            ready.append(w)
            ready_cpu.append(c)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{args.minutes:g} min stereo 16 kHz speech (FDA rl agent, sb caller, repeated); "
          f"{args.repeats} runs each, interleaved; min / median")
    print(f"{'what':<62}{'min':>9}{'median':>9}{'x Praat':>15}{'target':>10}")
    verdicts = []

    def row(name: str, v: list[float], base: list[float] | None, target: float | None,
            unit: str = "s") -> None:
        lo, med = stats(v)
        ratio = ""
        if base is not None:
            b_lo, b_med = stats(base)
            ratio = f"{lo / b_lo:.2f} / {med / b_med:.2f}"
        t = "" if target is None else f"<= {target:g}{' x' if base is not None else ' ' + unit}"
        print(f"{name:<62}{lo:>9.4f}{med:>9.4f}{ratio:>15}{t:>10}")
        if target is not None:
            got = (med / stats(base)[1]) if base is not None else med
            verdicts.append(f"{name.strip()}: {'met' if got <= target else 'NOT met'} "
                            f"(median {got:.2f}{' x' if base is not None else ' ' + unit})")

    row(f"baseline: Praat to_pitch_ac, one channel, {seconds:g} s (CPU s)", praat, None, None)
    row("(a) deskcue analyze --events, whole process (child CPU s)", whole, praat, 1.0)
    row("baseline: Praat to_pitch_ac, one channel (CPU s per audio s)", praat_live, None, None)
    row(f"(b) live 48 kHz stereo, {settings.audio.block_s * 1000:g} ms blocks (CPU s per audio s)",
        live_s, praat_live, 1.0)
    for b, got in other_blocks.items():
        row(f"    the same in {b * 1000:g} ms blocks", got, praat_live, None)
    row("deskcue --help (child CPU s)", help_s, None, 0.3)
    row("deskcue run -> READY=1 (wall s)", ready, None, 1.5)
    row("    its CPU s until stopped at READY", ready_cpu, None, None)
    for v in verdicts:
        print(v)
    return 0


if __name__ == "__main__":
    sys.exit(main())
