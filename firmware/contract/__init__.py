"""The desk's MQTT contract: one typed model for every payload it publishes or accepts.

Producers build these models and publish ``model.to_json()``; consumers parse with
``Model.model_validate_json(raw)`` and read attributes, so a field the contract does not have
is an error, not a silent default. `docs/asyncapi.yaml` is generated from them
(``python -m firmware.contract.asyncapi --write``).

This room imports only pydantic and the standard library. The package itself imports
nothing: a name taken from it loads its module then, so that `firmware.contract.limits`
(plain numbers) costs `deskcue snooze` no pydantic.

=====================  ===================================================================
module                 what
=====================  ===================================================================
`.base`                `Payload` (frozen, extra keys refused, strict) and `Absent`
`.events`              `EventEnvelope` and the ``data`` of each event type (`EVENT_DATA`)
`.desk`                `DeskStatus`, `Info`, `Telemetry`, `ApplianceStatus`
`.commands`            command arguments (`ARG_MODELS`), `CommandResult` (`RESULT_DATA`)
`.states`              `CueState`: the retained ON/OFF of each cue and the call
`.limits`              plain numbers of the contract (`SNOOZE_MAX_MIN`), without pydantic
`.home_assistant`      Home Assistant MQTT discovery configs (`HaBinarySensor` ...)
`.asyncapi`            the AsyncAPI 3.0 document, generated from all of the above
=====================  ===================================================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from firmware.contract.base import (
        Absent,
        Payload,
    )
    from firmware.contract.commands import (
        ALL_ARG_MODELS,
        ARG_MODELS,
        RESULT_DATA,
        CommandArgs,
        CommandError,
        CommandResult,
        ConfigCommandArgs,
        ConfigProblemItem,
        ConfigResult,
        IdentifyArgs,
        IdentifyResult,
        RecalibrateArgs,
        SnoozeArgs,
        StatusArgs,
    )
    from firmware.contract.desk import (
        ApplianceStatus,
        ChannelMap,
        CommandCounts,
        ConfigApply,
        DeskStatus,
        Info,
        OutboxDepth,
        Telemetry,
        TelemetryReading,
    )
    from firmware.contract.events import (
        EVENT_DATA,
        CallEnded,
        CallerEnded,
        CallerStarted,
        CallStarted,
        CueData,
        EventData,
        EventEnvelope,
        Fault,
        LaughterBurst,
        OutboxDropped,
        RaisedVoiceEnded,
        RaisedVoiceStarted,
        Recalibrate,
        Snooze,
        TenseVoiceEnded,
        TenseVoiceStarted,
        UsualVoiceLearned,
    )
    from firmware.contract.states import (
        STATE_NAMES,
        CueState,
    )

__all__ = [
    "ALL_ARG_MODELS", "ARG_MODELS", "Absent", "ApplianceStatus", "CallEnded", "CallStarted",
    "CallerEnded", "CallerStarted", "ChannelMap", "CommandArgs", "CommandCounts", "CommandError",
    "CommandResult", "ConfigApply", "ConfigCommandArgs", "ConfigProblemItem", "ConfigResult",
    "CueData", "CueState", "DeskStatus", "EVENT_DATA", "EventData", "EventEnvelope", "Fault",
    "IdentifyArgs", "IdentifyResult", "Info", "LaughterBurst", "OutboxDepth", "OutboxDropped",
    "Payload", "RESULT_DATA", "RaisedVoiceEnded", "RaisedVoiceStarted", "Recalibrate",
    "RecalibrateArgs", "STATE_NAMES", "Snooze", "SnoozeArgs", "StatusArgs", "Telemetry",
    "TelemetryReading", "TenseVoiceEnded", "TenseVoiceStarted", "UsualVoiceLearned",
]

_HOME: dict[str, str] = {
    "Absent": "firmware.contract.base",
    "Payload": "firmware.contract.base",
    "ALL_ARG_MODELS": "firmware.contract.commands",
    "ARG_MODELS": "firmware.contract.commands",
    "RESULT_DATA": "firmware.contract.commands",
    "CommandArgs": "firmware.contract.commands",
    "CommandError": "firmware.contract.commands",
    "CommandResult": "firmware.contract.commands",
    "ConfigCommandArgs": "firmware.contract.commands",
    "ConfigProblemItem": "firmware.contract.commands",
    "ConfigResult": "firmware.contract.commands",
    "IdentifyArgs": "firmware.contract.commands",
    "IdentifyResult": "firmware.contract.commands",
    "RecalibrateArgs": "firmware.contract.commands",
    "SnoozeArgs": "firmware.contract.commands",
    "StatusArgs": "firmware.contract.commands",
    "ApplianceStatus": "firmware.contract.desk",
    "ChannelMap": "firmware.contract.desk",
    "CommandCounts": "firmware.contract.desk",
    "ConfigApply": "firmware.contract.desk",
    "DeskStatus": "firmware.contract.desk",
    "Info": "firmware.contract.desk",
    "OutboxDepth": "firmware.contract.desk",
    "Telemetry": "firmware.contract.desk",
    "TelemetryReading": "firmware.contract.desk",
    "EVENT_DATA": "firmware.contract.events",
    "CallEnded": "firmware.contract.events",
    "CallerEnded": "firmware.contract.events",
    "CallerStarted": "firmware.contract.events",
    "CallStarted": "firmware.contract.events",
    "CueData": "firmware.contract.events",
    "EventData": "firmware.contract.events",
    "EventEnvelope": "firmware.contract.events",
    "Fault": "firmware.contract.events",
    "LaughterBurst": "firmware.contract.events",
    "OutboxDropped": "firmware.contract.events",
    "RaisedVoiceEnded": "firmware.contract.events",
    "RaisedVoiceStarted": "firmware.contract.events",
    "Recalibrate": "firmware.contract.events",
    "Snooze": "firmware.contract.events",
    "TenseVoiceEnded": "firmware.contract.events",
    "TenseVoiceStarted": "firmware.contract.events",
    "UsualVoiceLearned": "firmware.contract.events",
    "STATE_NAMES": "firmware.contract.states",
    "CueState": "firmware.contract.states",
}


def __getattr__(name: str) -> Any:
    """``firmware.contract.NAME``: imported from its module on first use (PEP 562)."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
