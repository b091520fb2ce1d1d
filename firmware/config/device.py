"""The ``[device]`` section: who this desk is and where it keeps its state."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from firmware.config.section import TOPIC_SAFE, Section
from firmware.platform.control_socket import DEFAULT_RUNTIME_DIR

BASELINE_FILE = "baseline.json"  # the agent's usual voice, in the state directory
SNOOZE_FILE = "snooze.json"  # when the agent's snooze ends, kept across restarts


class DeviceSettings(Section):
    """Who this desk is and where it keeps its state."""

    site: Annotated[str, Field(pattern=TOPIC_SAFE)] = Field(
        "site1", description="Site name; one MQTT subtree per site (letters, digits, _ and -)."
    )
    desk: Annotated[str, Field(pattern=TOPIC_SAFE)] = Field(
        "desk1", description="Desk name, unique within the site (letters, digits, _ and -)."
    )
    state_dir: Path = Field(
        Path("/var/lib/deskcue"),
        description="Directory for state kept across restarts (usual-voice baseline, outbox).",
    )
    runtime_dir: Path = Field(
        DEFAULT_RUNTIME_DIR,
        description="Directory for the control socket used by `deskcue snooze`.",
    )
