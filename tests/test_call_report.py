"""`deskcue analyze --report`: a call report a reviewer can mail, opened in a real browser;
the plot drawn for people; analyze explaining a warm-up it never finished; `--usual-from`.

The call: the demo call (calm agent, an escalating caller, a raised passage), then calm
speech and a second raised passage inside the raised-voice cooldown, which the policy holds
back - a case a reader takes for a missed cue unless the plot shows why it was held back.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cli_process
import numpy as np
import pytest
from wav_file import write_pcm16

from firmware.cli.analyze import usual_from
from firmware.config.settings import Settings
from firmware.demo.recording import CLOSING_AGENT, RAISED_AGENT, Line, build_call, demo_script
from firmware.platform.files import write_json

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"


def deskcue(*args: str) -> subprocess.CompletedProcess[str]:
    """`cli_process.deskcue`, with room for a report of a long call on a busy machine."""
    return cli_process.deskcue(*args, timeout=300)


@pytest.fixture(scope="module")
def review_call(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo call plus a second raised passage about 15 s after the first ended."""
    lines = demo_script(raised=True, laugh=False)
    lines += [Line("agent", CLOSING_AGENT[0], tag="calm_again"),
              Line("agent", RAISED_AGENT[1], gain_db=12.0, pitch=62, speed_wpm=180,
                   tag="raised_again"),
              Line("agent", CLOSING_AGENT[2], tag="calm_after")]
    return build_call(lines).write_wav(tmp_path_factory.mktemp("call") / "review-call.wav")


