"""What clipping does to the agent's measures, against the share `deskcue analyze` warns on.

The demo call's agent channel is driven 0 to 18 dB past full scale and clipped as a converter
would (16-bit), then analysed; the reference is the same gain with headroom (no clipping).
For each gain: the share of samples at full scale in runs of 3 or more (what
`firmware.audio.recording.ClipCount` counts), how much lower the momentary loudness reads on
voiced hops (median, and the 5th percentile: the loudest passages, where the raised-voice cue
is decided), and how many voiced hops keep their F0 within 2 %.

    python tests/bench/bench_clipping.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dsp.analyzer import HopFeatures  # noqa: E402
from firmware.audio.recording import ClipCount, clip_level, read_whole  # noqa: E402
from firmware.cli.analyze import analyze_blocks  # noqa: E402
from firmware.config.settings import Settings  # noqa: E402
from firmware.demo.recording import demo_recording  # noqa: E402

HEADROOM = 4.0  # the reference is scaled down by this (12 dB) so that nothing clips


def features(y: np.ndarray, rate: int) -> HopFeatures:
    return HopFeatures.concat([f for _, f, _ in analyze_blocks(Settings(),
                                                               y.astype(np.float32), rate)])


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        path, _ = demo_recording(Path(d))
        x, rate = read_whole(path)
    agent = x[:, :1].astype(np.float64)
    peak = float(np.abs(agent).max())
    print("peak over full scale | clipped share | loudness low: median, 5th pct | F0 within 2 %")
    for over_db in (0, 1, 2, 3, 4, 6, 9, 12, 18):
        g = 10 ** (over_db / 20) / peak
        ref = features(agent * g / HEADROOM, rate)
        y = np.round(np.clip(agent * g, -1.0, 1.0 - 2.0 ** -15) * 32768) / 32768
        count = ClipCount(1, clip_level("PCM_16"))
        count.add(y.astype(np.float32))
        share = count.samples[0] / len(y)
        got = features(y, rate)
        v = ref.voiced[0] & got.voiced[0] & (ref.loudness_m_lufs[0] > -50)
        low = got.loudness_m_lufs[0][v] - (ref.loudness_m_lufs[0][v] + 20 * np.log10(HEADROOM))
        assert ref.f0_hz is not None and got.f0_hz is not None
        f0r, f0g = ref.f0_hz[0][v], got.f0_hz[0][v]
        both = (f0r > 0) & (f0g > 0)
        f0_ok = float(np.mean(np.abs(f0g[both] / f0r[both] - 1) < 0.02))
        print(f"{over_db:>4} dB {100 * share:>18.3f} % {np.median(low):>+13.2f} LU "
              f"{np.percentile(low, 5):>+7.2f} LU {100 * f0_ok:>13.1f} %")


if __name__ == "__main__":
    main()
