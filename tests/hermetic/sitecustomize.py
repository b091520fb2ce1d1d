"""Hermetic-test guard: refuses and records any touch of a desk's real paths and ports.

The test session (tests/conftest.py) installs `install` in its own process and puts this
directory on ``PYTHONPATH``, so every Python process the tests start (``deskcue run``, link
processes ...) imports it as ``sitecustomize`` and is guarded too. Settings come from the
environment:

- ``DESKCUE_TEST_ALLOWED``: path prefixes always allowed (the session's temporary directory);
- ``DESKCUE_TEST_FORBIDDEN``: path prefixes that may not be touched at all (state, runtime
  and config directories of a real desk, the boot partition, ``~/.asoundrc``);
- ``DESKCUE_TEST_NO_WRITE``: path prefixes that may be read but not written (the real home,
  the system's temporary directory);
- ``DESKCUE_TEST_FORBIDDEN_PORTS``: loopback TCP ports no test may connect to or bind
  (the shipped broker port 1883: a developer's own broker);
- ``DESKCUE_TEST_GUARD_LOG``: file that records every refusal as one JSON line.

A refused operation raises `PermissionError` before anything happens, and is recorded, so
that product code which handles the error quietly still fails the test (conftest reads the
log after each test). Prefixes are separated by ``os.pathsep``.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_WRITE_EVENTS = {
    "os.mkdir": (0,), "os.rename": (0, 1), "os.remove": (0,), "os.rmdir": (0,),
    "os.symlink": (1,), "os.link": (0, 1), "os.chmod": (0,), "os.chown": (0,),
    "os.truncate": (0,), "os.utime": (0,), "shutil.rmtree": (0,), "shutil.copyfile": (1,),
    "shutil.copytree": (1,), "shutil.move": (0, 1), "sqlite3.connect": (0,),
}
# A symlink writes only its own path; what it points at is checked as a read (a venv links
# its python to the interpreter it was made with, which may live under the read-only home).
# Where an event's path argument has a directory fd it is relative to: {path arg: fd arg}.
_DIR_FD_ARGS = {
    "os.mkdir": {0: 2}, "os.rename": {0: 2, 1: 3}, "os.remove": {0: 1}, "os.rmdir": {0: 1},
    "os.symlink": {1: 2}, "os.link": {0: 2, 1: 3}, "os.chmod": {0: 2}, "os.chown": {0: 3},
    "os.utime": {0: 3},
}
_READ_EVENTS = {"os.listdir": (0,), "os.scandir": (0,), "shutil.copyfile.src": (0,),
                "os.symlink": (0,)}
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "", "::"}

_state = threading.local()
_config: dict[str, Any] = {}


def _prefixes(name: str) -> tuple[str, ...]:
    return tuple(os.path.abspath(p) for p in os.environ.get(name, "").split(os.pathsep) if p)


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def _record(event: str, what: str) -> None:
    entry = {"pid": os.getpid(), "event": event, "what": what, "argv": sys.argv[:4]}
    log = _config.get("log")
    if log:
        _state.busy = True
        try:
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
        finally:
            _state.busy = False
    raise PermissionError(13, f"hermetic test guard: {event} on {what} is outside the test's "
                              "temporary directories", what)


def _check_path(event: str, raw: Any, write: bool, dir_fd: Any = None) -> None:
    if isinstance(raw, int) or raw is None:
        return
    try:
        name = os.fsdecode(raw)
    except (TypeError, ValueError):
        return
    if name.startswith(":memory:") or name == "":
        return
    if name.startswith("file:"):  # sqlite URI
        name = name[5:].split("?", 1)[0]
    if isinstance(dir_fd, int) and not os.path.isabs(name):
        # relative to an open directory (shutil.rmtree walks this way), not to the cwd
        try:
            name = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), name)
        except OSError:
            return
    path = os.path.abspath(name)
    if _under(path, _config["allowed"]):
        return
    if _under(path, _config["forbidden"]) or (write and _under(path, _config["no_write"])):
        _record(event, path)


def _check_address(event: str, sock: Any, address: Any) -> None:
    family = getattr(sock, "family", None)
    if family == socket.AF_UNIX and isinstance(address, (str, bytes)):
        if address[:1] in ("\0", b"\0", "", b""):
            return  # an abstract (or unnamed) socket: a name in the kernel, not a file
        _check_path(event, address, write=True)
    elif isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        if port in _config["ports"] and str(host) in _LOOPBACK:
            _record(event, f"{host}:{port}")


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if not _config.get("on") or getattr(_state, "busy", False):
        return
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None))[:3]
        write = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and bool(flags & _WRITE_FLAGS))
        _check_path(event, path, write)
    elif event in ("socket.connect", "socket.bind") and len(args) >= 2:
        _check_address(event, args[0], args[1])
    else:
        fds = _DIR_FD_ARGS.get(event, {})
        for i in _WRITE_EVENTS.get(event, ()):
            if i < len(args):
                j = fds.get(i)
                _check_path(event, args[i], write=True,
                            dir_fd=args[j] if j is not None and j < len(args) else None)
        for i in _READ_EVENTS.get(event, ()):
            if i < len(args):
                _check_path(event, args[i], write=False)


def install() -> bool:
    """Install the guard from the environment (once per process); False if not configured."""
    if not os.environ.get("DESKCUE_TEST_GUARD_LOG"):
        return False
    first = not _config
    _config.update(
        allowed=_prefixes("DESKCUE_TEST_ALLOWED"),
        forbidden=_prefixes("DESKCUE_TEST_FORBIDDEN"),
        no_write=_prefixes("DESKCUE_TEST_NO_WRITE"),
        ports={int(p) for p in os.environ.get("DESKCUE_TEST_FORBIDDEN_PORTS", "").split(",") if p},
        log=os.environ["DESKCUE_TEST_GUARD_LOG"],
        on=True,
    )
    if first:
        sys.addaudithook(_hook)
    return True


def uninstall() -> None:
    """Switch the guard off in this process (audit hooks cannot be removed)."""
    _config["on"] = False


install()
