"""How long one outbox commit takes on this machine's disk: SQLite WAL with ``synchronous``
FULL (an fsync of the WAL per commit: survives a power cut) against NORMAL (no fsync: survives
``kill -9`` but not a power cut).

This is the wait between a cue being decided and the desk light showing it: the light waits
until the cue's event is committed by the link's worker (never the analysis thread). Prints
median, 99th percentile and maximum per mode, in milliseconds.

Run: ``.venv/bin/python tests/bench/bench_outbox_commit.py [--events 300] [--dir DIR]``
(``--dir`` on the card or disk to judge; default a temporary directory.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broker import make_events  # noqa: E402

from firmware.link.outbox import Outbox  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) by nearest rank."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def commits(directory: Path, mode: str, n: int) -> list[float]:
    """Seconds per `Outbox.put` for ``n`` events with ``PRAGMA synchronous=<mode>``."""
    path = directory / f"bench-{mode.lower()}.db"
    out = []
    with Outbox(path) as box:
        box._db.execute(f"PRAGMA synchronous={mode}")
        for env in make_events(n):
            t = time.perf_counter()
            box.put(env)
            out.append(time.perf_counter() - t)
            time.sleep(0.002)  # events come apart, not in a burst
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        for mode in ("FULL", "NORMAL"):
            t = commits(Path(d), mode, args.events)
            print(f"synchronous={mode:<6} commit: median {1e3 * percentile(t, 0.5):.2f} ms, "
                  f"p99 {1e3 * percentile(t, 0.99):.2f} ms, max {1e3 * max(t):.2f} ms "
                  f"({len(t)} events)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
