"""What a desk says about itself: ``status``, ``info``, ``telemetry``, its live status, and the
``selftest`` round trip.

`ApplianceStatus` is the appliance's state as `deskcue status` (control socket) and the MQTT
``cmd/status`` result carry it; `Telemetry` is a periodic subset of it plus the link's figures.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, RootModel

from firmware.contract.base import Absent, Payload

Display = Literal["off", "warming", "ready", "snoozed", "caller_escalation", "laughter",
                  "tense_voice", "raised_voice", "fault", "identify"]


class DeskStatus(RootModel[Literal["online", "offline"]]):
    """``status`` (plain text, retained): ``online``, or ``offline`` (the last will, and
    published by hand before a clean stop)."""

    model_config = {"frozen": True}


class ChannelMap(Payload):
    """Which input channel carries whom."""

    agent: Annotated[Literal["left", "right", "mono"], Field(
        description="The agent's channel (audio.agent_channel).")]
    caller: Annotated[Literal["left", "right", "none"], Field(
        description="The caller's channel (audio.caller_channel), none on a mono input.")]


class ConfigApply(Payload):
    """The last time a config was applied to this desk (card, MQTT, local or a rollback)."""

    hash: Annotated[str, Field(description="Short hash of the applied config.")]
    sha256: Annotated[str, Field(description="SHA-256 of the config text, hex.")]
    source: Annotated[Literal["card", "mqtt", "local", "rollback"], Field(
        description="Where it came from: the SD card, MQTT cmd/config, `deskcue config "
                    "import`, or a rollback to the last good config.")]
    at: Annotated[str, Field(description="When, UTC ISO 8601 (see clock_synced).")]
    clock_synced: Annotated[bool, Field(description="Whether the clock was synced then.")]
    boot_id: Annotated[str, Field(description="Kernel boot id at the time.")]
    file: Annotated[str | Absent, Field(description="The config file's name.")] = None
    txid: Annotated[str | Absent, Field(description="The MQTT command's txid.")] = None
    trial: Annotated[bool | Absent, Field(description="On trial (MQTT) until proven "
                                                      "healthy.")] = None
    key: Annotated[str | Absent, Field(description="Fingerprint of the signing key.")] = None
    confirmed_at: Annotated[str | Absent, Field(description="When the trial was confirmed "
                                                            "healthy, UTC ISO 8601.")] = None
    rolled_back_txid: Annotated[str | Absent, Field(description="The MQTT config that was "
                                                                "rolled back.")] = None
    reason: Annotated[str | Absent, Field(description="Why it was rolled back.")] = None


class Info(Payload):
    """``info`` (retained): what the desk runs; re-sent on every reconnect."""

    firmware: Annotated[str, Field(description="The build's version, from its package "
                                              "metadata: distinct per build (0.1.1.dev<commits>"
                                              "+g<commit> until a release is tagged; 0.1.0 for "
                                              "every build up to 2026-12-05).")]
    config_hash: Annotated[str, Field(description="Short hash of the effective config.")]
    boot_id: Annotated[str, Field(description="This run's boot id (as in every event).")]
    audio_device: Annotated[str | None, Field(description="Capture device or file in use; "
                                                          "null while none is open.")]
    channel_map: Annotated[ChannelMap, Field(description="Which channel carries whom.")]
    config_apply: Annotated[ConfigApply | None, Field(
        description="The last config apply; null if none is recorded or the record cannot "
                    "be read (then config_apply_problem says why).")]
    config_apply_problem: Annotated[str | Absent, Field(
        description="Why config_apply is null although a record is on the desk: it is "
                    "damaged (cut short by a power cut, a worn card) or off this contract. "
                    "Absent when config_apply is given or none was ever recorded.")] = None


LevelByChannel = Annotated[dict[Literal["agent", "caller"], float], Field(
    description="Latest short-term loudness per channel (agent, caller), LUFS.")]
CueCounts = Annotated[dict[str, Annotated[int, Field(ge=0)]], Field(
    description="Cues started since the appliance started: cue name -> count.")]
StreamS = Annotated[float, Field(ge=0, description="Stream time so far, s: audio analysed "
                                                   "and audio lost.")]
LostAudioS = Annotated[float, Field(
    ge=0, description="Audio lost since the stream started (blocks dropped by the desk's full "
                      "queue or by the capture device), s; counted in stream_s, and no cue's "
                      "evidence spans it.")]


class CommandCounts(Payload):
    """What the MQTT link did with the commands it received since it started, counts."""

    checked: Annotated[int, Field(ge=0, description="Commands within the rate, so checked: "
                                                    "run, refused or ignored; count.")]
    refused: Annotated[int, Field(ge=0, description="Commands answered with an error by the "
                                                    "link (invalid_args, malformed, stale ...); "
                                                    "count.")]
    ignored: Annotated[int, Field(ge=0, description="Commands retained, or on a topic no "
                                                    "answer can name: not run, not answered; "
                                                    "count.")]
    rate_limited: Annotated[int, Field(ge=0, description="Commands over the rate: answered "
                                                         "rate_limited, not run; count.")]
    dropped: Annotated[int, Field(ge=0, description="Commands over the rate in a flood beyond "
                                                    "the rate_limited answers: not answered; "
                                                    "count.")]


class OutboxDepth(Payload):
    """The durable outbox, as the link sees it."""

    depth: Annotated[int, Field(ge=0, description="Events waiting for the broker, count.")]
    dropped: Annotated[int, Field(ge=0, description="Events ever dropped by the bounds, "
                                                    "count.")]
    set_aside: Annotated[int, Field(ge=0, description="Stored events ever found unreadable "
                                                      "(damaged on the card) and set aside "
                                                      "for a tech, count.")] = 0
    durable: Annotated[bool, Field(description="Whether events are kept on disk (false: the "
                                               "state directory cannot be written, they are "
                                               "kept in memory).")] = True


class ApplianceStatus(Payload):
    """The running appliance's state (`deskcue status`, MQTT ``cmd/status`` result)."""

    display: Annotated[Display, Field(
        description="What the desk light shows; in the cmd/status result never `snoozed` "
                    "unless mqtt.publish_snooze (a snoozed desk then reports what it would "
                    "show unsnoozed).")]
    fault: Annotated[str | None, Field(description="Every active fault in words; null when "
                                                   "all is well.")]
    stream_s: StreamS
    usual_lufs: Annotated[float | None, Field(description="The agent's usual loudness, LUFS; "
                                                          "null while still learning.")]
    learned_speech_s: Annotated[float, Field(ge=0, description="Speech learned as usual, s.")]
    snoozed: Annotated[bool | Absent, Field(
        description="Whether the agent's cues are snoozed; left out of what supervisors "
                    "receive (cmd/status) unless mqtt.publish_snooze.")] = None
    snooze_left_s: Annotated[Annotated[float, Field(ge=0)] | Absent, Field(
        description="How much longer the snooze runs, s of audio (it does not run "
                    "down while no audio comes); left out when not snoozed, and of "
                    "what supervisors receive (cmd/status) unless "
                    "mqtt.publish_snooze.")] = None
    cues: CueCounts
    input_overflows: Annotated[int, Field(ge=0, description="Audio blocks dropped because "
                                                            "analysis fell behind, count.")]
    lost_audio_s: LostAudioS = 0.0
    level_lufs: LevelByChannel
    uptime_s: Annotated[float, Field(ge=0, description="Since the appliance started, s.")]
    soc_temp_c: Annotated[float | None, Field(description="SoC temperature, degrees Celsius; "
                                                          "null if not readable.")]
    commands: Annotated[CommandCounts | Absent, Field(
        description="MQTT commands received and what became of them; left out without "
                    "MQTT.")] = None
    outbox: Annotated[OutboxDepth | Absent, Field(
        description="The outbox of events for the supervisor; left out when the desk has no "
                    "MQTT link.")] = None


