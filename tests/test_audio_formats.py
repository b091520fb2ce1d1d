"""Every recording format deskcue reads, the ones it refuses, and files that are not whole.

Each format is made with sox (or soundfile where sox cannot write it) from a 16-bit PCM
original - the first 30 s of the demo call, stereo (agent left, caller right) - and analysed
the way `deskcue analyze` does; its per-hop features are compared with the original's.

Tolerances, and why:

- **Lossless containers of the same 16-bit samples** (24- and 32-bit PCM in
  WAVE_FORMAT_EXTENSIBLE, 32- and 64-bit float, extensible float and 16-bit, RF64, 16- and
  24-bit FLAC): libsndfile scales every one to the same float32 values, so every feature must
  be *identical*.
- **G.711 µ-law and A-law** (8-bit log-companded, ~38 dB SNR on speech): compared with the
  16-bit original at the same 8 kHz. Quantisation noise ~38 dB below the speech moves its
  loudness by ~0.001 dB in theory (measured: at most 0.06 LU); allowed 0.2 LU on speech and
  0.3 dB per 10 ms hop above -40 dBFS, a fifteenth of the 3 dB between a cue's start and end
  thresholds. Voice activity and F0 as the original's on speech (>= 99 %).
- **Perceptual codecs** (Ogg Vorbis, Ogg Opus at their defaults) reshape the 10 ms envelope
  (hop levels measured up to 2 dB off) but keep the 400 ms loudness the cues are decided on
  (measured <= 0.3 LU): allowed 1 LU, a third of the cue hysteresis; F0 >= 98 % within 2 %.
- **8-bit unsigned PCM** has 48 dB of range: its quantisation noise sits where the quiet
  passages are, so only speech above -40 dBFS is compared (momentary loudness <= 1.5 LU,
  measured 1.1; voice activity and F0 as for the perceptual codecs).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_process import DESKCUE, deskcue

from dsp.analyzer import HopFeatures
from firmware.audio.recording import Recording
from firmware.audio.source import EndOfStream, WavFileSource
from firmware.cli.analyze import BLOCK_S, analyze_stream
from firmware.config.settings import Settings
from firmware.errors import AudioError, AudioFormatError

ROOT = Path(__file__).resolve().parent.parent
SPEECH_LUFS = -40.0  # hops above this momentary loudness / level are speech, not pauses


def sox(*args: object) -> None:
    subprocess.run(["sox", "-V1", *map(str, args)], check=True)


def features(path: Path) -> HopFeatures:
    """Per-hop features of a recording, read in `deskcue analyze`'s blocks."""
    with Recording(path) as rec:
        blocks = rec.blocks(int(BLOCK_S * rec.rate))
        return HopFeatures.concat([f for _, f, _ in analyze_stream(Settings(), blocks, rec.rate,
                                                                   rec.channels)])


