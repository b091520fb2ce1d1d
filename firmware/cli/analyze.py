"""`deskcue analyze AUDIO`: run a recording through the appliance's analysis as fast as the CPU
allows, from a fresh baseline, touching no device state; print events and/or write features.

The recording is read in blocks and every block's rows and events are written before the next
is read, so memory stays flat in the file's length (``--plot`` keeps the per-hop features, a
few kB per minute). A progress bar goes to stderr when it is a terminal."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import numpy as np

from dsp.analyzer import HopFeatures
from firmware.appliance.pipeline import Pipeline
from firmware.audio.recording import Recording
from firmware.config.settings import Settings
from firmware.contract.events import EventEnvelope
from firmware.link.envelope import EventStamper
from firmware.platform.memory import keep_freed_memory
from firmware.policy.cue_policy import PolicyEvent
from firmware.policy.usual_voice import semitones

# Events and per-hop measures do not depend on the blocks; 5 s blocks spread each stage's
# per-call cost over 500 hops (~25 % less CPU than 0.5 s; ~13 MB more memory) and still move
# the progress bar many times a second. The features CSV keeps 0.5 s: its `semitones` column
# reads the usual pitch once per block, so its values follow the blocks (`write_features`).
BLOCK_S = 5.0
FEATURES_BLOCK_S = 0.5
FEATURE_COLUMNS = ("t", "channel", "level_dbfs", "loudness_m_lufs", "loudness_s_lufs", "voiced",
                   "f0_hz", "voicing", "semitones", "rate_sps", "tilt_db", "laughter")


def analyze_stream(settings: Settings, blocks: Iterable[np.ndarray], rate: int, channels: int
                   ) -> Iterator[tuple[Pipeline, HopFeatures, list[PolicyEvent]]]:
    """Yield (pipeline, features, policy events) for each block of float32 (frames,
    ``channels``) samples at ``rate`` Hz, then for the flushed tail."""
    pipe = Pipeline(settings, source_rate=rate, source_channels=channels)
    for block in blocks:
        step = pipe.process(block)
        yield pipe, step.features, step.events
    step = pipe.finish()
    yield pipe, step.features, step.events


def analyze_blocks(settings: Settings, samples: np.ndarray, rate: int,
                   block_s: float = BLOCK_S
                   ) -> Iterator[tuple[Pipeline, HopFeatures, list[PolicyEvent]]]:
    """`analyze_stream` over samples already in memory (frames, channels), cut in blocks of
    ``block_s`` seconds."""
    n = max(1, int(block_s * rate))
    cuts = (samples[i:i + n] for i in range(0, samples.shape[0], n))
    yield from analyze_stream(settings, cuts, rate, samples.shape[1])


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
                features_path: Path | None, plot_path: Path | None = None,
                progress_to: TextIO | None = None) -> int:
    """Analyse ``audio`` block by block; events as JSON lines to ``events_out``, features to
    ``features_path`` (CSV), a plot to ``plot_path``. A progress bar goes to ``progress_to``
    (default stderr) if it is a terminal; a recording cut short is analysed up to where it
    ends and said so there. Returns the exit code."""
    from firmware.cli.progress import Progress

    stamper = EventStamper()
    envelopes: list[EventEnvelope] = []  # for the plot's cue marks only
    parts: list[HopFeatures] = []
    pipe = None
    with Recording(audio) as rec:
        feat_file = open(features_path, "w", encoding="utf-8") if features_path else None  # noqa: SIM115
        try:
            with Progress(f"analyze {audio.name}", rec.duration_s, stream=progress_to) as bar:
                block_s = BLOCK_S if feat_file is None else FEATURES_BLOCK_S
                blocks = rec.blocks(max(1, int(block_s * rec.rate)))
                first = True
                for pipe, feats, events in analyze_stream(settings, blocks, rec.rate,
                                                          rec.channels):
                    bar.update(rec.frames_read / rec.rate)
                    if feat_file is not None:
                        write_features(feat_file, pipe, feats, first)
                        first = False
                    if plot_path is not None:
                        parts.append(feats)
                    for ev in events:
                        if not ev.publish:
                            continue
                        env = stamper.stamp(ev.type, ev.data, stream_s=ev.stream_s)
                        if plot_path is not None:
                            envelopes.append(env)
                        if events_out is not None:
                            events_out.write(json.dumps(env.to_json()) + "\n")
        finally:
            if feat_file is not None:
                feat_file.close()
        if rec.cut_short:
            print(f"deskcue: warning: {rec.cut_short}; analysed what is there",
                  file=progress_to or sys.stderr)
    if plot_path is not None and pipe is not None:
        from firmware.report.plot import render

        usual = pipe.usual.usual_lufs if pipe.usual.ready else None
        render(plot_path, HopFeatures.concat(parts), pipe.channel_names, envelopes,
               title=f"deskcue analyze {audio.name}", usual_lufs=usual)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", type=Path,
                   help="recording: WAV (PCM 8-32 bit, float, µ-law, A-law), FLAC or Ogg; "
                        "mono = agent; stereo = channel map")
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
    keep_freed_memory()
    return run_analyze(settings, args.audio, events_out=sys.stdout if args.events else None,
                       features_path=args.features, plot_path=args.plot)