@pytest.fixture(scope="module")
def analysed(review_call: Path, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("report")
    proc = deskcue("analyze", str(review_call), "--events", "--report", str(out / "call.html"),
                   "--plot", str(out / "call.png"))
    assert proc.returncode == 0, proc.stderr
    return proc, out


class Page(HTMLParser):
    """What a reviewer's browser would fetch and the rows of the events table."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []  # attributes of each <tr> of the events table
        self.cells: list[list[str]] = []
        self.sources: list[str] = []  # src/href of every element
        self.tags: set[str] = set()
        self._in_events = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        self.sources += [a[k] for k in ("src", "href") if k in a]
        if tag == "table":
            self._in_events = a.get("id") == "events"
        if self._in_events and tag == "tr" and "event" in a.get("class", "").split():
            self.rows.append(a)
            self.cells.append([])
        if self._in_events and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_events = False
        if tag == "td" and self._cell is not None:
            self.cells[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def test_report_has_a_row_per_event_published_and_held_back(analysed):
    proc, out = analysed
    printed = [json.loads(line) for line in proc.stdout.splitlines()]
    page = parse((out / "call.html").read_text(encoding="utf-8"))
    published = [c for c in page.cells if c[2].startswith("published #")]
    # every printed event, in order, with its sequence number and type
    assert [(f"published #{e['seq']}", e["type"]) for e in printed] == \
        [(c[2], c[1]) for c in published]
    held = [c for c in page.cells if "held back" in c[2]]
    assert [c[1] for c in held] == ["raised_voice.suppressed", "raised_voice.suppressed_ended"]
    assert "cooldown" in held[0][3] and "not cued" in held[0][3]
    assert len(page.rows) == len(printed) + len(held)
    # held-back passages never reach --events
    assert not any("suppressed" in e["type"] for e in printed)
    assert [e["type"] for e in printed].count("raised_voice.started") == 1


def test_report_is_one_file_with_the_plot_inside(analysed):
    _, out = analysed
    page = parse((out / "call.html").read_text(encoding="utf-8"))
    assert page.sources and all(s.startswith("data:image/png;base64,") for s in page.sources)
    assert not page.tags & {"script", "link", "iframe", "object"}


def test_report_says_what_each_number_means_in_units(analysed):
    _, out = analysed
    # (<wbr>: where a long name may break on a narrow page; no text of its own)
    html = (out / "call.html").read_text(encoding="utf-8").replace("<wbr>", "")
    for needle in ("db_above_usual = ", " LUFS", " dB", " semitones", " s<", "what it means",
                   "Median momentary loudness of usual speech, LUFS.",
                   "usual level + 8 dB", "usual pitch + 4 semitones"):
        assert needle in html, needle
    words = html.lower()
    for feeling in ("angry", "anger", "upset", "frustrat", "emotion", "stress", "aggress"):
        # sound, not feelings (the caller's words are not in the report either)
        assert feeling not in words, feeling


def _png_pixels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_report_renders_in_chromium(analysed, tmp_path):
    _, out = analysed
    shot = tmp_path / "report.png"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1400,2600", f"--screenshot={shot}", (out / "call.html").as_uri()],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    px = _png_pixels(shot)
    assert px.shape[:2] == (2600, 1400)
    not_white = (px < 245).any(axis=2)
    assert not_white.mean() > 0.05  # text, tables and the plot, not a blank page
    colours = np.unique(px.reshape(-1, 3)[::7], axis=0)
    assert len(colours) > 200  # the plot's colours came through, not only black on white
    # the plot is drawn where the page puts it: a band of rows with the cue colours in it
    amber = (np.abs(px.astype(int) - (0xF2, 0xCF, 0x8F)).sum(axis=2) < 60).sum()
    assert amber > 500
    # and the browser's own reading of the page has one row per event
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", (out / "call.html").as_uri()],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert dom.returncode == 0, dom.stderr[-2000:]
    proc, _ = analysed
    held = 2  # the second raised passage: when it was due, and where it ended
    assert len(parse(dom.stdout).rows) == len(proc.stdout.splitlines()) + held


def test_plot_is_drawn_for_people(analysed):
    _, out = analysed
    px = _png_pixels(out / "call.png")
    h, w = px.shape[:2]
    assert 1000 <= w <= 1600 and 700 <= h <= 2000


def test_plot_marks_the_held_back_passage_over_its_whole_length(review_call, monkeypatch,
                                                                  tmp_path):

    import firmware.report.plot as plot
    from firmware.cli.analyze import run_analyze

    kept = []
    monkeypatch.setattr(plot, "render", lambda _path, call, **_kw: kept.append(call))
    assert run_analyze(Settings(), review_call, events_out=None, features_path=None,
                       plot_path=tmp_path / "unused.png") == 0
    call = kept[0]
    (cue, onset, end, reason), = call.held_back_spans()
    assert (cue, reason) == ("raised_voice", "cooldown")
    assert end - onset > 3.0  # to where the loud passage stopped, not only to when it was due
    assert [s[0] for s in call.spans()] == ["raised_voice"]
    whole = _decode(plot.figure_png(call))
    # the same plot with the band cut where the cue was due (as a plot of `.suppressed`
    # events alone would draw it): the difference is the rest of the passage, hatched
    at = next(float(e.data["at_s"]) for e in call.events if e.type.endswith(".suppressed"))
    monkeypatch.setattr(call, "held_back_spans", lambda: [(cue, onset, at, reason)])
    cut = _decode(plot.figure_png(call))
    changed = np.flatnonzero((whole != cut).any(axis=2).sum(axis=0) > 10)
    width = whole.shape[1]
    x = lambda t: (0.07 + 0.915 * t / call.duration_s) * width  # noqa: E731 (axes: 7-98.5 %)
    assert changed.size >= 0.8 * (x(end) - x(at))
    assert x(at) - 80 <= changed.min() and changed.max() <= x(end) + 80  # the label moves too


def _decode(png: bytes) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGB"))


def test_long_call_is_split_into_rows(tmp_path):
    from firmware.report.call import CallRecord, Thresholds
    from firmware.report.plot import _rows

    assert _rows(80.0, 120.0) == [(0.0, 80.0)]
    assert _rows(323.0, 120.0) == [(0.0, 120.0), (120.0, 240.0), (240.0, 360.0)]
    assert len(_rows(3600.0, 120.0)) == 30
    two_hours = _rows(7200.0, 120.0)
    assert len(two_hours) == 30 and two_hours[1] == (240.0, 480.0)
    call = CallRecord("x.wav", 1.0, ("agent",), Thresholds.from_settings(Settings()))
    assert call.warmup_note() is not None and "needs 20.0 s" in str(call.warmup_note())


def test_time_reads_minutes_and_seconds():
    from firmware.report.call import mmss

    assert [mmss(t) for t in (0, 9.6, 61, 599.4, 3725)] == ["0:00", "0:10", "1:01", "9:59",
                                                           "1:02:05"]
    assert mmss(138.18, tenths=True) == "2:18.2"


# -- analyze explains its warm-up, and starts from a known usual voice ---------------------------


@pytest.fixture(scope="module")
def raised_clip(review_call: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """14 s of the review call around its first raised passage: too short to learn from."""
    import soundfile

    x, rate = soundfile.read(review_call, dtype="float32")
    out = tmp_path_factory.mktemp("clip") / "raised.wav"
    soundfile.write(out, x[int(54 * rate):int(68 * rate)], rate, subtype="PCM_16")
    return out


def test_short_clip_says_why_no_cue_could_fire(raised_clip):
    proc = deskcue("analyze", str(raised_clip), "--events")
    assert proc.returncode == 0
    assert not [e for e in proc.stdout.splitlines() if "raised_voice" in e]
    notes = [ln for ln in proc.stderr.splitlines() if ln.startswith("deskcue: note:")]
    assert len(notes) == 1, proc.stderr
    assert "usual voice was not learned yet" in notes[0] and "needs 20.0 s" in notes[0]
    heard = float(notes[0].split("heard ")[1].split(" s")[0])
    assert 3.0 < heard < 14.0
    assert "--usual-from" in notes[0]


def test_usual_from_an_earlier_recording_or_the_desks_baseline(review_call, raised_clip,
                                                               tmp_path):
    # an earlier recording of the same agent, analysed first
    proc = deskcue("analyze", str(raised_clip), "--events", "--usual-from", str(review_call))
    types = [json.loads(line)["type"] for line in proc.stdout.splitlines()]
    assert proc.returncode == 0 and "raised_voice.started" in types, proc.stderr
    assert "note" not in proc.stderr and "usual_voice_learned" not in types
    # the desk's state directory, holding the baseline.json the desk saves
    usual, _ = usual_from(Settings(), review_call)
    state = tmp_path / "state"
    write_json(state / "baseline.json", usual.to_dict())
    proc = deskcue("analyze", str(raised_clip), "--events", "--usual-from", str(state))
    types = [json.loads(line)["type"] for line in proc.stdout.splitlines()]
    assert proc.returncode == 0 and "raised_voice.started" in types, proc.stderr
    assert "note" not in proc.stderr


def test_usual_from_too_short_or_missing_is_one_line(raised_clip, tmp_path):
    proc = deskcue("analyze", str(raised_clip), "--events", "--usual-from", str(raised_clip))
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("deskcue: --usual-from: ")
    assert "too little of the agent's speech" in proc.stderr and "needs 20.0 s" in proc.stderr
    proc = deskcue("analyze", str(raised_clip), "--events", "--usual-from", str(tmp_path))
    assert proc.returncode == 1 and "no baseline.json in it" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_mono_recording_is_the_agent_alone(review_call, tmp_path):
    import soundfile

    x, rate = soundfile.read(review_call, dtype="float32")
    mono = tmp_path / "mono.wav"
    soundfile.write(mono, x[:, 0], rate, subtype="PCM_16")
    proc = deskcue("analyze", str(mono), "--events", "--report", str(tmp_path / "m.html"))
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "m.html").read_text(encoding="utf-8")
    assert "caller escalation fires at" not in html and "<td>agent</td>" in html
    assert len(parse(html).rows) == len(proc.stdout.splitlines()) + 2


@pytest.mark.parametrize("span_s", [0.6, 2.0, 3.0, 4.5, 8.0, 11.9, 30.0, 59.0, 61.0, 300.0])
def test_time_ticks_of_a_short_recording_read_apart(span_s):
    """A plot of a few seconds put up to 12 ticks between whole seconds: as m:ss they read
    0:00 0:00 0:01 0:01 ...; every tick the plot draws gets its own label."""
    from firmware.report.plot import time_label, time_locator

    ticks = [t for t in time_locator(span_s).tick_values(0.0, span_s) if 0.0 <= t <= span_s]
    assert len(ticks) >= 3
    labels = [time_label(span_s)(t) for t in ticks]
    assert len(set(labels)) == len(labels), labels


def test_a_recording_cut_short_is_drawn_for_what_was_read(tmp_path, monkeypatch):
    """A WAV whose header promises 10 s but holds 3 s (a copy that stopped): the plot and
    the report cover the 3 s there are, not 7 s of nothing after them."""

    import firmware.report.plot as plot
    from firmware.cli.analyze import run_analyze

    path = tmp_path / "cut.wav"
    x = (np.random.default_rng(1).standard_normal(3 * 16000) * 1000).astype("<i2")
    write_pcm16(path, np.concatenate([x, np.zeros(7 * 16000, "<i2")]))
    whole = path.read_bytes()
    path.write_bytes(whole[:44 + x.nbytes])  # the header still says 10 s
    kept = []
    monkeypatch.setattr(plot, "render", lambda _path, call, **_kw: kept.append(call))
    assert run_analyze(Settings(), path, events_out=None, features_path=None,
                       plot_path=tmp_path / "unused.png") == 0
    assert kept[0].duration_s == pytest.approx(3.0)


def test_a_recording_without_a_voice_says_so_instead_of_an_empty_table(tmp_path):
    """A muted headset's recording: the page says why there is nothing to list, not table
    headers over no rows that read as a report that failed to fill in."""
    import soundfile

    silent = tmp_path / "muted.wav"
    noise = np.random.default_rng(1).normal(0, 1e-4, (16000 * 5, 2)).astype(np.float32)
    soundfile.write(silent, noise, 16000, subtype="PCM_16")
    out = tmp_path / "muted.html"
    proc = deskcue("analyze", str(silent), "--events", "--report", str(out))
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", out.as_uri()],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = parse(dom.stdout)
    assert not page.rows
    assert 'id="events"' not in dom.stdout and 'id="units"' not in dom.stdout
    assert "No events: no voice was heard on either channel" in dom.stdout


@pytest.mark.parametrize("content", [b"garbage\n", b"\xff\xfe{", b'{"version": 2, "speech'])
def test_usual_from_a_baseline_that_is_not_json_is_one_line_that_says_why(raised_clip,
                                                                          tmp_path, content):
    """A damaged copy of the desk's baseline.json: one refusal saying it is not JSON, not a
    log line calling it "ignored" beside a refusal that does not say why."""
    bad = tmp_path / "baseline.json"
    bad.write_bytes(content)
    proc = deskcue("analyze", str(raised_clip), "--events", "--usual-from", str(bad))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"deskcue: --usual-from: {bad}: not a usable baseline (not "
                               "the JSON a desk saves: "), lines[0]


def test_usual_from_a_baseline_still_warming_up_says_when_cues_could_fire(
        review_call, raised_clip, tmp_path):
    """A desk's baseline.json saved before its warm-up ended: the report said only "started
    from baseline.json", as if agent cues could fire from 0:00, and the plot drew no warm-up,
    while the usual voice was in fact learned (and cues possible) only well into the call."""
    import re

    from firmware.appliance.pipeline import make_usual_voice
    from firmware.audio.recording import Recording
    from firmware.cli.analyze import BLOCK_S, analyze_stream

    settings = Settings()
    usual = make_usual_voice(settings)
    with Recording(raised_clip) as rec:
        for _ in analyze_stream(settings, rec.blocks(int(BLOCK_S * rec.rate)), rec.rate,
                                rec.channels, usual):
            pass
    assert usual.speech_s > 0 and not usual.ready
    saved = tmp_path / "baseline.json"
    write_json(saved, usual.to_dict())
    out = tmp_path / "call.html"
    proc = deskcue("analyze", str(review_call), "--events", "--usual-from", str(saved),
                   "--report", str(out))
    assert proc.returncode == 0, proc.stderr
    learned = [json.loads(ln)["stream_s"] for ln in proc.stdout.splitlines()
               if json.loads(ln)["type"] == "usual_voice_learned"]
    assert len(learned) == 1 and learned[0] > 10
    page = out.read_text(encoding="utf-8")
    rows = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", page))
    assert rows["usual voice started from"].startswith("baseline.json")
    from firmware.report.call import mmss

    assert rows["usual voice learned"].startswith(f"at {mmss(learned[0])}")
    assert f"could fire only from {mmss(learned[0])} on" in page


def test_the_usual_voice_is_drawn_from_when_it_was_learned(review_call, monkeypatch, tmp_path):
    """The usual level and its thresholds were drawn from the end of the 5 s block the usual
    voice was learned in: up to 5 s after the warm-up band ended and cues could fire."""
    import firmware.report.plot as plot
    from firmware.cli.analyze import run_analyze

    kept = []
    monkeypatch.setattr(plot, "render", lambda _path, call, **_kw: kept.append(call))
    assert run_analyze(Settings(), review_call, events_out=None, features_path=None,
                       plot_path=tmp_path / "unused.png") == 0
    call = kept[0]
    assert call.learned_at_s is not None and call.learned_at_s > 0
    usual = call.tracks.usual
    first = usual[np.isfinite(usual[:, 1])][0]
    assert abs(first[0] - call.learned_at_s) < 0.011, (first[0], call.learned_at_s)


def test_the_caller_threshold_is_drawn_from_when_the_start_of_call_level_is_known(
        review_call, monkeypatch, tmp_path):
    """The caller's start-of-call level and threshold were drawn from the end of the 5 s block
    in which the caller's first `baseline_speech_s` of voice completed them: up to 5 s after
    the caller cue could judge against them. Now from the hop that completed them."""
    import firmware.report.plot as plot
    from firmware.cli.analyze import run_analyze

    kept = []
    monkeypatch.setattr(plot, "render", lambda _path, call, **_kw: kept.append(call))
    settings = Settings()
    assert run_analyze(settings, review_call, events_out=None, features_path=None,
                       plot_path=tmp_path / "unused.png") == 0
    call = kept[0]
    tr = call.tracks
    need = int(round(settings.cues.caller_escalation.baseline_speech_s / 0.01))
    # the call starts with the recording: the caller's first `need` voiced hops are the level
    known_s = float(tr.t[np.flatnonzero(tr.voiced[1])[need - 1]]) + 0.005
    usual = tr.usual
    first = usual[np.isfinite(usual[:, 3])][0]
    assert abs(first[0] - known_s) < 0.011, (first[0], known_s)
    before = usual[usual[:, 0] < first[0]]
    assert not np.isfinite(before[:, 3]).any()


# -- the report for people who read it another way: a screen reader, 400 % zoom, print --------
# (the browser's own accessibility tree and layout, over the DevTools protocol: tests/cdp.py)


def _ax(nodes: list[dict], role: str) -> list[dict]:
    return [n for n in nodes if n.get("role", {}).get("value") == role]


def _ax_text(node: dict, key: str) -> str:
    return str(node.get(key, {}).get("value", ""))


def test_report_plot_is_in_words_for_a_screen_reader(analysed, tmp_path):
    """The plot is a PNG: a screen reader got "loudness, pitch and cues over time" and none
    of what it marks. Now the image's description lists each band with its times, as the
    events say them (the raised voice that fired, the passage held back, the warm-up)."""
    from cdp import Browser

    proc, out = analysed
    printed = [json.loads(line) for line in proc.stdout.splitlines()]
    ended = next(e["data"] for e in printed if e["type"] == "raised_voice.ended")
    learned = next(e["stream_s"] for e in printed if e["type"] == "usual_voice_learned")
    with Browser(tmp_path / "profile") as browser:
        nodes = browser.open((out / "call.html").as_uri()).ax_tree()
    (img,) = _ax(nodes, "image")
    assert "Plot of the agent's loudness and pitch and the caller's loudness" in \
        _ax_text(img, "name")
    said = _ax_text(img, "description")
    from firmware.report.call import mmss

    fired = (f"{mmss(ended['onset_s'], tenths=True)} to {mmss(ended['end_s'], tenths=True)}: "
             f"raised voice band, the cue fired at {mmss(ended['at_s'], tenths=True)}")
    assert fired in said, said
    assert "due but held back (cooldown), the agent was not cued" in said
    assert f"0:00 to {mmss(learned, tenths=True)}: shaded, the usual voice was still" in said
    assert said.index(fired) < said.index("held back (cooldown)")  # in time order
    # one heading per part, in order, under the page's one h1
    levels = [next(int(p["value"]["value"]) for p in n["properties"] if p["name"] == "level")
              for n in _ax(nodes, "heading")]
    assert levels[0] == 1 and levels[1:] == [2] * (len(levels) - 1)
    # every table is named by its heading (a screen reader's list of tables)
    assert [_ax_text(t, "name") for t in _ax(nodes, "table")] == \
        ["Summary", "Every event", "What the numbers mean"]


_CONTRAST_JS = r"""
(() => {
  const rgba = s => { const m = s.match(/[\d.]+/g).map(Number);
                      return m.length < 4 ? [...m, 1] : m; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92
                                        : Math.pow((v + 0.055) / 1.055, 2.4); };
                     return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const under = el => { const stack = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) stack.push(c); if (c[3] >= 1) break; }
    let out = [255, 255, 255];
    for (const c of stack.reverse()) out = out.map((v, i) => v * (1 - c[3]) + c[i] * c[3]);
    return out; };
  let worst = [99, ""];
  for (const el of document.querySelectorAll("body *")) {
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const a = lum(rgba(getComputedStyle(el).color)), b = lum(under(el));
    const r = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (r < worst[0]) worst = [r, el.tagName + "." + el.className];
  }
  return worst; })()
