"""Shared pytest fixtures. Each block is owned by the area named in its heading."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))  # lets tests import broker.py and asyncapi.py

# ---------------------------------------------------------------------------------------------
# MQTT: a real mosquitto on loopback (tests/broker.py)
# ---------------------------------------------------------------------------------------------

from broker import Broker, Pki, Subscriber, make_pki  # noqa: E402


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
