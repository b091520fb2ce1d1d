"""Raised-voice accuracy on RAVDESS actors 1-4, each against their own usual (neutral) voice.

For every actor, the usual level is learned from that actor's neutral utterances (leaving out
the utterance under test when it is neutral itself); each utterance then runs through the
appliance's analyzer and cue policy (shipped thresholds) and counts as flagged when a
raised-voice cue fires. Prints the share flagged per class and actor.

    python tests/bench/bench_raised_voice.py            # the actors as recorded
    python tests/bench/bench_raised_voice.py --levels   # also quiet and loud agents

``--levels`` scales each actor so that their usual (neutral) level sits at -60 ... -15 LUFS
and adds the tap's own noise floor (white noise at ``TAP_NOISE_DBFS``, the same for every
level, as a real tap has), then prints per level the share of neutral utterances cued
(target 0 %) and of angry-strong ones (target >= 95 %), and the raised- and tense-voice cues
that started in 4 more minutes of the actor's calm speech (target 0). A quiet agent's speech
sits close to that floor; a loud agent's shouting close to full scale (clipped, as a real tap
would).
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from firmware.appliance.pipeline import Pipeline, make_usual_voice  # noqa: E402
from firmware.audio.source import read_wav  # noqa: E402
from firmware.config.settings import Settings  # noqa: E402
from firmware.policy.cue_policy import CuePolicy  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "voice-level" / "ravdess"
CLASSES = [("neutral", "normal"), ("angry", "normal"), ("angry", "strong")]


TAP_NOISE_DBFS = -66.0  # RMS of a USB headset tap's own noise (white), dBFS; --noise DBFS
LEVELS_LUFS = [-60, -55, -50, -45, -40, -35, -30, -25, -20, -15]


def voiced_loudness(settings: Settings, path: Path, gain_db: float = 0.0,
                    noise_dbfs: float | None = None) -> tuple[np.ndarray, object]:
    """Momentary loudness (LUFS) of the voiced hops, and all features, of one file, played
    ``gain_db`` louder with white noise at ``noise_dbfs`` RMS added (clipped to full scale)."""
    x, rate = read_wav(path)
    y = np.ascontiguousarray(x.T[:1], float) * 10 ** (gain_db / 20)
    if noise_dbfs is not None:
        rng = np.random.default_rng(abs(hash(path.name)) % 2**32)
        # dBFS re a full-scale square wave: RMS 10**(dBFS/20)
        y = y + rng.standard_normal(y.shape) * 10 ** (noise_dbfs / 20)
    y = np.clip(y, -1.0, 32767 / 32768)
    p = Pipeline(settings, source_rate=rate, source_channels=1)
    feats = p.analyzer.process(p.resampler.process(y))
    return feats.loudness_m_lufs[0][feats.voiced[0]], feats


def flag_rows(settings: Settings, rows: list[dict[str, str]],
              cache: dict[str, tuple[np.ndarray, object]]
              ) -> tuple[dict[tuple[str, str], list[bool]],
                         dict[tuple[str, tuple[str, str]], list[bool]],
                         dict[tuple[str, str], list[float]]]:
    """Each utterance through the policy against its actor's other neutral utterances."""
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
        events = policy.process(feats) + policy.finish()  # type: ignore[arg-type]
        hit = any(e.type == "raised_voice.started" for e in events)
        flagged[cls].append(hit)
        per_actor[(r["actor"], cls)].append(hit)
        voiced = cache[r["file"]][0]
        excess_by_class[cls].append(float(np.median(voiced) - usual.usual_lufs)
                                    if voiced.size else float("nan"))
    return flagged, per_actor, excess_by_class


def _mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _scaled(path: Path, gain_db: float, rate_out: int) -> np.ndarray:
    """Mono samples of ``path`` at ``rate_out``, ``gain_db`` louder (clipping is left to the
    mix, which adds the tap noise first)."""
    x, rate = read_wav(path)
    y = x[:, 0].astype(np.float64) * 10 ** (gain_db / 20)
    return resample_poly(y, rate_out, rate) if rate != rate_out else y


