"""`deskcue analyze AUDIO`: run a recording through the appliance's analysis as fast as the CPU
allows, from a fresh baseline (or a known one: ``--usual-from``), touching no device state;
print events, write features, draw a plot or write a call report.

The recording is read in blocks and every block's rows and events are written before the next
is read, so memory stays flat in the file's length (``--plot`` and ``--report`` keep the
measures they draw, 0.2 MB per minute of stereo). A progress bar goes to stderr when it
is a terminal. When no cue could fire because the agent's usual voice was not learned yet,
stderr says so, with how much speech was heard and how much is needed."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import numpy as np

from dsp.analyzer import HopFeatures
from firmware.appliance.pipeline import Pipeline, make_usual_voice
from firmware.audio.recording import Recording
from firmware.cli.args import same_file
from firmware.config.device import BASELINE_FILE
from firmware.config.settings import Settings
from firmware.errors import ReportError
from firmware.link.envelope import EventStamper
from firmware.platform.files import existing_ancestor, printable_name
from firmware.platform.memory import keep_freed_memory
from firmware.policy.cue_policy import PolicyEvent
from firmware.policy.usual_voice import UsualVoice, semitones
from firmware.report.call import CallRecord, ReportEvent, Thresholds

# Events and per-hop measures do not depend on the blocks; 5 s blocks spread each stage's
# per-call cost over 500 hops (~25 % less CPU than 0.5 s; ~13 MB more memory) and still move
# the progress bar many times a second. The features CSV keeps 0.5 s: its `semitones` column
# reads the usual pitch once per block, so its values follow the blocks (`write_features`).
BLOCK_S = 5.0
FEATURES_BLOCK_S = 0.5
STDOUT = Path("-")  # --features -: the CSV to standard output, for a pipe
FEATURE_COLUMNS = ("t", "channel", "level_dbfs", "loudness_m_lufs", "loudness_s_lufs", "voiced",
                   "f0_hz", "voicing", "semitones", "rate_sps", "tilt_db", "laughter")


def analyze_stream(settings: Settings, blocks: Iterable[np.ndarray], rate: int, channels: int,
                   usual: UsualVoice | None = None, *, caller_measures: bool = False
                   ) -> Iterator[tuple[Pipeline, HopFeatures, list[PolicyEvent]]]:
    """Yield (pipeline, features, policy events) for each block of float32 (frames,
    ``channels``) samples at ``rate`` Hz, then for the flushed tail. ``usual``: a known usual
    voice to start from (default: a fresh one); ``caller_measures``: see `Pipeline`."""
    pipe = Pipeline(settings, source_rate=rate, source_channels=channels, usual=usual,
                    caller_measures=caller_measures)
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


@contextlib.contextmanager
def naming(path: Path | str | None) -> Iterator[None]:
    """An error writing ``path`` names it: a full card's ENOSPC (or EIO) comes from a write or
    a flush without a file name, and "[Errno 28] No space left on device" does not say which
    of the outputs (or standard output) it was."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None or path is None:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


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
    # the analyzer measures them all (None only in features built by hand)
    assert (f.f0_hz is not None and f.voicing is not None and f.laughter is not None
            and f.rate_sps is not None and f.alpha_db is not None)
    st = semitones(f.f0_hz) - np.asarray(usual_st[: f.f0_hz.shape[0]])[:, None]
    for h in range(f.n_hops):
        for c, name in enumerate(pipe.channel_names):
            out.write(f"{f.t[h]:.3f},{name},{f.level_dbfs[c, h]:.2f},"
                      f"{f.loudness_m_lufs[c, h]:.2f},{f.loudness_s_lufs[c, h]:.2f},"
                      f"{int(f.voiced[c, h])},{f.f0_hz[c, h]:.1f},{f.voicing[c, h]:.3f},"
                      f"{_num(st[c, h], 2)},{_num(f.rate_sps[c, h], 2)},"
                      f"{_num(f.alpha_db[c, h], 2)},"
                      f"{f.laughter[c, h]:.3f}\n")


