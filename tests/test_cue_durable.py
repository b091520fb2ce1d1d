"""A cue shown on the desk is never missing upstream: the real `deskcue run`, killed with
SIGKILL the moment its light shows a cue, delivers that cue's event after a restart.

The desk's broker account is withdrawn while it is killed, so nothing goes out live: the cue's
event can only reach the supervisor through the outbox on disk. The kill follows the desk's
own log line for the light (written by the light's thread when it drives the pins), read line
by line from its stderr, so it lands within microseconds of the cue appearing.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from broker import Subscriber, unique_in_order
from test_e2e_outage import USERS, desk, deskcue, recordings, stored  # noqa: F401 - fixtures
from waiting import HANG_S, wait_until

pytestmark = pytest.mark.e2e
KILLS = 10
CUE_LINE = "LED -> raised voice"


def run_until_cue_then_kill(cfg: Path, audio: Path) -> None:
    """Start the desk on ``audio``; SIGKILL it as soon as it logs the raised-voice light."""
    p = subprocess.Popen(deskcue("run", "--config", str(cfg), "--source", str(audio), "--fast",
                                 "--pins", "mock"),
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert p.stderr is not None
    seen = []
    try:
        for line in p.stderr:
            if CUE_LINE in line:
                os.kill(p.pid, signal.SIGKILL)
                break
            seen.append(line)
        else:
            raise AssertionError("the desk never showed the cue:\n" + "".join(seen[-20:]))
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(HANG_S)
        p.stderr.close()
    assert p.returncode == -signal.SIGKILL


def test_kill9_right_after_a_cue_is_shown_loses_no_event(desk, recordings):  # noqa: F811
    broker, cfg, state = desk
    sub = Subscriber(broker, "deskcue/s/d/events", qos=1, username="sub",
                     password=USERS["sub"]).connect()
    try:
        broker.set_users({"sub": USERS["sub"]})  # the desk is refused: nothing goes out live
        for _ in range(KILLS):
            run_until_cue_then_kill(cfg, recordings["cues"])
        assert sub.events() == []
        kept = [e for e in stored(state) if e["type"] == "raised_voice.started"]
        # Every killed run stored the cue it showed. With --fast the analysis runs ahead of
        # the light, so a run may also have stored the recording's next cue before the kill.
        assert len({e["boot_id"] for e in kept}) == KILLS, \
            f"cues stored by only {len({e['boot_id'] for e in kept})} of {KILLS} killed runs"
        kept_ids = {e["id"] for e in kept}
        broker.set_users(USERS)
        # A restart on calm speech (no cue of its own) delivers what the killed runs stored.
        p = subprocess.run(deskcue("run", "--config", str(cfg), "--source",
                                   str(recordings["calm"]), "--fast", "--pins", "mock"),
                           capture_output=True, text=True, timeout=HANG_S)
        assert p.returncode == 0, p.stderr
        assert stored(state) == []

        def cue_ids() -> set[str]:
            return {e["id"] for e in unique_in_order(sub.events())
                    if e["type"] == "raised_voice.started"}
        wait_until(lambda: cue_ids() >= kept_ids)
    finally:
        sub.close()
    got = unique_in_order(sub.events())
    cues = [e for e in got if e["type"] == "raised_voice.started"]
    assert {e["id"] for e in cues} == kept_ids, "every stored cue delivered, none other"
    assert len({e["boot_id"] for e in cues}) == KILLS
    assert all(e.get("replayed") for e in cues)
    for boot in {e["boot_id"] for e in cues}:  # each killed run's events: in order, no gap
        seqs = [e["seq"] for e in got if e["boot_id"] == boot]
        assert seqs == list(range(1, len(seqs) + 1))
