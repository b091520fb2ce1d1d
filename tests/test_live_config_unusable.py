"""A live config that cannot be used (edited by hand on an installed desk, damaged or lost on
its card) does not leave the desk dark: the appliance runs on its last good config, keeps the
file for the tech to mend, and reports a config fault over MQTT (real mosquitto, mock pins, a
WAV); once the file is mended the fault is gone at the next start. With no last good config
to fall back on, the command stops with the config error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from broker import Subscriber
from test_flash_e2e import BASE, desk_config
from tone import tone_wav
from waiting import HANG_S, wait_until

from firmware.appliance.assemble import settings_for_run
from firmware.flashing.install import apply_text
from firmware.flashing.records import fault_record, last_good_path, pending_fault, record_fault

ROOT = Path(__file__).resolve().parent.parent
TYPO = '\n[cues.raised_voice]\nthreshold_db = "loud"\n'  # a hand edit: text where a number goes


def run(live: Path, audio: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firmware.cli", "run", "--config", str(live), "--source",
         str(audio), "--fast", "--pins", "mock"],
        cwd=ROOT, capture_output=True, text=True, timeout=HANG_S)


def test_a_hand_edited_typo_runs_the_last_good_config_and_tells_the_supervisor(
        tmp_path, broker):
    etc = tmp_path / "etc"
    etc.mkdir()
    live = etc / "deskcue.toml"
    good = desk_config(tmp_path, broker.port)
    last_good_path(live).write_text(good)  # what the last install kept
    live.write_text(good + TYPO)
    state = tmp_path / "state"
    sub = Subscriber(broker, f"{BASE}/#", qos=1, check_schema=False).connect()
    try:
        done = run(live, tone_wav(tmp_path / "call.wav", 2.0))
        assert done.returncode == 0, done.stderr
        assert "threshold_db" in done.stderr and "last good config" in done.stderr
        # the desk ran on the last good config: it reached the broker that one names
        wait_until(lambda: [e for e in sub.events() if e["type"] == "fault"])
        fault = [e for e in sub.events() if e["type"] == "fault"][-1]["data"]["fault"]
        assert "threshold_db" in fault and "last good config" in fault
        assert "threshold_db" in (pending_fault(state) or "")
        assert live.read_text() == good + TYPO  # the tech's file is theirs to mend

        live.write_text(good)  # mended
        done = run(live, tone_wav(tmp_path / "call2.wav", 1.0))
        assert done.returncode == 0, done.stderr
        assert pending_fault(state) is None
    finally:
        sub.close()


def test_without_a_last_good_config_the_error_stops_the_command(tmp_path):
    """A config given by hand, or a desk never installed onto: nothing to fall back on, so
    the command says what is wrong (exit 2) instead of running on something else."""
    live = tmp_path / "deskcue.toml"
    live.write_text('[device]\ndesk = "d07"\nsite = \n')  # cut short
    done = run(live, tone_wav(tmp_path / "call.wav", 1.0))
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1].startswith(f"deskcue: config error: {live}: line 3")
    assert not (tmp_path / "state").exists()


def test_a_lost_live_file_runs_the_last_good_config(tmp_path):
    live = tmp_path / "deskcue.toml"
    state = tmp_path / "state"
    last_good_path(live).write_text(f'[device]\nstate_dir = "{state}"\ndesk = "d07"\n'
                                    '[mqtt]\nenabled = false\n')
    settings = settings_for_run(live, runtime_dir=tmp_path / "run")
    assert settings.device.desk == "d07" and settings.device.runtime_dir == tmp_path / "run"
    rec = fault_record(state)
    assert rec is not None and rec["source"] == "live" and "last good config" in rec["message"]
    assert not live.exists()


def test_a_fault_of_another_kind_stays_when_the_live_config_loads(tmp_path):
    live = tmp_path / "deskcue.toml"
    state = tmp_path / "state"
    live.write_text(f'[device]\nstate_dir = "{state}"\n[mqtt]\nenabled = false\n')
    record_fault(state, "rollback", "MQTT config c1 rolled back: not healthy", [], 0.0)
    settings_for_run(live)
    assert "rolled back" in (pending_fault(state) or "")


def test_an_install_over_an_unusable_live_file_keeps_the_last_good_config(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    live = etc / "deskcue.toml"
    good = f'[device]\nstate_dir = "{tmp_path / "state"}"\n[mqtt]\nenabled = false\n'
    last_good_path(live).write_text(good)
    live.write_text(good + TYPO)
    new = good + '[cues.raised_voice]\nthreshold_db = 9.0\n'
    result = apply_text(new, source="local", config_path=live)
    assert result.status == "applied", result
    assert live.read_text() == new
    assert last_good_path(live).read_text() == good  # not the file the desk could not run


def test_status_on_an_unusable_live_file_shows_the_desk_it_runs_as(tmp_path):
    """`deskcue status` is what a tech runs when the light blinks red. With the live file
    unusable the desk runs its last good config: status must show that desk, its config
    fault and its records, not the shipped default's site1/desk1 and its /var/lib/deskcue."""
    etc = tmp_path / "etc"
    etc.mkdir()
    live = etc / "deskcue.toml"
    state = tmp_path / "state"
    good = (f'[device]\nsite = "lyon"\ndesk = "d07"\nstate_dir = "{state}"\n'
            f'runtime_dir = "{tmp_path / "run"}"\n[mqtt]\nenabled = false\n')
    last_good_path(live).write_text(good)
    live.write_text(good[:40])  # cut short on the card
    done = run(live, tone_wav(tmp_path / "call.wav", 1.0))
    assert done.returncode == 0, done.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "firmware.cli", "status", "--config", str(live)],
        cwd=ROOT, capture_output=True, text=True, timeout=HANG_S)
    assert shown.returncode == 1, shown.stdout + shown.stderr
    out = shown.stdout
    assert out.splitlines()[0].split() == ["desk:", "lyon/d07", "(its", "last", "good",
                                           "config)"], out
    assert "NOT USABLE" in out and "last good config" in out.split("config fault:")[1], out


