"""`deskcue analyze CALL --report OUT.html`: one self-contained page a reviewer can mail.

The call's summary (duration, the usual voice, the thresholds, cues fired and held back), the
plot (`firmware.report.plot`, embedded as a base64 PNG: no external file, script or font), and
a table of every event - published ones as `deskcue analyze --events` prints them, and the
passages held back - with each measurement and its unit, then what each number means (the
descriptions come from the event contract, so the page and the payloads cannot disagree).
Sound, not feelings: every number is a measurement against the speaker's own usual voice.
"""

from __future__ import annotations

import base64
import datetime
import html
from pathlib import Path
from typing import Any

from firmware import build_version
from firmware.contract.events import EVENT_DATA
from firmware.report.call import HELD_BACK_REASONS, CallRecord, ReportEvent, mmss
from firmware.report.plot import CUE_NAMES, figure_png

# Fields of a held-back passage (never published, so not in the contract).
HELD_BACK_FIELDS = {
    "onset_s": "Stream time the evidence began, s.",
    "at_s": "Stream time the cue was due but held back, s.",
    "end_s": "Stream time the evidence of the held-back passage last held, s.",
    "duration_s": "The whole held-back passage (end_s - onset_s), s.",
    "reason": "Why it was held back: cooldown, snoozed or hourly cap.",
    "cue": "The cue that was due.",
}
SKIP = {"summary", "cue", "channel"}  # said in words in the "what" column already

EVENT_WORDS = {
    "call.started": "call started",
    "call.ended": "call ended",
    "usual_voice_learned": "usual voice learned: agent cues can fire from here",
    "snooze": "cues snoozed",
    "recalibrate": "usual voice forgotten (recalibrate)",
}

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1320px;
       color: #1b1b1b; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: 4px 10px 4px 0;
         border-bottom: 1px solid #ddd; }
