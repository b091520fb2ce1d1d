"""CPU cost of the stream analyzer per second of stereo 16 kHz audio (target: < 0.01 s/s).

Stereo input made from real speech: FDA speaker rl on the agent channel (wideband) and sb on
the caller channel, both 16 kHz. The analyzer runs in the appliance's 50 ms blocks and in
0.5 s blocks; the whole pipeline (48 kHz capture resampled + analyzer + policy) too. A
baseline is measured in the same run on the same audio: pyloudnorm's integrated loudness
(an offline BS.1770 meter, one pass, stereo), so the ratio travels across machines.

    python tests/bench/bench_analyzer.py [--seconds 120]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from firmware.audio_source import read_wav  # noqa: E402
from firmware.pipeline import Pipeline  # noqa: E402
from firmware.settings import Settings  # noqa: E402

FDA = ROOT.parent / "shared" / "data" / "pitch" / "fda"


def speech(speaker: str, seconds: float) -> np.ndarray:
    parts, total = [], 0
    for p in sorted(FDA.glob(f"{speaker}*.wav")):
        x, rate = read_wav(p)
        y = resample_poly(x[:, 0].astype(np.float64), 16000, rate)
        parts.append(y)
        total += y.size
        if total >= seconds * 16000:
            break
    return np.concatenate(parts)[: int(seconds * 16000)]


def cpu(fn, repeats: int = 3) -> float:
    best = np.inf
    for _ in range(repeats):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=120.0)
    args = ap.parse_args()
    x = np.vstack([speech("rl", args.seconds), speech("sb", args.seconds)])
    dur = x.shape[1] / 16000
    settings = Settings()

    def analyzer(block_s: float):
        def go():
            p = Pipeline(settings, source_rate=16000, source_channels=2)
            n = int(block_s * 16000)
            for i in range(0, x.shape[1], n):
                p.analyzer.process(x[:, i:i + n])
        return go

    x48 = resample_poly(x, 3, 1, axis=1).T.copy()

    def pipeline48():
        p = Pipeline(settings, source_rate=48000, source_channels=2)
        n = int(0.05 * 48000)
        for i in range(0, x48.shape[0], n):
            p.process(x48[i:i + n])

    def baseline():
        import pyloudnorm

        pyloudnorm.Meter(16000, filter_class="DeMan").integrated_loudness(x.T)

    base = cpu(baseline) / dur
    rows = [
        ("analyzer, 50 ms blocks (as the appliance)", cpu(analyzer(0.05)) / dur),
        ("analyzer, 0.5 s blocks", cpu(analyzer(0.5)) / dur),
        ("capture 48 kHz -> resample + analyzer + policy", cpu(pipeline48) / dur),
    ]
    print(f"stereo 16 kHz speech, {dur:.0f} s (FDA rl agent, sb caller); CPU s per audio s")
    print(f"{'what':<50}{'CPU s/s':>10}{'x baseline':>12}{'target':>10}")
    print(f"{'baseline: pyloudnorm integrated loudness':<50}{base:>10.5f}{1.0:>12.2f}")
    for name, v in rows:
        target = "< 0.01" if name.startswith("analyzer, 50") else ""
        print(f"{name:<50}{v:>10.5f}{v / base:>12.2f}{target:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