def usual_from(settings: Settings, source: Path) -> tuple[UsualVoice, str]:
    """A known usual voice to start from, and where it came from in words: a state directory
    (its ``baseline.json``), a saved ``baseline.json``, or a recording of the same agent
    (analysed first, as `deskcue analyze` would, to learn it)."""
    path = source / BASELINE_FILE if source.is_dir() else source
    if path.suffix.lower() == ".json":
        if not path.exists():
            where = (f"{source}: no {BASELINE_FILE} in it" if source.is_dir()
                     else f"{path}: no such file")
            raise ReportError(f"--usual-from: {where} (give the desk's state directory, its "
                              f"{BASELINE_FILE} or a recording of the same agent)")
        # read here, not with read_json: its "unreadable; ignored" log line would stand beside
        # this refusal and contradict it, and the refusal would lose why
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ReportError(f"--usual-from: {path}: cannot read "
                              f"({(exc.strerror or str(exc)).lower()})") from None
        except ValueError as exc:  # includes a file that is not UTF-8
            raise ReportError(f"--usual-from: {path}: not a usable baseline (not the JSON a "
                              f"desk saves: {exc})") from None
        usual = make_usual_voice(settings)
        try:
            if not isinstance(data, dict):
                raise ValueError("not a saved usual voice")
            usual.load(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ReportError(f"--usual-from: {path}: not a usable baseline ({exc})") from None
        return usual, f"{printable_name(path)} ({usual.speech_s:.1f} s of speech learned)"
    usual = make_usual_voice(settings)
    with Recording(path) as rec:
        blocks = rec.blocks(max(1, int(BLOCK_S * rec.rate)))
        for _ in analyze_stream(settings, blocks, rec.rate, rec.channels, usual):
            pass
    u = usual
    if not u.ready:
        raise ReportError(
            f"--usual-from: {path}: too little of the agent's speech to learn the usual voice "
            f"from (heard {u.heard_s:.1f} s, needs {u.warmup_speech_s:.1f} s)")
    return u, f"{printable_name(path)} (analysed first: {u.heard_s:.1f} s of the agent's speech)"


def _report_event(ev: PolicyEvent, seq: int | None) -> ReportEvent | None:
    """The event for the plot and report (None for the indicator's own marks)."""
    if ev.data is None:
        return None
    data = ev.data if isinstance(ev.data, dict) else ev.data.to_json()
    return ReportEvent(ev.type, ev.stream_s, dict(data), published=ev.publish, seq=seq)


def run_analyze(settings: Settings, audio: Path, *, events_out: TextIO | None,
                features_path: Path | None, plot_path: Path | None = None,
                report_path: Path | None = None, usual: UsualVoice | None = None,
                usual_source: str | None = None, progress_to: TextIO | None = None) -> int:
    """Analyse ``audio`` block by block; events as JSON lines to ``events_out``, features to
    ``features_path`` (CSV), a plot to ``plot_path`` (PNG), a call report to ``report_path``
    (HTML). ``usual``: a known usual voice to start from (``usual_source`` says where from).
    A progress bar goes to ``progress_to`` (default stderr) if it is a terminal; a recording
    cut short is analysed up to where it ends and said so there, and so is a usual voice
    never learned (no agent cue could fire). Returns the exit code."""
    from firmware.cli.progress import Progress

    err = progress_to or sys.stderr
    stamper = EventStamper()
    drawing = plot_path is not None or report_path is not None
    pipe = None
    with Recording(audio) as rec:
        call = CallRecord(name=printable_name(audio), duration_s=rec.duration_s, channels=(),
                          thresholds=Thresholds.from_settings(settings), usual_from=usual_source)
        to_stdout = features_path == STDOUT
        feat_name = "standard output" if to_stdout else features_path
        if features_path is not None and not to_stdout:  # made when writing, as for --plot
            features_path.parent.mkdir(parents=True, exist_ok=True)
        feat_file = (None if features_path is None else sys.stdout if to_stdout
                     else open(features_path, "w", encoding="utf-8"))  # noqa: SIM115
        try:
            with Progress(f"analyze {printable_name(audio)}", rec.duration_s,
                          stream=progress_to) as bar:
                block_s = BLOCK_S if feat_file is None else FEATURES_BLOCK_S
                blocks = rec.blocks(max(1, int(block_s * rec.rate)))
                first = True
                for pipe, feats, events in analyze_stream(
                        settings, blocks, rec.rate, rec.channels, usual,
                        caller_measures=feat_file is not None):
                    bar.update(rec.frames_read / rec.rate)
                    if feat_file is not None:
                        with naming(feat_name):
                            write_features(feat_file, pipe, feats, first)
                        first = False
                    for ev in events:
                        seq = None
                        if ev.publish and ev.data is not None:  # printed, numbered: as on the desk
                            env = stamper.stamp(ev.type, ev.data, stream_s=ev.stream_s)
                            seq = env.seq
                            if events_out is not None:
                                with naming("standard output"):
                                    events_out.write(json.dumps(env.to_json()) + "\n")
                        if drawing and (kept := _report_event(ev, seq)) is not None:
                            call.events.append(kept)
                    if drawing:
                        learned = [ev.stream_s for ev in events
                                   if ev.type == "usual_voice_learned"]
                        _keep_for_report(call, pipe, feats, learned[0] if learned else None)
        finally:
            if feat_file is not None:
                with naming(feat_name):
                    feat_file.flush() if to_stdout else feat_file.close()
        if rec.cut_short:
            print(f"deskcue: warning: {rec.cut_short}; analysed what is there", file=err)
            call.duration_s = rec.frames_read / rec.rate  # what the report shows: what was read
        if rec.nonfinite_note:
            print(f"deskcue: warning: {rec.nonfinite_note}", file=err)
        if rec.overs_note:
            print(f"deskcue: warning: {rec.overs_note}", file=err)
        if rec.unread_note:
            print(f"deskcue: warning: {rec.unread_note}", file=err)
        if pipe is not None and (clipped := rec.clipping_note(
                _file_channel_names(pipe, rec.channels))):
            print(f"deskcue: warning: {rec.path}: {clipped}", file=err)
            call.notes.append(clipped)
    if pipe is None:
        return 0
    _settle(call, pipe)
    if drawing:
        from firmware.report.html import write_report
        from firmware.report.plot import figure_png, render

        png = figure_png(call)  # drawn once for both
        if plot_path is not None:
            with naming(plot_path):
                render(plot_path, call, png=png)
        if report_path is not None:
            with naming(report_path):
                write_report(report_path, call, png=png)
    if call.learned_at_s is None:
        print(f"deskcue: note: {call.warmup_note()}; start from a known usual voice with "
              "--usual-from (the desk's state directory or an earlier recording of the same "
              "agent)", file=err)
    return 0


def _file_channel_names(pipe: Pipeline, channels: int) -> list[str]:
    """What each of the file's ``channels`` is (``agent``, ``caller``; "" for one not
    analysed), in the file's order: the channel map may put the agent on the right."""
    names = [""] * channels
    for i, source in enumerate(pipe.order):
        names[source] = pipe.channel_names[i]
    return names


def _keep_for_report(call: CallRecord, pipe: Pipeline, feats: HopFeatures,
                     learned_at_s: float | None = None) -> None:
    """A block's measures, and the usual voice the cues were judged against after it;
    ``learned_at_s``: stream time (s) the usual voice was learned within this block, so that
    its line and thresholds start there, not up to a block (5 s) later; the same for the
    caller's start-of-call level and threshold, from where the policy completed it."""
    call.tracks.add(feats)
    u, pol = pipe.usual, pipe.policy
    ready = u.ready
    # the caller's start-of-call level once it is complete (the caller cue waits for it)
    need = pipe.settings.cues.caller_escalation.baseline_speech_s / 0.01
    caller = pol.caller_usual.median() if pol.caller_usual.weight >= need - 0.5 else np.nan
    t = float(feats.t[-1] + 0.005) if feats.n_hops else pipe.stream_s
    # and where in the block that level was complete, so the caller's lines start there too
    known = pol.caller_level_known_s if np.isfinite(caller) else None
    if ready and learned_at_s is not None and learned_at_s < t:
        call.tracks.add_usual(learned_at_s, u.usual_lufs,
                              u.usual_f0_hz if np.isfinite(u.usual_st) else np.nan,
                              caller if known is not None and known <= learned_at_s else np.nan)
    call.tracks.add_usual(t, u.usual_lufs if ready else np.nan,
                          u.usual_f0_hz if ready and np.isfinite(u.usual_st) else np.nan,
                          caller)
    if known is not None and known < t:
        call.tracks.caller_from(known, caller)


def _settle(call: CallRecord, pipe: Pipeline) -> None:
    """What the whole recording says about the usual voice: heard, learned when, at the end."""
    u = pipe.usual
    call.channels = tuple(pipe.channel_names)
    call.heard_s = u.heard_s
    if u.ready:
        call.usual_lufs = float(u.usual_lufs)
        call.usual_f0_hz = float(u.usual_f0_hz) if np.isfinite(u.usual_st) else None
        learned = [e.stream_s for e in call.events if e.type == "usual_voice_learned"]
        call.learned_at_s = learned[0] if learned else 0.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", type=Path,
                   help="recording: WAV (PCM 8-32 bit, float, mu-law, A-law), FLAC or Ogg; "
                        "mono = agent; stereo = channel map")
    p.add_argument("--config", type=Path, help="config file (default: the shipped default)")
    p.add_argument("--events", action="store_true",
                   help="print the events the appliance would publish, one JSON per line")
    p.add_argument("--features", type=Path, metavar="CSV",
                   help="write per-hop features (one row per hop and channel) to CSV "
                        "('-': standard output)")
    p.add_argument("--plot", type=Path, metavar="PNG",
                   help="draw loudness, pitch, the usual voice, thresholds and cues to a PNG")
    p.add_argument("--report", type=Path, metavar="HTML",
                   help="write a call report a reviewer can mail: summary, plot and every "
                        "event with its measurements, in one self-contained HTML file")
    p.add_argument("--usual-from", type=Path, metavar="STATE_OR_FILE",
                   help="start from a known usual voice: the desk's state directory or its "
                        f"{BASELINE_FILE}, or an earlier recording of the same agent "
                        "(analysed first); default: learn it from this recording")


