"""The ``[audio]`` and ``[voice_activity]`` sections: the headset tap and what counts as speech."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from firmware.config.section import Section


class AudioSettings(Section):
    """The headset tap: which capture device, how many channels, which one is the agent."""

    device: str = Field(
        "",
        description="Capture device chosen by a case-insensitive substring of its name; "
        "empty = the system's default input device.",
    )
    channels: Literal[1, 2] = Field(
        2, description="Channels to capture: 1 = mono tap (agent only), 2 = stereo tap."
    )
    agent_channel: Literal["left", "right"] = Field(
        "left", description="Which channel of a stereo tap carries the agent's voice."
    )
    caller_channel: Literal["left", "right", "none"] = Field(
        "right", description="Which channel of a stereo tap carries the caller; none = ignore."
    )
    rate_hz: int = Field(
        0,
        ge=0,
        le=192000,
        description="Capture rate in Hz; 0 = the device's default rate. Any rate is "
        "converted to the 16 kHz analysis rate.",
    )
    block_s: float = Field(
        0.1, gt=0.0, le=0.5,
        description="Capture and analysis block length in seconds: longer costs less CPU per "
        "second of audio (per-call overhead), shorter answers sooner (up to one block later).",
    )
    queue_s: float = Field(
        2.0,
        ge=0.5,
        le=600.0,
        description="Capacity of the queue between the capture callback and the analysis, in "
        "seconds of audio; a full queue drops blocks and counts them as input overflows. It is "
        "how far behind the sound a desk that cannot keep up may fall: a cue later than this "
        "would no longer go with what the agent just said.",
    )
    no_audio_fault_s: float = Field(
        3.0, gt=0.0, le=60.0, description="Seconds without audio before the fault pattern shows."
    )

    @model_validator(mode="after")
    def _distinct_channels(self) -> AudioSettings:
        if self.channels == 2 and self.agent_channel == self.caller_channel:
            raise ValueError("agent_channel and caller_channel must differ")
        return self


class VoiceActivitySettings(Section):
    """Voice activity: a hop is speech when its level clears the tracked noise floor."""

    floor_dbfs: float = Field(
        -70.0, ge=-100.0, le=-20.0,
        description="Hops below this level (dBFS) are never speech. The quietest usual voice "
        "the desk serves (-60 LUFS) has syllables down to about -70 dBFS.",
    )
    margin_db: float = Field(
        10.0, ge=3.0, le=40.0,
        description="dB above the tracked noise floor that counts as speech, for a voice well "
        "above the floor.",
    )
    quiet_margin_db: float = Field(
        5.0, ge=2.0, le=40.0,
        description="The least margin (dB above the noise floor), for a voice near the floor: "
        "the margin is a quarter of the room the loudest sound held 50 ms in the last 3 s has "
        "above the floor, between the least margin and margin_db (margin_db wins should it be "
        "smaller). The least margin is this, or five times the noise's own swing when that is "
        "more (a fan or a vent), so lowering it changes nothing over a swinging noise. It must "
        "stay above the swing of the tap's steady noise (about 1 dB for hiss), or noise "
        "counts as speech.",
    )
