"""Shared pytest fixtures. Each block is owned by the area named in its heading."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))  # lets tests import broker.py and asyncapi.py

# ---------------------------------------------------------------------------------------------
# Hermetic: every test lives in the session's temporary directory (tests/hermetic)
# ---------------------------------------------------------------------------------------------
#
# The session's environment points HOME, XDG dirs and TMPDIR into pytest's base temporary
# directory, drops systemd's variables, and guards this process and every Python process the
# tests start (tests/hermetic/sitecustomize.py): a touch of a real desk's paths (state,
# runtime, config, boot partition), a write to the real home or /tmp, or a connection to the
# shipped broker port is refused and fails the test that did it.

GUARD_DIR = TESTS_DIR / "hermetic"
REAL_DESK_PATHS = ("/var/lib/deskcue", "/run/deskcue", "/etc/deskcue", "/etc/credstore", "/boot")
REAL_BROKER_PORTS = (1883, 8883)
_SYSTEMD_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "CREDENTIALS_DIRECTORY",
                 "RUNTIME_DIRECTORY", "STATE_DIRECTORY", "CONFIGURATION_DIRECTORY",
                 "ALSA_CONFIG_PATH", "MPLCONFIGDIR")
_session: dict[str, Any] = {}


def _load_guard() -> Any:
    # A process started with the guard on PYTHONPATH (an xdist worker, started by a guarded
    # controller) already runs it as sitecustomize: that one is reconfigured, since a second
    # copy would add a second audit hook that refuses the first one's log writes.
    running = sys.modules.get("sitecustomize")
    if running is not None and Path(getattr(running, "__file__", "") or "").resolve() == (
            GUARD_DIR / "sitecustomize.py"):
        return running
    spec = importlib.util.spec_from_file_location("deskcue_test_guard",
                                                  GUARD_DIR / "sitecustomize.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    base = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    _session["environ"] = dict(os.environ)
    _session["tempdir"] = tempfile.tempdir
    # An xdist worker inherits the controller's environment, already pointed into the
    # controller's temporary directory: the real home and /tmp are the ones it saw first.
    real_home = os.environ.setdefault("DESKCUE_TEST_REAL_HOME", os.path.expanduser("~"))
    real_tmp = os.environ.setdefault("DESKCUE_TEST_REAL_TMP", tempfile.gettempdir())
    home, tmp = base / "home", base / "tmp"
    for d in (home, tmp, home / ".config", home / ".cache", home / ".local" / "share",
              home / ".local" / "state", home / "run"):
        d.mkdir(parents=True, exist_ok=True)
    home.joinpath("run").chmod(0o700)
    for name in _SYSTEMD_VARS:
        os.environ.pop(name, None)
    os.environ.update({
        "HOME": str(home), "TMPDIR": str(tmp),
        "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"), "XDG_RUNTIME_DIR": str(home / "run"),
        "PYTHONPATH": os.pathsep.join([str(GUARD_DIR), *filter(None, [
            os.environ.get("PYTHONPATH")])]),
        "DESKCUE_TEST_ALLOWED": str(base),
        "DESKCUE_TEST_FORBIDDEN": os.pathsep.join(
            [*REAL_DESK_PATHS, os.path.join(real_home, ".asoundrc")]),
        "DESKCUE_TEST_NO_WRITE": os.pathsep.join([real_home, real_tmp, "/tmp", "/var/tmp",
                                                  "/dev/shm"]),
        "DESKCUE_TEST_FORBIDDEN_PORTS": ",".join(map(str, REAL_BROKER_PORTS)),
        "DESKCUE_TEST_GUARD_LOG": str(base / "hermetic-guard.jsonl"),
        # where a command run by hand finds the desk's secrets (firmware.link.credentials):
        # the session's own, never this machine's /etc/credstore
        "DESKCUE_CREDSTORE": str(base / "credstore"),
    })
    tempfile.tempdir = str(tmp)
    # Hypothesis keeps its example database and caches under the session too, not in the
    # checkout, and replays nothing from an earlier run: the fuzz tests are derandomized.
    from hypothesis import configuration as hypothesis_configuration
    from hypothesis import settings as hypothesis_settings

    hypothesis_configuration.set_hypothesis_home_dir(base / "hypothesis")
    hypothesis_settings.register_profile("deskcue", database=None)
    hypothesis_settings.load_profile("deskcue")
    _session["guard"] = _load_guard()
    _session["guard"].install()


def pytest_unconfigure(config: pytest.Config) -> None:
    guard = _session.pop("guard", None)
    if guard is not None:
        guard.uninstall()
    if "environ" in _session:
        os.environ.clear()
        os.environ.update(_session.pop("environ"))
        tempfile.tempdir = _session.pop("tempdir")


class GuardLog:
    """The guard's records since a test started; `take` claims them (tests of the guard)."""

    def __init__(self) -> None:
        self.path = Path(os.environ["DESKCUE_TEST_GUARD_LOG"])
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def take(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def hermetic_guard() -> Iterator[GuardLog]:
    """Fails a test that touched anything outside its temporary directories (see above), and
    undoes any change it made to the environment (e.g. ALSA_CONFIG_PATH)."""
    environ = dict(os.environ)
    log = GuardLog()
    yield log
    os.environ.clear()
    os.environ.update(environ)
    touched = log.take()
    if touched:
        lines = "\n".join(f"  {t['event']} {t['what']} (pid {t['pid']}: {' '.join(t['argv'])})"
                          for t in touched[:10])
        pytest.fail(f"touched {len(touched)} path(s)/port(s) outside its temporary "
                    f"directories:\n{lines}", pytrace=False)

# ---------------------------------------------------------------------------------------------
# MQTT: a real mosquitto on loopback (tests/broker.py)
# ---------------------------------------------------------------------------------------------

from broker import Broker, Pki, Subscriber, dead_port, make_pki  # noqa: E402


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port where connecting is refused for the whole test (`broker.dead_port`)."""
    with dead_port() as port:
        yield port


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh anonymous mosquitto on a free loopback port, persistence off, stopped after."""
    b = Broker(tmp_path / "broker").start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[object]:
    """``broker_factory(**kwargs)`` makes (not starts) more brokers; all stopped after."""
    made: list[Broker] = []

    def make(**kwargs: object) -> Broker:
        b = Broker(tmp_path / f"broker{len(made)}", **kwargs)  # type: ignore[arg-type]
        made.append(b)
        return b

    try:
        yield make
    finally:
        for b in made:
            b.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Test certificates made once per session with openssl (see `broker.make_pki`)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def subscriber(broker: Broker) -> Iterator[Subscriber]:
    """A connected MQTT 5 subscriber to ``#`` on the `broker` fixture."""
    sub = Subscriber(broker, "#").connect()
    try:
        yield sub
    finally:
        sub.close()

# ---------------------------------------------------------------------------------------------
# Audio: recordings made with espeak-ng (firmware/demo/recording.py)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo call (calm, raised passage, calm) as a stereo 16 kHz WAV."""
    from firmware.demo.recording import demo_recording

    path, _ = demo_recording(tmp_path_factory.mktemp("demo"))
    return path
