"""sd_notify without a dependency: READY, WATCHDOG, STATUS and STOPPING to systemd.

A no-op when not started by systemd (no ``NOTIFY_SOCKET``).
"""

from __future__ import annotations

import os
import socket


class Notifier:
    """Sends sd_notify datagrams; `watchdog_interval_s` is a quarter of WATCHDOG_USEC, or None.

    A quarter, not systemd's suggested half: the worker feeds the watchdog between reads and
    between a block's analysis and the next read, and on a starved Pi one of those can take
    seconds; at half, one slow step after a feed came due reached 27 s of a 30 s WatchdogSec
    (`tests/bench/bench_starved.py` at a 0.5 % CPU quota)."""

    def __init__(self) -> None:
        addr = os.environ.get("NOTIFY_SOCKET", "")
        self._addr: str | None = None
        if addr:
            self._addr = "\0" + addr[1:] if addr.startswith("@") else addr
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        self.watchdog_interval_s: float | None = None
        if usec.isdigit() and (not pid or pid == str(os.getpid())):
            self.watchdog_interval_s = int(usec) / 4e6

    @property
    def enabled(self) -> bool:
        return self._addr is not None

    def notify(self, message: str) -> None:
        if self._addr is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.connect(self._addr)
                s.sendall(message.encode())
        except OSError:
            pass  # systemd went away; nothing useful to do

    def ready(self, status: str) -> None:
        self.notify(f"READY=1\nSTATUS={status}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def status(self, status: str) -> None:
        self.notify(f"STATUS={status}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")
