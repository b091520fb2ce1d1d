"""`deskcue analyze AUDIO --plot OUT.png`: level, pitch and cues over time, drawn for people.

Time reads ``m:ss``; a long call is split into rows of ``row_s`` seconds (2 minutes), all on
the same time scale (at most 30 rows: longer recordings get longer rows). Each row has the
agent's loudness with their usual level and the raised-voice threshold, the agent's pitch
with their usual pitch and the tense-voice threshold, and (stereo) the caller's loudness
with their start-of-call level and threshold.
The thresholds follow the usual voice as it was learned (a step per block; the agent's
and the caller's lines start where each level was first known). A cue is a band
from the evidence's onset to where it last held, named in words (not in colour alone), with
a mark where it fired; a passage due
for a cue but held back (cooldown, snooze, hourly cap) is a hatched band that says why; the
stretch before the usual voice was learned is shaded (no agent cue can fire there). One
legend sits above the rows, outside the data.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from firmware.errors import ReportError
from firmware.report.call import CallRecord, cue_spans, mmss

__all__ = ["cue_spans", "figure_png", "need_matplotlib", "render"]

CUE_COLOURS = {"raised_voice": "#e69500", "tense_voice": "#8e44ad",
               "caller": "#16a085", "laughter": "#2e86c1"}
CUE_NAMES = {"raised_voice": "raised voice", "tense_voice": "tense voice",
             "caller": "caller escalation", "laughter": "laughter-like bursts"}
HELD_COLOUR = "0.35"
WARMUP_COLOUR = "0.92"
ROW_S = 120.0
MAX_ROWS = 30  # 1 hour in rows of 2 minutes


def need_matplotlib(option: str) -> None:
    """Raise `ReportError` naming the extra to install if matplotlib is missing (checked
    before a long analysis, not after it)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ReportError(f"{option} needs matplotlib: pip install 'deskcue[plot]' "
                          "(or .venv/bin/pip install matplotlib)") from None


def _rows(duration_s: float, row_s: float) -> list[tuple[float, float]]:
    """Time windows of the rows (s): one row for a call up to 1.25 rows long, else rows of
    ``row_s`` (the last one drawn at the same scale); at most `MAX_ROWS`, with rows of
    whole minutes beyond (a page a reviewer can still scroll, an image Agg can draw)."""
    if duration_s <= 1.25 * row_s:
        return [(0.0, max(duration_s, 1.0))]
    if duration_s > MAX_ROWS * row_s:
        row_s = 60.0 * math.ceil(duration_s / MAX_ROWS / 60.0)
    n = math.ceil(duration_s / row_s)
    return [(k * row_s, (k + 1) * row_s) for k in range(n)]


