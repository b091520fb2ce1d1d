"""Pitch benchmark on the FDA database: deskcue's tracker vs Praat (AC) vs librosa pYIN.

Run from anywhere::

    .venv/bin/python tests/bench/bench_pitch.py            # complete run (all 100 files)
    .venv/bin/python tests/bench/bench_pitch.py --quick    # every 5th file per speaker
    .venv/bin/python tests/bench/bench_pitch.py --speed    # CPU only: tracker vs Praat, same run
    .venv/bin/python tests/bench/bench_pitch.py --speed --against main  # ... and vs main's

Two conditions: *wideband* (the 20 kHz files resampled to 16 kHz) and *telephone* (resampled
to 8 kHz, band-pass 300-3400 Hz, G.711 mu-law; our tracker gets it back at 16 kHz, the
analysis rate, Praat and pYIN get the 8 kHz signal). Scores (GPE, VDE, FFE, fine error in
cents; see ``fda.py``) are taken at the reference frame times (frame k centred at k * 15 ms);
every tracker's output is sampled there the same way (``fda.sample_track``). Our hop j is
centred at (j + 0.5) * 10 ms once its ``delay_hops`` is removed.

Settings: ours with its defaults (60-500 Hz) fed in 100 ms blocks as in the firmware, each
file from a cold start ("deskcue", the same protocol as the others) and, as on a desk where it
runs for hours, each speaker's files back to back as one stream ("deskcue-stream": the
running peak level and the speaker range prior carry over from file to file); Praat
``to_pitch_ac()`` with default settings (75-600 Hz, 10 ms step); pYIN with 60-500 Hz, a 40 ms
frame and 10 ms hop (its default 2048-sample frame is for 22 kHz music; a 64 ms frame scored
worse, FFE 16 % against 12 % on a tenth of the files). CPU is
``time.process_time`` per second of (mono) audio; ours is also timed on a stereo stream
(both conditions as two channels) in 100 ms blocks, the firmware's budget case.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fda  # noqa: E402

from dsp.pitch import PitchTracker  # noqa: E402

RATE = 16000
BLOCK_HOPS = 10  # 100 ms blocks
FMIN, FMAX = 60.0, 500.0

Tracker = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray, np.ndarray]]
"""(audio, rate) -> (frame times s, f0 Hz, voiced)."""


def ours(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """deskcue's tracker, fed 100 ms blocks at the analysis rate; delay removed."""
    if rate != RATE:
        x = fda.resample(x, rate, RATE)
    tr = PitchTracker(rate=RATE, n_channels=1, fmin_hz=FMIN, fmax_hz=FMAX)
    hop = tr.hop
    n_hops = -(-x.size // hop)
    padded = np.zeros((1, (n_hops + tr.delay_hops) * hop))
    padded[0, : x.size] = x
    step = BLOCK_HOPS * hop
    f0s, vs = [], []
    for a in range(0, padded.shape[1], step):
        r = tr.process(padded[:, a : a + step])
        f0s.append(r.f0_hz[0])
        vs.append(r.voiced[0])
    f0 = np.concatenate(f0s)[tr.delay_hops :]
    v = np.concatenate(vs)[tr.delay_hops :]
    times = (np.arange(f0.size) + 0.5) * hop / RATE
    return times, f0, v


def ours_stream(
    inputs: list[tuple[np.ndarray, int]],
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """deskcue's tracker fed one speaker's files back to back as one stream (as on a desk,
    where it runs continuously), in 100 ms blocks; results split back per file."""
    parts = []
    for x, rate in inputs:
        if rate != RATE:
            x = fda.resample(x, rate, RATE)
        parts.append(np.concatenate([x, np.zeros((-x.size) % 160)]))
    stream = np.concatenate(parts)
    times, f0, v = ours(stream, RATE)
    out, a = [], 0
    for p in parts:
        n = p.size // 160
        out.append((times[:n], f0[a : a + n], v[a : a + n]))
        a += n
    return out


def praat(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Praat's autocorrelation method, default settings."""
    import parselmouth

    p = parselmouth.Sound(x, sampling_frequency=rate).to_pitch_ac()
    f0 = p.selected_array["frequency"]
    return np.asarray(p.xs()), f0, f0 > 0


def pyin(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """librosa pYIN, 60-500 Hz, 40 ms frames (YIN window of 20 ms plus the longest lag,
    as our window and Praat's), 10 ms hop."""
    import librosa

    hop = rate // 100
    frame = int(round(0.04 * rate))
    f0, voiced, _ = librosa.pyin(
        x, fmin=FMIN, fmax=FMAX, sr=rate, frame_length=frame, hop_length=hop
    )
    f0 = np.nan_to_num(f0, nan=0.0)
    times = np.arange(f0.size) * hop / rate
    return times, f0, voiced & (f0 > 0)


def stereo_audio(utts: list[fda.Utterance]) -> np.ndarray:
    """All files as one stereo 16 kHz stream: wideband (agent) and telephone band (caller)."""
    chans = []
    for u in utts:
        wide = fda.resample(u.audio, u.rate, RATE)
        tel = fda.resample(fda.telephone(u.audio, u.rate), 8000, RATE)
        n = min(wide.size, tel.size)
        chans.append(np.stack([wide[:n], tel[:n]]))
    x = np.concatenate(chans, axis=1)
    return x[:, : x.shape[1] // (BLOCK_HOPS * 160) * (BLOCK_HOPS * 160)]


def stereo_cpu(x: np.ndarray, block_hops: int = BLOCK_HOPS,
               tracker: type[PitchTracker] = PitchTracker) -> tuple[float, list[Any]]:
    """A tracker's CPU seconds per second of stereo audio in blocks of ``block_hops`` hops
    (default 100 ms), and its results."""
    tr = tracker(rate=RATE, n_channels=2, fmin_hz=FMIN, fmax_hz=FMAX)
    step = block_hops * tr.hop
    out = []
    t0 = time.process_time()
    for a in range(0, x.shape[1], step):
        out.append(tr.process(x[:, a : a + step]))
    return (time.process_time() - t0) / (x.shape[1] / RATE), out


def tracker_at(rev: str) -> type[PitchTracker]:
    """``PitchTracker`` as ``dsp/pitch.py`` was at git revision ``rev`` (with today's
    ``dsp._fast``)."""
    src = subprocess.run(["git", "show", f"{rev}:dsp/pitch.py"], cwd=fda.repo_root(),
                         check=True, capture_output=True, text=True).stdout
    module = types.ModuleType(f"pitch_{rev}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(src, f"{rev}:dsp/pitch.py", "exec"), module.__dict__)
    cls: type[PitchTracker] = module.PitchTracker
    return cls


def speed(utts: list[fda.Utterance], repeats: int, against: str | None) -> None:
    """CPU of the tracker on the stereo stream at the appliance's 100 ms blocks and at 5 s
    blocks, as ratios to Praat's ``to_pitch_ac`` on one channel of the same audio, all measured
    in this run (best of ``repeats``, against the noise of a shared machine). With ``against``
    (a git revision) the tracker of that revision is timed too, turn about with today's, and
    their outputs compared."""
    x = stereo_audio(utts)
    x = x[:, : x.shape[1] // 80000 * 80000]  # whole 5 s blocks
    print(f"{x.shape[1] / RATE:.0f} s of stereo 16 kHz speech (wideband + telephone band);"
          f" CPU s per audio s, best of {repeats}")
    trackers = {"deskcue pitch tracker": PitchTracker}
    if against:
        trackers[f"  the same at {against}"] = tracker_at(against)
    best: dict[tuple[str, int], float] = {}
    ref = np.inf
    same: dict[int, bool] = {}
    for _ in range(repeats):
        ref = min(ref, praat_mono_cpu(x[0]))
        for hops in (BLOCK_HOPS, 500):
            results = []
            for name, cls in trackers.items():
                t, out = stereo_cpu(x, hops, cls)
                best[name, hops] = min(best.get((name, hops), np.inf), t)
                results.append(out)
            if against:
                same[hops] = all(
                    np.array_equal(getattr(a, f), getattr(b, f))
                    for a, b in zip(*results, strict=True)
                    for f in ("f0_hz", "voicing", "voiced", "periodicity"))
    print(f"  {'Praat to_pitch_ac, one channel (offline)':<50s} {ref:.5f}   1.00")
    for hops, label in ((BLOCK_HOPS, "100 ms blocks"), (500, "5 s blocks")):
        for name in trackers:
            t = best[name, hops]
            print(f"  {name + ', 2 ch, ' + label:<50s} {t:.5f}   {t / ref:.2f}")
        if against:
            ratio = best["deskcue pitch tracker", hops] / best[f"  the same at {against}", hops]
            print(f"    today / {against}: {ratio:.2f}; outputs"
                  f" {'identical' if same[hops] else 'DIFFERENT'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="every 5th file per speaker")
    ap.add_argument("--no-pyin", action="store_true", help="skip pYIN (slow)")
    ap.add_argument("--speed", action="store_true",
                    help="only the CPU figures of the tracker (stereo, 100 ms and 5 s blocks)")
    ap.add_argument("--repeats", type=int, default=3, help="--speed: best of this many runs")
    ap.add_argument("--against", metavar="REV",
                    help="--speed: also time the tracker of this git revision, turn about")
    args = ap.parse_args(argv)

    utts = fda.load_fda(every=5 if args.quick else 1)
    if args.speed:
        speed(utts, args.repeats, args.against)
        return 0
    trackers: dict[str, Tracker] = {"deskcue": ours, "deskcue-stream": ours, "praat-ac": praat}
    if not args.no_pyin:
        trackers["pyin"] = pyin
    speakers = sorted({u.speaker for u in utts})
    total_s = sum(u.audio.size / u.rate for u in utts)
    print(f"FDA: {len(utts)} files, {total_s:.1f} s, speakers {', '.join(speakers)}"
          f" ({fda.fda_dir()})")

    rows = []
    for cond in ("wideband", "telephone"):
        inputs = []
        for u in utts:
            if cond == "wideband":
                inputs.append((fda.resample(u.audio, u.rate, RATE), RATE))
            else:
                inputs.append((fda.telephone(u.audio, u.rate), 8000))
        for name, fn in trackers.items():
            counts = {sp: fda.Counts() for sp in speakers}
            cpu = 0.0
            if name == "deskcue-stream":
                results = []
                for sp in speakers:
                    idx = [i for i, u in enumerate(utts) if u.speaker == sp]
                    t0 = time.process_time()
                    res = ours_stream([inputs[i] for i in idx])
                    cpu += time.process_time() - t0
                    results += list(zip(idx, res, strict=True))
                results = [r for _, r in sorted(results, key=lambda p: p[0])]
            else:
                results = []
                for x, rate in inputs:
                    t0 = time.process_time()
                    results.append(fn(x, rate))
                    cpu += time.process_time() - t0
            for u, (times, f0, voiced) in zip(utts, results, strict=True):
                f0_at, v_at = fda.sample_track(times, f0, voiced, u.ref_times_s)
                counts[u.speaker].add(u.f0_ref_hz, f0_at, v_at)
            overall = fda.Counts()
            for c in counts.values():
                overall += c
            for who, c in [*counts.items(), ("all", overall)]:
                rows.append((cond, name, who, c, cpu / total_s if who == "all" else None))

    head = f"{'condition':10s} {'tracker':14s} {'spk':4s} {'GPE%':>6s} {'VDE%':>6s} {'FFE%':>6s}"
    head += f" {'fine¢':>6s} {'CPU s/s':>8s}"
    print(head)
    print("-" * len(head))
    for cond, name, who, c, cpu in rows:
        cpu_s = f"{cpu:8.4f}" if cpu is not None else ""
        print(f"{cond:10s} {name:14s} {who:4s} {100 * c.gpe:6.2f} {100 * c.vde:6.2f}"
              f" {100 * c.ffe:6.2f} {c.fine_cents:6.1f} {cpu_s}")
    x = stereo_audio(utts)
    cpu2, _ = stereo_cpu(x)
    print("\nCPU s per second of stereo audio (wideband agent + telephone caller, same run):")
    ref = praat_stereo_cpu(x)
    print(f"  Praat to_pitch_ac, both channels (offline)      {ref:.4f}   1.00")
    print(f"  deskcue pitch tracker, 100 ms blocks            {cpu2:.4f}   {cpu2 / ref:.2f}")
    for label, block_s in (("appliance, 100 ms blocks", 0.1),
                           ("`deskcue analyze`, 0.5 s blocks", 0.5)):
        a = analyzer_cpu(x, block_s)
        print(f"  whole analyzer (every measure), {label:<16} {a:.4f}   {a / ref:.2f}")
    return 0


def praat_stereo_cpu(x: np.ndarray) -> float:
    """Praat's pitch (default to_pitch_ac) on each channel, CPU s per audio s."""
    import parselmouth

    t0 = time.process_time()
    for ch in x:
        parselmouth.Sound(ch, sampling_frequency=RATE).to_pitch_ac()
    return (time.process_time() - t0) / (x.shape[1] / RATE)


def praat_mono_cpu(x: np.ndarray) -> float:
    """Praat's pitch (default to_pitch_ac) on the one channel ``x``, CPU s per audio s."""
    import parselmouth

    t0 = time.process_time()
    parselmouth.Sound(x, sampling_frequency=RATE).to_pitch_ac()
    return (time.process_time() - t0) / (x.size / RATE)


def analyzer_cpu(x: np.ndarray, block_s: float) -> float:
    """The whole stream analyzer (loudness, voice activity, pitch, measures, laughter) on the
    stereo stream in blocks of ``block_s`` seconds, CPU s per audio s."""
    from dsp.analyzer import AnalyzerParams, StreamAnalyzer

    a = StreamAnalyzer(AnalyzerParams(n_channels=2))
    n = int(block_s * RATE)
    t0 = time.process_time()
    for i in range(0, x.shape[1], n):
        a.process(x[:, i:i + n])
    return (time.process_time() - t0) / (x.shape[1] / RATE)


if __name__ == "__main__":
    raise SystemExit(main())
