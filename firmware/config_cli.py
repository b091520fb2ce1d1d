"""`deskcue config ...`: check a config file and list every problem with its line."""

from __future__ import annotations

import sys
from pathlib import Path

from firmware.settings import ConfigError, load_settings


def check(path: Path) -> int:
    """Validate ``path``; print every problem (key path, line, what is allowed); exit code."""
    try:
        load_settings(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        print(f"{path}: {len(exc.problems)} problem(s); config NOT usable", file=sys.stderr)
        return 1
    print(f"{path}: OK")
    return 0
