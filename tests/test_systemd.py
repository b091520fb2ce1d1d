"""The units in systemd/ pass `systemd-analyze verify` and keep their promises.

verify needs every ExecStart binary to exist: the test verifies copies in which only the path
of a binary that is not installed here (/usr/local/bin/deskcue) is replaced by a stand-in
script; every other line is verified exactly as shipped.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from firmware.cli.main import build_parser

UNITS_DIR = Path(__file__).resolve().parent.parent / "systemd"
UNITS = sorted(p for p in UNITS_DIR.iterdir()
               if p.suffix in (".service", ".socket", ".timer", ".path", ".target", ".mount"))
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")


def unit_values(path: Path, key: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{key}=(.*)$", path.read_text(), re.M)]


@pytest.fixture(scope="module")
def verifiable(tmp_path_factory) -> list[Path]:
    """Copies of the units whose missing ExecStart binaries point at a stand-in."""
    d = tmp_path_factory.mktemp("units")
    stand_in = d / "deskcue"
    stand_in.write_text("#!/bin/sh\nexit 0\n")
    stand_in.chmod(0o755)
    out = []
    for unit in UNITS:
        text = unit.read_text()
        for cmd in unit_values(unit, "ExecStart"):
            exe = shlex.split(cmd.lstrip("-@:+!"))[0]
            if not Path(exe).exists():
                text = text.replace(f"ExecStart={exe} ", f"ExecStart={stand_in} ")
        (d / unit.name).write_text(text)
        out.append(d / unit.name)
    return out


def test_there_are_units():
    names = {u.name for u in UNITS}
    assert {"deskcue.service", "deskcue-config-import.service"} <= names


@needs_analyze
def test_systemd_analyze_verify_passes_cleanly(verifiable):
    proc = subprocess.run([ANALYZE, "verify", *map(str, verifiable)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # verify only warns about unknown keys or bad values: any output is a failure here
    assert (proc.stdout + proc.stderr).strip() == ""


@needs_analyze
def test_the_appliance_unit_is_well_hardened(verifiable):
    unit = next(u for u in verifiable if u.name == "deskcue.service")
    proc = subprocess.run([ANALYZE, "security", "--offline=true", str(unit)],
                          capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for deskcue.service: ([\d.]+)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    assert float(m.group(1)) <= 2.5  # "OK" on systemd's scale of 0 (safe) to 10 (exposed)


def test_the_appliance_unit_keeps_its_promises():
    unit = UNITS_DIR / "deskcue.service"
    one = {k: unit_values(unit, k) for k in (
        "Type", "WatchdogSec", "Restart", "User", "StateDirectory", "RuntimeDirectory",
        "ProtectSystem", "ProtectHome", "PrivateTmp", "NoNewPrivileges",
        "RestrictAddressFamilies", "DevicePolicy", "RestartForceExitStatus")}
    assert one["Type"] == ["notify"] and one["Restart"] == ["on-failure"]
    assert int(one["WatchdogSec"][0]) > 0
    assert one["User"] == ["deskcue"] and "audio gpio" in unit_values(
        unit, "SupplementaryGroups")[0]
    assert one["StateDirectory"] == ["deskcue"] and one["RuntimeDirectory"] == ["deskcue"]
    assert one["ProtectSystem"] == ["strict"] and one["ProtectHome"] == ["yes"]
    assert one["PrivateTmp"] == ["yes"] and one["NoNewPrivileges"] == ["yes"]
    assert one["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert one["DevicePolicy"] == ["closed"]
    allowed = unit_values(unit, "DeviceAllow")
    assert "char-alsa rw" in allowed and "char-gpiochip rw" in allowed
    creds = unit_values(unit, "LoadCredential")
    assert any(c.startswith("mqtt:") for c in creds)
    assert any(c.startswith("config-signing.pub:") for c in creds)
    from firmware.flashing.records import RESTART_EXIT_CODE
    assert one["RestartForceExitStatus"] == [str(RESTART_EXIT_CODE)]


def test_the_import_unit_runs_once_before_the_appliance_when_a_file_waits():
    unit = UNITS_DIR / "deskcue-config-import.service"
    assert unit_values(unit, "Type") == ["oneshot"]
    assert "deskcue.service" in unit_values(unit, "Before")[0]
    conditions = unit_values(unit, "ConditionPathExists")
    assert "|/boot/firmware/deskcue.toml" in conditions
    app = UNITS_DIR / "deskcue.service"
    assert "deskcue-config-import.service" in unit_values(app, "After")[0]


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_every_exec_start_is_a_valid_deskcue_command_line(unit):
    for cmd in unit_values(unit, "ExecStart"):
        argv = shlex.split(cmd)
        if Path(argv[0]).name != "deskcue":
            continue
        args = build_parser().parse_args(argv[1:])  # exits (fails the test) if invalid
        assert callable(args.func)


def test_the_desk_speaks_systemds_notify_protocol(demo_wav: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `Type=notify` and `WatchdogSec` (the unit's), the real `deskcue run` says READY=1
    once it listens, keeps feeding the watchdog while it plays a call in real time, and says
    STOPPING=1 at SIGTERM; systemd's socket is played by a datagram socket here."""
    import os
    import signal
    import socket
    import sys

    from waiting import HANG_S

    from firmware.platform.systemd import Notifier

    sock_path = tmp_path / "notify"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(sock_path))
    server.settimeout(HANG_S)  # a net for a hang: every message below is awaited, not timed
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[device]\nstate_dir = "{tmp_path}/s"\nruntime_dir = "{tmp_path}/r"\n'
                   "[mqtt]\nenabled = false\n")
    env = {k: v for k, v in os.environ.items() if k != "WATCHDOG_PID"}
    env.update(NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="400000")
    proc = subprocess.Popen([sys.executable, "-m", "firmware.cli", "run", "--config", str(cfg),
                             "--source", str(demo_wav), "--pins", "mock"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    got: list[str] = []
    try:
        def until(word: str, times: int = 1) -> None:
            while sum(word in m for m in got) < times:
                got.append(server.recv(4096).decode())

        until("READY=1")
        until("WATCHDOG=1", times=5)  # fed while the call plays (it lasts 80 s)
        proc.send_signal(signal.SIGTERM)
        until("STOPPING=1")
        assert proc.wait(HANG_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.close()
    # fed at a quarter of WatchdogSec: one slow step on a starved Pi after a feed came due
    # must still land inside it (at half, 27 s of 30 were measured)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert Notifier().watchdog_interval_s == 7.5
