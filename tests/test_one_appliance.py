"""One appliance per desk: `deskcue run` by hand beside the service refuses to start."""

from __future__ import annotations

from pathlib import Path

import pytest
from broker import HANG_S
from quiet_desk import desk_config, quiet_wav, running_desk

from firmware.cli.main import main as deskcue
from firmware.platform.control_socket import appliance_state


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
