"""The import contracts of docs/architecture.md, checked over the import graph of the code.

Every ``import`` in ``dsp/`` and ``firmware/`` is read with `ast` (at module level and inside
functions alike), so a rule cannot be dodged by importing late.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Rooms of firmware/ by floor: a room may import its own modules and rooms on lower floors.
FLOORS: dict[str, int] = {
    "errors": 0, "contract": 0,
    "platform": 1,
    "config": 2,
    "audio": 3, "policy": 3, "indicator": 3, "link": 3, "flashing": 3, "report": 3, "demo": 3,
    "appliance": 4,
    "cli": 5,
}
# Third-party packages and the only rooms (or modules) that may import them.
CONFINED: dict[str, tuple[str, ...]] = {
    "pyaudio": ("firmware.audio",),
    "paho": ("firmware.link.mqtt_client", "firmware.link.supervisor_client"),
    "gpiozero": ("firmware.indicator",),
    "matplotlib": ("firmware.report.plot",),
    "cryptography": ("firmware.flashing.signing",),
    "argparse": ("firmware.cli",),
    "soundfile": ("firmware.audio",),
    "rich": ("firmware.cli",),
    "scipy": ("dsp", "firmware.demo"),
    "dsp": ("dsp", "firmware.policy", "firmware.report", "firmware.appliance", "firmware.cli"),
}
# Packages a module may import at its top only where named: elsewhere only inside a function,
# so that loading the module does not load them (matplotlib only when drawing; rich only when
# a progress bar is drawn, or in the monitor, whose module is loaded only when it runs).
TOP_LEVEL_ONLY_IN: dict[str, tuple[str, ...]] = {
    "matplotlib": (),
    "rich": ("firmware.cli.monitor",),
}
# What may be imported inside a function: heavy packages, and the modules that pull them in,
# so that a command loads only what it needs (`deskcue --help` loads none of them;
# importlib.metadata, ~20 ms, only for the build's version).
LAZY_OK = ("pyaudio", "paho", "gpiozero", "matplotlib", "cryptography", "rich",
           "firmware.link.mqtt_client", "firmware.link.supervisor_client", "firmware.report",
           "firmware.flashing.signing", "firmware.cli.", "firmware.config.load", "scipy.signal",
           "scipy.fft", "importlib.metadata")
# Third-party packages any room may import (arrays; the contract's and the config's models).
# Every other package is confined (`CONFINED`), so a new dependency is a decision stated here;
# `tests` is none of them: nothing shipped may lean on a test helper.
ANY_ROOM = ("numpy", "pydantic")
# Floor 0 is what every consumer loads to read a payload or an error: pydantic and the standard
# library only (no numpy: a supervisor's tool parses the contract without it).
FLOOR_0 = ("firmware.contract", "firmware.errors")
FLOOR_0_MAY_IMPORT = ("pydantic", "firmware")
DSP_MAY_IMPORT = ("numpy", "scipy", "dsp")
# Standard modules for I/O, threads, processes, clocks or logging: none of them in dsp, whose
# time is the sample count.
DSP_MAY_NOT_IMPORT = ("threading", "socket", "time", "os", "io", "wave", "logging", "queue",
                      "subprocess", "multiprocessing", "asyncio", "concurrent", "datetime",
                      "sched", "signal", "select", "selectors", "shutil", "tempfile", "sqlite3")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. firmware.link.outbox
    target: str  # what it imports, e.g. firmware.platform.files
    line: int
    nested: bool  # inside a function (a late import)

    def __str__(self) -> str:
        where = self.module.replace(".", "/") + ".py"
        return f"{where}:{self.line}: imports {self.target}" + (" (late)" if self.nested else "")


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(package: str) -> list[Import]:
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nested_nodes = {id(n) for f in ast.walk(tree)
                        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                        for n in ast.walk(f) if n is not f}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from firmware.cli import run` imports the module firmware.cli.run
                targets = [f"{node.module}.{a.name}" if _is_module(f"{node.module}.{a.name}")
                           else node.module for a in node.names]
            else:
                continue
            for t in targets:
                out.append(Import(module, t, node.lineno, id(node) in nested_nodes))
    return out


FIRMWARE = _imports("firmware")
DSP = _imports("dsp")


def _room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "firmware" else None


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix.rstrip(".") + ".")


def test_every_firmware_module_is_in_a_known_room():
    loose = sorted({i.module for i in FIRMWARE if _room(i.module) not in FLOORS
                    and i.module not in ("firmware", "firmware.errors")})
    assert not loose, f"modules outside the rooms of docs/architecture.md: {loose}"


def test_rooms_import_only_downward():
    bad = []
    for i in FIRMWARE:
        src, dst = _room(i.module), _room(i.target)
        if src is None or dst is None or src == dst or i.target == "firmware.build_version":
            continue
        if FLOORS.get(dst, 99) >= FLOORS.get(src, -1):
            bad.append(f"{i} ({src} on floor {FLOORS.get(src)}, {dst} on {FLOORS.get(dst)})")
    assert not bad, "imports that run sideways or upward:\n" + "\n".join(bad)


def test_dsp_imports_only_numpy_scipy_and_itself():
    stdlib = sys.stdlib_module_names
    bad = [str(i) for i in DSP if i.target.split(".")[0] not in DSP_MAY_IMPORT
           and i.target.split(".")[0] not in stdlib]
    bad += [str(i) for i in DSP if i.target.split(".")[0] in DSP_MAY_NOT_IMPORT]
    assert not bad, "dsp is pure signal processing:\n" + "\n".join(bad)


def test_firmware_imports_only_named_packages():
    stdlib = sys.stdlib_module_names
    known = {*ANY_ROOM, *CONFINED, "firmware"}
    bad = [str(i) for i in FIRMWARE if i.target.split(".")[0] not in stdlib
           and i.target.split(".")[0] not in known]
    assert not bad, ("a package not named in docs/architecture.md (any room: "
                     f"{', '.join(ANY_ROOM)}; the rest confined):\n" + "\n".join(bad))


def test_floor_0_imports_only_pydantic_and_the_standard_library():
    stdlib = sys.stdlib_module_names
    bad = [str(i) for i in FIRMWARE if any(_under(i.module, m) for m in FLOOR_0)
           and i.target.split(".")[0] not in stdlib
           and i.target.split(".")[0] not in FLOOR_0_MAY_IMPORT]
    assert not bad, "the contract and the errors load only pydantic:\n" + "\n".join(bad)


@pytest.mark.parametrize("package", sorted(CONFINED))
def test_packages_are_confined_to_their_room(package):
    allowed = CONFINED[package]
    bad = [str(i) for i in FIRMWARE + DSP if _under(i.target, package)
           and not any(_under(i.module, a) for a in allowed)]
    assert not bad, f"{package} is for {', '.join(allowed)} only:\n" + "\n".join(bad)


@pytest.mark.parametrize("package", sorted(TOP_LEVEL_ONLY_IN))
def test_packages_load_only_when_used(package):
    allowed = TOP_LEVEL_ONLY_IN[package]
    bad = [str(i) for i in FIRMWARE + DSP if _under(i.target, package) and not i.nested
           and not any(_under(i.module, a) for a in allowed)]
    assert not bad, (f"{package} is imported inside the function that uses it, except in "
                     f"{', '.join(allowed) or 'no module'}:\n" + "\n".join(bad))


def test_late_imports_only_defer_heavy_packages():
    bad = sorted({str(i) for i in FIRMWARE + DSP if i.nested
                  and not any(_under(i.target, p) or (p.endswith(".") and i.target.startswith(p))
                              for p in LAZY_OK)})
    assert not bad, ("an import inside a function must only defer a heavy package "
                     "(never dodge a cycle):\n" + "\n".join(bad))


def test_no_import_cycles():
    graph: dict[str, set[str]] = {}
    modules = {i.module for i in FIRMWARE}
    for i in FIRMWARE:
        target = i.target
        while target not in modules and "." in target:
            target = target.rsplit(".", 1)[0]
        if target in modules and target != i.module and target != "firmware":
            graph.setdefault(i.module, set()).add(target)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_the_contracts_see_what_they_check():
    # A rule over an empty graph passes for nothing: make sure the reader finds real imports.
    assert any(i.target == "numpy" for i in DSP)
    assert any(_under(i.target, "paho") for i in FIRMWARE)
    assert any(i.nested for i in FIRMWARE)
    assert {_room(i.module) for i in FIRMWARE} >= set(FLOORS) - {"errors", "contract"}