class TelemetryReading(Payload):
    """What the appliance measures for ``telemetry`` (the link adds ``ts`` and ``outbox``)."""

    level_lufs: LevelByChannel
    cues: CueCounts
    input_overflows: Annotated[int, Field(ge=0, description="Audio blocks dropped because "
                                                            "analysis fell behind, count.")]
    lost_audio_s: LostAudioS = 0.0
    cpu_load: Annotated[float, Field(ge=0, description="Process CPU time per wall second since "
                                                       "the last telemetry, 0-n (n cores).")]
    soc_temp_c: Annotated[float | None, Field(description="SoC temperature, degrees Celsius; "
                                                          "null if not readable.")]
    uptime_s: Annotated[float, Field(ge=0, description="Since the appliance started, s.")]
    display: Annotated[Display, Field(
        description="What the desk light shows; never `snoozed` unless mqtt.publish_snooze "
                    "(a snoozed desk then reports what it would show unsnoozed).")]
    stream_s: StreamS
    snoozed: Annotated[bool | Absent, Field(
        description="Whether the agent's cues are snoozed; present only when "
                    "mqtt.publish_snooze is on (the agent's snooze is private otherwise).")] = None


class Telemetry(TelemetryReading):
    """``telemetry`` (QoS 0, expiring): every ``mqtt.telemetry_interval_s``."""

    ts: Annotated[float, Field(description="Unix time when sent, s.")]
    outbox: Annotated[OutboxDepth, Field(description="The durable outbox.")]


class SelftestPing(Payload):
    """``selftest`` (QoS 1, not retained): `deskcue selftest`'s broker round trip, published
    with the desk's own account and read back by the same command; nothing else answers it."""

    nonce: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$", description="This round trip's "
                                "random id, 32 hex digits: what the reader waits for.")]
    ts: Annotated[float, Field(description="Unix time when sent, s.")]
