"""Facts about the host the appliance runs on: boot id, clock sync, SoC temperature."""

from __future__ import annotations

import time
from pathlib import Path


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


TIMESYNC_DIR = Path("/run/systemd/timesync")
"""systemd-timesyncd's runtime directory: there while it runs; ``synchronized`` in it once it
has synced the clock in this boot."""


def clock_is_synced() -> bool:
    """True when the wall clock can be trusted: systemd-timesyncd has synchronised it (its
    marker file exists).

    While timesyncd runs but has not synced, False whatever the year: at boot it sets the
    clock to when it last saved it (the last shutdown), so a Pi without a real-time clock
    shows a recent year hours or days behind. Only where no timesyncd runs (another NTP
    client, a container) is any wall time after 2025 taken as synced: a heuristic, stated in
    the envelope.
    """
    if (TIMESYNC_DIR / "synchronized").exists():
        return True
    if TIMESYNC_DIR.is_dir():
        return False
    return time.time() > 1_735_689_600  # 2025-01-01T00:00:00Z


def soc_temperature_c() -> float | None:
    """The SoC temperature in degrees Celsius, if the kernel exposes it."""
    try:
        return int(Path("/sys/class/thermal/thermal_zone0/temp").read_text()) / 1000.0
    except (OSError, ValueError):
        return None
