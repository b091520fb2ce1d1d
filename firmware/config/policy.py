"""The cue policy's sections: `[baseline]` (usual voice), `[cues.*]`, `[calls]`, `[snooze]`."""

from __future__ import annotations

from pydantic import Field

from firmware.config.section import Section
from firmware.contract.limits import SNOOZE_MAX_MIN


class BaselineSettings(Section):
    """The usual voice: robust statistics of the agent's own speech, kept across restarts."""

    warmup_speech_s: float = Field(
        20.0,
        ge=5.0,
        le=30.0,
        description="Seconds of the agent's speech to learn from before any cue may fire.",
    )
    half_life_speech_s: float = Field(
        900.0,
        ge=60.0,
        le=36000.0,
        description="Half-life of the rolling statistics, in seconds of speech: older speech "
        "weighs half as much after this much new speech.",
    )
    save_interval_s: float = Field(
        60.0, ge=5.0, le=3600.0, description="How often the baseline is saved, in seconds."
    )


class RaisedVoiceCue(Section):
    """The raised-voice cue: loudness above the agent's usual level for a hold time."""

    enabled: bool = Field(True, description="Whether the raised-voice cue is active.")
    threshold_db: float = Field(
        8.0,
        ge=3.0,
        le=30.0,
        description="Momentary loudness above the usual level (dB) that counts as raised.",
    )
    hysteresis_db: float = Field(
        3.0,
        ge=0.0,
        le=10.0,
        description="Once raised, the cue holds until loudness falls below threshold minus this.",
    )
    hold_s: float = Field(
        1.0, ge=0.2, le=30.0, description="Seconds of raised speech before the cue fires."
    )
    gap_s: float = Field(
        0.6,
        ge=0.0,
        le=5.0,
        description="Pauses between words up to this long (s) do not break the evidence.",
    )
    release_s: float = Field(
        2.0, ge=0.2, le=30.0, description="Seconds below the release level before the cue ends."
    )
    cooldown_s: float = Field(
        30.0, ge=0.0, le=3600.0, description="Seconds after a cue ends before another may start."
    )
    max_per_hour: int = Field(
        6, ge=1, le=60, description="At most this many raised-voice cues in any rolling hour."
    )


class TenseVoiceCue(Section):
    """The calm-down cue: pitch held above the agent's usual together with raised effort
    (loudness or spectral tilt) or a speaking rate well above usual."""

    enabled: bool = Field(True, description="Whether the tense-voice cue is active.")
    pitch_st: float = Field(
        4.0, ge=1.0, le=12.0,
        description="Pitch above the agent's usual pitch (semitones, median of the last "
        "0.5 s of voiced speech) that counts.")
    effort_db: float = Field(
        4.0, ge=1.0, le=20.0,
        description="Loudness above usual (dB) that counts as raised effort with the pitch.")
    tilt_db: float = Field(
        3.0, ge=0.5, le=20.0,
        description="Alpha ratio above usual (dB; a flatter, more pressed spectrum) that "
        "counts as raised effort with the pitch.")
    rate_ratio: float = Field(
        1.3, ge=1.05, le=3.0,
        description="Speaking rate at least this many times the usual rate counts with the "
        "pitch.")
    hysteresis_st: float = Field(
        1.0, ge=0.0, le=6.0, description="The cue holds until pitch falls below pitch_st "
        "minus this.")
    hold_s: float = Field(2.0, ge=0.2, le=30.0, description="Seconds before the cue fires.")
    gap_s: float = Field(0.6, ge=0.0, le=5.0, description="Pauses up to this long are bridged.")
    release_s: float = Field(2.0, ge=0.2, le=30.0, description="Seconds below release to end.")
    cooldown_s: float = Field(60.0, ge=0.0, le=3600.0, description="Seconds between cues.")
    max_per_hour: int = Field(4, ge=1, le=60, description="At most this many per rolling hour.")


