"""Start-up loads only what the command needs: light verbs import no heavy package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("scipy", "paho", "matplotlib", "gpiozero", "pyaudio", "cryptography", "rich",
         "soundfile")

PROBE = """
import json, os, sys
from firmware.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(os.environ["HEAVY"].split()))
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def loaded(*argv: str) -> dict[str, object]:
    env = {**os.environ, "HEAVY": " ".join(HEAVY)}
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    return json.loads(proc.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [
    ("--help",),
    ("config", "check", "config/deskcue.toml"),
    ("config", "--help"),
    ("status", "--help"),
    ("snooze", "--help"),
    ("recalibrate", "--help"),
])
def test_light_commands_import_no_heavy_package(argv):
    got = loaded(*argv)
    assert got["code"] == 0
    assert got["heavy"] == [], f"deskcue {' '.join(argv)} imported {got['heavy']}"


def test_a_heavy_verb_still_loads_what_it_needs():
    # The probe sees imports: `analyze --help` sets up the analyzer's verb, which needs scipy.
    got = loaded("analyze", "--help")
    assert got["code"] == 0 and "scipy" in got["heavy"]


def test_every_verb_is_listed_and_parses_in_full():
    from firmware.cli.main import VERBS, build_parser

    parser = build_parser()  # every verb set up: each module imports and registers cleanly
    actions = [a for a in parser._actions if a.dest == "command"]
    assert set(actions[0].choices) == set(VERBS)


MODULES = """
import json, sys
from firmware.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


@pytest.mark.parametrize("rate", [16000, 48000])
def test_analysing_loads_scipys_kernels_not_scipy_signal(tmp_path, rate):
    # scipy.signal pulls in scipy.stats, .interpolate, .optimize: ~0.8 s of CPU at every start
    import soundfile

    wav = tmp_path / "call.wav"
    t = np.arange(2 * rate) / rate
    soundfile.write(wav, 0.1 * np.stack([np.sin(2 * np.pi * 150 * t),
                                         np.sin(2 * np.pi * 220 * t)], axis=1), rate)
    proc = subprocess.run([sys.executable, "-c", MODULES, "analyze", str(wav), "--events"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    got = json.loads(proc.stderr.strip().splitlines()[-1])
    assert got["code"] == 0
    assert "scipy.signal._sigtools" in got["modules"]  # the probe sees the kernels
    heavy = [m for m in got["modules"] if m in ("scipy.signal", "scipy.fft", "scipy.stats",
                                                  "scipy.interpolate", "scipy.optimize",
                                                  "scipy.special")]
    assert heavy == [], f"deskcue analyze at {rate} Hz imported {heavy}"


def test_help_builds_no_settings_models():
    # pydantic and the settings models are two thirds of --help's CPU time
    proc = subprocess.run([sys.executable, "-c", MODULES, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    got = json.loads(proc.stderr.strip().splitlines()[-1])
    assert got["code"] == 0
    assert "firmware.cli.main" in got["modules"]
    assert [m for m in got["modules"] if m.split(".")[0] == "pydantic"
            or m.startswith("firmware.config")] == []


@pytest.mark.parametrize("how", [("--config", "CONFIG"), ("--runtime-dir", "RUN")])
def test_snooze_reaches_the_desk_without_the_settings_models(tmp_path, how):
    # What an agent presses: loading pydantic and the settings and contract models would be
    # four fifths of its CPU (0.25 s here, over a second on a Pi 3B) to read one path from
    # the config.
    from quiet_desk import desk_config, quiet_wav, running_desk

    config = desk_config(tmp_path, "[snooze]\nmax_min = 30.0\n")
    with running_desk(config, quiet_wav(tmp_path / "quiet.wav")) as run:
        where = str(config) if how[1] == "CONFIG" else str(run)
        proc = subprocess.run([sys.executable, "-c", MODULES, "snooze", how[0], where,
                               "--minutes", "200"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    got = json.loads(proc.stderr.strip().splitlines()[-1])
    assert got["code"] == 0, proc.stderr
    assert proc.stdout.startswith("snoozed for 30 min (asked for 200"), proc.stdout
    loaded = [m for m in got["modules"] if m.split(".")[0] in (*HEAVY, "pydantic", "numpy")
              or m.startswith(("firmware.config.", "firmware.contract."))
              and m != "firmware.contract.limits"
              or m == "importlib.metadata"]  # ~20 ms, for a build version snooze never says
    assert loaded == [], f"deskcue snooze imported {loaded[:8]}"


def test_the_appliance_starts_without_the_signature_library(tmp_path):
    # cryptography (Ed25519) checks a config pushed over MQTT: ~10 MB of resident memory for
    # every desk that never gets one, loaded at start until the first push needs it.
    from quiet_desk import desk_config, quiet_wav

    wav = quiet_wav(tmp_path / "quiet.wav", seconds=2.0)
    proc = subprocess.run([sys.executable, "-c", MODULES, "run", "--config",
                           str(desk_config(tmp_path)), "--source", str(wav), "--fast",
                           "--pins", "mock"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    got = json.loads(proc.stderr.strip().splitlines()[-1])
    assert got["code"] == 0, proc.stderr
    assert "firmware.appliance.worker" in got["modules"]  # the probe sees the appliance
    assert [m for m in got["modules"] if m.split(".")[0] == "cryptography"] == []
