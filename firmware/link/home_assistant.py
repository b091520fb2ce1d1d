"""Home Assistant MQTT discovery for one desk: which entities, on which topics.

`discovery_configs` lists every entity's config topic with its config, or None for an entity
this desk must not show (its config topic is then cleared, so switching ``publish_laughter``
off, or a mono input, removes the entity from Home Assistant too: with no caller analysed,
neither the caller's level nor the caller escalation is shown). Whether there is a caller
follows the source as analysed (``channels``, from the appliance once a source is open), not
only ``audio.channels``: a mono source on a stereo config has no caller level to show;
`discovery_messages` is the same as (topic, payload) pairs for `MqttLink`'s ``announce``.
Nothing is published unless ``mqtt.home_assistant.enabled``.

Every topic a config names is one the desk publishes (``status``, ``state/<name>``,
``telemetry``) or answers (``cmd/<name>``), and each button's payload is a valid command
without ``txid`` (the desk makes one, so it runs every time it is pressed).
"""

from __future__ import annotations

import json

from firmware import build_version
from firmware.config.settings import Settings
from firmware.contract.commands import IdentifyArgs, RecalibrateArgs, SnoozeArgs
from firmware.contract.home_assistant import (
    HaBinarySensor,
    HaButton,
    HaConfig,
    HaDevice,
    HaOrigin,
    HaSensor,
)
from firmware.link.acl import desk_account
from firmware.link.states import state_names

MODEL = "deskcue desk cue (voice level and pitch against the agent's usual)"
IDENTIFY_S = 10.0  # how long the identify button blinks the light, s


def discovery_configs(settings: Settings, firmware_version: str | None = None, *,
                      channels: int | None = None) -> dict[str, HaConfig | None]:
    """Config topic -> the entity's config, or None where the entity must be removed; empty
    when discovery is off. ``channels``: the analysed source's channel count (default
    ``audio.channels``, before any source is open)."""
    firmware_version = firmware_version or build_version()
    m, d = settings.mqtt, settings.device
    ha = m.home_assistant
    if not (m.enabled and ha.enabled):
        return {}
    node = desk_account(m.topic_prefix, d.site, d.desk).discovery_node
    base = f"{m.topic_prefix}/{d.site}/{d.desk}"
    device = HaDevice(identifiers=[node], name=f"deskcue {d.site}/{d.desk}",
                      manufacturer="deskcue", model=MODEL, sw_version=firmware_version)
    origin = HaOrigin(name="deskcue", sw_version=firmware_version)
    availability = f"{base}/status"
    states = state_names(m)
    # as `firmware.appliance.pipeline.channel_order` analyses: a caller only on a stereo
    # source whose caller channel is not "none"
    has_caller = ((settings.audio.channels if channels is None else channels) == 2
                  and settings.audio.caller_channel != "none")

    def uid(object_id: str) -> str:
        return f"{node}_{object_id}"

    def state(object_id: str, name: str, icon: str) -> HaBinarySensor | None:
        if object_id not in states:
            return None
        return HaBinarySensor(name=name, unique_id=uid(object_id), icon=icon, device=device,
                              origin=origin, availability_topic=availability,
                              state_topic=f"{base}/state/{object_id}")

    def level(who: str) -> HaSensor:
        return HaSensor(
            name=f"{who.capitalize()} level", unique_id=uid(f"{who}_level"),
            icon="mdi:waveform", state_topic=f"{base}/telemetry",
            # left out of telemetry until the channel is heard: "None" is unknown, not 0
            value_template=f"{{{{ value_json.level_lufs.{who} | default(None) }}}}",
            unit_of_measurement="LUFS", expire_after=int(m.telemetry_expiry_s), device=device,
            origin=origin, availability_topic=availability)

    def button(object_id: str, name: str, command: str, payload: str, icon: str,
               setting: bool = False) -> HaButton:
        return HaButton(name=name, unique_id=uid(object_id), icon=icon, device=device,
                        origin=origin, availability_topic=availability,
                        command_topic=f"{base}/cmd/{command}", payload_press=payload,
                        device_class="identify" if command == "identify" else None,
                        entity_category="config" if setting else None)

    entities: dict[tuple[str, str], HaConfig | None] = {
        ("binary_sensor", "raised_voice"): state("raised_voice", "Raised voice",
                                                 "mdi:volume-high"),
        ("binary_sensor", "tense_voice"): state("tense_voice", "Tense voice",
                                                "mdi:chart-bell-curve-cumulative"),
        # the caller's escalation cannot fire where no caller is analysed (its state topic
        # stays, OFF, as on every desk: the contract has it)
        ("binary_sensor", "caller"): (state("caller", "Caller escalation", "mdi:phone-alert")
                                      if has_caller else None),
        ("binary_sensor", "laughter"): state("laughter", "Laughter-like bursts",
                                             "mdi:waveform"),
        ("binary_sensor", "call"): state("call", "Call active", "mdi:phone-in-talk"),
        ("sensor", "agent_level"): level("agent"),
        ("sensor", "caller_level"): level("caller") if has_caller else None,
        ("button", "identify"): button(
            "identify", "Identify", "identify",
            _command(IdentifyArgs(seconds=IDENTIFY_S)), "mdi:lightbulb-on", setting=True),
        ("button", "recalibrate"): button(
            "recalibrate", "Recalibrate usual voice", "recalibrate",
            _command(RecalibrateArgs()), "mdi:restore", setting=True),
        ("button", "snooze"): button(
            "snooze", "Snooze cues", "snooze", _command(SnoozeArgs()), "mdi:bell-sleep"),
        ("button", "snooze_cancel"): button(
            "snooze_cancel", "Cancel snooze", "snooze", _command(SnoozeArgs(minutes=0)),
            "mdi:bell-ring"),
    }
    return {f"{ha.discovery_prefix}/{component}/{node}/{object_id}/config": config
            for (component, object_id), config in entities.items()}


def discovery_messages(settings: Settings, firmware_version: str | None = None, *,
                       channels: int | None = None) -> list[tuple[str, str]]:
    """(topic, payload) of every discovery config, retained at each connect; an empty payload
    removes an entity this desk does not have. ``channels`` as in `discovery_configs`."""
    return [(topic, json.dumps(config.to_json(), separators=(",", ":"))
             if config is not None else "")
            for topic, config in discovery_configs(settings, firmware_version,
                                                   channels=channels).items()]


def _command(args: IdentifyArgs | RecalibrateArgs | SnoozeArgs) -> str:
    """A command payload without txid (the desk makes one at each press)."""
    return json.dumps(args.to_json(), separators=(",", ":"))