class CallerEscalationCue(Section):
    """The caller's voice rising above the caller's own start-of-call level: "stay steady"."""

    enabled: bool = Field(True, description="Whether the caller-escalation cue is active.")
    baseline_speech_s: float = Field(
        8.0, ge=2.0, le=60.0,
        description="Seconds of the caller's speech at the start of each call that set the "
        "caller's usual level for that call.")
    threshold_db: float = Field(
        6.0, ge=2.0, le=30.0,
        description="Caller loudness above the caller's start-of-call level (dB) that counts.")
    pitch_st: float = Field(
        4.0, ge=1.0, le=12.0,
        description="Caller pitch above the caller's start-of-call pitch (semitones) that "
        "counts when the caller is also at least half the level threshold louder.")
    hysteresis_db: float = Field(
        2.0, ge=0.0, le=10.0, description="The cue holds until below threshold minus this.")
    hold_s: float = Field(2.0, ge=0.2, le=30.0, description="Seconds before the cue fires.")
    gap_s: float = Field(0.8, ge=0.0, le=5.0, description="Pauses up to this long (s) are bridged.")
    release_s: float = Field(3.0, ge=0.2, le=30.0, description="Seconds below release to end.")
    cooldown_s: float = Field(60.0, ge=0.0, le=3600.0, description="Seconds between cues.")
    max_per_hour: int = Field(10, ge=1, le=60, description="At most this many per rolling hour.")


class LaughterCue(Section):
    """Laughter-like bursts in the agent's voice: a short, discreet nudge."""

    enabled: bool = Field(True, description="Whether the laughter-like burst cue is active.")
    threshold: float = Field(
        0.5, ge=0.3, le=0.95,
        description="Verified laughter-likeness (0-1) at which a train of bursts counts: the "
        "pulse detector proposes trains of bursts, a small learned verifier scores the "
        "proposed train within the last second of sound (mel bands, modulation, the pulse "
        "measures; pitch is left to pitch_st); 0.5 is its operating point, higher asks for "
        "clearer laughter.")
    pitch_st: float = Field(
        2.0, ge=0.0, le=24.0,
        description="The bursts' median pitch must be at least this many semitones above "
        "the agent's reference pitch: the usual pitch, or the agent's recent speaking pitch "
        "when that is higher (see recent_s). Laughter sits above the speaking voice; read "
        "speech with a laugh-like rhythm, and an excited agent's raised speech, do not. Cues "
        "wait for the usual voice to be learned.")
    recent_s: float = Field(
        6.0, ge=0.0, le=20.0,
        description="Seconds before the bursts' start whose pitched agent speech (at least "
        "0.5 s of it, the bursts excluded) gives the recent speaking pitch, its median in "
        "semitones; the reference for pitch_st is the higher of it and the usual pitch, so a "
        "laugh must stand above what the agent was just saying. 0: the usual pitch only.")
    cooldown_s: float = Field(30.0, ge=0.0, le=3600.0, description="Seconds between cues.")
    max_per_hour: int = Field(4, ge=1, le=60, description="At most this many per rolling hour.")


class CueSettings(Section):
    """All cues; each has its own thresholds, hold, hysteresis, cooldown and cap."""

    raised_voice: RaisedVoiceCue = Field(default_factory=RaisedVoiceCue)
    tense_voice: TenseVoiceCue = Field(default_factory=TenseVoiceCue)
    caller_escalation: CallerEscalationCue = Field(default_factory=CallerEscalationCue)
    laughter: LaughterCue = Field(default_factory=LaughterCue)


class CallSettings(Section):
    """Calls are found from channel activity: they end after a silence on both channels."""

    silence_gap_s: float = Field(
        15.0, ge=2.0, le=600.0,
        description="Seconds of silence on both channels that end a call.")
    min_call_s: float = Field(
        5.0, ge=0.0, le=600.0,
        description="Calls shorter than this are marked short in their summary.")


class SnoozeSettings(Section):
    """Snooze from the desk button or `deskcue snooze`."""

    default_min: float = Field(
        15.0, gt=0.0, le=240.0, description="Minutes a button press or plain snooze lasts."
    )
    max_min: float = Field(
        120.0, gt=0.0, le=SNOOZE_MAX_MIN,
        description="Longest snooze allowed (min); a longer one asked for is cut to this, and "
                    "the answer says the minutes applied.",
    )