@pytest.fixture(scope="module")
def made(demo_wav: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 16-bit originals (16 kHz and 8 kHz, 30 s stereo) and every format made from them."""
    d = tmp_path_factory.mktemp("formats")
    o16, o8 = d / "o16.wav", d / "o8.wav"
    sox(demo_wav, o16, "trim", 0, 30)
    sox(o16, "-r", 8000, o8)
    sox(o16, "-b", 24, d / "pcm24.wav")
    sox(o16, "-b", 32, d / "pcm32.wav")
    sox(o16, "-e", "floating-point", "-b", 32, d / "float32.wav")
    sox(o16, d / "flac.flac")
    sox(o16, "-b", 24, d / "flac24.flac")
    sox(o16, "-e", "floating-point", "-b", 64, d / "float64.wav")
    sox(o16, d / "vorbis.ogg")
    sox(o16, "-b", 8, "-e", "unsigned", d / "pcm8.wav")
    sox(o8, "-e", "u-law", d / "ulaw.wav")
    sox(o8, "-e", "a-law", d / "alaw.wav")
    x, rate = sf.read(o16, dtype="int16")
    sf.write(d / "float_ext.wav", x / np.float32(32768), rate, format="WAVEX", subtype="FLOAT")
    sf.write(d / "pcm16_ext.wav", x, rate, format="WAVEX", subtype="PCM_16")
    sf.write(d / "rf64.wav", x, rate, format="RF64", subtype="PCM_16")
    sf.write(d / "opus.ogg", x, rate, format="OGG", subtype="OPUS")
    return d


@pytest.fixture(scope="module")
def originals(made: Path) -> dict[int, HopFeatures]:
    return {16000: features(made / "o16.wav"), 8000: features(made / "o8.wav")}


# -- lossless: the same samples, the same features --------------------------------------------
@pytest.mark.parametrize(("name", "kind"), [
    ("pcm24.wav", "WAVEX PCM_24"),
    ("pcm32.wav", "WAVEX PCM_32"),
    ("float32.wav", "WAV FLOAT"),
    ("float_ext.wav", "WAVEX FLOAT"),
    ("pcm16_ext.wav", "WAVEX PCM_16"),
    ("float64.wav", "WAV DOUBLE"),
    ("rf64.wav", "RF64 PCM_16"),
    ("flac.flac", "FLAC PCM_16"),
    ("flac24.flac", "FLAC PCM_24"),
])
def test_lossless_formats_give_the_16_bit_original_s_features_exactly(made, originals, name,
                                                                      kind):
    with Recording(made / name) as rec:
        assert rec.kind == kind and rec.channels == 2
    got, want = features(made / name), originals[16000]
    for field in ("level_dbfs", "loudness_m_lufs", "loudness_s_lufs", "voiced", "f0_hz",
                  "voicing", "rate_sps", "alpha_db", "laughter"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)


# -- lossy: within what the codec can change --------------------------------------------------
def close_enough(got: HopFeatures, want: HopFeatures, *, loudness_lu: float,
                 level_db: float | None, agree: float, f0_rel: float) -> None:
    assert got.n_hops == want.n_hops
    speech = want.loudness_m_lufs > SPEECH_LUFS
    d_loud = np.abs(got.loudness_m_lufs - want.loudness_m_lufs)[speech]
    assert d_loud.max() <= loudness_lu, f"momentary loudness off by {d_loud.max():.2f} LU"
    loud_hops = want.level_dbfs > SPEECH_LUFS
    if level_db is not None:
        d_level = np.abs(got.level_dbfs - want.level_dbfs)[loud_hops]
        assert d_level.max() <= level_db, f"hop level off by {d_level.max():.2f} dB"
    same_voice = (got.voiced == want.voiced)[loud_hops].mean()
    assert same_voice >= agree, f"voice activity agrees on {same_voice:.1%}"
    both = (got.f0_hz > 0) & (want.f0_hz > 0)
    same_pitch = ((got.f0_hz > 0) == (want.f0_hz > 0))[loud_hops].mean()
    near = (np.abs(got.f0_hz[both] / want.f0_hz[both] - 1) <= f0_rel).mean()
    assert same_pitch >= agree and near >= agree, (same_pitch, near)
    for c in range(2):  # agent and caller both carry speech
        assert want.voiced[c].any() and got.voiced[c].any()


@pytest.mark.parametrize(("name", "kind"), [("ulaw.wav", "WAV ULAW"), ("alaw.wav", "WAV ALAW")])
def test_g711_8_khz_stereo_is_the_16_bit_8_khz_original_within_companding_noise(
        made, originals, name, kind):
    with Recording(made / name) as rec:
        assert (rec.kind, rec.rate, rec.channels) == (kind, 8000, 2)
    close_enough(features(made / name), originals[8000], loudness_lu=0.2, level_db=0.3,
                 agree=0.99, f0_rel=0.01)


@pytest.mark.parametrize(("name", "kind"), [("vorbis.ogg", "OGG VORBIS"),
                                            ("opus.ogg", "OGG OPUS")])
def test_ogg_is_the_original_within_what_a_perceptual_codec_changes(made, originals, name,
                                                                    kind):
    with Recording(made / name) as rec:
        assert rec.kind == kind
    close_enough(features(made / name), originals[16000], loudness_lu=1.0, level_db=None,
                 agree=0.98, f0_rel=0.02)


def test_8_bit_pcm_is_the_original_on_speech(made, originals):
    with Recording(made / "pcm8.wav") as rec:
        assert rec.kind == "WAV PCM_U8"
    close_enough(features(made / "pcm8.wav"), originals[16000], loudness_lu=1.5, level_db=None,
                 agree=0.98, f0_rel=0.02)


def test_ulaw_stereo_call_gives_events_and_rows_for_agent_and_caller(demo_wav, tmp_path):
    """The archive format of call centres, through the command line: the whole demo call as
    8 kHz stereo µ-law. The raised passage is found as on the 16-bit original."""
    ulaw, o8 = tmp_path / "call-ulaw.wav", tmp_path / "call-8k.wav"
    sox(demo_wav, "-r", 8000, o8)
    sox(o8, "-e", "u-law", ulaw)
    proc = deskcue("analyze", str(ulaw), "--events", "--features", str(tmp_path / "f.csv"))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    with Recording(o8) as rec:
        blocks = rec.blocks(int(BLOCK_S * rec.rate))
        want = [e.type for _, _, evs in analyze_stream(Settings(), blocks, rec.rate, 2)
                for e in evs if e.publish]
    assert [e["type"] for e in events] == want
    assert "raised_voice.started" in want
    ended = next(e["data"] for e in events if e["type"] == "call.ended")
    assert ended["agent_talk_s"] > 5 and ended["caller_talk_s"] > 5
    with open(tmp_path / "f.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for side in ("agent", "caller"):
        mine = [r for r in rows if r["channel"] == side]
        assert len(mine) == len(rows) // 2
        assert sum(r["voiced"] == "1" for r in mine) > 500  # > 5 s of speech on each side


# -- refused, with the format named and the way to convert it --------------------------------
def one_line(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    # one error or warning; a note (e.g. that a short clip never learned the usual voice) is
    # not one
    lines = [ln for ln in proc.stderr.splitlines()
             if ln.startswith("deskcue:") and not ln.startswith("deskcue: note:")]
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_an_unknown_container_is_named_with_the_sox_line(tmp_path):
    aiff = tmp_path / "call.aiff"
    sox("-n", "-r", 16000, "-b", 16, aiff, "synth", 0.5, "sine", 440)
    one_line(deskcue("analyze", str(aiff), "--events"), 1, "audio:", "AIFF",
             f"sox {aiff} -b 16 call-16bit.wav")


def test_an_untested_codec_in_a_wav_is_refused_by_name(tmp_path):
    gsm = tmp_path / "gsm.wav"
    sox("-n", "-r", 8000, "-e", "gsm-full-rate", gsm, "synth", 0.5, "sine", 440)
    one_line(deskcue("analyze", str(gsm), "--events"), 1, "WAV GSM 6.10 is not a format",
             f"sox {gsm} -b 16")


def sox_reads(kind: str) -> bool:
    """Whether this machine's sox has a handler for ``kind`` (Debian's base set has no mp3)."""
    out = subprocess.run(["sox", "-h"], capture_output=True, text=True).stdout
    return kind in re.search(r"AUDIO FILE FORMATS: (.*)", out).group(1).split()  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["call.wav", "call 2.mp3", "tagged.wav"])
def test_an_mp3_is_refused_with_a_line_that_converts_it(tmp_path, name):
    """An MP3 renamed .wav (or not) was refused with `sox call.wav -b 16 ...`, which Debian's
    sox cannot run: it picks its reader by the name, and has no MP3 reader without
    libsox-fmt-mp3. The file is known by its bytes (frame sync, or an ID3 tag first); the
    line names the package and tells sox what the file is."""
    src = tmp_path / name
    t = np.arange(16000) / 16000
    sf.write(src, (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000, format="MP3")
    if name.startswith("tagged"):  # an empty ID3v2.4 tag in front, as taggers write
        src.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + src.read_bytes())
    line = one_line(deskcue("analyze", str(src), "--events"), 1, "MP3",
                    "Debian package libsox-fmt-mp3")
    command = line[line.index("sox "):]
    assert command == shlex.join(["sox", "-t", "mp3", str(src), "-b", "16",
                                  f"{src.stem}-16bit.wav"])
    run = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True)
    if sox_reads("mp3"):  # libsox-fmt-mp3 installed: the line converts it
        assert run.returncode == 0, run.stderr
        with Recording(tmp_path / f"{src.stem}-16bit.wav") as rec:
            assert rec.frames > 0
    else:  # without it, sox stops for that one reason, not for the file's name or form
        assert "no handler for given file type `mp3'" in run.stderr, run.stderr


@pytest.mark.parametrize(("head", "what"), [
    (b"\x00\x00\x00\x1cftypM4A \x00\x00\x02\x00M4A isommp42", "MP4/M4A"),
    (bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c") + bytes(14), "WMA"),
    (bytes.fromhex("fff15080"), "AAC"),
])
def test_a_format_sox_cannot_read_is_refused_with_the_ffmpeg_line(tmp_path, head, what):
    """M4A, WMA or a raw AAC stream (as a phone or a meeting tool saves them): no sox
    converts them, with or without extra handlers; ffmpeg does."""
    src = tmp_path / "call 3.wav"
    src.write_bytes(head + bytes(4000))
    line = one_line(deskcue("analyze", str(src), "--events"), 1, what,
                    "ffmpeg (Debian package ffmpeg)")
    assert " sox " not in line
    assert line.endswith(shlex.join(["ffmpeg", "-i", str(src), "-c:a", "pcm_s16le",
                                     "call 3-16bit.wav"]))


@pytest.mark.parametrize("kind", ["aiff", "four_channels", "rate_4k"])
def test_the_sox_line_of_a_refusal_runs_as_pasted_even_with_spaces_in_the_name(tmp_path, kind):
    """A reviewer pastes the printed line into a shell: a recording called "call 12.wav"
    must come out converted, not as a sox error about a file called "call"."""
    src = tmp_path / f"call 12 ({kind}).{'aiff' if kind == 'aiff' else 'wav'}"
    if kind == "aiff":
        sox("-n", "-r", 16000, "-b", 16, src, "synth", 0.5, "sine", 440)
    elif kind == "four_channels":
        sf.write(src, np.zeros((8000, 4), np.float32), 16000, subtype="PCM_16")
    else:
        sf.write(src, np.zeros((2000, 1), np.float32), 4000, subtype="PCM_16")
    line = one_line(deskcue("analyze", str(src), "--events"), 1, "sox ")
    command = line[line.index("sox "):]
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True, capture_output=True)
    made = [p for p in tmp_path.iterdir() if p != src]
    assert len(made) == 1, made
    with Recording(made[0]) as rec:
        assert rec.channels in (1, 2) and rec.frames > 0


@pytest.mark.parametrize(("content", "needle"), [
    (b"", "empty file (0 bytes)"),
    (b"this is not audio at all\n", "not a recording deskcue can read"),
    (b"RIFF\x10\x00\x00\x00WAVE", "a WAV file cut short inside its header"),
])
def test_files_that_are_not_recordings(tmp_path, content, needle):
    path = tmp_path / "x.wav"
    path.write_bytes(content)
    one_line(deskcue("analyze", str(path), "--events"), 1, str(path), needle)


def test_the_reader_raises_the_tree_s_classes(tmp_path):
    aiff = tmp_path / "a.aiff"
    sox("-n", "-r", 16000, aiff, "synth", 0.1, "sine", 440)
    with pytest.raises(AudioFormatError):
        Recording(aiff)
    (tmp_path / "e.wav").write_bytes(b"")
    with pytest.raises(AudioError):
        Recording(tmp_path / "e.wav")
    assert issubclass(AudioFormatError, AudioError) and issubclass(AudioFormatError, ValueError)


# -- cut short: analyse what is there, and say so -------------------------------------------
@pytest.fixture
def two_seconds(tmp_path: Path) -> Path:
    p = tmp_path / "whole.wav"
    sox("-n", "-r", 16000, "-c", 2, "-b", 16, p, "synth", 2, "sine", 200, "sine", 300,
        "gain", -10)
    return p


def test_a_wav_cut_mid_sample_is_analysed_up_to_its_end(two_seconds, tmp_path):
    data = two_seconds.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: 44 + 4 * 16000 + 3])  # 1 s of frames and 3 bytes of the next
    proc = deskcue("analyze", str(cut), "--features", str(tmp_path / "f.csv"))
    line = one_line(proc, 0, "warning:", str(cut), "cut short",
                    "read 1.0 s of the 2.0 s its header promises", "analysed what is there")
    assert line.startswith("deskcue: warning:")
    with open(tmp_path / "f.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 100  # 1 s of 10 ms hops, both channels


def test_a_wav_whose_header_promises_less_than_follows_says_so_with_the_line_that_reads_all(
        two_seconds, tmp_path):
    """A recorder that updates its header as it goes and stopped (or a header patched by
    hand) leaves a data size short of the samples after it: libsndfile reads what the header
    says and stops, so 0.5 s of a 2 s call was analysed and nothing said the rest was
    skipped. Said now, with the sox line that reads the whole file."""
    data = bytearray(two_seconds.read_bytes())
    at = data.index(b"data")
    data[at + 4:at + 8] = (4 * 8000).to_bytes(4, "little")  # 0.5 s of 16 kHz stereo 16-bit
    short = tmp_path / "call 12.wav"
    short.write_bytes(bytes(data))
    proc = deskcue("analyze", str(short), "--features", str(tmp_path / "f.csv"))
    line = one_line(proc, 0, "warning:", str(short), "its header says 0.5 s of samples",
                    "1.5 s more follow them", "read the 0.5 s it describes",
                    "sox --ignore-length")
    with open(tmp_path / "f.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 2 * 50
    command = line[line.index("sox "):]
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True, capture_output=True)
    with Recording(tmp_path / "call 12-whole.wav") as rec:
        assert rec.frames == 2 * 16000


def test_a_wav_with_a_chunk_after_its_samples_is_not_called_short(two_seconds, tmp_path):
    """A LIST chunk (tags) after the data chunk is ordinary: no warning."""
    data = two_seconds.read_bytes()
    tags = b"LIST" + (12).to_bytes(4, "little") + b"INFOISFT" + (0).to_bytes(4, "little")
    tagged = tmp_path / "tagged.wav"
    riff = len(data) - 8 + len(tags)
    tagged.write_bytes(data[:4] + riff.to_bytes(4, "little") + data[8:] + tags)
    proc = deskcue("analyze", str(tagged), "--events")
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr


def test_a_header_without_samples_is_an_error(two_seconds, tmp_path):
    cut = tmp_path / "header.wav"
    cut.write_bytes(two_seconds.read_bytes()[:44])
    one_line(deskcue("analyze", str(cut), "--events"), 1, "no audio in it",
             "its header promises 2.0 s")


@pytest.mark.parametrize("name", ["o16.wav", "pcm24.wav", "float32.wav", "alaw.wav"])
def test_a_wav_whose_header_was_never_finished_is_analysed_whole(made, originals, name,
                                                                 tmp_path):
    """A recorder that lost power before writing its sizes leaves 0 in the data chunk's size
    (and the RIFF size) with every sample after it: that was "no audio in it" for a whole call.
    Now read as the header describes the samples, and said."""
    data = bytearray((made / name).read_bytes())
    at = data.index(b"data")
    data[4:8] = data[at + 4:at + 8] = bytes(4)
    broken = tmp_path / name
    broken.write_bytes(bytes(data))
    proc = deskcue("analyze", str(broken), "--events")
    one_line(proc, 0, "warning:", str(broken), "header was never finished",
             "read the 30.0 s of samples after it")
    if name == "alaw.wav":
        return  # its own samples, not the 16 kHz original's
    got, want = features(broken), originals[16000]
    for field in ("level_dbfs", "loudness_m_lufs", "voiced", "f0_hz"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)


def test_a_flac_cut_short_is_analysed_up_to_where_it_breaks(two_seconds, tmp_path):
    flac = tmp_path / "whole.flac"
    sox(two_seconds, flac)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(flac.read_bytes()[: flac.stat().st_size // 2])
    proc = deskcue("analyze", str(cut), "--events")
    one_line(proc, 0, "warning:", "cut short", "of the 2.0 s its header promises")


def test_the_appliance_plays_a_cut_file_to_its_end_and_logs_it(two_seconds, tmp_path):
    cut = tmp_path / "cut.wav"
    cut.write_bytes(two_seconds.read_bytes()[: 44 + 4 * 8000 + 1])
    src = WavFileSource(cut, realtime=False, block_s=0.1)
    got = 0
    with pytest.raises(EndOfStream):
        while True:
            block = src.read(timeout=0.1)
            assert block is not None
            got += block.shape[0]
    src.close()
    assert got == 8000 and src.cut_short and "0.5 s of the 2.0 s" in src.cut_short


# -- pipes: refused at once, and `run` always ends on SIGTERM ------------------------------
@pytest.mark.parametrize("verb", [["analyze"], ["run", "--pins", "mock", "--source"]])
def test_a_fifo_is_refused_with_one_line_not_waited_on(tmp_path, verb):
    fifo = tmp_path / "tap.wav"
    os.mkfifo(fifo)
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[device]\nstate_dir = "{tmp_path}/s"\nruntime_dir = "{tmp_path}/r"\n'
                   "[mqtt]\nenabled = false\n")
    args = [*verb, str(fifo)] + (["--events"] if verb == ["analyze"] else ["--config", str(cfg)])
    # no writer ever opens the FIFO: reading it would block for ever (the timeout is a net)
    proc = deskcue(*args, timeout=60)
    one_line(proc, 1, str(fifo), "a pipe, not a file", f"cat {fifo} > call.wav")


def test_sigterm_ends_run_on_a_recording_promptly(demo_wav, tmp_path):
    """Played in real time (80 s), the appliance stops at SIGTERM, not at the file's end."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[device]\nstate_dir = "{tmp_path}/s"\nruntime_dir = "{tmp_path}/r"\n'
                   "[mqtt]\nenabled = false\n")
    proc = subprocess.Popen([*DESKCUE, "run", "--config", str(cfg),
                             "--source", str(demo_wav), "--pins", "mock"], cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # wait until it plays the recording
            if "listening on file:" in line:
                break
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=20)[1]  # a net: the recording lasts 80 s
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert "signal 15: stopping" in rest and "Traceback" not in rest