def levels_section(settings: Settings, rows: list[dict[str, str]],
                   native: dict[str, tuple[np.ndarray, object]]) -> None:
    """Quiet and loud agents, live: each actor moved to usual levels from -60 to -15 LUFS.

    Per actor and level, one stream as a desk hears it: the tap's noise throughout, the
    actor's neutral utterances looped for 60 s (the usual voice is learned live, warm-up
    included), then each test utterance after 1.5 s of pause, judged on a copy of the desk's
    state after the warm-up (so utterances do not cool each other down). An utterance counts
    as cued when a raised-voice cue starts during it or within ``release_s`` after it. Then,
    on another copy, 4 min of calm speech: the actor's neutral utterances in random order,
    each within +-2 dB, 0.3-1.5 s apart; every raised- or tense-voice cue started counts.
    """
    import copy

    rate = 16000
    usual_native = {}
    for actor in sorted({r["actor"] for r in rows}):
        vals = np.concatenate([native[r["file"]][0] for r in rows
                               if r["actor"] == actor and r["emotion"] == "neutral"])
        usual_native[actor] = float(np.median(vals))
    rng = np.random.default_rng(7)
    print(f"\nquiet and loud agents, live (60 s warm-up of the actor's neutral speech, then "
          f"each utterance); tap noise {TAP_NOISE_DBFS:.0f} dBFS (white)")
    print(f"{'usual L (LUFS)':<16}{'neutral cued':>14}{'angry-normal':>14}{'angry-strong':>14}"
          f"{'usual learned (LUFS)':>24}{'spread (dB)':>13}{'calm 4 min: cues':>18}")
    release = settings.cues.raised_voice.release_s
    for level in LEVELS_LUFS:
        cued: dict[tuple[str, str], list[bool]] = defaultdict(list)
        learned, spreads = [], []
        calm_cues = 0
        for actor in sorted(usual_native):
            gain = level - usual_native[actor]
            mine = [r for r in rows if r["actor"] == actor]
            neutral = [_scaled(DATA / "audio" / r["file"], gain, rate) for r in mine
                       if r["emotion"] == "neutral"]
            pause = np.zeros(int(0.8 * rate))
            warm, k = [], 0
            while sum(w.size for w in warm) < 60 * rate:
                warm += [neutral[k % len(neutral)], pause]
                k += 1

            def noisy(y: np.ndarray) -> np.ndarray:
                n = rng.standard_normal(y.size) * 10 ** (TAP_NOISE_DBFS / 20)
                return np.clip(y + n, -1.0, 32767 / 32768)[:, None]

            pipe = Pipeline(settings, source_rate=rate, source_channels=1)
            pipe.process(noisy(np.concatenate(warm)))
            learned.append(pipe.usual.usual_lufs if pipe.usual.ready else np.nan)
            spreads.append(pipe.usual.loudness.spread() if pipe.usual.ready else np.nan)
            for r in mine:
                cls = (r["emotion"], r["intensity"])
                if cls not in CLASSES:
                    continue
                trial = copy.deepcopy(pipe)
                t0 = trial.stream_s + 1.5
                u = _scaled(DATA / "audio" / r["file"], gain, rate)
                tail = np.zeros(int((release + 0.5) * rate))
                events = trial.process(noisy(np.concatenate(
                    [np.zeros(int(1.5 * rate)), u, tail]))).events
                end = t0 + u.size / rate + release
                cued[cls].append(any(e.type == "raised_voice.started" and t0 <= e.stream_s <= end
                                     for e in events))
            calm = copy.deepcopy(pipe)
            parts: list[np.ndarray] = []
            while sum(x.size for x in parts) < 240 * rate:
                parts += [neutral[rng.integers(len(neutral))] * 10 ** (rng.uniform(-2, 2) / 20),
                          np.zeros(int(rng.uniform(0.3, 1.5) * rate))]
            x = noisy(np.concatenate(parts))
            for i in range(0, x.shape[0], 10 * rate):
                calm_cues += sum(e.type in ("raised_voice.started", "tense_voice.started")
                                 for e in calm.process(x[i:i + 10 * rate]).events)
        shares = [100 * np.mean(cued[c]) for c in CLASSES]
        print(f"{level:<16}{shares[0]:>13.1f}%{shares[1]:>13.1f}%{shares[2]:>13.1f}%"
              f"{_mean(learned):>24.1f}{_mean(spreads):>13.2f}{calm_cues:>18}")
    print("targets: neutral cued 0 % at every level; angry-strong cued >= 95 % at every level; "
          "no cue in calm speech")


def main() -> int:
    settings = Settings()
    with open(DATA / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    cache = {r["file"]: voiced_loudness(settings, DATA / "audio" / r["file"]) for r in rows}
    flagged, per_actor, excess_by_class = flag_rows(settings, rows, cache)
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
    if "--levels" in sys.argv[1:]:
        global TAP_NOISE_DBFS
        if "--noise" in sys.argv[1:]:
            TAP_NOISE_DBFS = float(sys.argv[sys.argv.index("--noise") + 1])
        levels_section(settings, rows, cache)
    return 0


if __name__ == "__main__":
    sys.exit(main())
