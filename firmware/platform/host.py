"""Facts about the host the appliance runs on: boot id, clock sync, SoC temperature."""

from __future__ import annotations

import time
from pathlib import Path


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def clock_is_synced() -> bool:
    """True when systemd-timesyncd has synchronised the clock (its marker file exists).

    Any wall time after 2025 is also taken as synced on machines without timesyncd (a Pi
    without RTC boots in the past); this is a heuristic, stated in the envelope.
    """
    if Path("/run/systemd/timesync/synchronized").exists():
        return True
    return time.time() > 1_735_689_600  # 2025-01-01T00:00:00Z


def soc_temperature_c() -> float | None:
    """The SoC temperature in degrees Celsius, if the kernel exposes it."""
    try:
        return int(Path("/sys/class/thermal/thermal_zone0/temp").read_text()) / 1000.0
    except (OSError, ValueError):
        return None
