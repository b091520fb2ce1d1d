"""`deskcue analyze` reuses its freed block memory instead of faulting it in at every block."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

ROOT = Path(__file__).resolve().parent.parent


def minor_faults(wav: Path) -> int:
    proc = subprocess.Popen([sys.executable, "-m", "firmware.cli", "analyze", str(wav),
                             "--events"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, proc.stderr.read() if proc.stderr else ""
    if proc.stderr is not None:
        proc.stderr.close()
    return usage.ru_minflt


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_page_faults_do_not_grow_with_the_recording(tmp_path: Path) -> None:
    # With glibc's defaults every 2 s block mapped, unmapped or trimmed its temporaries:
    # ~500 page faults per second of stereo audio, ~0.7 s of system CPU per 10 minutes.
    rng = np.random.default_rng(1)
    faults = {}
    for seconds in (20, 120):
        wav = tmp_path / f"noise{seconds}.wav"
        soundfile.write(wav, 0.05 * rng.standard_normal((seconds * 16000, 2)), 16000)
        faults[seconds] = minor_faults(wav)
    assert faults[120] - faults[20] < 10_000, faults
