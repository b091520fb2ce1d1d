"""`deskcue snooze` against a running appliance: it says what the desk applied (the desk cuts a
snooze to its ``snooze.max_min``), and refuses minutes no desk takes before sending them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from quiet_desk import desk_config, quiet_wav, running_desk
from waiting import HANG_S

from firmware.cli.main import main as deskcue
from firmware.platform.control_socket import appliance_state, request


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    """A running desk whose snooze.max_min is 30; its runtime directory."""
    config = desk_config(tmp_path, "[snooze]\nmax_min = 30.0\n")
    with running_desk(config, quiet_wav(tmp_path / "quiet.wav")) as run:
        yield run


def snoozed(run: Path) -> bool:
    status = appliance_state(run, timeout=HANG_S)[1]
    assert status is not None
    return bool(status["snoozed"])


@pytest.mark.parametrize("minutes", ["-5", "nan", "inf", "481", "ten"])
def test_minutes_no_desk_takes_are_a_usage_error(
    run_dir: Path, capsys: pytest.CaptureFixture[str], minutes: str
) -> None:
    """Refused before sending: sent, they would print "snoozed for -5.0 min", exit 0, while
    the desk refuses them."""
    with pytest.raises(SystemExit) as exit_:
        deskcue(["snooze", "--runtime-dir", str(run_dir), f"--minutes={minutes}"])
    assert exit_.value.code == 2
    assert "--minutes" in capsys.readouterr().err
    assert not snoozed(run_dir)


def test_it_says_the_minutes_the_desk_applied(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The desk cuts 200 minutes to its snooze.max_min of 30: that is what the agent is told,
    not the 200 asked for."""
    assert deskcue(["snooze", "--runtime-dir", str(run_dir), "--minutes", "200"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("snoozed for 30 min (asked for 200"), out
    assert snoozed(run_dir)
    assert deskcue(["snooze", "--runtime-dir", str(run_dir), "--cancel"]) == 0
    assert capsys.readouterr().out == "snooze cancelled\n"
    assert not snoozed(run_dir)


def test_status_says_how_long_the_snooze_still_runs(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`deskcue status` said only "snoozed: True": an agent who snoozed could not see when
    the cues come back."""
    assert deskcue(["snooze", "--runtime-dir", str(run_dir), "--minutes", "2"]) == 0
    status = appliance_state(run_dir, timeout=HANG_S)[1]
    assert status is not None
    assert 110.0 < status["snooze_left_s"] <= 120.0, status
    capsys.readouterr()
    assert deskcue(["status", "--runtime-dir", str(run_dir), "--state-dir",
                    str(run_dir.parent / "state")]) == 0
    assert "snooze_left_s:" in capsys.readouterr().out
    assert deskcue(["snooze", "--runtime-dir", str(run_dir), "--cancel"]) == 0
    status = appliance_state(run_dir, timeout=HANG_S)[1]
    assert status is not None and "snooze_left_s" not in status


def test_cancel_with_minutes_is_a_usage_error(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--cancel --minutes 5` cancelled, silently dropping the 5 minutes asked for."""
    assert deskcue(["snooze", "--runtime-dir", str(run_dir), "--minutes", "5"]) == 0
    with pytest.raises(SystemExit) as exit_:
        deskcue(["snooze", "--runtime-dir", str(run_dir), "--cancel", "--minutes", "5"])
    assert exit_.value.code == 2
    assert "--cancel" in capsys.readouterr().err
    assert snoozed(run_dir)  # nothing was sent


def test_a_snooze_outlives_a_restart_of_the_desk(tmp_path: Path) -> None:
    """A restart (a config pushed over MQTT restarts the service) silently ended the agent's
    snooze: the cues came back minutes before the time the agent had been told."""
    config = desk_config(tmp_path)
    wav = quiet_wav(tmp_path / "quiet.wav")
    with running_desk(config, wav) as run:
        assert deskcue(["snooze", "--runtime-dir", str(run), "--minutes", "5"]) == 0
        assert snoozed(run)
    with running_desk(config, wav) as run:
        status = appliance_state(run, timeout=HANG_S)[1]
        assert status is not None and status["snoozed"], status
        assert 280.0 < status["snooze_left_s"] <= 300.0, status
        assert deskcue(["snooze", "--runtime-dir", str(run), "--cancel"]) == 0
    with running_desk(config, wav) as run:  # and a cancel outlives it too
        assert not snoozed(run)


def test_a_snooze_kept_in_another_boot_is_not_taken_up(tmp_path: Path) -> None:
    """A snooze ends with the boot it was pressed in: its end is kept on this boot's
    monotonic clock (a Pi boots in the past until its clock syncs, so a wall-clock end could
    come hours late)."""
    import json

    config = desk_config(tmp_path)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    (state / "snooze.json").write_text(json.dumps({"boot_id": "another-boot",
                                                   "until_mono": 1e12}))
    with running_desk(config, quiet_wav(tmp_path / "quiet.wav")) as run:
        assert not snoozed(run)


@pytest.mark.parametrize(("message", "field"), [
    ({"cmd": "snooze", "minutes": 481}, "minutes"),
    ({"cmd": "snooze", "minutes": "10"}, "minutes"),
    ({"cmd": "snooze", "minutes": True}, "minutes"),
    ({"cmd": "snooze", "minutes": 10, "until": 5}, "until"),
    ({"cmd": "identify", "seconds": 0}, "seconds"),
    ({"cmd": "identify", "seconds": 121}, "seconds"),
])
def test_a_local_command_is_checked_as_one_over_mqtt(
    run_dir: Path, message: dict[str, object], field: str
) -> None:
    """Any local process may write to the control socket: the desk refuses what its MQTT
    contract refuses (the same models), naming the argument, and runs none of it."""
    reply = request(run_dir, message, timeout=HANG_S)
    assert reply is not None and reply["ok"] is False, reply
    code, text = reply["data"]["error"]
    assert code == "invalid_args" and text.startswith(f"{field}: "), text
    assert not snoozed(run_dir)
