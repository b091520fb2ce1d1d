"""Raised-voice accuracy on RAVDESS actors 1-4, each against their own usual (neutral) voice.

For every actor, the usual level is learned from that actor's neutral utterances (leaving out
the utterance under test when it is neutral itself); each utterance then runs through the
appliance's analyzer and cue policy (shipped thresholds) and counts as flagged when a
raised-voice cue fires. Prints the share flagged per class and actor.

    python tests/bench/bench_raised_voice.py
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from firmware.appliance.pipeline import Pipeline, make_usual_voice  # noqa: E402
from firmware.audio.source import read_wav  # noqa: E402
from firmware.config.settings import Settings  # noqa: E402
from firmware.policy.cue_policy import CuePolicy  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "voice-level" / "ravdess"
CLASSES = [("neutral", "normal"), ("angry", "normal"), ("angry", "strong")]


def voiced_loudness(settings: Settings, path: Path) -> tuple[np.ndarray, object]:
    """Momentary loudness (LUFS) of the voiced hops, and all features, of one file."""
    x, rate = read_wav(path)
    p = Pipeline(settings, source_rate=rate, source_channels=x.shape[1])
    feats = p.analyzer.process(p.resampler.process(np.ascontiguousarray(x.T[:1], float)))
    return feats.loudness_m_lufs[0][feats.voiced[0]], feats


def main() -> int:
    settings = Settings()
    with open(DATA / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    cache = {r["file"]: voiced_loudness(settings, DATA / "audio" / r["file"]) for r in rows}
    flagged: dict[tuple[str, str], list[bool]] = defaultdict(list)
    per_actor: dict[tuple[str, tuple[str, str]], list[bool]] = defaultdict(list)
    excess_by_class: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        cls = (r["emotion"], r["intensity"])
        if cls not in CLASSES:
            continue
        usual = make_usual_voice(settings)
        neutral = [o for o in rows if o["actor"] == r["actor"] and o["emotion"] == "neutral"
                   and o["file"] != r["file"]]
        values = np.concatenate([cache[o["file"]][0] for o in neutral])
        usual.loudness.learn(values)
        # An actor has ~5 s of neutral speech, less than the live warm-up: the benchmark
        # takes that speech as the whole usual voice (what the issue asks to measure).
        usual.speech_s = max(values.size * 0.01, settings.baseline.warmup_speech_s)
        policy = CuePolicy(settings, usual)
        feats = cache[r["file"]][1]
        events = policy.process(feats) + policy.finish()
        hit = any(e.type == "raised_voice.started" for e in events)
        flagged[cls].append(hit)
        per_actor[(r["actor"], cls)].append(hit)
        excess_by_class[cls].append(float(np.median(cache[r["file"]][0]) - usual.usual_lufs))
    rv = settings.cues.raised_voice
    print(f"raised-voice cue on RAVDESS actors 1-4 (threshold +{rv.threshold_db} dB, "
          f"hold {rv.hold_s} s; baseline = the actor's other neutral utterances)")
    print(f"{'class':<16}{'n':>4}{'flagged':>10}{'median dB above usual':>24}   target")
    targets = {("neutral", "normal"): "<= 5 %", ("angry", "normal"): "report",
               ("angry", "strong"): ">= 90 %"}
    for cls in CLASSES:
        v = flagged[cls]
        print(f"{cls[0] + '-' + cls[1]:<16}{len(v):>4}{100 * np.mean(v):>9.1f}%"
              f"{np.median(excess_by_class[cls]):>24.1f}   {targets[cls]}")
    print("per actor (flagged %):  " + "  ".join(
        f"actor {a}: " + "/".join(f"{100 * np.mean(per_actor[(a, c)]):.0f}" for c in CLASSES)
        for a in sorted({r['actor'] for r in rows})) + "   (neutral/angry-normal/angry-strong)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