def lyon_desk(tmp_path: Path) -> tuple[Path, Path]:
    """lyon/d07's live config (no broker) and its empty state directory."""
    etc = tmp_path / "etc"
    etc.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    live = etc / "deskcue.toml"
    live.write_text(f'[device]\nsite = "lyon"\ndesk = "d07"\nstate_dir = "{state}"\n'
                    f'runtime_dir = "{tmp_path / "run"}"\n[mqtt]\nenabled = false\n')
    return live, state


def test_a_damaged_config_fault_record_is_still_a_fault(tmp_path):
    """A card damaged under config-fault.json (a refused or rolled-back config nobody has
    read yet): the fault is not dropped as if there were none. The desk shows it, status
    shows it and says how to find out what it was, and `config ack` clears it."""
    live, state = lyon_desk(tmp_path)
    (state / "config-fault.json").write_bytes(b'{\n "at": "2026-12-0\x00\x00\x00')
    done = run(live, tone_wav(tmp_path / "call.wav", 1.0))
    assert done.returncode == 0, done.stderr
    assert "config fault record" in done.stderr and "damaged" in done.stderr, done.stderr

    def status() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "firmware.cli", "status", "--config", str(live)],
            cwd=ROOT, capture_output=True, text=True, timeout=HANG_S)

    shown = status()
    assert shown.returncode == 1, shown.stdout + shown.stderr
    fault_line = shown.stdout.split("config fault:")[1].splitlines()[0]
    assert "damaged" in fault_line and "journalctl" in fault_line, shown.stdout
    ack = subprocess.run(
        [sys.executable, "-m", "firmware.cli", "config", "ack", "--etc", str(live.parent)],
        cwd=ROOT, capture_output=True, text=True, timeout=HANG_S)
    assert ack.returncode == 0 and "config fault cleared" in ack.stdout, ack.stdout
    assert status().returncode == 0


def test_status_says_when_the_last_good_config_is_unusable_too(tmp_path):
    """The live file and the last good config both damaged on the card: the desk cannot run
    (`deskcue run` stops with the config error, over and over under systemd). Status said
    nothing of the last good config, so the tech could not tell why the fallback failed."""
    live = tmp_path / "deskcue.toml"
    live.write_text('[device]\nsite = "ly')
    last_good_path(live).write_bytes(b"\0\0\0\0")
    shown = subprocess.run(
        [sys.executable, "-m", "firmware.cli", "status", "--config", str(live),
         "--state-dir", str(tmp_path / "s"), "--runtime-dir", str(tmp_path / "r")],
        cwd=ROOT, capture_output=True, text=True, timeout=HANG_S)
    assert shown.returncode == 1
    lines = shown.stdout.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("last good:"))
    assert "NOT USABLE" in lines[at] and "zero bytes" in lines[at + 1], shown.stdout


def test_status_without_sudo_says_to_use_it(tmp_path):
    """A tech who forgets sudo: the state directory is the service user's (0750). Status
    shows what it can and says to run it with sudo; it does not stop on the first record it
    cannot read. (Root without its permission override meets the owner's bits like any
    user: setpriv.)"""
    import os
    import shutil

    import pytest

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("drops root's permission override with setpriv")
    live, state = lyon_desk(tmp_path)
    record_fault(state, "card", "card config deskcue.toml refused: 1 problem(s)", [], 0.0)
    os.chown(state, 65534, 65534)  # the service user's
    state.chmod(0o750)
    shown = subprocess.run(
        ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner",
         sys.executable, "-m", "firmware.cli", "status", "--config", str(live)],
        cwd=ROOT, capture_output=True, text=True, timeout=HANG_S)
    assert "Traceback" not in shown.stderr and "deskcue: " not in shown.stderr, shown.stderr
    assert f"state:         cannot read {state}: run with sudo" in shown.stdout, shown.stdout
    assert shown.stdout.startswith("desk:          lyon/d07"), shown.stdout
