"""Recordings read in blocks through libsndfile (the `soundfile` package).

A recording is never loaded whole: `Recording.read` hands out the next block of float32
samples shaped (frames, channels) in [-1, 1), so memory stays flat in the file's length.

What is read (each one tested in tests/test_audio_formats.py):

=============  ====================================================================
container      encodings
=============  ====================================================================
WAV, WAVEX     PCM 8 (unsigned), 16, 24, 32-bit; 32/64-bit float; µ-law; A-law
               (WAVEX = WAVE_FORMAT_EXTENSIBLE, what sox writes for > 16 bits)
RF64           the same, for WAV files beyond 4 GB
FLAC           16, 24-bit
Ogg            Vorbis, Opus
=============  ====================================================================

Anything else - another container (AIFF, MP3 ...) or a codec whose effect on the measures
nobody has checked (GSM 6.10, ADPCM ...) - is an `AudioFormatError` naming the format and
the line that converts it (`convert_hint`: sox, or ffmpeg for what no sox reads; the file is
known by its first bytes, so an MP3 called .wav is named as one). Only regular files are
read: a FIFO or a device would block the reader where no signal can end it, so it is refused
before a byte is read.

A file cut short (a copy that stopped, a recorder that lost power) is read up to where it
ends; `Recording.cut_short` then says how much the header promised and how much was there.
A WAV whose header counts fewer samples than follow it is read as its header says;
`Recording.unread_note` says how much more there is and the sox line that reads it all.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import shlex
import stat
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import soundfile as sf

from firmware.errors import AudioError, AudioFileNotFound, AudioFormatError

# libsndfile's names (`SoundFile.format`, `.subtype`) of what deskcue reads.
CONTAINERS = frozenset({"WAV", "WAVEX", "RF64", "FLAC", "OGG"})
ENCODINGS = frozenset({"PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE",
                       "ULAW", "ALAW", "VORBIS", "OPUS"})
READS = "WAV with PCM 8-32 bit, float, mu-law or A-law; FLAC; Ogg Vorbis or Opus"
MIN_RATE_HZ, MAX_RATE_HZ = 8000, 192000
# A data chunk size at or above this is a streaming writer's placeholder ("until the end"),
# not a promise of that many bytes: such a file is not called cut short.
_PLACEHOLDER_BYTES = 0x7FFF0000
_SIGNATURES = {b"RIFF": "WAV", b"RF64": "RF64", b"fLaC": "FLAC", b"OggS": "Ogg"}


# Formats known by their first bytes that sox's base set (Debian's `sox` package) cannot read:
# what each is, for the refusal, and how it converts. sox picks its reader by the file's name
# (it only sniffs formats with a magic number: WAV, AIFF, FLAC, Ogg ...), so an MP3 - which has
# none - is named to it with -t, also when it is called .wav.
_MP3 = "an MP3 file"
_FFMPEG_ONLY = {"mp4": "an MP4/M4A file (AAC or ALAC)", "wma": "a WMA file (ASF)",
                "aac": "an AAC stream (ADTS)"}
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")


def _mpeg_sync(head: bytes) -> str | None:
    """"mp3" for an MPEG audio frame header (layer I-III), "aac" for an ADTS one, from its
    first 4 bytes: 11 sync bits, then no reserved version, layer, bitrate or rate."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    version, layer = (head[1] >> 3) & 3, (head[1] >> 1) & 3
    if layer == 0:  # ADTS: 12 sync bits, layer always 0, sampling index 0-12
        return "aac" if head[1] & 0xF0 == 0xF0 and (head[2] >> 2) & 0xF <= 12 else None
    if version == 1 or head[2] >> 4 == 0xF or (head[2] >> 2) & 3 == 3:
        return None
    return "mp3"


