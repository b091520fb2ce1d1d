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


def _speech(level_dbfs: float, seeds: range, room_dbfs: float | None = None) -> list[np.ndarray]:
    """Utterances at ``level_dbfs``; with ``room_dbfs``, each carries 0.6 s of its room's hiss
    (white, that RMS) before and after and under it, as a headset that gates the pauses
    between utterances passes it."""
    out = []
    for s in seeds:
        u = utterance(2.5, level_dbfs=level_dbfs, seed=s).audio
        if room_dbfs is not None:
            pad = np.zeros(int(0.6 * RATE))
            u = np.concatenate([pad, u, pad])
            u += np.random.default_rng(s).standard_normal(u.size) * 10 ** (room_dbfs / 20)
        out.append(u)
    return out


def _with_noise(x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = x + rng.standard_normal(x.size) * 10 ** (TAP_NOISE_DBFS / 20)
    return np.clip(y, -1.0, 32767 / 32768)[:, None]


@cache
def _warmed(level_dbfs: float, room_dbfs: float | None = None) -> Pipeline:
    """A desk that has heard ``WARMUP_S`` of the agent's calm speech (0.8 s pauses); trials
    run on copies."""
    parts: list[np.ndarray] = []
    for u in _speech(level_dbfs, range(100, 140), room_dbfs):
        parts += [u, np.zeros(int(0.8 * RATE))]
    warm = np.concatenate(parts)[: int(WARMUP_S * RATE)]
    pipe = Pipeline(Settings(), source_rate=RATE, source_channels=1)
    pipe.process(_with_noise(warm, 1))
    return pipe


def _raised_cued(pipe: Pipeline, level_dbfs: float, room_dbfs: float | None = None) -> bool:
    """Whether 5 s of speech at ``level_dbfs`` (after a pause) starts a raised-voice cue."""
    trial = copy.deepcopy(pipe)
    x = np.concatenate([np.zeros(RATE), *_speech(level_dbfs, range(7, 9), room_dbfs),
                        np.zeros(3 * RATE)])
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


def test_loud_agents_room_tone_is_not_their_usual_voice() -> None:
    """A loud agent (speech -10 dBFS) whose headset passes the room's hiss (-48 dBFS, 18 dB
    over the tap's own noise) with each utterance and gates the pauses between them: the hiss
    is not speech, so the usual level is the one learned without it and calm speech does not
    cue."""
    plain, room = _warmed(-10.0), _warmed(-10.0, -48.0)
    assert room.usual.ready
    assert abs(room.usual.usual_lufs - plain.usual.usual_lufs) < 1.0
    assert not _raised_cued(room, -10.0, -48.0), "calm speech cued"


def test_noise_that_swings_is_not_speech() -> None:
    """A tap whose noise swings slowly (a fan, an air vent: 1.5 dB RMS in level, about 0.5 s
    apart) is not heard as speech: the least margin grows with the noise's own swing. Steady
    hiss with a quiet voice 8 dB over it still is."""
    from scipy.signal import lfilter

    from dsp.voice_activity import VoiceActivity, VoiceActivityParams, hop_level_dbfs

    rng = np.random.default_rng(3)
    n_hops = 6000  # 60 s
    swing_db = lfilter([0.02], [1, -0.98], rng.standard_normal(n_hops))
    swing_db *= 1.5 / swing_db.std()
    hiss = rng.standard_normal(n_hops * 160) * 10 ** (TAP_NOISE_DBFS / 20)
    swinging = hiss * np.repeat(10 ** (swing_db / 20), 160)
    va = VoiceActivity(VoiceActivityParams(), n_channels=1)
    voiced, _ = va.process(hop_level_dbfs(swinging[None], 160))
    assert voiced.mean() < 0.01, f"{100 * voiced.mean():.1f} % of swinging noise taken for speech"
    # steady hiss with 0.3 s bursts 8 dB over it every second: the bursts are speech
    burst = np.tile(np.r_[np.full(30, 10 ** (8 / 20)), np.zeros(70)], n_hops // 100)
    quiet = hiss * (1 + np.repeat(burst, 160))
    va = VoiceActivity(VoiceActivityParams(), n_channels=1)
    voiced, _ = va.process(hop_level_dbfs(quiet[None], 160))
    assert voiced[0, 1000:][burst[1000:] > 0].mean() > 0.9


@pytest.mark.parametrize("click_s", [0.01, 0.04], ids=["click", "knock"])
def test_a_click_does_not_silence_a_quiet_voice(click_s: float) -> None:
    """A quiet voice (syllables 12 dB over the tap's noise) goes on being heard after a click
    (10 ms) or a knock (40 ms) on the headset at -5 dBFS, 40 dB over the voice: a click never
    sets the loudness the voice is measured against, a knock for 3 s at most (not for the
    8 s of the floor window)."""
    from dsp.voice_activity import VoiceActivity, VoiceActivityParams, hop_level_dbfs

    rng = np.random.default_rng(5)
    n_hops = 3000  # 30 s
    syllables = np.tile(np.r_[np.ones(30), np.zeros(70)], n_hops // 100)  # 0.3 s every 1 s
    noise = rng.standard_normal(n_hops * 160) * 10 ** (TAP_NOISE_DBFS / 20)
    voice = rng.standard_normal(n_hops * 160) * 10 ** ((TAP_NOISE_DBFS + 12) / 20)
    x = noise + voice * np.repeat(syllables, 160)
    at = 12 * RATE + int(0.5 * RATE)  # in a pause between syllables, 12.5 s in
    x[at:at + int(click_s * RATE)] = rng.standard_normal(int(click_s * RATE)) * 10 ** (-5 / 20)
    va = VoiceActivity(VoiceActivityParams(), n_channels=1)
    voiced, _ = va.process(hop_level_dbfs(x[None], 160))
    after = slice(1300 if click_s < 0.03 else 1600, 2100)  # the next 8 s (5 s after a knock)
    heard = voiced[0, after][syllables[after] > 0].mean()
    assert heard > 0.9, f"{100 * heard:.0f} % of the syllables after the click heard as speech"
    before = slice(400, 1200)
    assert voiced[0, before][syllables[before] > 0].mean() > 0.9


SETTLE_S = 4.0  # the offset tracked from silence (1.5 s), then the 3 s peak window


@pytest.mark.parametrize(("level_dbfs", "dc"), [(-62.0, 0.003), (LOUD_DBFS, 0.03)],
                         ids=["quiet", "loud"])
def test_a_dc_offset_on_the_tap_changes_no_voice_activity(level_dbfs: float, dc: float) -> None:
    """A tap whose converter adds a DC offset (-50 dBFS, 100 LSB, under a quiet agent; -30 dBFS
    under a loud one): DC is no sound, so voice activity and the usual voice are what they are
    without it, once the offset is tracked (4 s). The hop level was the RMS with the DC in
    it, so the offset stood as a noise floor above the voice: no speech, no call, no usual
    voice."""
    parts: list[np.ndarray] = []
    for u in _speech(level_dbfs, range(100, 112)):
        parts += [u, np.zeros(int(0.8 * RATE))]
    x = _with_noise(np.concatenate(parts), 1)

    def run(offset: float) -> tuple[np.ndarray, Pipeline]:
        pipe = Pipeline(Settings(), source_rate=RATE, source_channels=1)
        voiced = pipe.process(x + offset).features.voiced[0]
        return voiced, pipe

    (plain, _), (offset, pipe) = run(0.0), run(dc)
    settled = int(SETTLE_S / 0.01)
    assert plain.mean() > 0.3
    assert (offset[settled:] == plain[settled:]).mean() > 0.99
    assert pipe.usual.heard_s > 15.0
