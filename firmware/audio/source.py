"""Where the audio comes from: a capture device through PyAudio, or a WAV file.

Both deliver float32 blocks shaped (frames, channels) in [-1, 1) at the source's own rate.
The PyAudio callback only copies the bytes into a bounded queue (the real-time rule); a full
queue drops the block and counts an input overflow, never stopping anything.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from firmware.errors import AudioError, AudioFileNotFound


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
                         f"available: {names}")
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
            self._q: queue.Queue[bytes] = queue.Queue(
                maxsize=max(2, int(np.ceil(queue_s / block_s))))
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
        """PortAudio's thread: only copy the block into the bounded queue (count overflows)."""
        if status & self._overflow_flag:
            self.overflows += 1
        try:
            self._q.put_nowait(in_data)
        except queue.Full:
            self.overflows += 1
        return (None, self._continue)

    def start(self) -> None:
        self._stream.start_stream()

    def read(self, timeout: float) -> np.ndarray | None:
        """The next block (frames, channels) float32, or None if none arrived in ``timeout``."""
        try:
            data = self._q.get(timeout=timeout)
        except queue.Empty:
            return None
        a = np.frombuffer(data, dtype="<i2").reshape(-1, self.channels)
        return a.astype(np.float32) / 32768.0

    @property
    def queued(self) -> int:
        return self._q.qsize()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.stop_stream()
            self._stream.close()
        self._pa.terminate()


def read_wav(path: Path | str) -> tuple[np.ndarray, int]:
    """Read a PCM WAV file as float32 (frames, channels) in [-1, 1) and its rate in Hz.

    Accepts 8/16/24/32-bit integer PCM with 1 or 2 channels; anything else is an `AudioError`
    that says what was found and what is needed.
    """
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), \
                w.getnframes()
            raw = w.readframes(n)
    except FileNotFoundError:
        raise AudioFileNotFound(f"{path}: no such file") from None
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"{path}: not a PCM WAV file ({str(exc) or 'cut short'}); need 16-bit PCM "
                         "WAV, mono or stereo") from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot read ({(exc.strerror or str(exc)).lower()})") from None
    if ch not in (1, 2):
        raise AudioError(f"{path}: {ch} channels; need mono (agent) or stereo (agent + caller)")
    if rate < 8000 or rate > 192000:
        raise AudioError(f"{path}: sample rate {rate} Hz; need 8000-192000 Hz")
    if width == 1:
        a = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        a = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        a = v.astype(np.float32) / float(1 << 23)
    elif width == 4:
        a = (np.frombuffer(raw, "<i4").astype(np.float64) / 2.0**31).astype(np.float32)
    else:  # pragma: no cover - wave rejects other widths
        raise AudioError(f"{path}: {8 * width}-bit samples not supported")
    usable = (a.size // ch) * ch
    return a[:usable].reshape(-1, ch), rate


class WavFileSource:
    """Plays a WAV file as a source, in real time (paced by the clock) or as fast as possible.

    In real time, block k is handed out when its last sample would have been heard, so the
    stream time of the analysis tracks the wall clock as with a live device.
    """

    def __init__(self, path: Path | str, *, realtime: bool, block_s: float = 0.05):
        self.samples, self.rate = read_wav(path)
        self.channels = self.samples.shape[1]
        self.name = f"file:{Path(path).name}"
        self.realtime = realtime
        self.frames_per_block = max(1, int(round(block_s * self.rate)))
        self.overflows = 0
        self._pos = 0
        self._t0: float | None = None
        self._stop = threading.Event()

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.rate

    def start(self) -> None:
        self._t0 = time.monotonic()

    def read(self, timeout: float) -> np.ndarray | None:
        if self._pos >= self.samples.shape[0]:
            raise EndOfStream
        end = min(self._pos + self.frames_per_block, self.samples.shape[0])
        if self.realtime:
            assert self._t0 is not None, "start() first"
            due = self._t0 + end / self.rate
            wait = due - time.monotonic()
            if wait > timeout:
                self._stop.wait(timeout)
                return None
            if wait > 0:
                self._stop.wait(wait)
        block = self.samples[self._pos:end]
        self._pos = end
        return block

    def close(self) -> None:
        self._stop.set()