def content_of(path: Path) -> str | None:
    """What ``path``'s first bytes say it is, whatever its name ends in: "mp3" (an ID3 tag or
    an MPEG audio frame), "mp4", "wma", "aac"; None for anything else (sox knows the rest
    by their own magic numbers, or nobody here does)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if head[:3] == b"ID3":
        return "mp3"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head == _ASF_GUID:
        return "wma"
    return _mpeg_sync(head)


def sox_line(path: Path, suffix: str, options: tuple[str, ...] = (),
             effects: tuple[str, ...] = ()) -> str:
    """A sox command line a person can paste into a shell: ``path`` converted with
    ``options`` and ``effects`` into ``<stem><suffix>.wav`` in the working directory. Names
    are quoted: a recording called "call 12.wav" is one argument, not two; an MP3 is named
    as one (-t mp3), as sox goes by the name for a format without a magic number."""
    out = f"{path.with_suffix('').name}{suffix}.wav"
    kind = ["-t", "mp3"] if content_of(path) == "mp3" else []
    return shlex.join(["sox", *kind, str(path), *options, out, *effects])


def convert_hint(path: Path) -> str:
    """The command that turns ``path`` into a 16-bit PCM WAV deskcue reads, and what it needs
    beyond Debian's sox: sox for what it reads (an MP3 with its MP3 handler, a package of its
    own), ffmpeg for what no sox reads (M4A, WMA, AAC). Every such hint is written here."""
    kind = content_of(path)
    if kind in _FFMPEG_ONLY:
        out = f"{path.with_suffix('').name}-16bit.wav"
        line = shlex.join(["ffmpeg", "-i", str(path), "-c:a", "pcm_s16le", out])
        return f"convert it with ffmpeg (Debian package ffmpeg): {line}"
    line = sox_line(path, "-16bit", ("-b", "16"))
    if kind == "mp3":
        return f"convert it with sox's MP3 reader (Debian package libsox-fmt-mp3): {line}"
    return f"convert it: {line}"


def _what_it_is(path: Path, *, misnamed_only: bool = False) -> str | None:
    """``an MP3 file`` (or another kind deskcue refuses), with what its name says when that is
    something else (``.wav``); None for other files, and with ``misnamed_only`` for a file
    whose name already says what it is."""
    kind = content_of(path)
    what = _MP3 if kind == "mp3" else _FFMPEG_ONLY.get(kind or "")
    if what is None:
        return None
    if path.suffix.lower() in (".mp3", ".mp2", ".m4a", ".mp4", ".aac", ".wma", ".asf"):
        return None if misnamed_only else what
    return f"{what}, though its name ends {f'in {path.suffix}' if path.suffix else 'in nothing'}"


# Clipping. A sample "at full scale" is at or within 1 LSB of the encoding's largest value:
# |x| >= 1 - 2 LSB for PCM (the positive peak is 1 - 1 LSB; 16-bit LSB for float, Vorbis and
# Opus, as a float export of a clipped 16-bit capture), the top code for µ-law and A-law
# (their last step is 3 % of full scale: only the top code itself). It is clipping only in
# runs of CLIP_RUN or more: speech touches full scale for a sample or two at a peak; a
# waveform flattened by the converter stays there. Warned about above CLIP_SHARE (0.1 %) of
# a channel's samples: there the loudest 5 % of voiced hops read 0.4 LU low, growing to
# 1.3 LU at 0.3 % (tests/bench/bench_clipping.py; docs/decisions.md).
CLIP_RUN = 3
CLIP_SHARE = 0.001
_LSB = {"PCM_U8": 2.0 ** -7, "PCM_16": 2.0 ** -15, "PCM_24": 2.0 ** -23, "PCM_32": 2.0 ** -31}
_TOP_CODE = {"ULAW": 32124 / 32768, "ALAW": 32256 / 32768}


def clip_level(subtype: str) -> float:
    """The smallest |sample| (float, full scale 1.0) counted as at full scale for
    libsndfile's ``subtype``."""
    if subtype in _TOP_CODE:
        return _TOP_CODE[subtype] - 2.0 ** -20
    return 1.0 - 2 * _LSB.get(subtype, 2.0 ** -15)


