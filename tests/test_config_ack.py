"""`deskcue config ack` on a desk whose appliance runs: the red blink of a refused config ends
when the tech acknowledges it (docs/field-tech.md), not at the next restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from quiet_desk import desk_config, quiet_wav, running_desk
from waiting import HANG_S

from firmware.cli.main import main as deskcue
from firmware.platform.control_socket import appliance_state

FAULT = {"source": "card", "message": "card config deskcue.toml refused: 1 problem(s)",
         "at": "2026-01-01T00:00:00Z", "clock_synced": True, "problems": []}


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A running desk with a refused card config pending; its config and runtime
    directories."""
    config = desk_config(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "config-fault.json").write_text(json.dumps(FAULT))
    with running_desk(config, quiet_wav(tmp_path / "quiet.wav")) as run:
        yield config.parent, run


def live_status(run: Path) -> dict:
    status = appliance_state(run, timeout=HANG_S)[1]
    assert status is not None
    return status


def test_ack_ends_the_fault_the_running_appliance_shows(
    desk: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The record was removed and "config fault cleared" printed, while the desk went on
    blinking red with the fault in `deskcue status` until someone restarted it."""
    etc, run = desk
    before = live_status(run)
    assert before["display"] == "fault" and FAULT["message"] in before["fault"]
    assert deskcue(["config", "ack", "--etc", str(etc)]) == 0
    assert capsys.readouterr().out == ("config fault cleared\n"
                                       "the desk's light no longer shows it\n")
    after = live_status(run)
    assert after["fault"] is None and after["display"] != "fault"
