"""The desk's MQTT contract: one typed model for every payload it publishes or accepts.

Producers build these models and publish ``model.to_json()``; consumers parse with
``Model.model_validate_json(raw)`` and read attributes, so a field the contract does not have
is an error, not a silent default. `docs/asyncapi.yaml` is generated from them
(``python -m firmware.contract.asyncapi --write``).

This room imports only pydantic and the standard library.

=====================  ===================================================================
module                 what
=====================  ===================================================================
`.base`                `Payload` (frozen, extra keys refused, strict) and `Absent`
`.events`              `EventEnvelope` and the ``data`` of each event type (`EVENT_DATA`)
`.desk`                `DeskStatus`, `Info`, `Telemetry`, `ApplianceStatus`
`.commands`            command arguments (`ARG_MODELS`), `CommandResult` (`RESULT_DATA`)
`.asyncapi`            the AsyncAPI 3.0 document, generated from all of the above
=====================  ===================================================================
"""

from firmware.contract.base import Absent, Payload
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

__all__ = [
    "ALL_ARG_MODELS", "ARG_MODELS", "EVENT_DATA", "RESULT_DATA", "Absent", "ApplianceStatus",
    "CallEnded", "CallStarted", "CallerEnded", "CallerStarted", "ChannelMap", "CommandArgs",
    "CommandCounts", "CommandError", "CommandResult", "ConfigApply", "ConfigCommandArgs",
    "ConfigProblemItem", "ConfigResult", "CueData", "DeskStatus", "EventData", "EventEnvelope",
    "Fault",
    "IdentifyArgs", "IdentifyResult", "Info", "LaughterBurst", "OutboxDepth", "OutboxDropped",
    "Payload", "RaisedVoiceEnded", "RaisedVoiceStarted", "RecalibrateArgs", "Recalibrate",
    "SnoozeArgs", "Snooze", "StatusArgs", "Telemetry", "TelemetryReading", "TenseVoiceEnded",
    "TenseVoiceStarted", "UsualVoiceLearned",
]