def output_clash(args: argparse.Namespace) -> str | None:
    """Why the outputs would overwrite a recording read, or each other (None if they do not):
    each output is opened for writing, so the recording would be lost."""
    outputs = [(f"--{name}", path) for name in ("features", "plot", "report")
               if (path := getattr(args, name)) is not None]
    inputs = [("the recording being analysed", args.audio)]
    if args.usual_from is not None:
        inputs.append(("the --usual-from file", args.usual_from))
    for i, (name, path) in enumerate(outputs):
        for what, source in inputs:
            if same_file(path, source):
                return (f"{name} {path} is {what}; writing there would destroy it: give "
                        "another file name")
        for other, other_path in outputs[i + 1:]:
            if same_file(path, other_path):
                return f"{name} and {other} name the same file {path}: give each its own"
    return None


def _is_stdout(path: Path) -> bool:
    """Whether ``path`` is where standard output goes: /dev/stdout, /proc/self/fd/1, the tty
    or the file the shell redirected it to (the same inode). /dev/null is never a clash:
    nothing written there is mixed with anything."""
    try:
        out, there = os.fstat(sys.stdout.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):  # not there (yet), or no standard output
        return False
    null = os.stat(os.devnull)
    return ((out.st_dev, out.st_ino) == (there.st_dev, there.st_ino)
            and (there.st_dev, there.st_ino) != (null.st_dev, null.st_ino))


