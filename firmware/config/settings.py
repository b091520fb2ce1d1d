"""The appliance's configuration: one TOML file, typed models, validated as a whole at load.

Every section is a frozen pydantic model that forbids unknown keys and describes every field;
`Settings()` with no arguments is the shipped default (``config/deskcue.toml`` documents it and a
test keeps the two equal). Errors name the key path, the line in the file where it can be found,
and what is allowed."""

from __future__ import annotations

from pydantic import Field

from firmware.config.audio import AudioSettings, VoiceActivitySettings
from firmware.config.device import DeviceSettings
from firmware.config.flash import FlashSettings
from firmware.config.indicator import IndicatorSettings
from firmware.config.mqtt import MqttSettings
from firmware.config.policy import BaselineSettings, CallSettings, CueSettings, SnoozeSettings
from firmware.config.section import Section


class Settings(Section):
    """The whole configuration; `Settings()` is the shipped default."""

    device: DeviceSettings = Field(default_factory=DeviceSettings)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    voice_activity: VoiceActivitySettings = Field(default_factory=VoiceActivitySettings)
    baseline: BaselineSettings = Field(default_factory=BaselineSettings)
    cues: CueSettings = Field(default_factory=CueSettings)
    calls: CallSettings = Field(default_factory=CallSettings)
    snooze: SnoozeSettings = Field(default_factory=SnoozeSettings)
    indicator: IndicatorSettings = Field(default_factory=IndicatorSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    flash: FlashSettings = Field(default_factory=FlashSettings)
