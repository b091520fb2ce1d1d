"""MQTT section of the config: broker, topics, TLS, the durable outbox and commands.

Secrets are never part of this section: the username and password come from a credentials
file (``credentials_file``) or from systemd credentials (``$CREDENTIALS_DIRECTORY/mqtt``), see
`firmware.link.credentials`. There is deliberately no option to skip certificate verification: a
desk either verifies its broker or does not use TLS at all.

Every key and its default, with its description: the ``[mqtt]`` tables of
``config/deskcue.toml``, generated from these models (`firmware.config.schema`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from firmware.config.section import Section


class TlsSettings(Section):
    """TLS to the broker: the broker's certificate is always verified when TLS is on."""

    enabled: bool = Field(False, description="Connect to the broker over TLS.")
    ca_file: Path | None = Field(
        None,
        description="PEM file of the CA(s) that sign the broker's certificate; none = the "
        "system's trusted CAs. The broker's host name must match its certificate.",
    )
    cert_file: Path | None = Field(
        None,
        description="PEM client certificate for certificate authentication; none = no client "
        "certificate (username/password or anonymous).",
    )
    key_file: Path | None = Field(
        None,
        description="PEM private key of the client certificate; none = the key is inside "
        "cert_file or in systemd credential `mqtt.key` ($CREDENTIALS_DIRECTORY/mqtt.key).",
    )

    @model_validator(mode="after")
    def _key_needs_cert(self) -> TlsSettings:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file is set but cert_file is not")
        return self


class HomeAssistantSettings(Section):
    """Home Assistant MQTT discovery: with it on, the desk appears in Home Assistant as one
    device (name, model, firmware version) with no YAML. It exposes what supervisors already
    read on the broker, nothing more: whether raised voice, tense voice and caller escalation
    are active (laughter-like bursts only where publish_laughter is on), whether a call is
    active, the agent's and the caller's level (LUFS, from telemetry), and buttons for identify,
    recalibrate, snooze and cancel snooze. Availability follows the desk's status topic. The
    broker account Home Assistant uses must be allowed to read the discovery prefix."""

    enabled: bool = Field(
        False, description="Publish retained Home Assistant discovery configs at every connect."
    )
    discovery_prefix: str = Field(
        "homeassistant",
        pattern=r"^[A-Za-z0-9_-]{1,64}(/[A-Za-z0-9_-]{1,64}){0,3}$",
        description="Home Assistant's discovery prefix (its MQTT integration's setting; "
        "homeassistant unless changed there). The broker ACL (`deskcue config acl`) uses it.",
    )