def stdout_clash(args: argparse.Namespace) -> str | None:
    """Why two outputs would go to standard output, interleaved (None if at most one does):
    ``--events`` with ``--features -``, or an output named /dev/stdout or the file standard
    output is redirected to - JSON lines and CSV rows (or PNG bytes) on one stream that no
    reader can take apart. Checked before the analysis, as every refusal of the outputs."""
    writers = ["--events"] if args.events else []
    for name in ("features", "plot", "report"):
        path = getattr(args, name)
        if path is not None and ((path == STDOUT and name == "features") or _is_stdout(path)):
            writers.append(f"--{name} {path}")
    if len(writers) < 2:
        return None
    fix = writers[1].split()[0]
    return (f"{writers[0]} and {writers[1]} would both write to standard output, mixed: give "
            f"{fix} a file name")


# What each output is written as, and the file name endings that say so.
OUTPUT_KINDS = {"features": ("a CSV table", (".csv", ".txt", ".tsv")),
                "plot": ("a PNG image", (".png",)),
                "report": ("an HTML page", (".html", ".htm"))}
# Endings that name something else: a PNG saved as out.svg is not an SVG a browser opens, and
# --features call-2.wav would write a table over another recording.
AUDIO_ENDINGS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".m4a",
                 ".wma", ".gsm", ".au", ".raw")
