"""The usual-voice baseline kept in the state directory: never saved or restored non-finite.

A baseline with nothing learned has no usual level (its median is NaN). Restoring one would
compare every cue against NaN and report ``usual nan LUFS``; saving one (a run that ended
before any speech) would leave exactly that for the next start.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from wav_file import write_pcm16

from firmware.appliance.pipeline import make_usual_voice
from firmware.appliance.worker import BASELINE_FILE, Appliance
from firmware.config.settings import Settings
from firmware.errors import AudioError

USUAL = -27.0


def settings_in(tmp_path: Path) -> Settings:
    return Settings.model_validate({
        "device": {"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "run")},
        "mqtt": {"enabled": False}})


def learned_state(seconds: float = 30.0) -> dict:
    usual = make_usual_voice(Settings())
    for _ in range(int(seconds / 0.05)):
        usual.offer(np.full(5, USUAL), np.ones(5, dtype=bool))
    assert usual.learned
    return usual.to_dict()


def appliance(settings: Settings) -> Appliance:
    def no_source():
        raise AudioError("no audio in this test")

    return Appliance(settings, open_source=no_source)


def test_an_empty_baseline_is_refused_at_load() -> None:
    empty = make_usual_voice(Settings())
    assert not empty.learned
    other = make_usual_voice(Settings())
    with pytest.raises(ValueError, match="non-finite"):
        other.load(json.loads(json.dumps(empty.to_dict())))
    assert not other.learned and other.speech_s == 0.0


def test_a_non_finite_baseline_in_the_state_dir_is_not_restored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What an earlier firmware saved after a run that heard no speech: refused with a
    warning, learned afresh, and the file is not written back."""
    settings = settings_in(tmp_path)
    path = settings.device.state_dir / BASELINE_FILE
    path.parent.mkdir(parents=True)
    state = make_usual_voice(settings).to_dict()
    state["speech_s"] = 42.0  # claims speech, but its histograms are empty: usual is NaN
    path.write_text(json.dumps(state))
    with caplog.at_level(logging.INFO):
        app = appliance(settings)
    assert not app.usual.learned and app.usual.speech_s == 0.0
    assert "usual voice restored" not in caplog.text
    assert any(r.levelno == logging.WARNING and "non-finite" in r.getMessage()
               for r in caplog.records), caplog.text
    app.save_usual()
    assert not path.exists()


def test_a_learned_baseline_round_trips_and_a_forgotten_one_stays_forgotten(
    tmp_path: Path,
) -> None:
    settings = settings_in(tmp_path)
    path = settings.device.state_dir / BASELINE_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(learned_state()))
    app = appliance(settings)
    assert app.usual.learned and abs(app.usual.usual_lufs - USUAL) < 0.25
    app.save_usual()
    saved = json.loads(path.read_text())
    assert appliance(settings).usual.usual_lufs == app.usual.usual_lufs
    assert saved["speech_s"] == app.usual.speech_s
    app.usual.reset()  # recalibrate: nothing learned yet
    app.save_usual()
    assert not path.exists(), "a recalibrated desk must not restore the forgotten baseline"
    assert not appliance(settings).usual.learned


@pytest.mark.parametrize("heard_s", [9.0, 19.0, 20.0, 20.5, 40.0])
def test_a_restored_baseline_is_ready_exactly_when_the_saved_one_was(heard_s):
    """The learning lag (heard, not learned yet) is not saved; a baseline saved the moment
    the warm-up ended must not make the desk wait for the lag's worth of speech again."""
    usual = make_usual_voice(Settings())
    for _ in range(int(round(heard_s / 0.5))):  # offered at learning points, 0.5 s each
        usual.offer(np.full(50, USUAL), np.ones(50, dtype=bool))
    assert usual.heard_s == pytest.approx(heard_s)
    restored = make_usual_voice(Settings())
    restored.load(json.loads(json.dumps(usual.to_dict())))
    assert restored.speech_s < heard_s  # the lag was not saved
    assert restored.ready == usual.ready == (heard_s >= 20.0)


def _damaged(how: str) -> object:
    """A saved baseline as a worn card or a bad copy can leave it: valid JSON, wrong inside."""
    state = learned_state()
    if how == "a list":
        return [1, 2]
    if how == "null":
        return None
    if how == "a bin past the end":
        state["loudness"]["bins"][0] = 99999
    elif how == "a negative bin":
        state["loudness"]["bins"][0] = -1
    elif how == "a bin that is not a whole number":
        state["loudness"]["bins"][0] = 1.5
    elif how == "more weights than bins":
        state["loudness"]["weights"].append(1.0)
    return state


DAMAGES = ["a list", "null", "a bin past the end", "a negative bin",
           "a bin that is not a whole number", "more weights than bins"]


@pytest.mark.parametrize("how", [d for d in DAMAGES if d != "null"])  # null: as if absent
def test_a_damaged_baseline_in_the_state_dir_is_learned_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """Not a crash at every start (systemd would restart it for ever, the desk dark): the
    appliance warns and learns the usual voice again."""
    settings = settings_in(tmp_path)
    path = settings.device.state_dir / BASELINE_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_damaged(how)))
    with caplog.at_level(logging.WARNING):
        app = appliance(settings)
    assert not app.usual.learned and app.usual.speech_s == 0.0
    assert "learning afresh" in caplog.text


@pytest.mark.parametrize("how", DAMAGES)
def test_analyze_usual_from_a_damaged_baseline_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    from firmware.cli.main import main as deskcue

    wav = tmp_path / "call.wav"
    write_pcm16(wav, np.zeros(16000))
    saved = tmp_path / BASELINE_FILE
    saved.write_text(json.dumps(_damaged(how)))
    code = deskcue(["analyze", str(wav), "--events", "--usual-from", str(saved)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "not a usable baseline" in err and "internal error" not in err


def test_an_unchanged_baseline_is_not_written_again(tmp_path: Path) -> None:
    """A desk idle all night learns nothing: saving every ``baseline.save_interval_s`` must not
    rewrite the same file on the card (1440 fsync'd writes a day for nothing). Each write
    replaces the file (a new inode), so an unchanged inode means nothing was written."""
    settings = settings_in(tmp_path)
    path = settings.device.state_dir / BASELINE_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(learned_state()))
    app = appliance(settings)
    restored = path.stat()
    for _ in range(3):
        app.save_usual()
    assert path.stat().st_ino == restored.st_ino, "a restored, unchanged baseline was rewritten"
    before = app.usual.speech_s
    app.usual.offer(np.full(2000, USUAL + 1.0), np.ones(2000, dtype=bool))
    assert app.usual.speech_s > before  # speech learned
    app.save_usual()
    learned = path.stat()
    assert learned.st_ino != restored.st_ino
    assert json.loads(path.read_text())["speech_s"] == app.usual.speech_s
    app.save_usual()
    assert path.stat().st_ino == learned.st_ino, "an unchanged baseline was rewritten"


def test_a_baseline_the_card_refused_is_saved_again(tmp_path: Path) -> None:
    """Skipping unchanged saves must not skip the retry of one the card could not take (here
    a directory stands where the file goes: the write fails, as on a card that refuses it)."""
    settings = settings_in(tmp_path)
    path = settings.device.state_dir / BASELINE_FILE
    app = appliance(settings)
    app.usual.offer(np.full(4000, USUAL), np.ones(4000, dtype=bool))
    assert app.usual.learned
    path.mkdir(parents=True)
    app.save_usual()
    assert path.is_dir()  # refused
    path.rmdir()
    app.save_usual()
    assert json.loads(path.read_text())["speech_s"] == app.usual.speech_s