# -- progress: a bar on a terminal, nothing when piped -----------------------------------------
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (Debian package)")
def test_analyze_draws_a_progress_bar_on_a_terminal(demo_wav, tmp_path):
    """In a real terminal (a detached tmux pane, 100 x 10), read back as the screen shows it:
    ASCII only (its box-drawing bar and "x" sign were junk on a serial console)."""
    sock = tmp_path / "tmux.sock"
    tmux = ["tmux", "-S", str(sock)]
    cmd = (f"{sys.executable} -m firmware.cli analyze {demo_wav} --events > {tmp_path}/ev; "
           f"tmux -S {sock} wait-for -S done; cat")
    subprocess.run([*tmux, "-f", "/dev/null", "new-session", "-d", "-x", "100", "-y", "10",
                    "-c", str(ROOT), cmd], check=True, timeout=30)
    try:
        subprocess.run([*tmux, "wait-for", "done"], check=True, timeout=120)  # a net only
        screen = subprocess.run([*tmux, "capture-pane", "-p"], check=True, timeout=30,
                                capture_output=True, text=True).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], timeout=30)
    bar = [ln for ln in screen.splitlines() if ln.strip()]
    assert len(bar) == 1, screen  # one line, redrawn in place
    assert bar[0].isascii(), bar[0]
    assert re.match(rf"analyze {re.escape(demo_wav.name)} \[#+\] 1:20 / 1:20 \d+x real time "
                    r"done in 0:\d\d$", bar[0]), bar[0]
    assert (tmp_path / "ev").read_text().count('"type"') > 3  # the events went to stdout