"""


def test_report_reflows_at_400_percent_zoom_and_prints_whole(analysed, tmp_path):
    """At 320 CSS px (a 1280 px window at 400 %) the events table held the page at 1,165 px:
    every paragraph had to be scrolled sideways to be read. Now only a data table may
    scroll, inside its own named region a keyboard can reach; on an A4 page (718 CSS px
    between the margins) nothing is cut off or shrunk."""
    from cdp import Browser

    _, out = analysed
    with Browser(tmp_path / "profile") as browser:
        tab = browser.open((out / "call.html").as_uri(), width=320, height=800)
        assert tab.js("document.documentElement.scrollWidth") <= 320
        regions = tab.js("""[...document.querySelectorAll('table')].map(t => {
            const r = t.closest('[role=region]');
            return [t.id, Math.round(t.getBoundingClientRect().width),
                    r ? [r.tabIndex, r.getAttribute('aria-labelledby'),
                         Math.round(r.getBoundingClientRect().right)] : null]; })""")
        for table, width, region in regions:
            if width > 304:  # wider than the page's column: it scrolls in its region
                assert region is not None, (table, width)
                tab_index, label, right = region
                assert tab_index == 0 and label and right <= 320, (table, region)
        ratio, where = tab.js(_CONTRAST_JS)
        assert ratio >= 4.5, (ratio, where)  # WCAG 1.4.3, from the computed styles
        tab = browser.open((out / "call.html").as_uri(), width=718, height=1000)
        tab.media("print")
        assert tab.js("document.documentElement.scrollWidth") <= 718


def test_plot_names_each_cue_band_in_words(review_call, monkeypatch, tmp_path):
    """Cue bands are not told apart by colour alone: the tense voice's violet and the
    laughter's blue are one colour under deuteranopia (CIEDE2000 1.3, the Machado 2009
    simulation in tests/test_indicator_colours.py), so each band carries its cue's name."""
    import dataclasses

    import matplotlib.axes
    from test_indicator_colours import MACHADO, _lab, ciede2000

    import firmware.report.plot as plot
    from firmware.cli.analyze import run_analyze
    from firmware.contract.examples import EVENT_EXAMPLES
    from firmware.report.call import ReportEvent

    def band(hex_colour: str) -> np.ndarray:  # alpha 0.28 over white, as linear RGB
        c = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]) * 0.28 + 0.72
        return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)

    deutan = MACHADO["deuteranopia"]
    assert ciede2000(_lab(deutan @ band(plot.CUE_COLOURS["tense_voice"])),
                     _lab(deutan @ band(plot.CUE_COLOURS["laughter"]))) < 3.0

    kept = []
    monkeypatch.setattr(plot, "render", lambda _path, call, **_kw: kept.append(call))
    assert run_analyze(Settings(), review_call, events_out=None, features_path=None,
                       plot_path=tmp_path / "unused.png") == 0
    call = kept[0]
    tense = {**EVENT_EXAMPLES["tense_voice.ended"].to_json(), "onset_s": 36.0, "at_s": 38.0,
             "end_s": 43.0, "duration_s": 7.0}
    laugh = {**EVENT_EXAMPLES["laughter_burst"].to_json(), "onset_s": 46.0, "at_s": 46.5,
             "end_s": 47.2, "duration_s": 1.2}
    call = dataclasses.replace(call, events=[
        *call.events, ReportEvent("tense_voice.ended", 43.0, tense, published=True),
        ReportEvent("laughter_burst", 47.2, laugh, published=True)])
    drawn: list[tuple[float, str]] = []
    real_text = matplotlib.axes.Axes.text

    def text(ax, x, y, s, *args, **kwargs):  # record, and draw as ever
        drawn.append((float(x), str(s)))
        return real_text(ax, x, y, s, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "text", text)
    plot.figure_png(call)
    for cue, on, _at, end in call.spans():
        name = plot.CUE_NAMES[cue]
        assert any(s == name and on <= x <= end for x, s in drawn), (name, drawn)
