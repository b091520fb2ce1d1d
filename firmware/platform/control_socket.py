"""Local control: `deskcue snooze` talks to the running appliance over a Unix datagram socket.

Messages are small JSON objects, e.g. ``{"cmd": "snooze", "minutes": 10}``; anything
malformed is logged and ignored. The socket lives in the runtime directory (mode 0660).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import uuid
from pathlib import Path
from typing import Any

from firmware.errors import NotRunning

log = logging.getLogger("deskcue.control")
SOCKET_NAME = "control.sock"
DEFAULT_RUNTIME_DIR = Path("/run/deskcue")
"""``device.runtime_dir`` when the config leaves it out (systemd's RuntimeDirectory)."""
MAX_DATAGRAM = 4096


class ControlServer:
    """Non-blocking receiver polled by the analysis loop."""

    def __init__(self, runtime_dir: Path):
        self.path = Path(runtime_dir) / SOCKET_NAME
        self.sock: socket.socket | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.bind(str(self.path))
            os.chmod(self.path, 0o660)
            s.setblocking(False)
            self.sock = s
        except OSError as exc:
            log.warning("control socket %s unavailable (%s); `deskcue snooze` will not reach "
                        "this process", self.path, exc)

    def poll(self) -> list[dict[str, Any]]:
        """Every well-formed message waiting now."""
        out: list[dict[str, Any]] = []
        if self.sock is None:
            return out
        while True:
            try:
                data = self.sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return out
            except OSError as exc:
                log.warning("control socket: %s", exc)
                return out
            try:
                msg = json.loads(data.decode("utf-8"))
                if not isinstance(msg, dict) or not isinstance(msg.get("cmd"), str):
                    raise ValueError("not an object with a 'cmd'")
                out.append(msg)
            except (ValueError, UnicodeDecodeError) as exc:
                log.warning("control socket: ignored malformed message (%s)", exc)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            with contextlib.suppress(OSError):
                self.path.unlink()


def listening(runtime_dir: Path) -> bool:
    """True when a process listens on the control socket (a socket file left by one that
    ended refuses the connection). One this user may not talk to counts as listening."""
    path = Path(runtime_dir) / SOCKET_NAME
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(str(path))
        except PermissionError:
            return True
        except OSError:
            return False
    return True


def send(runtime_dir: Path, message: dict[str, Any]) -> None:
    """Send one message; `NotRunning` (an `OSError`) when no appliance listens."""
    path = Path(runtime_dir) / SOCKET_NAME
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(str(path))
            s.send(json.dumps(message).encode("utf-8"))
        except (FileNotFoundError, ConnectionRefusedError):
            raise NotRunning(f"no running deskcue listens on {path}") from None


def request(runtime_dir: Path, message: dict[str, Any], timeout: float = 2.0
            ) -> dict[str, Any] | None:
    """Send ``message`` to the running appliance and wait for its answer, ``{"ok": bool,
    "data": {...}}``; None when none came within ``timeout`` (s). `NotRunning` when no
    appliance listens; `PermissionError` naming the socket when this user may not talk to it.
    """
    path = Path(runtime_dir) / SOCKET_NAME
    reply_to = f"@deskcue-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(_abstract(reply_to))  # not connect(): the answer comes from another socket
        try:
            s.sendto(json.dumps({**message, "reply_to": reply_to}).encode("utf-8"), str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise NotRunning(f"no running deskcue listens on {path}") from None
        except PermissionError as exc:
            raise PermissionError(exc.errno, "permission denied (run it as the appliance's "
                                  "user, or with sudo)", str(path)) from None
        s.settimeout(timeout)
        try:
            msg = json.loads(s.recv(65536).decode("utf-8"))
        except (OSError, ValueError):
            return None
    return msg if isinstance(msg, dict) else None


def _abstract(address: str) -> str:
    """``@name`` (as in NOTIFY_SOCKET) to the kernel's abstract-socket form."""
    return "\0" + address[1:] if address.startswith("@") else address


def send_reply(reply_to: str, ok: bool, data: dict[str, Any]) -> None:
    """Answer a control-socket request that carried ``reply_to`` (for the appliance).

    The appliance calls this for a ``{"cmd": "status", "reply_to": "@..."}`` message from its
    control socket; errors are ignored (the asker may have given up). Only an abstract name
    (``@...``, what `request` binds) is answered: a file path would let whoever may ask make
    the appliance write to any datagram socket it can reach on the desk.
    """
    if not reply_to.startswith("@"):
        return
    payload = json.dumps({"ok": ok, "data": data}, default=str).encode("utf-8")
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(payload[:65000], _abstract(reply_to))


def appliance_state(runtime_dir: Path, timeout: float = 1.0) -> tuple[str, dict[str, Any] | None]:
    """("running" | "not running" | "no access", live status or None) of the appliance."""
    path = Path(runtime_dir) / SOCKET_NAME
    if not path.exists():
        return "not running", None
    reply_to = f"@deskcue-status-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.bind(_abstract(reply_to))  # not connect(): the answer comes from another socket
            s.sendto(json.dumps({"cmd": "status", "reply_to": reply_to}).encode(), str(path))
        except PermissionError:
            return "no access", None
        except OSError:
            return "not running", None
        s.settimeout(timeout)
        try:
            msg = json.loads(s.recv(65536).decode("utf-8"))
        except (OSError, ValueError):
            return "running", None
    data = msg.get("data") if isinstance(msg, dict) else None
    return "running", data if isinstance(data, dict) else None