def test_analyze_piped_prints_no_bar(demo_wav, tmp_path):
    proc = deskcue("analyze", str(demo_wav), "--features", str(tmp_path / "f.csv"))
    assert proc.returncode == 0
    assert proc.stderr == "" and proc.stdout == ""


# -- memory: flat in the recording's length -----------------------------------------------------
def test_memory_does_not_grow_with_the_recording(demo_wav, tmp_path):
    """Peak RSS of `deskcue analyze --events` on 1 and 8 minutes of the same call (mono 16 kHz
    to keep it quick). Loading the file whole, as before, grew by ~70 MB (7 min x 16000/s x
    10 bytes: the raw bytes, float32 and a copy); reading in blocks must not grow by 5 MB.
    The figures for 10 min and 2 h of 48 kHz stereo are `tests/bench/bench_footprint.py`'s."""
    from peak_rss import peak_rss_mb

    block = tmp_path / "block.wav"
    sox(demo_wav, block, "remix", 1)
    rss = {}
    for minutes in (1, 8):
        wav = tmp_path / f"{minutes}min.wav"
        sox(block, wav, "repeat", 6 * minutes, "trim", 0, 60 * minutes)
        mb, code, err = peak_rss_mb([sys.executable, "-m", "firmware.cli", "analyze", str(wav),
                                     "--events"], cwd=ROOT, timeout=300)
        assert code == 0, err
        rss[minutes] = mb
    assert rss[8] - rss[1] < 5.0, rss


def test_clipped_samples_are_counted_the_same_however_the_recording_is_cut():
    # runs of full-scale samples that cross block boundaries count once, and only when long
    # enough; compared with a count over the whole signal at once
    from firmware.audio.recording import ClipCount

    def direct(x: np.ndarray, level: float, run: int) -> list[int]:
        out = []
        for c in range(x.shape[1]):
            hot = np.concatenate(([0], (np.abs(x[:, c]) >= level).astype(np.int8), [0]))
            edges = np.diff(hot)
            lengths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
            out.append(int(lengths[lengths >= run].sum()))
        return out

    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 400))
        x = ((rng.random((n, 2)) * 2 - 1) * 0.5).astype(np.float32)
        for _ in range(int(rng.integers(0, 8))):
            a = int(rng.integers(0, n))
            x[a:a + int(rng.integers(1, 12)), int(rng.integers(0, 2))] = rng.choice([1.0, -1.0])
        count = ClipCount(2, 0.99)
        for block in np.split(x, np.sort(rng.integers(0, n + 1, int(rng.integers(0, 6))))):
            count.add(block)
        assert count.samples.tolist() == direct(x, 0.99, 3)
