"""`deskcue ARGS` as a person types it: a process of its own, no terminal on standard input.

The session's environment has no systemd variables (tests/conftest.py drops them, and
tests/test_hermetic.py checks), so the child neither notifies a service manager nor reads a
unit's credentials: no caller needs to strip them again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from waiting import HANG_S

ROOT = Path(__file__).resolve().parent.parent
DESKCUE = (sys.executable, "-m", "firmware.cli")  # the command, before its arguments


def deskcue(*args: str, env: Mapping[str, str] | None = None, timeout: float = HANG_S,
            **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``deskcue ARGS`` to its end (from the repository's top directory unless ``cwd``
    says otherwise); ``env`` adds to the session's environment; ``timeout`` (s) only guards
    against a hang. Output is captured as text unless ``kwargs`` route standard output or
    error; any other `subprocess.run` argument passes through."""
    if "stdout" not in kwargs and "stderr" not in kwargs:
        kwargs["capture_output"] = True
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    kwargs.setdefault("cwd", ROOT)
    return subprocess.run([*DESKCUE, *args], env={**os.environ, **(env or {})}, text=True,
                          timeout=timeout, **kwargs)
