"""What `deskcue demo` says its recording holds: every passage the desk will cue on, so the
viewer can tell a cue from a false one."""

from __future__ import annotations

from pathlib import Path

from firmware.cli.demo import recording_line
from firmware.demo.recording import demo_recording


def test_the_demo_names_its_laugh_like_burst(tmp_path: Path) -> None:
    """It named only the raised-voice passage: the cyan flash and tick at 45 s read as a
    false laughter cue on calm speech."""
    source, rec = demo_recording(tmp_path)
    line = recording_line(source, rec)
    a, b = rec.span("laugh")
    assert f"laugh-like burst {a:.1f}-{b:.1f} s" in line, line
    a, b = rec.span("raised")
    assert f"raised-voice passage {a:.1f}-{b:.1f} s" in line, line
