"""Value types for the verbs' numeric options: a number outside what the option can mean is a
usage error (exit 2) naming the option and its range, not a misleading verdict later (a
self-test FAIL blaming the audio, an internal error from ``time.sleep(-1)``)."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path


def number_in(lo: float, hi: float = math.inf, *, whole: bool = False,
              above: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a finite number from ``lo`` (excluded when ``above``) to ``hi``;
    a whole number when ``whole``."""
    def parse(text: str) -> float:
        try:
            value: float = int(text) if whole else float(text)
        except ValueError:
            kind = "a whole number" if whole else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        low_ok = value > lo if above else value >= lo
        if not (math.isfinite(value) and low_ok and value <= hi):
            low = f"above {lo:g}" if above else f"at least {lo:g}"
            high = f" and at most {hi:g}" if math.isfinite(hi) else ""
            raise argparse.ArgumentTypeError(f"{text}: must be {low}{high}")
        return value
    return parse


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (the same path, for one that is not there yet)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()