th { font-weight: 600; border-bottom: 2px solid #999; }
table.summary th { border-bottom: 1px solid #ddd; font-weight: 600; padding-right: 18px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.plot { margin: 0; }
.plot img { width: 100%; height: auto; border: 1px solid #ddd; box-sizing: border-box; }
.plot figcaption ul { margin: 4px 0 0; padding-left: 20px; }
.wide { overflow-x: auto; } .wide:focus-visible { outline: 2px solid #1b1b1b; }
tr.held td { background: #f3f3f3; } tr.unpublished td { background: #fafafa; }
.tag { display: inline-block; font-size: 12px; padding: 0 6px; border-radius: 3px;
       border: 1px solid #999; color: #333; white-space: nowrap; }
.ms { display: grid; grid-template-columns: repeat(2, max-content); column-gap: 22px; }
.m { white-space: nowrap; font-variant-numeric: tabular-nums; }
.note { border-left: 4px solid #e69500; padding: 6px 12px; background: #fff8ec; }
dl.units dt { font-weight: 600; float: left; width: 110px; clear: left; }
dl.units dd { margin: 0 0 4px 120px; }
@media (max-width: 40em) {
  body { margin: 12px auto; padding: 0 8px; }
  .ms, .m { display: block; } .m, .tag { white-space: normal; }
}
@media print {
  body { margin: 0; max-width: none; padding: 0; }
  .wide { overflow: visible; }
  .ms, .m { display: block; } .m, .tag { white-space: normal; }
  tr, .plot img { break-inside: avoid; } h2 { break-after: avoid; }
}
"""


def unit(name: str) -> str:
    """The unit of a measurement, from its name (the contract's naming rule)."""
    if name.endswith("_lufs"):
        return "LUFS"
    if name.endswith("_db") or name.startswith(("db_", "peak_db_")) or "_db_" in name:
        return "dB"
    if name.startswith(("st_", "peak_st_")) or name.endswith("_st"):
        return "semitones"
    if name.endswith("_hz"):
        return "Hz"
    if name.endswith("_sps"):
        return "syllables/s"
    if name.endswith("_s"):
        return "s"
    if name.endswith("share") or name == "score":
        return "(scale 0-1)"
    if name == "minutes":
        return "min"
    return ""


def meaning(event_type: str, name: str) -> str:
    """What field ``name`` of an ``event_type`` event means, from the contract."""
    if event_type.endswith((".suppressed", ".suppressed_ended")):
        return HELD_BACK_FIELDS.get(name, "")
    model = EVENT_DATA.get(event_type)
    if model is None or name not in model.model_fields:
        return ""
    return model.model_fields[name].description or ""


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.2f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:.0f}"
    if v is None:
        return "not known"
    return str(v)


def _measures(e: ReportEvent) -> list[tuple[str, str, str]]:
    """(name, value, unit) of each measurement of ``e``, in the payload's order; a nested
    mapping (cues per type) becomes one row per key."""
    out: list[tuple[str, str, str]] = []
    for k, v in e.data.items():
        if k in SKIP or (e.held_back and k == "reason"):
            continue
        if isinstance(v, dict):
            text = ", ".join(f"{CUE_NAMES.get(c, c)} {n}" for c, n in v.items()) or "none"
            out.append((k, text, ""))
        else:
            out.append((k, _fmt(v), unit(k)))
    return out


def describe(e: ReportEvent) -> str:
    """What happened, in words: the payload's own summary when it has one."""
    d = e.data
    if e.held_back:
        cue = CUE_NAMES.get(e.cue or "", e.cue or "a cue")
        why = HELD_BACK_REASONS.get(str(d.get("reason")), str(d.get("reason")))
        if e.type.endswith("_ended"):
            return (f"{cue}: the held-back passage ended, {float(d['duration_s']):.1f} s from "
                    f"its onset at {mmss(float(d['onset_s']), tenths=True)} (held back: "
                    f"{d.get('reason')})")
        return (f"{cue}: due after {float(d['at_s']) - float(d['onset_s']):.1f} s of evidence, "
                f"held back ({why}); the agent was not cued and nothing was published")
    if isinstance(d.get("summary"), str):
        text = str(d["summary"])
        name = CUE_NAMES.get(e.cue or "", e.cue or "")
        if e.type.endswith(".started") and not text.startswith(name):
            text = f"{name}: {text}"
        return text
    return EVENT_WORDS.get(e.type, e.type)


def _breakable(name: str) -> str:
    """``name`` escaped, with a line-break opportunity after each ``.`` and ``_``: the
    long event and field names are what kept the tables wider than a phone or a printed
    page, and <wbr> leaves the text as it is when copied."""
    return html.escape(name).replace(".", ".<wbr>").replace("_", "_<wbr>")


def _status(e: ReportEvent) -> str:
    if e.published:
        return f'<span class="tag">published #{e.seq}</span>'
    if e.held_back:
        return '<span class="tag">held back, not published</span>'
    if e.type == "laughter_burst":
        return '<span class="tag">not published (mqtt.publish_laughter off)</span>'
    return '<span class="tag">not published</span>'


def _summary_rows(call: CallRecord) -> list[tuple[str, str]]:
    th = call.thresholds
    rows = [("recording", call.name),
            ("duration", f"{mmss(call.duration_s)} ({call.duration_s:.1f} s)"),
            ("channels", " and ".join(call.channels) or "none")]
    if call.usual_lufs is not None:
        pitch = f", pitch {call.usual_f0_hz:.0f} Hz" if call.usual_f0_hz else ""
        rows.append(("agent's usual voice (at the end)",
                     f"loudness {call.usual_lufs:.1f} LUFS{pitch}"))
    if call.usual_from:
        rows.append(("usual voice started from", call.usual_from))
    if call.learned_at_s is not None:
        # a --usual-from baseline saved before its warm-up ended is learned here too
        if call.learned_at_s > 0 or not call.usual_from:
            rows.append(("usual voice learned", f"at {mmss(call.learned_at_s)}, after "
                         f"{th.warmup_speech_s:g} s of the agent's speech"))
    else:
        rows.append(("usual voice learned", f"not learned: heard {call.heard_s:.1f} s of the "
                     f"agent's speech, needs {th.warmup_speech_s:g} s"))
    rows += [
        ("raised voice fires at",
         f"usual level + {th.raised_db:g} dB, held {th.raised_hold_s:g} s"),
        ("tense voice fires at", f"usual pitch + {th.tense_st:g} semitones with loudness "
                                 f"+ {th.tense_effort_db:g} dB (or tilt or rate up), held "
                                 f"{th.tense_hold_s:g} s"),
    ]
    if len(call.channels) > 1:
        rows.append(("caller escalation fires at", f"caller's start-of-call level + "
                                                   f"{th.caller_db:g} dB, held "
                                                   f"{th.caller_hold_s:g} s"))
    fired = call.cues_fired
    rows.append(("cues fired", ", ".join(f"{CUE_NAMES.get(c, c)} {n}"
                                        for c, n in fired.items()) or "none"))
    held = call.held_back
    rows.append(("passages held back", ", ".join(f"{r} {n}" for r, n in held.items()) or "none"))
    published = sum(1 for e in call.events if e.published)
    rows.append(("events", f"{len(call.events)} ({published} published)"))
    return rows


def plot_words(call: CallRecord) -> tuple[str, list[str]]:
    """The plot for someone who cannot see it: a short text alternative, and what it marks
    (the warm-up, every cue's passage and every passage held back), one line each, in
    time order. Its lines are drawn from the same records as the plot's bands."""
    th = call.thresholds
    who = "the agent's loudness and pitch" + (" and the caller's loudness"
                                              if len(call.channels) > 1 else "")
    alt = (f"Plot of {who} over the recording's {mmss(call.duration_s)}, with the usual "
           "level and pitch and the thresholds above them; what it marks is listed below it.")
    marks: list[tuple[float, str]] = []
    warm_end = call.learned_at_s if call.learned_at_s is not None else call.duration_s
    if warm_end > 0:
        marks.append((0.0, f"0:00 to {mmss(warm_end, tenths=True)}: shaded, the usual voice "
                           "was still being learned, so no agent cue could fire."))
    for cue, on, at, end in call.spans():
        name = CUE_NAMES.get(cue, cue)
        marks.append((on, f"{mmss(on, tenths=True)} to {mmss(end, tenths=True)}: {name} "
                          f"band, the cue fired at {mmss(at, tenths=True)}."))
    for cue, on, end, reason in call.held_back_spans():
        name = CUE_NAMES.get(cue, cue)
        marks.append((on, f"{mmss(on, tenths=True)} to {mmss(end, tenths=True)}: hatched "
                          f"{name} passage, due but held back ({reason}), the agent was not "
                          "cued."))
    marks.sort(key=lambda m: m[0])
    lines = [text for _, text in marks]
    if not call.spans() and not call.held_back_spans():
        lines.append("No cue band: no cue fired and none was held back.")
    lines.append(f"Lines: the raised-voice threshold is the usual level + {th.raised_db:g} dB, "
                 f"the tense-voice threshold the usual pitch + {th.tense_st:g} semitones"
                 + (f", the caller's threshold their start-of-call level + "
                    f"{th.caller_db:g} dB" if len(call.channels) > 1 else "")
                 + "; the numbers behind each band are in the table of events below.")
    return alt, lines


def render_html(call: CallRecord, *, png: bytes | None = None) -> str:
    """The report as one HTML document (the plot inline as base64 PNG)."""
    esc = html.escape
    png = figure_png(call) if png is None else png
    parts = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
             f"<title>deskcue call report: {esc(call.name)}</title>",
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<style>{CSS}</style></head><body>",
             f"<h1>Call report: {esc(call.name)}</h1>",
             f'<p class="sub">deskcue {esc(build_version())} analyze, '
             f"{datetime.date.today().isoformat()}. Every number is a measurement of sound "
             "against the speaker's own usual voice; the audio itself is not in this report."
             "</p>"]
    for note in [call.warmup_note(), *call.notes]:
        if note:
            parts.append(f'<p class="note">{esc(note[:1].upper() + note[1:])}.</p>')
    parts.append('<h2 id="h-summary">Summary</h2><table class="summary" id="summary" '
                 'aria-labelledby="h-summary">')
    parts += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in _summary_rows(call)]
    parts.append("</table>")
    alt, words = plot_words(call)
    parts.append('<h2 id="h-plot">Over time</h2><figure class="plot">'
                 f'<img alt="{esc(alt)}" aria-describedby="plot-words" '
                 'src="data:image/png;base64,' + base64.b64encode(png).decode("ascii") + '">'
                 '<figcaption id="plot-words">What the plot marks, in words:<ul>'
                 + "".join(f"<li>{esc(w)}</li>" for w in words) + "</ul></figcaption></figure>")
    parts.append('<h2 id="h-events">Every event</h2>')
    if not call.events:
        # headers over no rows read as a page that failed to fill in
        where = "either channel" if len(call.channels) > 1 else "the agent's channel"
        parts.append(f'<p class="note" id="no-events">No events: no voice was heard on {where}, '
                     "so no call started and no cue could fire (a silent or very short "
                     "recording?).</p>"
                     "</body></html>\n")
        return "\n".join(parts)
    # a data table may scroll sideways on a narrow screen, the page around it must not
    parts.append('<div class="wide" role="region" aria-labelledby="h-events" tabindex="0">'
                 '<table class="events" id="events" aria-labelledby="h-events"><thead><tr>'
                 '<th class="num">time</th><th>event</th><th>status</th><th>what</th>'
                 "<th>measurements</th></tr></thead><tbody>")
    # (number, unit, meaning) -> the event types it appears in: a name can mean slightly
    # different things in different events (onset_s of a cue vs of laughter-like bursts)
    used: dict[tuple[str, str, str], list[str]] = {}
    for e in call.events:
        cls = "held" if e.held_back else ("" if e.published else "unpublished")
        ms = _measures(e)
        cells = []
        for name, v, u in ms:
            text = meaning(e.type, name)
            types = used.setdefault((name, u, text), [])
            if e.type not in types:
                types.append(e.type)
            cells.append(f'<span class="m" title="{esc(text)}">{_breakable(name)} = {esc(v)}'
                         f'{" " + esc(u) if u else ""}</span>')
        cells_html = '<div class="ms">' + "".join(cells) + "</div>"
        parts.append(f'<tr class="event {cls}" data-type="{esc(e.type)}">'
                     f'<td class="num">{mmss(e.stream_s, tenths=True)}</td>'
                     f"<td>{_breakable(e.type)}</td><td>{_status(e)}</td><td>{esc(describe(e))}</td>"
                     f"<td>{cells_html}</td></tr>")
    parts.append("</tbody></table></div>")
    parts.append('<h2 id="h-units">What the numbers mean</h2>'
                 "<p>Times are stream times: seconds into the "
                 "recording, shown as m:ss in the time column. LUFS is loudness (EBU R 128, "
                 "0 is the loudest possible, speech on a headset sits near -25); dB above usual "
                 "is how much louder than the speaker's usual loudness; a semitone is 1/12 of "
                 "an octave of pitch (+12 semitones is twice the frequency).</p>"
                 '<div class="wide" role="region" aria-labelledby="h-units" tabindex="0">'
                 '<table class="units" id="units" aria-labelledby="h-units"><thead><tr>'
                 "<th>number</th><th>unit</th>"
                 "<th>what it means</th><th>in</th></tr></thead><tbody>")
    for (name, u, text), types in used.items():
        parts.append(f"<tr><td>{_breakable(name)}</td><td>{esc(u)}</td><td>{esc(text)}</td>"
                     f"<td>{_breakable(', '.join(types))}</td></tr>")
    parts.append("</tbody></table></div></body></html>\n")
    return "\n".join(parts)


def write_report(path: Path, call: CallRecord, *, png: bytes | None = None) -> Path:
    """Write the report to ``path`` (UTF-8; ``png``: the plot, if drawn already)."""
    text = render_html(call, png=png)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
