"""Peak resident memory of deskcue on long recordings: flat in the file's length?

A 48 kHz stereo call recording (the demo call: espeak-ng speech, agent left, caller right,
resampled with sox and repeated) is made at each length asked for, then two commands run on
it as child processes, each measured alone (`tests/peak_rss.py`: peak RSS of that command
only, not inherited from this process):

- ``deskcue analyze FILE --events`` (stdout to /dev/null),
- ``deskcue run --source FILE --fast --pins mock`` with MQTT off and fresh state and runtime
  directories (the appliance path: file source, worker, policy, mock indicator).

Targets (issue "Field-ready"): peak RSS <= 150 MB, and the longest file within 10 MB of the
shortest, per command. A 2-hour 48 kHz stereo WAV is 1.4 GB: the files go to --dir (default:
a temporary directory, removed afterwards).

    python tests/bench/bench_footprint.py [--minutes 10 120] [--dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from peak_rss import peak_rss_mb  # noqa: E402

from firmware.demo.recording import demo_recording  # noqa: E402

TARGET_MB = 150.0
SPREAD_MB = 10.0


def make_recording(work: Path, minutes: float) -> Path:
    """A 48 kHz stereo 16-bit WAV of ``minutes`` of repeated demo call."""
    block = work / "block48.wav"
    if not block.exists():
        demo, _ = demo_recording(work)
        subprocess.run(["sox", "-V1", str(demo), "-r", "48000", str(block)], check=True)
    out = work / f"call-{minutes:g}min.wav"
    if not out.exists():
        block_s = float(subprocess.run(["soxi", "-D", str(block)], check=True,
                                       capture_output=True, text=True).stdout)
        repeats = int(minutes * 60 / block_s) + 1
        subprocess.run(["sox", "-V1", str(block), str(out), "repeat", str(repeats),
                        "trim", "0", str(minutes * 60)], check=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[10, 120])
    ap.add_argument("--dir", type=Path, help="where the recordings go (kept)")
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="deskcue-footprint-"))
    work.mkdir(parents=True, exist_ok=True)
    deskcue = [sys.executable, "-m", "firmware.cli"]
    results: dict[str, dict[float, float]] = {"analyze --events": {}, "run --source --fast": {}}
    try:
        print(f"{'command':<22} {'recording':>10} {'peak RSS':>9} {'wall':>7} {'× real':>7}")
        for minutes in args.minutes:
            wav = make_recording(work, minutes)
            state = work / f"state-{minutes:g}"
            shutil.rmtree(state, ignore_errors=True)
            cfg = work / f"nomqtt-{minutes:g}.toml"
            cfg.write_text(f'[device]\nstate_dir = "{state}/s"\nruntime_dir = "{state}/r"\n'
                           "[mqtt]\nenabled = false\n")
            commands = {
                "analyze --events": [*deskcue, "analyze", str(wav), "--events"],
                "run --source --fast": [*deskcue, "run", "--config", str(cfg), "--source",
                                        str(wav), "--fast", "--pins", "mock"],
            }
            for name, cmd in commands.items():
                t0 = time.monotonic()
                mb, code, err = peak_rss_mb(cmd, cwd=ROOT)
                wall = time.monotonic() - t0
                if code != 0:
                    print(f"{name}: exit {code}\n{err[-2000:]}", file=sys.stderr)
                    return 1
                results[name][minutes] = mb
                print(f"{name:<22} {minutes:>7g} min {mb:>6.1f} MB {wall:>6.0f} s "
                      f"{minutes * 60 / wall:>6.0f}×", flush=True)
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    ok = True
    for name, by_len in results.items():
        peak, spread = max(by_len.values()), max(by_len.values()) - min(by_len.values())
        good = peak <= TARGET_MB and spread <= SPREAD_MB
        ok &= good
        print(f"{name}: peak {peak:.1f} MB (target <= {TARGET_MB:.0f}), spread over lengths "
              f"{spread:.1f} MB (target <= {SPREAD_MB:.0f}): {'ok' if good else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
