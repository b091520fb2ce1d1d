"""A worn SD card whose fsync stalls for seconds must hold up neither the analysis nor the
agent's snooze: the worker hands state files (the snooze's end, the usual-voice baseline) to a
writer of their own and goes on.

The card's stall is an fsync of any file in the desk's state directory that waits until the
test lets it go (the desk runs in this process on a recording played in real time).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from quiet_desk import desk_config, quiet_wav, running_desk
from waiting import HANG_S, wait_until

from firmware.platform.control_socket import appliance_state, request


@pytest.fixture
def stalled_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event,
                                                                           threading.Event]:
    """(stalled: an fsync in ``tmp_path/state`` is waiting, release: let it go)."""
    state = str(tmp_path / "state")
    stalled, release = threading.Event(), threading.Event()
    real = os.fsync

    def fsync(fd: int) -> None:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if target.startswith(state):
            stalled.set()
            release.wait(HANG_S)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return stalled, release


def stream_s(run: Path) -> float:
    return float((appliance_state(run)[1] or {}).get("stream_s", 0.0))


def test_a_stalled_card_holds_up_neither_the_analysis_nor_the_snooze(tmp_path, stalled_card):
    stalled, release = stalled_card
    config = desk_config(tmp_path)
    with running_desk(config, quiet_wav(tmp_path / "quiet.wav")) as run:
        try:
            # The snooze's end is kept on the card: the agent is answered all the same.
            reply = request(run, {"cmd": "snooze", "minutes": 5}, timeout=HANG_S)
            assert reply is not None and reply["ok"] and reply["data"]["minutes"] == 5, reply
            wait_until(stalled.is_set)
            # While the card holds the write, the analysis goes on with the audio.
            at = wait_until(lambda: stream_s(run))
            wait_until(lambda: stream_s(run) >= at + 1.0)
            assert (appliance_state(run)[1] or {}).get("snoozed") is True
        finally:
            release.set()
    # The card came back: what the worker handed over was written.
    kept = json.loads((tmp_path / "state" / "snooze.json").read_text())
    assert kept["until_mono"] > 0
