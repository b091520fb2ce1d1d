"""Audio the desk could not keep (a starved CPU: the capture queue was full, blocks dropped):
the source says where sound was lost and never joins audio across the loss, and a desk that
cannot keep up falls at most the queue's length (2 s by default) behind the sound.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from alsa_tap import DEVICE_NAME, AlsaTap

from firmware.audio.source import PyAudioSource

RATE = 16000


@pytest.fixture
def tap_source(tmp_path: Path):
    """The real capture path on the ALSA file device, opened but not started: the test
    calls its PortAudio callback itself, as PortAudio's thread would, so that which blocks
    find the queue full is known."""
    saved = os.environ.get("ALSA_CONFIG_PATH")
    AlsaTap(tmp_path)
    src = PyAudioSource(device=DEVICE_NAME, channels=1, rate_hz=RATE, block_s=0.1,
                        queue_s=0.5)
    yield src
    src.close()
    if saved is None:
        os.environ.pop("ALSA_CONFIG_PATH", None)
    else:
        os.environ["ALSA_CONFIG_PATH"] = saved


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


def test_a_desk_that_cannot_keep_up_falls_at_most_two_seconds_behind(tmp_path):
    """The shipped queue held 10 s: a desk starved of CPU (0.7 % of this machine's core in
    tests/bench/bench_starved.py) ran 10 s behind the sound and cued 10 s late. The queue
    the desk builds from the shipped config now holds 2 s; what does not fit is dropped,
    counted, and the sound after it marked as following a loss."""
    from firmware.config.audio import AudioSettings

    saved = os.environ.get("ALSA_CONFIG_PATH")
    AlsaTap(tmp_path)
    a = AudioSettings()
    src = PyAudioSource(device=DEVICE_NAME, channels=1, rate_hz=RATE, block_s=a.block_s,
                        queue_s=a.queue_s)
    try:
        frames = int(a.block_s * RATE)
        for _ in range(int(10 / a.block_s)):  # 10 s of sound while the analysis is stuck
            src._callback(np.zeros(frames, dtype="<i2").tobytes(), frames, None, 0)
        waiting = 0
        while (block := src.read(timeout=0)) is not None:
            waiting += block.shape[0]
        src._callback(np.zeros(frames, dtype="<i2").tobytes(), frames, None, 0)
        after_loss = src.read(timeout=0) is not None and src.gap_s > 0
    finally:
        src.close()
        if saved is None:
            os.environ.pop("ALSA_CONFIG_PATH", None)
        else:
            os.environ["ALSA_CONFIG_PATH"] = saved
    assert waiting / RATE <= 2.0, f"{waiting / RATE:.1f} s of sound waited for the analysis"
    assert after_loss
    assert src.overflows == int(10 / a.block_s) - waiting // frames
