"""Peak resident memory of one command, measured apart from the process that asks.

Linux carries a process's peak RSS over fork and exec, so a child started straight from a
big process (pytest with numpy and scipy loaded) reports at least its parent's size. The
command therefore runs under a small fresh interpreter that forks it and reads its peak with
``os.wait4``: what is reported is the command's own peak (the trampoline's ~10 MB is below
anything measured here).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

TRAMPOLINE = """
import json, os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_RDWR)
    for n in (0, 1):
        os.dup2(fd, n)
    try:
        os.execv(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"code": os.waitstatus_to_exitcode(status), "kb": usage.ru_maxrss}))
"""


def peak_rss_mb(cmd: list[str], *, cwd: Path | None = None, timeout: float | None = None
                ) -> tuple[float, int, str]:
    """Run ``cmd`` (stdin and stdout to /dev/null); (its peak RSS in MB, its exit code, its
    stderr)."""
    proc = subprocess.run([sys.executable, "-c", TRAMPOLINE, *cmd], cwd=cwd, timeout=timeout,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True)
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    return got["kb"] / 1024.0, int(got["code"]), proc.stderr


def status_mb(pid: int, field: str = "VmRSS") -> float:
    """A memory line of running process ``pid``'s /proc status (``VmRSS`` now, ``VmHWM`` its
    peak so far), MB; NaN once the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")
