"""`deskcue analyze AUDIO`: run a recording through the appliance's analysis as fast as the CPU
allows, from a fresh baseline, touching no device state; print events and/or write features."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import numpy as np

from dsp.analyzer import HopFeatures
from firmware.appliance.pipeline import Pipeline
from firmware.audio.source import read_wav
from firmware.config.settings import Settings
from firmware.contract.events import EventEnvelope
from firmware.link.envelope import EventStamper
from firmware.policy.usual_voice import semitones

BLOCK_S = 0.5
FEATURE_COLUMNS = ("t", "channel", "level_dbfs", "loudness_m_lufs", "loudness_s_lufs", "voiced",
                   "f0_hz", "voicing", "semitones", "rate_sps", "tilt_db", "laughter")


def analyze_blocks(settings: Settings, samples: np.ndarray, rate: int,
                   block_s: float = BLOCK_S) -> Iterator[tuple[Pipeline, HopFeatures, list]]:
    """Yield (pipeline, features, policy events) block by block, then the flushed tail."""
    pipe = Pipeline(settings, source_rate=rate, source_channels=samples.shape[1])
    n = max(1, int(block_s * rate))
    for i in range(0, samples.shape[0], n):
        step = pipe.process(samples[i:i + n])
        yield pipe, step.features, step.events
    step = pipe.finish()
    yield pipe, step.features, step.events


def _num(v: float, digits: int) -> str:
    """A CSV number; empty where there is no value (NaN)."""
    return f"{v:.{digits}f}" if np.isfinite(v) else ""


def write_features(out: TextIO, pipe: Pipeline, f: HopFeatures, header: bool) -> None:
    """Rows of one block: one per hop and channel, hop-major.

    ``semitones`` is F0 relative to the speaker's usual pitch as known at that point of the
    stream (the agent's learned usual voice; the caller's start-of-call pitch), empty where
    unvoiced or not yet known. ``tilt_db`` is the alpha ratio over the last 2 s of voiced
    speech. ``laughter`` is measured on the agent channel only (0 on the caller's).
    """
    if header:
        out.write(",".join(FEATURE_COLUMNS) + "\n")
    policy = pipe.policy
    usual_st = [pipe.usual.usual_st if pipe.usual.ready else np.nan,
                policy.caller_pitch.median() if policy.caller_pitch.weight > 0 else np.nan]
    st = semitones(f.f0_hz) - np.array(usual_st[: f.f0_hz.shape[0]])[:, None]
    for h in range(f.n_hops):
        for c, name in enumerate(pipe.channel_names):
            out.write(f"{f.t[h]:.3f},{name},{f.level_dbfs[c, h]:.2f},"
                      f"{f.loudness_m_lufs[c, h]:.2f},{f.loudness_s_lufs[c, h]:.2f},"
                      f"{int(f.voiced[c, h])},{f.f0_hz[c, h]:.1f},{f.voicing[c, h]:.3f},"
                      f"{_num(st[c, h], 2)},{f.rate_sps[c, h]:.2f},{_num(f.alpha_db[c, h], 2)},"
                      f"{f.laughter[c, h]:.3f}\n")


def run_analyze(settings: Settings, audio: Path, *, events_out: TextIO | None,
                features_path: Path | None, plot_path: Path | None = None) -> int:
    samples, rate = read_wav(audio)
    stamper = EventStamper()
    envelopes: list[EventEnvelope] = []
    parts: list[HopFeatures] = []
    pipe = None
    feat_file = open(features_path, "w", encoding="utf-8") if features_path else None  # noqa: SIM115
    try:
        first = True
        for pipe, feats, events in analyze_blocks(settings, samples, rate):
            if feat_file is not None:
                write_features(feat_file, pipe, feats, first)
                first = False
            if plot_path is not None:
                parts.append(feats)
            for ev in events:
                if not ev.publish:
                    continue
                env = stamper.stamp(ev.type, ev.data, stream_s=ev.stream_s)
                envelopes.append(env)
                if events_out is not None:
                    events_out.write(json.dumps(env.to_json()) + "\n")
    finally:
        if feat_file is not None:
            feat_file.close()
    if plot_path is not None and pipe is not None:
        from firmware.report.plot import render

        usual = pipe.usual.usual_lufs if pipe.usual.ready else None
        render(plot_path, HopFeatures.concat(parts), pipe.channel_names, envelopes,
               title=f"deskcue analyze {audio.name}", usual_lufs=usual)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", type=Path, help="WAV file (mono = agent; stereo = channel map)")
    p.add_argument("--config", type=Path, help="config file (default: the shipped default)")
    p.add_argument("--events", action="store_true",
                   help="print the events the appliance would publish, one JSON per line")
    p.add_argument("--features", type=Path, metavar="CSV",
                   help="write per-hop features (one row per hop and channel) to CSV")
    p.add_argument("--plot", type=Path, metavar="PNG",
                   help="draw level, loudness, pitch and the cues over time to a PNG")


def main(args: argparse.Namespace, settings: Settings) -> int:
    if not (args.events or args.features or args.plot):
        print("deskcue: analyze: nothing to do; give --events, --features CSV or --plot PNG",
              file=sys.stderr)
        return 2
    return run_analyze(settings, args.audio, events_out=sys.stdout if args.events else None,
                       features_path=args.features, plot_path=args.plot)
