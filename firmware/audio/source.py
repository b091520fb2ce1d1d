"""Where the audio comes from: a capture device through PyAudio, or a recording.

Both deliver float32 blocks shaped (frames, channels) in [-1, 1) at the source's own rate.
The PyAudio callback only copies the bytes into a bounded queue (the real-time rule); a full
queue drops the block and counts an input overflow, never stopping anything. The block queued
after a drop carries how much was lost before it: `PyAudioSource.read` never joins audio across
the loss and says how long it was (``gap_s``: what a cue's evidence must not bridge; the
policy does not read it yet, see docs/decisions.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from firmware.audio.recording import Recording, read_whole
from firmware.errors import AudioError
from firmware.platform.files import printable_name

log = logging.getLogger("deskcue")

CATCH_UP_S = 1.0
"""Most audio, seconds, one `PyAudioSource.read` hands over when blocks have queued up."""


class EndOfStream(EOFError):
    """A file source has delivered its last block: control flow, not an error (so it is not
    a `DeskcueError`; see firmware/errors.py)."""


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    max_input_channels: int
    default_rate: int


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the C libraries' start-up chatter (JACK/ALSA probing) on file descriptor 2."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def open_pyaudio() -> Any:  # a pyaudio.PyAudio
    """Initialise PortAudio quietly; raise `AudioError` if it is not usable."""
    try:
        import pyaudio
    except ImportError as exc:  # pragma: no cover - a broken install
        raise AudioError(f"PyAudio is not installed ({exc})") from None
    with _quiet_stderr():
        try:
            return pyaudio.PyAudio()
        except Exception as exc:  # PortAudio raises OSError or its own errors
            raise AudioError(f"cannot initialise PortAudio: {exc}") from None


def list_input_devices(pa: Any) -> list[DeviceInfo]:
    """Every device with at least one input channel."""
    out = []
    for i in range(pa.get_device_count()):
        d = pa.get_device_info_by_index(i)
        if int(d.get("maxInputChannels", 0)) > 0:
            out.append(DeviceInfo(i, str(d["name"]), int(d["maxInputChannels"]),
                                  int(d["defaultSampleRate"])))
    return out


def choose_device(devices: list[DeviceInfo], wanted: str, default_index: int | None
                  ) -> DeviceInfo:
    """The device whose name contains ``wanted`` (case-insensitive); empty = the default."""
    if not devices:
        raise AudioError("no audio capture device found; connect the headset tap, "
                         "or play a recording with --source FILE.wav")
    if not wanted:
        for d in devices:
            if d.index == default_index:
                return d
        return devices[0]
    hits = [d for d in devices if wanted.lower() in d.name.lower()]
    if not hits:
        names = ", ".join(repr(d.name) for d in devices)
        raise AudioError(f"no capture device matches audio.device = {wanted!r}; "
                         f"available: {names}; check the headset tap is plugged in, or set "
                         "audio.device to a part of one of these names")
    return hits[0]


class PyAudioSource:
    """Capture from a device chosen by name substring, in PyAudio's callback mode.

    ``channels``: 1 or 2; ``rate_hz``: 0 = the device's default; ``block_s``: frames per
    callback; ``queue_s``: queue capacity in seconds of audio.
    """

    def __init__(self, *, device: str, channels: int, rate_hz: int, block_s: float,
                 queue_s: float):
        self._pa = open_pyaudio()
        try:
            default = None
            with contextlib.suppress(OSError, OSError):
                default = int(self._pa.get_default_input_device_info()["index"])
            info = choose_device(list_input_devices(self._pa), device, default)
            if info.max_input_channels < channels:
                raise AudioError(
                    f"capture device {info.name!r} has {info.max_input_channels} input "
                    f"channel(s); set audio.channels = {info.max_input_channels}")
            self.rate = rate_hz or info.default_rate
            self.channels = channels
            self.name = info.name
            self.frames_per_block = max(1, int(round(block_s * self.rate)))
            self.overflows = 0  # blocks lost: queue full or PortAudio input overflow
            self.gap_s = 0.0
            """Audio lost just before the block `read` last returned, s (0: none)."""
            # (frames lost just before it, the block's bytes)
            self._q: queue.Queue[tuple[int, bytes]] = queue.Queue(
                maxsize=max(2, int(np.ceil(queue_s / block_s))))
            self._lost = 0  # callback thread: frames dropped since the last block queued
            self._held: tuple[int, bytes] | None = None  # read's: the next block, after a loss
            import pyaudio
            self._overflow_flag: int = pyaudio.paInputOverflow
            self._continue: int = pyaudio.paContinue
            with _quiet_stderr():
                try:
                    self._stream = self._pa.open(
                        format=pyaudio.paInt16, channels=channels, rate=self.rate, input=True,
                        input_device_index=info.index, frames_per_buffer=self.frames_per_block,
                        stream_callback=self._callback, start=False)
                except Exception as exc:
                    raise AudioError(f"cannot open capture device {info.name!r} at "
                                     f"{self.rate} Hz, {channels} ch: {exc}") from None
        except BaseException:
            self._pa.terminate()
            raise

    def _callback(self, in_data: bytes, frame_count: int, time_info: Any,
                  status: int) -> tuple[None, int]:
        """PortAudio's thread: only copy the block into the bounded queue (count overflows, and
        the frames lost before the next block that fits)."""
        if status & self._overflow_flag:  # PortAudio lost input before this block: how much
            self.overflows += 1           # it does not say; at least a block's worth
            self._lost += frame_count
        try:
            self._q.put_nowait((self._lost, in_data))
            self._lost = 0
        except queue.Full:
            self.overflows += 1
            self._lost += frame_count
        return (None, self._continue)

    def start(self) -> None:
        self._stream.start_stream()

    def read(self, timeout: float) -> np.ndarray | None:
        """The audio queued so far (frames, channels) float32, at least one block and at most
        `CATCH_UP_S` seconds, in capture order; None if no block arrived in ``timeout``.

        Taking every block that waits, not one, is how a busy desk catches up: a larger block
        costs the analysis less per second of audio (its per-call overhead is shared), so a
        backlog shrinks instead of growing until the queue overflows. The results do not
        depend on how the audio is cut.

        Audio after a loss (blocks dropped) starts a read of its own: `gap_s` then says how
        long the loss was (0 for audio that follows on from the last read).
        """
        item, self._held = self._held, None
        if item is None:
            try:
                item = self._q.get(timeout=timeout)
            except queue.Empty:
                return None
        lost, data = item
        parts = [data]
        limit = int(CATCH_UP_S * self.rate) * self.channels * 2  # bytes
        size = len(data)
        while size < limit:
            try:
                more = self._q.get_nowait()
            except queue.Empty:
                break
            if more[0]:  # sound was lost before it: not joined to what was heard before
                self._held = more
                break
            parts.append(more[1])
            size += len(more[1])
        self.gap_s = lost / self.rate
        joined = parts[0] if len(parts) == 1 else b"".join(parts)
        a = np.frombuffer(joined, dtype="<i2").reshape(-1, self.channels)
        return a.astype(np.float32) / 32768.0

    @property
    def queued(self) -> int:
        return self._q.qsize() + (self._held is not None)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.stop_stream()
            self._stream.close()
        self._pa.terminate()


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """A whole recording as float32 (frames, channels) in [-1, 1) and its rate in Hz.

    For the benchmarks and tests on short clips; every format `firmware.audio.recording`
    reads (not only WAV, despite the name kept for its callers). The appliance and
    `deskcue analyze` read in blocks instead, so their memory does not grow with the file.
    """
    return read_whole(path)


class WavFileSource:
    """Plays a recording as a source, in real time (paced by the clock) or as fast as possible.

    Reads one block at a time from the file (any format `firmware.audio.recording` reads), so
    memory stays flat in the recording's length. In real time, block k is handed out when its
    last sample would have been heard, so the stream time of the analysis tracks the wall
    clock as with a live device. A file cut short plays what is there and logs so.
    """

    def __init__(self, path: Path | str, *, realtime: bool, block_s: float = 0.05):
        self._rec = Recording(path)
        self.rate = self._rec.rate
        self.channels = self._rec.channels
        self.name = f"file:{printable_name(path)}"  # in the info payload: UTF-8
        self.realtime = realtime
        self.frames_per_block = max(1, int(round(block_s * self.rate)))
        self.overflows = 0
        self.gap_s = 0.0  # a recording loses nothing: every block follows the one before
        self._pos = 0
        self._t0: float | None = None
        self._stop = threading.Event()

    @property
    def duration_s(self) -> float:
        """The recording's length in seconds, as its header says."""
        return self._rec.duration_s

    @property
    def cut_short(self) -> str | None:
        """After the last block: why the file ended early (None if it did not)."""
        return self._rec.cut_short

    def start(self) -> None:
        self._t0 = time.monotonic()

    def read(self, timeout: float) -> np.ndarray | None:
        """The next block (frames, channels) float32; None if it is not due within
        ``timeout`` s (real time); raises `EndOfStream` after the last one."""
        if self.realtime:
            assert self._t0 is not None, "start() first"
            upto = self._pos + self.frames_per_block
            if self._rec.frames:  # the last block is due when its last sample would be heard
                upto = min(upto, max(self._rec.frames, self._pos + 1))
            due = self._t0 + upto / self.rate
            wait = due - time.monotonic()
            if wait > timeout:
                self._stop.wait(timeout)
                return None
            if wait > 0:
                self._stop.wait(wait)
        block = self._rec.read(self.frames_per_block)
        if block.shape[0] == 0:
            if self._rec.cut_short:
                log.warning("%s; played what is there", self._rec.cut_short)
            if self._rec.nonfinite_note:
                log.warning("%s", self._rec.nonfinite_note)
            if self._rec.overs_note:
                log.warning("%s", self._rec.overs_note)
            if self._rec.unread_note:
                log.warning("%s", self._rec.unread_note)
            raise EndOfStream
        self._pos += block.shape[0]
        return block

    def close(self) -> None:
        self._stop.set()
        self._rec.close()
