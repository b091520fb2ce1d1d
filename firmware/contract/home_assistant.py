"""Home Assistant MQTT discovery configs: one retained message per entity of a desk.

Published (with ``mqtt.home_assistant.enabled``) on
``<discovery_prefix>/<component>/deskcue_<site>_<desk>/<object_id>/config``: Home Assistant's
per-component discovery, with the node id the broker ACL lets the desk write
(`firmware.link.acl`). Every config names the same `HaDevice` (one device per desk), the desk's
retained ``status`` as availability (``online``/``offline``), a ``unique_id`` and either the
state topic it reads or the command topic it writes; an empty retained payload on a config
topic removes that entity. Keys are Home Assistant's long names (it also reads abbreviations;
these are for people reading the broker). The models refuse keys Home Assistant would not
read, so a typo cannot ship as a silently ignored option.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from firmware.contract.base import Absent, Payload


class HaDevice(Payload):
    """The device every entity of one desk belongs to."""

    identifiers: Annotated[list[str], Field(min_length=1, description="deskcue_<site>_<desk>.")]
    name: Annotated[str, Field(description="What Home Assistant calls the desk.")]
    manufacturer: Annotated[str, Field(description="Who makes it: deskcue.")]
    model: Annotated[str, Field(description="What it is.")]
    sw_version: Annotated[str, Field(description="Firmware version (as in info).")]


class HaOrigin(Payload):
    """Which software published the discovery config (shown in Home Assistant's logs)."""

    name: Annotated[str, Field(description="deskcue.")]
    sw_version: Annotated[str, Field(description="Firmware version.")]


class HaEntity(Payload):
    """What every entity config carries."""

    platform: ClassVar[str] = ""
    name: Annotated[str, Field(description="The entity's name (Home Assistant prefixes the "
                                           "device name).")]
    unique_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$",
                                    description="deskcue_<site>_<desk>_<object_id>.")]
    device: HaDevice
    origin: HaOrigin
    availability_topic: Annotated[str, Field(description="The desk's retained status topic.")]
    payload_available: Literal["online"] = "online"
    payload_not_available: Literal["offline"] = "offline"
    qos: Literal[0, 1] = 1
    icon: Annotated[str | Absent, Field(description="An mdi: icon.")] = None
    entity_category: Annotated[Literal["config", "diagnostic"] | Absent, Field(
        description="Shown with the device's settings rather than its controls.")] = None


class HaBinarySensor(HaEntity):
    """A ``binary_sensor``: reads ``ON``/``OFF`` from a retained ``state/<name>`` topic."""

    platform: ClassVar[str] = "binary_sensor"
    state_topic: str
    payload_on: Literal["ON"] = "ON"
    payload_off: Literal["OFF"] = "OFF"


class HaSensor(HaEntity):
    """A ``sensor``: a number read from the desk's ``telemetry`` with a template; shown as
    unavailable when no telemetry came for ``expire_after`` seconds."""

    platform: ClassVar[str] = "sensor"
    state_topic: str
    value_template: Annotated[str, Field(description="Jinja template reading the JSON.")]
    unit_of_measurement: str
    state_class: Literal["measurement"] = "measurement"
    suggested_display_precision: Annotated[int, Field(ge=0, le=3)] = 1
    expire_after: Annotated[int, Field(ge=1, description="Seconds a value stays valid.")]


class HaButton(HaEntity):
    """A ``button``: pressing it publishes ``payload_press`` (a command without ``txid``, so it
    runs every time) to ``command_topic``."""

    platform: ClassVar[str] = "button"
    command_topic: str
    payload_press: Annotated[str, Field(description="The command's JSON payload.")]
    retain: Literal[False] = False
    device_class: Literal["identify", "restart"] | Absent = None


HaConfig = HaBinarySensor | HaSensor | HaButton
"""Any discovery config the desk publishes."""
