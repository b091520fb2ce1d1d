"""The suite is hermetic: its environment points into its own temporary directory, and the
guard (tests/hermetic/sitecustomize.py) refuses and reports any touch of a real desk."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import REAL_BROKER_PORTS, REAL_DESK_PATHS, GuardLog


def test_home_tmp_and_xdg_dirs_are_the_sessions_own(tmp_path_factory) -> None:
    base = tmp_path_factory.getbasetemp()
    for path in (Path.home(), Path(tempfile.gettempdir()), *(
            Path(os.environ[v]) for v in ("TMPDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME",
                                          "XDG_RUNTIME_DIR"))):
        assert path.is_relative_to(base), path
    assert "NOTIFY_SOCKET" not in os.environ and "CREDENTIALS_DIRECTORY" not in os.environ


def test_the_guard_keeps_the_machines_home_and_tmp_not_the_sessions(tmp_path_factory) -> None:
    """What may not be written is the machine's home and /tmp, never a directory of this
    session: under pytest-xdist a worker starts with its controller's environment, whose HOME
    and TMPDIR already point into the session's temporary directory."""
    base = tmp_path_factory.getbasetemp()
    session = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    guarded = [Path(p) for v in ("DESKCUE_TEST_NO_WRITE", "DESKCUE_TEST_FORBIDDEN")
               for p in os.environ[v].split(os.pathsep)]
    assert not [p for p in guarded if p.is_relative_to(session)], guarded
    assert Path("/tmp") in guarded


def test_this_process_cannot_touch_a_desks_real_paths(hermetic_guard: GuardLog) -> None:
    with pytest.raises(PermissionError):
        open(os.path.join(REAL_DESK_PATHS[0], "baseline.json"))  # noqa: SIM115
    with pytest.raises(PermissionError), socket.socket() as s:
        s.connect(("127.0.0.1", REAL_BROKER_PORTS[0]))
    touched = hermetic_guard.take()
    assert [t["event"] for t in touched] == ["open", "socket.connect"]


def test_the_shipped_config_would_touch_them_and_is_caught(
    hermetic_guard: GuardLog, tmp_path: Path
) -> None:
    """`deskcue run` on the shipped default config (what an earlier test did) is refused the
    real runtime dir, and the touch is reported: its first act, asking whether another
    appliance answers on the desk's control socket, is caught (and, refused, it stops there)."""
    conf = tmp_path / "empty.conf"
    conf.write_text("")
    env = {**os.environ, "ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{conf}"}
    proc = subprocess.run([sys.executable, "-m", "firmware.cli", "run"], capture_output=True,
                          text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    touched = {t["what"] for t in hermetic_guard.take()}
    assert "/run/deskcue/control.sock" in touched, touched
