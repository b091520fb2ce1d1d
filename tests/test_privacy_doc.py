"""docs/privacy.md backs each claim with a test it names: every name must be a test that exists.

A reference is ``test_file.py::test_name``; a following ``::test_name`` is in the same file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF = re.compile(r"(test_\w+\.py)?::(test_\w+)")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)
            and n.name.startswith("test_")}


def test_every_test_privacy_md_names_exists() -> None:
    text = (ROOT / "docs" / "privacy.md").read_text()
    current: str | None = None
    named: list[tuple[str, str]] = []
    for m in REF.finditer(text):
        current = m.group(1) or current
        assert current is not None, f"::{m.group(2)} names no file before it"
        named.append((current, m.group(2)))
    assert len(named) >= 10, named  # the page cites its tests: a real check
    missing = [f"{f}::{t}" for f, t in named
               if not (ROOT / "tests" / f).exists() or t not in _tests_in(ROOT / "tests" / f)]
    assert not missing, missing
