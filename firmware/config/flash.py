"""The ``[flash]`` section of the config: installing a new config from the SD card or over MQTT.

A config pushed over MQTT is only accepted when it is signed (Ed25519) by a key the desk
trusts, and it is installed on trial: the appliance must come back healthy (audio flowing with
no fault, and the broker reachable when MQTT is on) within ``trial_s``, else the last good
config is put back. See `firmware.flashing.install` and ``docs/field-tech.md``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from firmware.config.section import Section


class FlashSettings(Section):
    """Installing configs: from the SD card (boot partition), or signed over MQTT, on trial."""

    remote: bool = Field(
        True,
        description="Accept a signed config over MQTT (cmd/config). It is still refused "
        "unless a verification key is installed (see signing_keys_file).",
    )
    signing_keys_file: Path | None = Field(
        None,
        description="File of the Ed25519 public keys trusted to sign configs, one base64 key "
        "per line; none = systemd credential `config-signing.pub` "
        "($CREDENTIALS_DIRECTORY/config-signing.pub).",
    )
    max_bytes: int = Field(
        65536,
        ge=1024,
        le=1_048_576,
        description="Largest config accepted over MQTT, bytes (of the TOML text).",
    )
    trial_s: float = Field(
        180.0,
        ge=30.0,
        le=3600.0,
        description="Seconds a config pushed over MQTT has to prove healthy before the last "
        "good config is put back automatically.",
    )
    healthy_s: float = Field(
        20.0,
        ge=5.0,
        le=600.0,
        description="Seconds of audio with no fault (and the broker connected, when MQTT is "
        "on) that confirm a config on trial as good.",
    )
    trial_max_starts: int = Field(
        3,
        ge=1,
        le=20,
        description="A config on trial is rolled back at once when the appliance has started "
        "this many times under it without confirming it (a crash loop).",
    )

    @model_validator(mode="after")
    def _healthy_within_trial(self) -> FlashSettings:
        if self.healthy_s * 2 > self.trial_s:
            raise ValueError("trial_s must be at least twice healthy_s (time to start and "
                             "prove health)")
        return self


DEFAULT_KEYS_CREDENTIAL = "config-signing.pub"


def keys_path(settings: FlashSettings, credentials_dir: str | None) -> Path | None:
    """Where the trusted public keys are read from: the config's file, else the credential."""
    if settings.signing_keys_file is not None:
        return Path(settings.signing_keys_file)
    if credentials_dir:
        return Path(credentials_dir) / DEFAULT_KEYS_CREDENTIAL
    return None