OTHER_ENDINGS = (".svg", ".pdf", ".jpg", ".jpeg", ".gif", ".webp", ".tif", ".tiff", ".bmp",
                 ".eps", ".ps", ".json", ".xls", ".xlsx", ".ods", ".md", ".xml")
KNOWN_ENDINGS = frozenset(AUDIO_ENDINGS + OTHER_ENDINGS
                          + tuple(e for _, ends in OUTPUT_KINDS.values() for e in ends))


def output_kind_clash(args: argparse.Namespace) -> str | None:
    """Why an output's name ends in another kind of file (None if none does): deskcue writes
    each output in one format whatever the name says, so the file would not open as what its
    name promises, and a recording of that name would be lost. A name ending in anything
    else (or nothing) is taken as given."""
    for name, (kind, endings) in OUTPUT_KINDS.items():
        path = getattr(args, name)
        if path is None or (path == STDOUT and name == "features"):
            continue
        if path == STDOUT:
            return (f"--{name} -: {kind} goes to a file, not standard output: give a name "
                    f"ending in {endings[0]}")
        end = path.suffix.lower()
        if end in endings or end not in KNOWN_ENDINGS:
            continue
        what = "names a recording" if end in AUDIO_ENDINGS else f"ends in {path.suffix}"
        return (f"--{name} {path} {what}, but it is written as {kind}: give a name "
                f"ending in {endings[0]}")
    return None


def output_unwritable(args: argparse.Namespace) -> str | None:
    """Why an output could not be made (None if each can): checked before the analysis, which
    takes minutes for a long call (and another for a --usual-from recording), not after it
    with the events already printed. Missing directories are made when writing."""
    for name in ("features", "plot", "report"):
        path = getattr(args, name)
        if path is None or path == STDOUT:
            continue
        if path.is_dir():
            return f"--{name} {path} is a directory: give a file name (in it, or elsewhere)"
        there = existing_ancestor(path.parent)
        if not there.is_dir():
            return f"--{name} {path}: {there} is a file, not a directory"
        if not os.access(there, os.W_OK | os.X_OK):
            return f"--{name} {path}: cannot write in {there} (permission denied)"
    return None


def main(args: argparse.Namespace, settings: Settings) -> int:
    if not (args.events or args.features or args.plot or args.report):
        print("deskcue: analyze: nothing to do; give --events, --features CSV, --plot PNG or "
              "--report HTML", file=sys.stderr)
        return 2
    if (clash := (stdout_clash(args) or output_clash(args)
                  or output_kind_clash(args))) is not None:
        print(f"deskcue: analyze: {clash}", file=sys.stderr)
        return 2
    if (why := output_unwritable(args)) is not None:
        print(f"deskcue: analyze: {why}", file=sys.stderr)
        return 1
    keep_freed_memory()
    if args.plot or args.report:  # said before a long analysis, not after it
        from firmware.report.plot import need_matplotlib

        need_matplotlib("--plot" if args.plot else "--report")
    usual, source = usual_from(settings, args.usual_from) if args.usual_from else (None, None)
    return run_analyze(settings, args.audio, events_out=sys.stdout if args.events else None,
                       features_path=args.features, plot_path=args.plot,
                       report_path=args.report, usual=usual, usual_source=source)
