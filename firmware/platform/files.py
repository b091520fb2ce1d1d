"""Files on the SD card written so that a power cut leaves the old or the new one, whole.

Every write is a temporary file, fsync, rename and a directory fsync; JSON records are read
back tolerantly (a damaged record is logged and treated as absent, or moved aside).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger("deskcue.files")

Hook = Callable[[str], None]
"""A test hook called with the name of each step of an install (crash tests)."""


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _same_owner_as_dir(fd: int, directory: Path) -> None:
    """When root writes into a directory owned by the service user, keep the open file ``fd``
    theirs (by descriptor: a path there may be a link its owner made to a file of root's)."""
    if os.geteuid() != 0:
        return
    with contextlib.suppress(OSError):
        st = directory.stat()
        os.fchown(fd, st.st_uid, st.st_gid)


# Root (`sudo deskcue config apply`, the card import) writes into directories the service
# user owns: whatever it opens there by name must not follow a link that user left.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_own(path: Path, flags: int, mode: int) -> int:
    """Open ``path`` with ``flags`` (which include O_NOFOLLOW); a link in its place is
    removed first and the file made anew (never opened through it)."""
    try:
        return os.open(path, flags, mode)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
    os.unlink(path)
    return os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)


def printable_name(path: Path | str) -> str:
    """A file's name as text that can go into UTF-8 (a report, a config comment, an MQTT
    payload): a name that is not UTF-8 (Latin-1 from a Windows share) keeps its undecodable
    bytes as surrogates, which no UTF-8 encoder or font takes; each becomes U+FFFD."""
    return Path(path).name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def atomic_write(path: Path, data: bytes, *, hook: Hook | None = None, step: str = "",
                 mode: int = 0o644) -> None:
    """Replace ``path`` with ``data``: temporary file, fsync, rename, directory fsync.

    A crash at any point leaves ``path`` as it was or as ``data``, never in between.
    ``hook(step + ".partial")`` runs with half the data written (crash tests), then
    ``hook(step + ".written")`` once the new file is in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # left by a crash, or a link: the new file is made, never reused
        fd = os.open(tmp, _NEW_FILE, mode)
        with os.fdopen(fd, "wb") as f:
            half = len(data) // 2
            f.write(data[:half])
            if hook and step:
                f.flush()
                hook(step + ".partial")
            f.write(data[half:])
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), mode)
            _same_owner_as_dir(f.fileno(), path.parent)
        os.replace(tmp, path)
    except OSError as exc:
        # Nothing was replaced. The half-written temporary file would only take space on a
        # card that is full already, and the error names the file the caller asked for (a
        # write error carries no name; "deskcue.toml.tmp: permission denied" is ours).
        with contextlib.suppress(OSError):
            tmp.unlink()
        if exc.errno is None or exc.filename not in (None, tmp, str(tmp), os.fsencode(tmp)):
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    fsync_dir(path.parent)
    if hook and step:
        hook(step + ".written")


def write_json(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON, atomically (see `atomic_write`)."""
    atomic_write(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def read_json(path: Path, *, move_aside: bool = False) -> Any | None:
    """The JSON in ``path``; None if absent or unreadable.

    A damaged file is logged; with ``move_aside`` it is renamed ``<name>.corrupt`` (kept for a
    tech) so that the next write starts fresh.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        if move_aside:
            aside = path.with_name(path.name + ".corrupt")
            with contextlib.suppress(OSError):
                os.replace(path, aside)
            log.warning("%s unreadable (%s); moved to %s, starting fresh", path, exc, aside)
        else:
            log.warning("%s unreadable (%s); ignored", path, exc)
        return None


def read_json_object(path: Path) -> dict[str, Any] | None:
    """`read_json`, but None unless the file holds a JSON object."""
    data = read_json(path)
    return data if isinstance(data, dict) else None


def remove_file(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        fsync_dir(path.parent)


def existing_ancestor(path: Path) -> Path:
    """``path`` itself if it exists, else its nearest ancestor that does (where a missing
    directory would be made: whether that can happen depends on this one)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


@contextlib.contextmanager
def locked_dir(directory: Path) -> Iterator[None]:
    """Serialise installs into ``directory`` (the boot-time import vs. an MQTT apply)."""
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / ".deskcue-config.lock"
    try:
        f = os.fdopen(_open_own(lock, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                                | os.O_CLOEXEC, 0o644), "a")
        # Made by root (`sudo deskcue config apply`, the card import), the lock would be
        # root's: the service user, who owns the directory, could then never take it again.
        _same_owner_as_dir(f.fileno(), directory)
    except PermissionError as exc:
        # The lock file is ours, not the user's: name the directory they need to write to.
        raise PermissionError(exc.errno, "permission denied (installing a config there needs "
                                         "write access: run it as root)", str(directory)) from exc
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class StateWriter:
    """Writes small state files (JSON, or None to remove the file) on a thread of its own.

    A worn SD card can take seconds over one fsync, and `write_json` does two: whoever hands
    a file here (the analysis worker) goes on at once. Per path only the latest data waits
    (a newer baseline replaces one not yet written). A write that fails is passed to
    ``on_error(path, exc, note)`` with the ``note`` given with it, on the writer's thread.
    """

    def __init__(self, on_error: Callable[[Path, OSError, Any], None]):
        self._on_error = on_error
        self._pending: dict[Path, tuple[Any, Any]] = {}  # path -> (data or None, note)
        self._busy = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def put(self, path: Path, data: Any, note: Any = None) -> None:
        """Have ``path`` replaced by ``data`` as JSON (None: removed); never waits."""
        with self._cond:
            self._pending.pop(path, None)  # the newest goes last, after the others
            self._pending[path] = (data, note)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="deskcue-state",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s until everything handed over is written; whether it is."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._pending:
                    self._cond.wait_for(lambda: bool(self._pending), 5.0)
                    if not self._pending:  # idle: the thread ends, `put` starts another
                        self._thread = None
                        return
                path = next(iter(self._pending))
                data, note = self._pending.pop(path)
                self._busy = True
            try:
                if data is None:
                    remove_file(path)
                else:
                    write_json(path, data)
            except OSError as exc:
                self._on_error(path, exc, note)
            except Exception:  # noqa: BLE001 - a bug here must not end the writer
                log.exception("writing %s failed", path)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