class ClipCount:
    """Samples at full scale in runs of at least ``run``, per channel, over consecutive
    blocks (a run across a block boundary is one run)."""

    def __init__(self, channels: int, level: float, run: int = CLIP_RUN):
        self.level = np.float32(level)
        self.run = run
        self._closed = np.zeros(channels, np.int64)  # samples in runs that ended
        self._open = np.zeros(channels, np.int64)  # the run still going at the last block's end

    def add(self, block: np.ndarray) -> None:
        """Count a block of samples (frames, channels), after the previous one."""
        n, channels = block.shape
        if n == 0:
            return
        # Over the interleaved samples at once (reductions along the frames of a (n, 2) array
        # run two elements at a time): a block that never reaches full scale costs two
        # reductions and no temporary.
        flat = block.reshape(-1)
        if flat.max() < self.level and flat.min() > -self.level:
            if not self._open.any():
                return
            frame, chan = np.zeros(0, np.intp), np.zeros(0, np.intp)
        else:
            frame, chan = np.divmod(np.flatnonzero(np.abs(flat) >= self.level), channels)
        for c in range(channels):
            hot = frame[chan == c]
            if hot.size == 0:
                if self._open[c] >= self.run:
                    self._closed[c] += self._open[c]
                self._open[c] = 0
                continue
            breaks = np.flatnonzero(np.diff(hot) != 1)
            starts = hot[np.concatenate(([0], breaks + 1))]
            lengths = hot[np.concatenate((breaks, [hot.size - 1]))] + 1 - starts
            if starts[0] == 0:
                lengths[0] += self._open[c]
            elif self._open[c] >= self.run:
                self._closed[c] += self._open[c]
            self._open[c] = 0
            if hot[-1] == n - 1:  # the last run goes on into the next block
                self._open[c], lengths = lengths[-1], lengths[:-1]
            self._closed[c] += int(lengths[lengths >= self.run].sum())

    @property
    def samples(self) -> np.ndarray:
        """Samples at full scale in runs of ``run`` or more so far, per channel."""
        return self._closed + np.where(self._open >= self.run, self._open, 0)


