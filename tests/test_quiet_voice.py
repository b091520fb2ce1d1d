"""A quiet agent, near the tap's own noise, and a loud one: both learn their usual voice from
live speech, calm speech does not cue and raised speech does (the real analyzer and policy).

The voice is synthetic sentence-like speech (`synth_voice.utterance`); the tap's noise is white
at -66 dBFS RMS, as a USB headset tap has. The quiet agent's speech sits about -62 dBFS RMS on
its voiced samples, a usual level near -61 LUFS: a few dB above that noise.
"""

from __future__ import annotations

import copy
from functools import cache

import numpy as np
import pytest
from synth_voice import RATE, utterance

from firmware.appliance.pipeline import Pipeline
from firmware.config.settings import Settings

TAP_NOISE_DBFS = -66.0
WARMUP_S = 60.0


def _speech(level_dbfs: float, seeds: range) -> list[np.ndarray]:
    return [utterance(2.5, level_dbfs=level_dbfs, seed=s).audio for s in seeds]


def _with_noise(x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = x + rng.standard_normal(x.size) * 10 ** (TAP_NOISE_DBFS / 20)
    return np.clip(y, -1.0, 32767 / 32768)[:, None]


@cache
def _warmed(level_dbfs: float) -> Pipeline:
    """A desk that has heard ``WARMUP_S`` of the agent's calm speech (0.8 s pauses); trials
    run on copies."""
    parts: list[np.ndarray] = []
    for u in _speech(level_dbfs, range(100, 140)):
        parts += [u, np.zeros(int(0.8 * RATE))]
    warm = np.concatenate(parts)[: int(WARMUP_S * RATE)]
    pipe = Pipeline(Settings(), source_rate=RATE, source_channels=1)
    pipe.process(_with_noise(warm, 1))
    return pipe


def _raised_cued(pipe: Pipeline, level_dbfs: float) -> bool:
    """Whether 5 s of speech at ``level_dbfs`` (after a pause) starts a raised-voice cue."""
    trial = copy.deepcopy(pipe)
    x = np.concatenate([np.zeros(RATE), *_speech(level_dbfs, range(7, 9)), np.zeros(3 * RATE)])
    events = trial.process(_with_noise(x, 2)).events + trial.finish().events
    return any(e.type == "raised_voice.started" for e in events)


LOUD_DBFS = -20.0


@pytest.mark.parametrize("level_dbfs", [-62.0, LOUD_DBFS], ids=["quiet", "loud"])
def test_usual_voice_learned_and_cues_hold_quiet_and_loud(level_dbfs: float) -> None:
    pipe = _warmed(level_dbfs)
    assert pipe.usual.ready, f"warm-up not done: {pipe.usual.heard_s:.1f} s of speech heard"
    # The usual level tracks the voice: the quiet agent's is where the loud agent's is, moved
    # by the level difference, plus what the noise under it adds (speech 4 dB over the
    # noise, as here, reads up to about 5 dB louder).
    loud = _warmed(LOUD_DBFS).usual.usual_lufs
    assert -1.0 < pipe.usual.usual_lufs - (loud + level_dbfs - LOUD_DBFS) < 6.0
    assert not _raised_cued(pipe, level_dbfs), "calm speech cued"
    assert _raised_cued(pipe, level_dbfs + 15.0), "speech 15 dB above usual not cued"
