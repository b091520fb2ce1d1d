"""`deskcue analyze AUDIO --plot OUT.png`: level, loudness, pitch and cues over time.

For field techs and quality reviewers. Panels share the time axis (stream seconds): one per
channel with level (dBFS) and momentary loudness (LUFS), the agent's usual level, and shaded
spans for voice activity and cues; a pitch panel (Hz, voiced hops) when pitch is measured.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dsp.analyzer import HopFeatures
from firmware.contract.events import (
    CallerEnded,
    EventEnvelope,
    LaughterBurst,
    RaisedVoiceEnded,
    TenseVoiceEnded,
)
from firmware.errors import ReportError

CUE_COLOURS = {"raised_voice": "#e69500", "tense_voice": "#8e44ad",
               "caller": "#16a085", "laughter": "#2e86c1"}


def cue_spans(events: list[EventEnvelope]) -> list[tuple[str, float, float]]:
    """(cue, onset_s, end_s) of every cue, in stream seconds: from the evidence's onset to
    where it last held, read from each ``*.ended`` event and each ``laughter_burst``."""
    spans: list[tuple[str, float, float]] = []
    for e in events:
        d = e.data
        if isinstance(d, RaisedVoiceEnded | TenseVoiceEnded | CallerEnded | LaughterBurst):
            spans.append((d.cue, d.onset_s, d.end_s))
    return spans


def render(path: Path, f: HopFeatures, channels: tuple[str, ...], events: list[EventEnvelope],
           *, title: str, usual_lufs: float | None) -> Path:
    """Write the plot as PNG to ``path``."""
    try:
        import matplotlib
    except ImportError:
        raise ReportError("--plot needs matplotlib (pip install 'deskcue[plot]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f0 = getattr(f, "f0_hz", None)
    n_panels = len(channels) + (1 if f0 is not None else 0)
    fig, axes = plt.subplots(n_panels, 1, figsize=(12, 2.6 * n_panels + 0.6), sharex=True,
                             squeeze=False)
    axes = axes[:, 0]
    spans = cue_spans(events)
    for c, name in enumerate(channels):
        ax = axes[c]
        ax.plot(f.t, f.level_dbfs[c], lw=0.5, color="0.6", label="level (dBFS)")
        ax.plot(f.t, f.loudness_m_lufs[c], lw=1.0, color="C0", label="momentary loudness (LUFS)")
        voiced = f.voiced[c].astype(float)
        ax.fill_between(f.t, -80, -80 + 6 * voiced, color="C2", alpha=0.5, step="mid",
                        label="voice activity")
        if c == 0 and usual_lufs is not None and np.isfinite(usual_lufs):
            ax.axhline(usual_lufs, color="k", ls="--", lw=0.8, label="usual level")
        for cue, a, b in spans:
            if (cue == "caller") == (name == "caller"):
                ax.axvspan(a, b, color=CUE_COLOURS.get(cue, "r"), alpha=0.25, label=cue)
        ax.set_ylim(-80, 0)
        ax.set_ylabel(f"{name}\ndB / LUFS")
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles, strict=True))
        ax.legend(uniq.values(), uniq.keys(), loc="upper right", fontsize=7, ncol=3)
    if f0 is not None:
        ax = axes[-1]
        for c, name in enumerate(channels):
            y = np.where(f0[c] > 0, f0[c], np.nan)
            ax.plot(f.t, y, ".", ms=1.5, label=f"{name} F0 (Hz)")
        ax.set_ylabel("pitch (Hz)")
        ax.set_yscale("log")
        ax.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("stream time (s)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