def _open_regular(path: Path) -> int:
    """Open ``path`` for reading without blocking; its descriptor if it is a regular file.

    A FIFO, socket or device is refused: reading one could block for ever in a system call
    (where SIGTERM cannot end the reader) and it has no length to show progress against.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise AudioFileNotFound(f"{path}: no such file") from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot read ({(exc.strerror or str(exc)).lower()})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise AudioError(f"{path}: cannot read ({os.strerror(errno.EISDIR).lower()})")
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            save = shlex.join(["cat", str(path)])
            raise AudioError(f"{path}: a pipe, not a file; deskcue reads recordings from files: "
                             f"save the stream first (e.g. {save} > call.wav)")
        if not stat.S_ISREG(mode):
            raise AudioError(f"{path}: not a regular file (a device?); deskcue reads "
                             "recordings from files")
        if os.fstat(fd).st_size == 0:
            raise AudioError(f"{path}: empty file (0 bytes); not a recording")
    except BaseException:
        os.close(fd)
        raise
    return fd


class _After(io.RawIOBase):
    """A file read from byte ``offset`` on, as if it began there (libsndfile's RAW reader
    starts at byte 0)."""

    def __init__(self, f: io.BufferedReader, offset: int):
        super().__init__()
        self._f, self._offset = f, offset
        f.seek(offset)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        return self._f.readinto(b)

    def seek(self, pos: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            pos += self._offset
        return self._f.seek(pos, whence) - self._offset

    def tell(self) -> int:
        return self._f.tell() - self._offset

    def close(self) -> None:
        self._f.close()
        super().close()


def _data_offset(head: bytes) -> int | None:
    """Where a RIFF/WAVE file's ``data`` chunk's samples begin, from its first bytes."""
    if head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(head):
        size = int.from_bytes(head[pos + 4:pos + 8], "little")
        if head[pos:pos + 4] == b"data":
            return pos + 8
        pos += 8 + size + (size & 1)
    return None


def _promised_frames(log: str, block_align: int) -> int | None:
    """Frames the WAV header's data chunk promised, from libsndfile's log of the header
    (``data : 128000 (should be 63979)`` when the file holds fewer bytes than it says)."""
    m = re.search(r"^data\s*:\s*(\d+)\s*\(should be \d+\)", log, re.MULTILINE)
    if not m or block_align <= 0 or int(m.group(1)) >= _PLACEHOLDER_BYTES:
        return None
    return int(m.group(1)) // block_align


class Recording:
    """An audio file opened for reading in blocks; a context manager.

    Attributes: ``rate`` (Hz), ``channels`` (1 or 2), ``frames`` (frames the file's header
    promises; 0 if it does not say), ``frames_read`` (so far), ``kind`` (e.g. "WAV µ-law"),
    ``cut_short`` (None, or why the file ended before its header said it would),
    ``nonfinite`` (frames with NaN or infinite samples in a float file, read as silence),
    ``overs`` (samples beyond full scale in a float file, read as full scale),
    ``unread_note`` (None, or that more bytes follow the samples the WAV header counts).
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        fd = _open_regular(self.path)
        try:
            self._sf = sf.SoundFile(fd, closefd=True)
        except (sf.SoundFileError, RuntimeError, TypeError) as exc:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise self._unreadable(exc) from None
        try:
            self._check()
        except BaseException:
            self._sf.close()
            raise
        self.rate: int = int(self._sf.samplerate)
        self.channels: int = int(self._sf.channels)
        self.kind = f"{self._sf.format} {self._sf.subtype}"
        self.frames_read = 0
        self.nonfinite = 0  # frames with a NaN or infinite sample, read as silence
        self.overs = 0  # samples beyond full scale (|x| > 1) in a float file, read as +-1
        self.overs_peak = 0.0  # the largest |x| among them
        self.clipped = ClipCount(self.channels, clip_level(self._sf.subtype))
        self._float = self._sf.subtype in ("FLOAT", "DOUBLE")
        self.cut_short: str | None = None
        self._error: str | None = None
        self._after: _After | None = None  # the samples past an unfinished header
        promised = None
        self.unread_note: str | None = None
        if self._sf.format in ("WAV", "WAVEX", "RF64"):
            m = re.search(r"Block Align\s*:\s*(\d+)", self._sf.extra_info)
            align = int(m.group(1)) if m else 0
            promised = _promised_frames(self._sf.extra_info, align)
            self.unread_note = self._samples_past_the_data_chunk(align)
        if int(self._sf.frames) == 0 and self._sf.format in ("WAV", "WAVEX", "RF64"):
            self._read_past_an_unfinished_header()
        self.frames: int = max(int(self._sf.frames), promised or 0)
        if self.frames > 0x7FFFFFFFFFFF:  # libsndfile's "unknown" (SF_COUNT_MAX)
            self.frames = 0
        if int(self._sf.frames) == 0:
            self._sf.close()
            promise = f"; cut short: its header promises {self.duration_s:.1f} s" if promised \
                else ""
            raise AudioError(f"{self.path}: no audio in it (a header, no samples){promise}")

    def _samples_past_the_data_chunk(self, align: int) -> str | None:
        """Why the bytes after the data chunk are not read, when they are no chunk (a recorder
        that updates its header as it goes and stopped, a header patched by hand): libsndfile
        reads the samples the header counts and stops there, silently. Chunks after the data
        (tags) are skipped; less than a hop's worth of bytes, or zero padding (a writer
        rounding the file to a sector), is nothing to say."""
        if align <= 0 or int(self._sf.frames) == 0:
            return None
        with open(self.path, "rb") as f:
            head = f.read(1 << 16)
            offset = _data_offset(head)
            if offset is None or head[:4] != b"RIFF":  # (RF64 keeps its sizes elsewhere)
                return None
            size = int.from_bytes(head[offset - 4:offset], "little")
            end = os.fstat(f.fileno()).st_size
            pos = offset + size + (size & 1)
            while pos + 8 <= end:
                f.seek(pos)
                chunk = f.read(8)
                n = int.from_bytes(chunk[4:], "little")
                if not all(0x20 <= c <= 0x7E for c in chunk[:4]) or pos + 8 + n > end:
                    break
                pos += 8 + n + (n & 1)
            rate = int(self._sf.samplerate)
            extra = (end - pos) // align
            if extra < rate // 100:
                return None
            if end - pos <= 1 << 16:
                f.seek(pos)
                if not f.read().strip(b"\0"):
                    return None
        said = int(self._sf.frames) / rate
        whole = shlex.join(["sox", "--ignore-length", str(self.path),
                            f"{self.path.with_suffix('').name}-whole.wav"])
        return (f"{self.path}: its header says {said:.1f} s of samples, but {extra / rate:.1f} s "
                "more follow them (a recorder that stopped before updating its header?); read "
                f"the {said:.1f} s it describes; if the rest is audio, this reads it all: {whole}")

    def _read_past_an_unfinished_header(self) -> None:
        """A recorder that lost power before finishing its header leaves the data chunk's size
        at 0 with the samples after it: read them as the header describes them (cut_short
        says so), rather than call a whole call "no audio"."""
        f = open(self.path, "rb")  # noqa: SIM115 (kept open for reading; closed in close())
        try:
            offset = _data_offset(f.read(1 << 16))
            size = os.fstat(f.fileno()).st_size
            m = re.search(r"Block Align\s*:\s*(\d+)", self._sf.extra_info)
            align = int(m.group(1)) if m else 0
            if offset is None or align <= 0 or size - offset < align:
                f.close()
                return
            after = _After(f, offset)
            raw = sf.SoundFile(after, format="RAW", samplerate=self._sf.samplerate,
                               channels=self._sf.channels, subtype=self._sf.subtype,
                               endian="LITTLE")
        except BaseException:
            f.close()
            raise
        self._sf.close()
        self._sf, self._after = raw, after
        self.cut_short = (f"{self.path}: its header was never finished (it says no samples: "
                          f"a recorder that stopped?); read the {raw.frames / raw.samplerate:.1f} "
                          "s of samples after it")

    def _unreadable(self, exc: BaseException) -> AudioError:
        """The error for a file libsndfile could not open."""
        p = self.path
        why = str(exc).rsplit(":", 1)[-1].strip().rstrip(".").lower() or "unreadable"
        with open(p, "rb") as f:
            head = f.read(4)
        known = _SIGNATURES.get(head)
        if (what := _what_it_is(p)) is not None:
            return AudioFormatError(f"{p}: {what}: not a format deskcue reads ({READS}); "
                                    f"{convert_hint(p)}")
        if known:
            return AudioFormatError(f"{p}: a {known} file cut short inside its header or damaged "
                                    f"(libsndfile: {why}); deskcue reads {READS}")
        return AudioFormatError(f"{p}: not a recording deskcue can read (libsndfile: {why}); "
                                f"it reads {READS}; {convert_hint(p)}")

    def _check(self) -> None:
        f, p = self._sf, self.path
        if f.format not in CONTAINERS or f.subtype not in ENCODINGS:
            what = _what_it_is(p, misnamed_only=True)
            raise AudioFormatError(
                f"{p}: {f.format_info.split(' (')[0]} {f.subtype_info}"
                f"{f' ({what})' if what else ''} is not a format deskcue reads ({READS}); "
                f"{convert_hint(p)}")
        if f.channels not in (1, 2):
            raise AudioFormatError(f"{p}: {f.channels} channels; need mono (agent) or stereo "
                                   "(agent + caller); keep the first two: "
                                   f"{sox_line(p, '-stereo', effects=('remix', '1', '2'))}")
        if not MIN_RATE_HZ <= f.samplerate <= MAX_RATE_HZ:
            raise AudioFormatError(f"{p}: sample rate {f.samplerate} Hz; need "
                                   f"{MIN_RATE_HZ}-{MAX_RATE_HZ} Hz: "
                                   f"{sox_line(p, '-16k', ('-r', '16000'))}")

    @property
    def duration_s(self) -> float:
        """What the header promises, in seconds (0 if it does not say)."""
        return self.frames / self.rate

    def read(self, frames: int) -> np.ndarray:
        """The next ``frames`` frames or fewer: float32 (n, channels) in [-1, 1); n = 0 at the
        end of the file, or where it is cut short or damaged (see `cut_short`)."""
        if self._error is not None:
            return np.zeros((0, self.channels), np.float32)
        try:
            block = self._sf.read(frames, dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError) as exc:  # e.g. "flac decoder lost sync"
            self._error = str(exc).rsplit(":", 1)[-1].strip().rstrip(".").lower()
            block = np.zeros((0, self.channels), np.float32)
        if self._float and not np.isfinite(block).all():
            # A float file can hold NaN or Inf (a broken export): one such sample would stay in
            # every filter's state and leave the rest of the recording without a measure.
            bad = ~np.isfinite(block)
            self.nonfinite += int(bad.any(axis=1).sum())
            block[bad] = 0.0
        if self._float and block.size and (block.max() > 1.0 or block.min() < -1.0):
            # ... or any finite number: a sample at 1e5 puts the pitch tracker's running peak
            # (which decays 1 dB/s) 100 dB above full scale, blind to a voice for minutes, and
            # near float32's limit the resampler overflows to inf. A capture cannot go past
            # full scale: read them as full scale (the clipping count sees them there).
            over = np.abs(block) > 1.0
            self.overs += int(over.sum())
            self.overs_peak = max(self.overs_peak, float(np.abs(block[over]).max()))
            np.clip(block, -1.0, 1.0, out=block)
        self.clipped.add(block)
        self.frames_read += block.shape[0]
        if block.shape[0] == 0 and self.cut_short is None:
            self._note_end()
        return block

    @property
    def overs_note(self) -> str | None:
        """What was read as full scale because a float file went past it (None if nothing
        did)."""
        if not self.overs:
            return None
        return (f"{self.path}: {self.overs} sample(s) beyond full scale (up to "
                f"{self.overs_peak:.3g}); read as full scale")

    @property
    def nonfinite_note(self) -> str | None:
        """What was read as silence because it was not a number (None if nothing was)."""
        if not self.nonfinite:
            return None
        return (f"{self.path}: {self.nonfinite} frame(s) held NaN or infinite samples (a "
                "damaged float recording); read as silence")

    def clipping_note(self, names: list[str] | None = None) -> str | None:
        """That the recording is clipped, when over `CLIP_SHARE` of a channel's samples read
        so far sit at full scale in runs of `CLIP_RUN` or more: its loudest passages then
        read low (the raised-voice measure; pitch holds, tests/bench/bench_clipping.py).
        ``names``: what each file channel is
        (``"agent"``, ``"caller"``), said with its share; None when none is clipped so. Without
        the file's name: the caller says which recording it is about."""
        if not self.frames_read:
            return None
        share = self.clipped.samples / self.frames_read
        if not (share > CLIP_SHARE).any():
            return None
        if self.channels == 1:
            what = f"{100 * share[0]:.1f} % of its samples"
        else:
            sides = ("left", "right")
            what = ", ".join(
                f"{100 * v:.1f} % of the {names[c]}'s ({sides[c]})" if names and names[c]
                else f"{100 * v:.1f} % of the {sides[c]} channel's" for c, v in enumerate(share))
            what += " samples"
        return (f"clipped: {what} sit at full scale (in runs of {CLIP_RUN} or more); "
                "its loudest passages read low")

    def blocks(self, frames: int) -> Iterator[np.ndarray]:
        """Every block of ``frames`` frames (the last may be shorter), to the end."""
        while True:
            block = self.read(frames)
            if block.shape[0] == 0:
                return
            yield block

    def _note_end(self) -> None:
        short = self.frames > 0 and self.frames_read < self.frames
        if not (short or self._error):
            return
        had = self.frames_read / self.rate
        what = f"read {had:.1f} s"
        if short:
            what += f" of the {self.frames / self.rate:.1f} s its header promises"
        if self._error:
            what += f" (libsndfile: {self._error})"
        self.cut_short = f"{self.path}: cut short or damaged: {what}"

    def close(self) -> None:
        self._sf.close()
        if self._after is not None:
            self._after.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def read_whole(path: Path | str) -> tuple[np.ndarray, int]:
    """A whole (short) recording as float32 (frames, channels) and its rate in Hz. For tests
    and benchmarks on clips; the appliance and `deskcue analyze` read in blocks."""
    with Recording(path) as rec:
        parts = list(rec.blocks(1 << 16))
        x = (np.concatenate(parts) if parts
             else np.zeros((0, rec.channels), np.float32))
        return x, rec.rate
