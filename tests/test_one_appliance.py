"""One appliance per desk: `deskcue run` by hand beside the service refuses to start; its
control socket answers only the askers' own abstract names."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from quiet_desk import desk_config, quiet_wav, running_desk
from waiting import HANG_S

from firmware.cli.main import main as deskcue
from firmware.platform.control_socket import SOCKET_NAME, appliance_state


def test_a_second_run_beside_a_running_appliance_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tech debugging by hand with the service running: the second appliance took the
    control socket (and removed it when it ended, so `deskcue status` said "not running" and
    `deskcue snooze` could no longer reach the service), could not open the outbox, and the
    two threw each other off the broker as "another device"."""
    config = desk_config(tmp_path)
    wav = quiet_wav(tmp_path / "quiet.wav")
    with running_desk(config, wav) as run:
        code = deskcue(["run", "--config", str(config), "--source", str(wav), "--fast",
                        "--pins", "mock"])
        err = capsys.readouterr().err
        assert code == 1, err
        assert f"deskcue: another deskcue runs on this desk (it answers on {run}" in err
        state, status = appliance_state(run, timeout=HANG_S)
        assert state == "running" and status is not None, "the first one still answers"


def test_the_control_socket_answers_only_abstract_names(tmp_path: Path) -> None:
    """A reply address that is a file path (another program's socket) gets nothing written
    to it; the same request with an abstract name is answered."""
    config = desk_config(tmp_path)
    with running_desk(config, quiet_wav(tmp_path / "quiet.wav")) as run, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as victim, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as asker:
        victim_path = tmp_path / "victim.sock"
        victim.bind(str(victim_path))
        asker.bind("\0deskcue-test-asker")
        for reply_to in (str(victim_path), "@deskcue-test-asker"):
            asker.sendto(json.dumps({"cmd": "status", "reply_to": reply_to}).encode(),
                         str(run / SOCKET_NAME))
        asker.settimeout(HANG_S)
        assert json.loads(asker.recv(65536))["ok"]  # the abstract name is answered ...
        # ... and the path was asked first, so had it been answered it would be there now
        victim.setblocking(False)
        with pytest.raises(BlockingIOError):
            victim.recv(65536)
