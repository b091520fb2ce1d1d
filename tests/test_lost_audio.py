"""Audio the desk could not keep (a starved CPU: the capture queue was full, blocks dropped):
the source says where sound was lost and never joins audio across the loss, the analysis and
the cue policy build no evidence across it (stream time counts it), and a desk that cannot
keep up falls at most the queue's length (2 s by default) behind the sound.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from alsa_tap import DEVICE_NAME, AlsaTap
from synth_voice import utterance
from waiting import HANG_S

from dsp.analyzer import AnalyzerParams, StreamAnalyzer
from firmware.appliance.pipeline import Pipeline
from firmware.appliance.worker import Appliance
from firmware.audio.source import PyAudioSource
from firmware.config.settings import Settings
from firmware.policy.calls import CallTracker
from firmware.policy.cue_policy import PolicyEvent

RATE = 16000
MONO = {"audio": {"channels": 1}}


def speech(seconds: float, level_dbfs: float, seed: int) -> np.ndarray:
    """Mono speech-like sound (frames, 1) float32 at ``level_dbfs``."""
    return utterance(seconds, level_dbfs=level_dbfs, seed=seed).audio[:, None].astype(
        np.float32)


def play(pipe: Pipeline, parts: list[np.ndarray | float]) -> list[PolicyEvent]:
    """The events of ``parts`` in 0.1 s blocks, as the worker feeds them; a float is that
    many seconds lost before the next part (`Pipeline.lost`)."""
    out: list[PolicyEvent] = []
    for part in parts:
        if isinstance(part, float):
            out += pipe.lost(part)
            continue
        for i in range(0, len(part), RATE // 10):
            out += pipe.process(part[i:i + RATE // 10]).events
    return out


def cues(events: list[PolicyEvent]) -> list[str]:
    return [e.type for e in events if e.type.endswith(".started")
            and not e.type.startswith("call.")]


@pytest.fixture(scope="module")
def usual() -> np.ndarray:
    return speech(30.0, -30.0, seed=1)  # the warm-up: the agent's usual voice


def test_no_cue_from_evidence_on_both_sides_of_lost_audio(usual) -> None:
    """Two 0.7 s loud bursts (each too short for the 1 s hold) spliced by a loss fired
    raised_voice: the analysis saw them back to back, and a short loss (under the cue's
    0.6 s gap) is bridged even once stream time counts it."""
    settings = Settings.model_validate(MONO)
    loud_a, loud_b = speech(0.7, -16.0, seed=2), speech(0.7, -16.0, seed=3)
    # The control: heard back to back, they are one passage long enough to cue.
    joined = Pipeline(settings, source_rate=RATE, source_channels=1)
    assert "raised_voice.started" in cues(play(joined, [usual, loud_a, loud_b]))
    for lost in (5.0, 0.3):
        told = Pipeline(settings, source_rate=RATE, source_channels=1)
        assert cues(play(told, [usual, loud_a, lost, loud_b])) == [], lost
        assert told.stream_s == pytest.approx(30.0 + 1.4 + lost)
        assert told.lost_s == pytest.approx(lost)
    # A raised voice heard whole after a loss still cues.
    assert cues(play(told, [5.0, speech(3.0, -16.0, seed=4)])) == ["raised_voice.started"]


def test_a_loud_passage_with_a_loss_inside_cues_on_what_is_heard_after_it(usual) -> None:
    """The run restarts after a loss: 0.8 s of loud voice before it (under the 1 s hold) and
    a loud voice going on after it cue once the hold is met after the loss, its onset there;
    an active cue stays on through a short loss (shorter than its 2 s release)."""
    settings = Settings.model_validate(MONO)
    pipe = Pipeline(settings, source_rate=RATE, source_channels=1)
    loud = speech(6.0, -16.0, seed=5)
    evs = play(pipe, [usual, loud[:int(0.8 * RATE)], 0.3, loud[int(0.8 * RATE):]])
    started = [e for e in evs if e.type == "raised_voice.started"]
    assert len(started) == 1
    d = started[0].data
    resume_s = 30.0 + 0.8 + 0.3
    assert d is not None and resume_s <= d.onset_s < resume_s + 0.5  # type: ignore[union-attr]
    assert d.at_s - d.onset_s == pytest.approx(1.0, abs=0.06)  # type: ignore[union-attr]
    # Once on, a short loss does not end it: one cue for the passage.
    pipe2 = Pipeline(settings, source_rate=RATE, source_channels=1)
    evs = play(pipe2, [usual, loud[:3 * RATE], 0.3, loud[3 * RATE:]])
    assert cues(evs) == ["raised_voice.started"]
    ends = [e for e in evs if e.type == "raised_voice.ended"]
    assert ends == [] or ends[0].stream_s > 30.0 + 3.3
    # A loss longer than the release ends it at the loss; the cooldown runs from there.
    pipe3 = Pipeline(settings, source_rate=RATE, source_channels=1)
    evs = play(pipe3, [usual, loud[:3 * RATE], 4.0])
    assert [e.type for e in evs if e.type.startswith("raised_voice.")] == [
        "raised_voice.started", "raised_voice.ended"]
    assert evs[-1].type == "raised_voice.ended" and evs[-1].stream_s <= 30.0 + 3.0 + 4.0


def test_the_analysis_after_a_loss_reads_nothing_from_before_it() -> None:
    """The analyzer's windows (400 ms and 3 s loudness, spectrum, pitch, voice measures)
    joined the audio on both sides of a loss: the first 0.4 s after it read the loud voice
    before it. Restarted, its features are a fresh analyzer's on the audio after the loss
    (voice activity keeps its noise floor, the pitch tracker its speaker range, and the
    laughter verifier the usual pitch: slow estimates of the tap and the voice; the pulse
    detector alone is compared here), at the stream time after it."""
    x = utterance(4.0, level_dbfs=-20.0, seed=7).audio
    before, after = x[: 2 * RATE], x[2 * RATE:] * 0.1
    params = AnalyzerParams(laughter_verifier=False)
    an = StreamAnalyzer(params)
    an.process(before)
    an.restart(300)  # 1 s lost: the analysis resumes at hop 300
    f = an.process(after)
    fresh = StreamAnalyzer(params).process(after)
    assert f.hop[0] == 300 and f.t[0] == pytest.approx(3.005)
    assert f.n_hops == fresh.n_hops
    for name in ("loudness_m_lufs", "loudness_s_lufs", "f0_hz", "voicing", "laughter",
                 "rate_sps", "alpha_db", "pitch_sd_st"):
        # (to rounding: the DC offset the spectrum's audio is taken less of is kept)
        np.testing.assert_allclose(getattr(f, name), getattr(fresh, name), rtol=1e-6,
                                   atol=1e-6, err_msg=name)


def test_a_short_loss_neither_ends_a_call_nor_counts_as_its_silence() -> None:
    """Lost time is neither voice nor silence: a call with 10 s lost and then 10 s of silence
    (15 s end a call) goes on; a loss of 15 s or more ends it at its last voiced hop."""
    def hops(t0: float, seconds: float, voiced: bool) -> tuple[np.ndarray, np.ndarray]:
        n = int(round(seconds * 100))
        return t0 + (np.arange(n) + 0.5) * 0.01, np.full(n, voiced)

    calls = CallTracker(silence_gap_s=15.0, min_call_s=5.0)
    t, a = hops(0.0, 5.0, True)
    assert [e.type for e in calls.step(t, a, None, None)] == ["call.started"]
    assert calls.lost(5.0, 15.0) == []
    t, a = hops(15.0, 10.0, False)
    assert calls.step(t, a, None, None) == []  # 10 s heard silence: the call goes on
    t, a = hops(25.0, 5.5, False)
    (ended,) = calls.step(t, a, None, None)
    assert ended.type == "call.ended" and ended.data.end_s == pytest.approx(5.0)
    assert ended.data.lost_s == pytest.approx(10.0)  # type: ignore[union-attr]
    assert ended.data.agent_talk_s == pytest.approx(5.0)  # type: ignore[union-attr]
    t, a = hops(40.0, 2.0, True)
    calls.step(t, a, None, None)
    (ended,) = calls.lost(42.0, 60.0)
    assert ended.type == "call.ended" and ended.data.end_s == pytest.approx(42.0)


@pytest.fixture
def open_tap(tmp_path: Path) -> Iterator[Callable[..., PyAudioSource]]:
    """Opens the real capture path on the ALSA file device with a queue of ``queue_s``
    seconds of 0.1 s blocks, not started: the test calls its PortAudio callback itself, as
    PortAudio's thread would, so that which blocks find the queue full is known. (conftest
    restores ALSA_CONFIG_PATH after the test.)"""
    AlsaTap(tmp_path)
    opened: list[PyAudioSource] = []

    def open_(queue_s: float, block_s: float = 0.1) -> PyAudioSource:
        opened.append(PyAudioSource(device=DEVICE_NAME, channels=1, rate_hz=RATE,
                                    block_s=block_s, queue_s=queue_s))
        return opened[-1]

    yield open_
    for src in opened:
        src.close()


@pytest.fixture
def tap_source(open_tap: Callable[..., PyAudioSource]) -> PyAudioSource:
    """The tap with a queue of 0.5 s (five 0.1 s blocks)."""
    return open_tap(0.5)


def test_the_source_never_joins_audio_across_a_loss_and_says_how_long_it_was(tap_source):
    src = tap_source
    frames = RATE // 10
    blocks = [np.full(frames, k, dtype="<i2").tobytes() for k in range(1, 13)]
    for b in blocks[:9]:  # room for 5: blocks 6-9 are dropped
        src._callback(b, frames, None, 0)
    first = src.read(timeout=0)
    assert first is not None and src.gap_s == 0.0
    assert np.round(first[:, 0] * 32768).tolist() == np.repeat(np.arange(1, 6), frames).tolist()
    for b in blocks[9:]:
        src._callback(b, frames, None, 0)
    after = src.read(timeout=0)
    assert after is not None and src.gap_s == pytest.approx(0.4)  # blocks 6-9: 0.4 s lost
    assert np.round(after[:, 0] * 32768).tolist() == np.repeat(np.arange(10, 13),
                                                               frames).tolist()
    assert src.overflows == 4


def test_a_desk_that_cannot_keep_up_falls_at_most_two_seconds_behind(open_tap):
    """The shipped queue held 10 s: a desk starved of CPU (0.7 % of this machine's core in
    tests/bench/bench_starved.py) ran 10 s behind the sound and cued 10 s late. The queue
    the desk builds from the shipped config now holds 2 s; what does not fit is dropped,
    counted, and the sound after it marked as following a loss."""
    from firmware.config.audio import AudioSettings

    a = AudioSettings()
    src = open_tap(a.queue_s, a.block_s)
    frames = int(a.block_s * RATE)
    for _ in range(int(10 / a.block_s)):  # 10 s of sound while the analysis is stuck
        src._callback(np.zeros(frames, dtype="<i2").tobytes(), frames, None, 0)
    waiting = 0
    while (block := src.read(timeout=0)) is not None:
        waiting += block.shape[0]
    src._callback(np.zeros(frames, dtype="<i2").tobytes(), frames, None, 0)
    after_loss = src.read(timeout=0) is not None and src.gap_s > 0
    assert waiting / RATE <= 2.0, f"{waiting / RATE:.1f} s of sound waited for the analysis"
    assert after_loss
    assert src.overflows == int(10 / a.block_s) - waiting // frames


class DrivenTap:
    """The real capture source on the ALSA file device, its PortAudio callback driven by the
    test: whenever the worker finds the queue empty, the next batch of blocks arrives as
    PortAudio's thread would deliver it while the analysis was busy (what does not fit in the
    queue is dropped). After the last batch it stops the appliance."""

    def __init__(self, src: PyAudioSource, batches: list[list[np.ndarray]],
                 stop: threading.Event):
        self._src, self._batches, self._stop = src, batches, stop

    def read(self, timeout: float) -> np.ndarray | None:
        if not self._src.queued:
            if not self._batches:
                self._stop.set()
                return None
            for b in self._batches.pop(0):
                pcm = np.round(b[:, 0] * 32767).astype("<i2").tobytes()
                self._src._callback(pcm, b.shape[0], None, 0)
        return self._src.read(timeout)

    def start(self) -> None:  # the test is PortAudio's thread: the stream is never started
        pass

    def close(self) -> None:  # the fixture closes the source
        pass

    def __getattr__(self, name: str) -> Any:  # rate, channels, name, overflows, gap_s
        return getattr(self._src, name)


@pytest.fixture
def tap_1s(open_tap: Callable[..., PyAudioSource]) -> PyAudioSource:
    """The tap with a queue of 1 s (ten 0.1 s blocks)."""
    return open_tap(1.0)


def test_the_desk_builds_no_cue_across_blocks_its_full_queue_dropped(tmp_path, tap_1s, usual):
    """Through the capture path and the worker: the queue (1 s) takes the first burst and
    0.3 s after it; the next 5 s find it full and are dropped; the second burst arrives after
    the analysis caught up. No raised-voice cue; the loss is counted in stream time and shown
    in the status (`lost_audio_s`)."""
    src = tap_1s
    block = RATE // 10
    blocks = [usual[i:i + block] for i in range(0, len(usual), block)]
    quiet = speech(3.0, -30.0, seed=9)
    qb = [quiet[i:i + block] for i in range(0, len(quiet), block)]
    loud_a, loud_b = speech(0.7, -16.0, seed=2), speech(0.7, -16.0, seed=3)
    la = [loud_a[i:i + block] for i in range(0, len(loud_a), block)]
    lb = [loud_b[i:i + block] for i in range(0, len(loud_b), block)]
    batches = [blocks[i:i + 10] for i in range(0, len(blocks), 10)]  # 30 s heard whole
    batches.append(la + qb[:3] + qb[:30] + qb[:20])  # 7 + 3 fit; 5 s dropped
    batches.append(lb + qb[:3])
    batches += [qb[i:i + 10] for i in range(0, 30, 10)]
    settings = Settings.model_validate({
        "device": {"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "run")},
        "audio": {"device": DEVICE_NAME, "channels": 1, "rate_hz": RATE, "block_s": 0.1,
                  "queue_s": 1.0}})
    stop = threading.Event()
    events: list[dict[str, Any]] = []
    app = Appliance(settings, open_source=lambda: DrivenTap(src, batches, stop),
                    persist=False, on_event=events.append)
    done = threading.Thread(target=app.run, args=(stop,), daemon=True)
    done.start()
    done.join(HANG_S)
    assert not done.is_alive()
    assert src.overflows == 50
    types = [e["type"] for e in events]
    assert "usual_voice_learned" in types
    assert "raised_voice.started" not in types, types
    assert app.pipeline is not None
    assert app.pipeline.lost_s == pytest.approx(5.0)
    assert app.status().lost_audio_s == pytest.approx(5.0)
    assert app.status().stream_s == pytest.approx(30.0 + 0.7 + 0.3 + 5.0 + 0.7 + 0.3 + 3.0)
    # systemd's status line says what was heard, and what was lost apart
    assert "; heard 35 s, lost 5.0 s" in app.status_line()


def test_portaudio_input_overflow_counts_and_marks_a_loss(tap_source):
    """PortAudio's paInputOverflow status (the device lost input before the desk's queue saw
    it) counts a block lost and marks the block that carries it as following a loss."""
    import pyaudio

    src = tap_source
    frames = RATE // 10
    src._callback(np.ones(frames, dtype="<i2").tobytes(), frames, None, 0)
    src._callback(np.full(frames, 2, dtype="<i2").tobytes(), frames, None,
                  pyaudio.paInputOverflow)
    first = src.read(timeout=0)
    assert first is not None and first.shape[0] == frames and src.gap_s == 0.0
    after = src.read(timeout=0)
    assert after is not None and src.gap_s == pytest.approx(0.1)
    assert src.overflows == 1


def test_no_laughter_train_spans_a_loss() -> None:
    """A laugh cut by a loss: the event decided before it ends with the last burst heard
    before it, and nothing after the loss is counted in it."""
    from firmware.demo.voice_synth import laugh

    x = np.concatenate([np.zeros(RATE // 2), laugh(n_calls=10, rate_hz=5.0, f0_hz=300.0),
                        np.zeros(RATE)])
    cut = int(1.5 * RATE)  # 0.5 s of silence and five calls of the laugh
    an = StreamAnalyzer(AnalyzerParams(laughter_verifier=False))
    an.process(x[:cut])
    before = an.take_bursts()
    assert [k for k, _ in before] == ["decided"]  # decided, still going when the loss came
    an.restart(250)  # 1 s lost: resumes at 2.5 s
    (kind, closed), = an.take_bursts()
    assert kind == "completed" and closed.index == before[0][1].index
    assert closed.end_s is not None and closed.end_s <= 1.5
    assert closed.burst_count <= 5
    an.process(x[cut:])
    an.flush()
    after = an.take_bursts()
    # (a burst at a stream's first hop may take its onset from the silence before it, as
    # at the stream's start: up to 2 hops)
    assert after and all(b.start_s >= 2.5 - 0.02 for _, b in after), after
