"""How every test waits: `wait_until` a condition holds, `HANG_S` only as the hang guard."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# How long a wait may take before it is called a hang. Every wait in the tests is for
# something that happens as soon as the machine gets round to it (a message over loopback, a
# worker storing an event, a process reaching a line, a recording played in real time reaching
# a stream position): none has a deadline of its own, so a wait fails only on a hang, on a
# dead producer (``alive``), or on a wrong outcome - never because the machine is busy. It
# bounds each wait, not a whole test; a hung test fails after it, not never.
HANG_S = 120.0


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = HANG_S,
    interval: float = 0.01,
    *,
    alive: Callable[[], bool] | None = None,
) -> Any:
    """Poll ``predicate`` until it returns a truthy value (returned).

    Fails once ``alive`` (whatever should make it true: a process, a thread) says it is gone
    and the predicate is still false, or after ``timeout`` s (a hang guard; see `HANG_S`).
    """
    deadline = time.monotonic() + timeout
    while True:
        gone = alive is not None and not alive()
        value = predicate()
        if value:
            return value
        if gone:
            raise AssertionError("condition not met, and what should meet it has ended")
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(interval)
