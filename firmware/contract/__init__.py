"""The desk's MQTT contract: one typed model for every payload it publishes or accepts.

Producers build these models and publish ``model.to_json()``; consumers parse with
``Model.model_validate_json(raw)`` and read attributes, so a field the contract does not have
is an error, not a silent default. `docs/asyncapi.yaml` is generated from them
(``python -m firmware.contract.asyncapi --write``).

This room imports only pydantic and the standard library. The package itself imports
nothing (names are taken from the modules below), so that `firmware.contract.limits` (plain
numbers) costs `deskcue snooze` no pydantic.

=====================  ===================================================================
module                 what
=====================  ===================================================================
`.base`                `Payload` (frozen, extra keys refused, strict) and `Absent`
`.events`              `EventEnvelope` and the ``data`` of each event type (`EVENT_DATA`)
`.desk`                `DeskStatus`, `Info`, `Telemetry`, `ApplianceStatus`, `SelftestPing`
`.commands`            command arguments (`ARG_MODELS`), `CommandResult` (`RESULT_DATA`)
`.states`              `CueState`: the retained ON/OFF of each cue and the call
`.limits`              plain numbers of the contract (`SNOOZE_MAX_MIN`), without pydantic
`.home_assistant`      Home Assistant MQTT discovery configs (`HaBinarySensor` ...)
`.asyncapi`            the AsyncAPI 3.0 document, generated from all of the above
=====================  ===================================================================
"""
