"""Whether the desk's wall clock is synced, as the envelope's ``clock_synced``, the commands'
age check and the outbox's age bound read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.platform import host


def test_timesyncd_not_yet_synced_is_not_synced(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """On the Pi, systemd-timesyncd sets the clock at boot to when it last saved it (the last
    shutdown: after 2025, but hours or days behind) and only marks it synchronized once NTP
    answers. Until then the clock is not synced, whatever year it shows: a fresh command
    would be refused as from the future, and events would carry a wrong time as right."""
    timesync = tmp_path / "timesync"
    timesync.mkdir()  # timesyncd runs (its RuntimeDirectory) and has not synced yet
    monkeypatch.setattr(host, "TIMESYNC_DIR", timesync)
    assert not host.clock_is_synced()
    (timesync / "synchronized").touch()
    assert host.clock_is_synced()


def test_without_timesyncd_a_clock_after_2025_is_taken_as_synced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no timesyncd runs (a container, another NTP client) the year is all there is."""
    monkeypatch.setattr(host, "TIMESYNC_DIR", tmp_path / "absent")
    monkeypatch.setattr(host.time, "time", lambda: 1_767_225_600.0)  # 2026-01-01
    assert host.clock_is_synced()
    monkeypatch.setattr(host.time, "time", lambda: 1_700_000_000.0)  # 2023-11
    assert not host.clock_is_synced()