class MqttSettings(Section):
    """Where and how the desk talks to the supervisor's broker."""

    enabled: bool = Field(True, description="Publish to a broker at all.")
    host: str = Field("localhost", min_length=1, description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker TCP port (TLS usually 8883).")
    topic_prefix: str = Field(
        "deskcue",
        pattern=r"^[A-Za-z0-9_-]{1,64}(/[A-Za-z0-9_-]{1,64}){0,3}$",
        description="First level(s) of every topic: <prefix>/<site>/<desk>/... (letters, "
        "digits, _ and -, up to four levels separated by /).",
    )
    protocol: Literal["5", "3.1.1"] = Field(
        "5",
        description="MQTT protocol version; 5 lets telemetry expire and commands carry reason "
        "codes, 3.1.1 is for old brokers.",
    )
    client_id: str = Field(
        "",
        pattern=r"^[A-Za-z0-9_-]{0,64}$",
        description="MQTT client id; empty = deskcue-<site>-<desk>.",
    )
    keepalive_s: int = Field(30, ge=5, le=600, description="MQTT keep-alive interval, seconds.")
    reconnect_min_s: float = Field(
        1.0,
        ge=0.1,
        le=60.0,
        description="First wait before reconnecting to the broker, seconds (each wait is drawn "
        "between half and all of its value, so that a floor's desks do not all come back at once).",
    )
    reconnect_max_s: float = Field(
        60.0,
        ge=0.1,
        le=3600.0,
        description="Longest wait between reconnect attempts, seconds (the wait doubles from "
        "reconnect_min_s up to this).",
    )
    refused_fault_s: float = Field(
        30.0,
        ge=0.0,
        le=3600.0,
        description="Seconds the broker must keep refusing this desk for its settings (bad "
        "user name or password, not authorized, client id) before that is the desk's mqtt "
        "fault: a broker reloading its accounts refuses for a moment and is no fault.",
    )
    publish_laughter: bool = Field(
        True, description="Whether supervisors learn of laughter-like cues: the laughter_burst "
        "event, state/laughter, their count in telemetry, the cmd/status result and call.ended, "
        "and `display = laughter` during the flash. Off, they stay on the desk (its light and "
        "`deskcue status`)."
    )
    publish_snooze: bool = Field(
        False,
        description="Whether supervisors learn that the agent snoozed the cues (desk button "
        "or `deskcue snooze`): the `snooze` event, and `snoozed` in telemetry and in the "
        "cmd/status result. Off (the default), the agent's snooze stays on the desk (its "
        "light and `deskcue status`). A snooze sent over MQTT cmd/snooze is always published: "
        "it is the supervisor's act. See docs/decisions.md.",
    )
    credentials_file: Path | None = Field(
        None,
        description="File with `username = ...` and `password = ...` lines for the broker; "
        "none = systemd credential `mqtt` ($CREDENTIALS_DIRECTORY/mqtt) if present, else "
        "anonymous. Secrets never go in this config file.",
    )
    tls: TlsSettings = Field(default_factory=TlsSettings)
    home_assistant: HomeAssistantSettings = Field(default_factory=HomeAssistantSettings)
    telemetry_interval_s: float = Field(
        1.0,
        ge=1.0,
        le=3600.0,
        description="Seconds between telemetry messages. Its levels are what the supervisor's "
        "monitor shows as the agent's and caller's level now; 1 s costs about 0.3 kB/s per "
        "desk (docs/decisions.md).",
    )
    telemetry_expiry_s: int = Field(
        30,
        ge=1,
        le=86400,
        description="MQTT 5 message expiry of telemetry, seconds: a broker drops telemetry "
        "older than this instead of delivering it late. At least telemetry_interval_s.",
    )
    outbox_max_events: int = Field(
        10000,
        ge=10,
        le=1_000_000,
        description="Most events kept in the durable outbox while the broker is away; the "
        "oldest are dropped beyond this, counted and reported in an outbox_dropped event.",
    )
    outbox_max_age_h: float = Field(
        72.0,
        gt=0.0,
        le=720.0,
        description="Events older than this many hours are dropped from the outbox (counted "
        "and reported); the age is only judged when it can be trusted (same boot, or a "
        "synced clock at both ends).",
    )
    outbox_inflight: int = Field(
        1,
        ge=1,
        le=32,
        description="Events published but not yet acknowledged at once. 1 keeps strict order "
        "even when the broker rejects one event; more only speeds up a long replay.",
    )
    stop_drain_s: float = Field(
        2.0,
        ge=0.0,
        le=30.0,
        description="On a clean stop, seconds to wait for pending events to be acknowledged "
        "before disconnecting (what is left stays in the outbox for the next start).",
    )
    command_max_bytes: int = Field(
        1024,
        ge=64,
        le=65536,
        description="Largest command payload accepted, bytes; larger ones get an error result.",
    )
    command_max_age_s: float = Field(
        60.0,
        ge=1.0,
        le=3600.0,
        description="A command whose `ts` (Unix seconds) is older than this is stale and not "
        "executed; judged only when the desk's clock is synced.",
    )
    identity_window_s: float = Field(
        300.0,
        ge=1.0,
        le=86400.0,
        description="Two session takeovers (MQTT 5 reason 0x8E) within this many seconds mean "
        "another device uses this desk's identity (a config copied to a second box): the "
        "desk raises an identity fault and backs off. A connection that then lasts this "
        "long with no sign of the other device clears the fault.",
    )
    identity_backoff_min_s: float = Field(
        30.0,
        ge=0.1,
        le=3600.0,
        description="While another device holds this desk's identity, first wait before the "
        "desk connects again, seconds; it doubles on every further conflict.",
    )
    identity_backoff_max_s: float = Field(
        1800.0,
        ge=0.1,
        le=86400.0,
        description="Longest wait between connection attempts while another device holds this "
        "desk's identity, seconds.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> MqttSettings:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        if self.identity_backoff_max_s < self.identity_backoff_min_s:
            raise ValueError("identity_backoff_max_s must be at least identity_backoff_min_s")
        if self.telemetry_expiry_s < self.telemetry_interval_s:
            raise ValueError("telemetry_expiry_s must be at least telemetry_interval_s")
        return self
