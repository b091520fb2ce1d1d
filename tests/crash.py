"""A power cut at one named step of a write, for real: the work runs in a forked child that
dies there (``os._exit``, no cleanup, no flush beyond what the code itself made durable)."""

from __future__ import annotations

import os
from collections.abc import Callable

DIED = 99


def died_at(step: str, run: Callable[[Callable[[str], None]], object]) -> int:
    """Run ``run(hook)`` in a forked child whose ``hook`` kills it (exit status `DIED`) when
    called with ``step``; the child's exit status (0: ``step`` never came; 1: ``run`` raised)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            def hook(s: str) -> None:
                if s == step:
                    os._exit(DIED)

            run(hook)
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
