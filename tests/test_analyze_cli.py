"""`deskcue analyze`: events identical to the appliance's, features CSV, plot."""

from __future__ import annotations

import csv
import json
import struct

import pytest
from cli_process import deskcue


@pytest.fixture(scope="module")
def analyzed(demo_wav, tmp_path_factory):
    out = tmp_path_factory.mktemp("analyze")
    proc = deskcue("analyze", str(demo_wav), "--events", "--features", str(out / "f.csv"),
                   "--plot", str(out / "p.png"))
    assert proc.returncode == 0, proc.stderr
    return proc, out


def test_events_are_json_lines_with_the_envelope(analyzed):
    proc, _ = analyzed
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    types = [e["type"] for e in events]
    assert types.count("raised_voice.started") == 1 and types.count("raised_voice.ended") == 1
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    for e in events:
        assert {"schema", "id", "boot_id", "seq", "ts", "clock_synced", "type", "data"} <= set(e)


def test_features_csv_has_a_row_per_hop_and_channel(analyzed, demo_wav):
    _, out = analyzed
    with open(out / "f.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for col in ("t", "channel", "level_dbfs", "loudness_m_lufs", "voiced"):
        assert col in rows[0]
    import wave

    with wave.open(str(demo_wav)) as w:
        seconds = w.getnframes() / w.getframerate()
    assert len(rows) % 2 == 0
    assert abs(len(rows) / 2 - seconds * 100) <= 1
    assert rows[0]["channel"] == "agent" and rows[1]["channel"] == "caller"
    assert float(rows[0]["t"]) == pytest.approx(0.005)
    assert {r["voiced"] for r in rows} == {"0", "1"}


def test_plot_is_a_png_of_a_sensible_size(analyzed):
    _, out = analyzed
    data = (out / "p.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert 800 <= width <= 3000 and 400 <= height <= 3000
    assert len(data) > 20_000  # not an empty canvas


def test_nothing_to_do_is_an_error(demo_wav):
    proc = deskcue("analyze", str(demo_wav))
    assert proc.returncode == 2 and "nothing to do" in proc.stderr


def write_pcm16(path, x, rate=16000):
    import soundfile as sf

    sf.write(path, x, rate, subtype="PCM_16")
    return path


def sine(amplitude, hz=200.0, seconds=3.0, rate=16000):
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    return np.clip(amplitude * np.sin(2 * np.pi * hz * t), -1.0, 1.0)


def test_a_clipped_recording_is_said_to_be_with_its_share_per_channel(tmp_path):
    """The agent's channel driven three times past full scale (31 of each 40 samples of a
    200 Hz sine at 16 kHz then sit flat at full scale), the caller's clean: one warning line
    with each channel's share, and the same in the report's notes. Its loudness was given
    without a word."""
    import numpy as np

    wav = write_pcm16(tmp_path / "clipped.wav",
                      np.stack([sine(3.0), sine(0.3, hz=150.0)], axis=1))
    proc = deskcue("analyze", str(wav), "--events", "--report", str(tmp_path / "r.html"))
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("deskcue: warning:")]
    assert warnings == [f"deskcue: warning: {wav}: clipped: 77.5 % of the agent's (left), "
                        "0.0 % of the caller's (right) samples sit at full scale (in runs of 3 "
                        "or more); its loudest passages read low"]
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<p class="note">Clipped: 77.5 % of the agent&#x27;s (left)' in page


@pytest.mark.parametrize("amplitude", [0.5, 1.0])
def test_a_clean_recording_or_one_peaking_at_full_scale_is_not_called_clipped(tmp_path,
                                                                              amplitude):
    """Normalised to full scale, a sine touches it one sample a peak: not clipping."""
    wav = write_pcm16(tmp_path / "clean.wav", sine(amplitude))
    proc = deskcue("analyze", str(wav), "--events")
    assert proc.returncode == 0, proc.stderr
    assert "clipped" not in proc.stderr and "warning" not in proc.stderr