def _runs(t: np.ndarray, on: np.ndarray) -> list[tuple[float, float]]:
    """(start, length) in s of each run of ``on`` hops centred at ``t`` (10 ms apart)."""
    edges = np.diff(np.concatenate(([0], on.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(float(t[a]) - 0.005, float(t[b - 1] - t[a]) + 0.01)
            for a, b in zip(starts, stops, strict=True)]


def time_locator(span_s: float) -> Any:
    """Where a row spanning ``span_s`` seconds puts its time ticks: about 12 to 24 a row,
    never closer than a tenth of a second (what `time_label` can tell apart)."""
    from matplotlib.ticker import MaxNLocator, MultipleLocator

    if span_s >= 60:
        return MultipleLocator(10 if span_s <= 240 else 30 if span_s <= 600 else 60)
    if span_s < 1.2:
        return MultipleLocator(0.1)
    return MaxNLocator(12, steps=[1, 2, 5, 10])


def time_label(span_s: float) -> Callable[[float], str]:
    """How a row spanning ``span_s`` seconds labels its time ticks: ``m:ss``, with tenths
    under 12 s, where up to 12 ticks fall between whole seconds (a 3 s call read
    0:00 0:00 0:01 0:01 ...)."""
    tenths = span_s < 12
    return lambda t: mmss(t, tenths=tenths)


def figure_png(call: CallRecord, *, row_s: float = ROW_S, dpi: int = 100) -> bytes:
    """The plot as PNG bytes."""
    need_matplotlib("--plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator, ScalarFormatter

    tr = call.tracks
    t, loud, level, voiced, f0 = tr.t, tr.loudness_lufs, tr.level_dbfs, tr.voiced, tr.f0_hz
    usual = tr.usual
    stereo = len(call.channels) > 1
    th = call.thresholds
    rows = _rows(call.duration_s, row_s)
    kinds = ["agent", "pitch"] + (["caller"] if stereo else [])
    ratios = {"agent": 3.0, "pitch": 2.0, "caller": 2.0}
    # rows of panels, an empty spacer between rows for the time labels
    gap = 1.1
    heights = ([ratios[k] for k in kinds] + [gap]) * len(rows)
    heights.pop()
    height = sum(heights) * 0.78 + 1.6
    fig, grid = plt.subplots(len(heights), 1, figsize=(13, height), squeeze=False,
                             gridspec_kw={"height_ratios": heights, "hspace": 0.12})
    per_row = len(kinds) + 1
    axes = [grid[r * per_row + k, 0] for r in range(len(rows)) for k in range(len(kinds))]
    for r in range(len(rows) - 1):
        grid[r * per_row + len(kinds), 0].set_visible(False)

    # pitch axis range: the agent's (and caller's) voiced F0 and the tense threshold, Hz
    voiced_f0 = f0[f0 > 0] if f0.size else np.empty(0)
    tense_hz = usual[:, 2] * 2 ** (th.tense_st / 12.0) if usual.size else np.empty(0)
    if voiced_f0.size:
        lo, hi = np.percentile(voiced_f0, [1, 99.5])
    else:
        lo, hi = 80.0, 250.0
    finite_tense = tense_hz[np.isfinite(tense_hz)]
    if finite_tense.size:
        hi = max(hi, float(finite_tense.max()))
    f0_lim = (max(0.0, lo * 0.85), hi * 1.12)

    spans = call.spans()
    held = call.held_back_spans()
    learned = call.learned_at_s  # 0 for a known usual voice that was ready from the start
    warm_end = call.duration_s if learned is None else learned
    t_usual = np.append(usual[:, 0], call.duration_s) if usual.size else np.empty(0)
    if t_usual.size and call.usual_from is not None:
        t_usual[0] = 0.0  # a known usual voice holds from the start

    def step_line(ax: Any, col: np.ndarray, *, offset: float = 0.0, ratio: float = 1.0,
                  **kw: Any) -> None:
        if not usual.size or not np.isfinite(col).any():
            return
        y = np.append(col, col[-1]) * ratio + offset
        ax.step(t_usual, y, where="post", **kw)

    def mark_spans(ax: Any, which: str, t0: float, t1: float, top: float) -> None:
        for cue, on, at, end in spans:
            if (cue == "caller") != (which == "caller") or end < t0 or on > t1:
                continue
            colour = CUE_COLOURS.get(cue, "r")
            ax.axvspan(on, max(end, on + 0.05), color=colour, alpha=0.28, lw=0)
            if which != "pitch" and t0 <= at <= t1:
                ax.plot([at], [top], marker="v", ms=8, color=colour, mec="k", mew=0.6,
                        clip_on=False, zorder=5)
            if which != "pitch":
                # named in words: under the common colour-vision deficiencies the tense
                # voice's violet and the laughter's blue are one colour (CIEDE2000 1.3)
                ax.text((max(on, t0) + min(end, t1)) / 2, -75.0, CUE_NAMES.get(cue, cue),
                        ha="center", va="bottom", fontsize=7.5, color="0.1", clip_on=True,
                        bbox={"fc": "white", "ec": colour, "lw": 0.8, "pad": 1.5})
        for cue, on, end, reason in held:
            if (cue == "caller") != (which == "caller") or end < t0 or on > t1:
                continue
            ax.axvspan(on, max(end, on + 0.05), facecolor="none", edgecolor=HELD_COLOUR,
                       hatch="////", lw=0.8)
            if which != "pitch":
                ax.text((max(on, t0) + min(end, t1)) / 2, top, f"held back: {reason}",
                        ha="center", va="top", fontsize=7.5, color="0.15",
                        bbox={"fc": "white", "ec": HELD_COLOUR, "lw": 0.6, "pad": 1.5})

    for r, (t0, t1) in enumerate(rows):
        sel = (t >= t0 - 0.5) & (t <= t1 + 0.5)
        for k, kind in enumerate(kinds):
            ax = axes[r * len(kinds) + k]
            ax.set_xlim(t0, t1)
            if warm_end > t0 and kind != "caller":  # the caller's cue has its own baseline
                ax.axvspan(t0, min(warm_end, t1), color=WARMUP_COLOUR, lw=0, zorder=0)
            if kind in ("agent", "caller"):
                c = 0 if kind == "agent" else 1
                ax.plot(t[sel], level[c, sel], lw=0.4, color="0.7")
                ax.plot(t[sel], loud[c, sel], lw=1.0, color="C0")
                ax.broken_barh(_runs(t[sel], voiced[c, sel]), (-80, 4), color="C2",
                               alpha=0.55, lw=0)
                if kind == "agent":
                    step_line(ax, usual[:, 1] if usual.size else usual, color="k", ls="--",
                              lw=1.0)
                    step_line(ax, usual[:, 1] if usual.size else usual, offset=th.raised_db,
                              color=CUE_COLOURS["raised_voice"], ls=":", lw=1.6)
                else:
                    step_line(ax, usual[:, 3] if usual.size else usual, color="k", ls="--",
                              lw=1.0)
                    step_line(ax, usual[:, 3] if usual.size else usual, offset=th.caller_db,
                              color=CUE_COLOURS["caller"], ls=":", lw=1.6)
                ax.set_ylim(-80, 0)
                ax.yaxis.set_major_locator(MultipleLocator(20))
                ax.set_ylabel(f"{kind}\nLUFS / dBFS", fontsize=8.5)
                mark_spans(ax, kind, t0, t1, -2.0)
            else:
                for c in range(f0.shape[0] if f0.size else 0):
                    y = np.where(f0[c, sel] > 0, f0[c, sel], np.nan)
                    ax.plot(t[sel], y, ".", ms=1.6, color="C0" if c == 0 else "C1")
                step_line(ax, usual[:, 2] if usual.size else usual, color="k", ls="--", lw=1.0)
                step_line(ax, usual[:, 2] if usual.size else usual,
                          ratio=2 ** (th.tense_st / 12.0),
                          color=CUE_COLOURS["tense_voice"], ls=":", lw=1.6)
                ax.set_ylim(*f0_lim)
                ax.yaxis.set_major_locator(MaxNLocator(4, steps=[1, 2, 5, 10]))
                plain = ScalarFormatter(useOffset=False)
                plain.set_scientific(False)
                ax.yaxis.set_major_formatter(plain)
                ax.set_ylabel("pitch\nHz", fontsize=8.5)
                mark_spans(ax, kind, t0, t1, f0_lim[1])
            ax.tick_params(labelsize=8)
            ax.grid(axis="x", color="0.85", lw=0.5)
            ax.xaxis.set_major_locator(time_locator(t1 - t0))
            label = time_label(t1 - t0)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos, f=label: f(x)))
            last = k == len(kinds) - 1
            ax.tick_params(labelbottom=last)
            if last:
                ax.set_xlabel("time into the recording (m:ss)", fontsize=8.5)

    handles = [
        Line2D([], [], color="C0", lw=1.2, label="loudness, momentary (LUFS)"),
        Line2D([], [], color="0.7", lw=0.8, label="level (dBFS)"),
        Patch(color="C2", alpha=0.55, label="voice activity"),
        Line2D([], [], color="k", ls="--", lw=1.0, label="usual level / pitch"),
        Line2D([], [], color=CUE_COLOURS["raised_voice"], ls=":", lw=1.6,
               label=f"raised-voice threshold (usual + {th.raised_db:g} dB)"),
        Line2D([], [], color=CUE_COLOURS["tense_voice"], ls=":", lw=1.6,
               label=f"tense-voice pitch threshold (usual + {th.tense_st:g} semitones)"),
        Line2D([], [], color="C0", marker=".", ls="", label="agent pitch (Hz)"),
    ]
    if stereo:
        handles += [
            Line2D([], [], color="C1", marker=".", ls="", label="caller pitch (Hz)"),
            Line2D([], [], color=CUE_COLOURS["caller"], ls=":", lw=1.6,
                   label=f"caller threshold (start-of-call + {th.caller_db:g} dB)")]
    for cue in CUE_NAMES:
        if any(s[0] == cue for s in spans):
            handles.append(Patch(color=CUE_COLOURS[cue], alpha=0.4,
                                 label=f"{CUE_NAMES[cue]}: onset to end"))
    if spans:
        handles.append(Line2D([], [], color="0.5", marker="v", mec="k", ls="",
                              label="cue fired (light and buzz)"))
    if held:
        handles.append(Patch(facecolor="none", edgecolor=HELD_COLOUR, hatch="////",
                             label="due, held back (cooldown, snooze or hourly cap)"))
    if warm_end > 0:
        handles.append(Patch(color=WARMUP_COLOUR, label="learning the usual voice: "
                                                        "no agent cue can fire"))
    top_in = 0.75 + 0.19 * math.ceil(len(handles) / 3)
    fig.subplots_adjust(left=0.07, right=0.985, bottom=0.6 / height,
                        top=1 - top_in / height)
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.42 / height))
    fig.suptitle(f"{call.name}  ({mmss(call.duration_s)})", fontsize=11, y=1 - 0.12 / height,
                 va="top")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def render(path: Path, call: CallRecord, *, row_s: float = ROW_S,
           png: bytes | None = None) -> Path:
    """Write the plot as PNG to ``path`` (``png``: one drawn already)."""
    png = figure_png(call, row_s=row_s) if png is None else png
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path
