"""The live capture path on a real PortAudio stream (ALSA's file plugin as the device)."""

from __future__ import annotations

import numpy as np
from alsa_tap import DEVICE_NAME, AlsaTap
from waiting import wait_until

from firmware.audio.source import CATCH_UP_S, PyAudioSource


def test_a_desk_behind_takes_every_queued_block_at_once_in_order(tmp_path, monkeypatch):
    """When blocks have queued up (the analysis was busy), one read hands over all of them,
    up to CATCH_UP_S, as one piece of audio in capture order: nothing lost, nothing reordered."""
    monkeypatch.setenv("ALSA_CONFIG_PATH", "")  # restored after the test; AlsaTap sets it
    tap = AlsaTap(tmp_path)
    rate, block = 48000, 4800
    n = rate * 3
    # every sample distinct (left and right differ), so any loss or reordering shows
    ramp = (np.arange(n * 2, dtype=np.float64) % 60001 - 30000) / 32768.0
    tap.load(ramp.reshape(n, 2))
    src = PyAudioSource(device=DEVICE_NAME, channels=2, rate_hz=rate, block_s=0.1, queue_s=10.0)
    try:
        src.start()
        wait_until(lambda: src.queued >= 5)  # the file plugin delivers faster than real time
        got = src.read(timeout=1.0)
    finally:
        src.close()
    assert got is not None
    assert 5 * block <= got.shape[0] <= CATCH_UP_S * rate + block
    want = np.round(ramp.reshape(n, 2)[: got.shape[0]] * 32767.0) / 32768.0
    np.testing.assert_array_equal(got, want.astype(np.float32))
