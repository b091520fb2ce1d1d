"""Generate `docs/asyncapi.yaml` (AsyncAPI 3.0) from the contract's models.

    python -m firmware.contract.asyncapi            # print the document
    python -m firmware.contract.asyncapi --write    # write docs/asyncapi.yaml
    python -m firmware.contract.asyncapi --check    # exit 1 if docs/asyncapi.yaml is stale

Channels per topic, one message per channel with an example built from the models, the
commands as AsyncAPI 3 operations with their ``reply``. Schemas are the models' JSON Schemas
(pydantic, draft 2020-12 output restricted to keywords draft-07 validators read the same way:
``$ref`` siblings are only descriptions). Standard library only: the YAML is written here.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from firmware.contract.base import Payload
from firmware.contract.commands import ALL_ARG_MODELS, CommandResult
from firmware.contract.desk import DeskStatus, Info, SelftestPing, Telemetry
from firmware.contract.events import EVENT_DATA, EventEnvelope
from firmware.contract.examples import EXAMPLES, RESULT_EXAMPLES, event_example
from firmware.contract.states import STATE_NAMES, CueState

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"
TELEMETRY_EXPIRY_S = 30  # the default mqtt.telemetry_expiry_s (a test keeps them equal)
REF = "#/components/schemas/{model}"

HEADER = """\
# GENERATED from firmware/contract by `python -m firmware.contract.asyncapi --write`.
# Do not edit by hand: change the models and regenerate (a test fails when this is stale).
"""

DESCRIPTION = """\
One MQTT subtree per desk, `deskcue/{site}/{desk}/...` (the first level is the configurable
`mqtt.topic_prefix`), so a broker ACL can pin each desk to its own subtree.

* `status` - `online` / `offline`, retained, QoS 1; `offline` is the last will and is also
  published by hand before a clean disconnect.
* `info` - retained description of the desk (firmware, config hash, boot id, audio).
* `telemetry` - every `mqtt.telemetry_interval_s`, QoS 0, never retained, MQTT 5 message
  expiry `mqtt.telemetry_expiry_s`.
* `events` - QoS 1, never retained, through a durable outbox: stored before publishing,
  delivered in order after broker outages and restarts (even `kill -9`), removed only when
  the broker acknowledges. Delivery is at-least-once: consumers drop duplicates by `id` and
  spot gaps by (`boot_id`, `seq`); an event that did not go out live carries
  `"replayed": true`; events the bounded outbox had to drop are announced in an
  `outbox_dropped` event.
* `state/{name}` - `ON` / `OFF`, retained, QoS 1: whether each cue (`raised_voice`,
  `tense_voice`, `caller`, and `laughter` where `mqtt.publish_laughter` is on) and the
  `call` is active now; sent when it starts and ends and at every connect, so a consumer
  that subscribes at any time learns the current state at once.
* `selftest` - QoS 1, never retained: `deskcue selftest` run on the desk publishes a random
  `nonce` with the desk's own account and waits to read it back (a broker round trip);
  nothing else publishes or answers here.
* `cmd/{name}` - allow-listed commands (`snooze`, `identify`, `recalibrate`, `status`, and
  `config` where remote config is on), answered on `cmd/{name}/result` with the command's
  `txid`. A repeat with the same `txid` and arguments runs once; a command without one gets
  a fresh id from the desk (`desk:` and 16 hex digits), so a fixed payload such as a
  dashboard button's runs every time (`config` alone requires a `txid`: its signature covers
  it). A command sent retained runs once, live; the copy the broker keeps is ignored at
  later connects. Stale (`ts` older than `mqtt.command_max_age_s`), oversized, malformed or
  unknown ones get an error result; over MQTT 5 a payload more than 64 KiB over the largest
  the desk takes is never sent to it (its CONNECT's Maximum Packet Size) and gets none.

With `mqtt.home_assistant.enabled`, the desk also publishes retained Home Assistant MQTT
discovery configs on `homeassistant/{component}/deskcue_{site}_{desk}/{object_id}/config`
(outside this subtree; the format is Home Assistant's, the models are in
`firmware/contract/home_assistant.py`): they point only at the channels below.

Every cue is a measurement relative to the speaker's own usual voice (dB, LUFS, semitones,
seconds), never a statement about feelings. Audio never leaves the desk. The agent's own
snooze (desk button, `deskcue snooze`) is private unless `mqtt.publish_snooze` is on: no
`snooze` event, no `snoozed` in telemetry or the status result, and `display` shows what
the light would show unsnoozed.

Every payload is a pydantic model in `firmware/contract` (Python consumers parse with
`Model.model_validate_json(raw)`); the schemas below are generated from them.
"""

COMMAND_SUMMARY = {
    "snooze": "Silence the agent's cues for `minutes` (left out: the configured default; 0 "
              "cancels).",
    "identify": "Blink the desk light so a technician can find the desk.",
    "recalibrate": "Forget the agent's usual voice and learn it again.",
    "status": "Answer with the desk's current state.",
    "config": "Install a signed config on trial (refused unless remote config is on, a "
              "signing key is installed and `issued` is newer than the last one).",
}


def _clean(node: Any) -> Any:
    """Drop pydantic's generated titles and ``default: null`` (fields that are left out)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "title" or (k == "default" and v is None):
                continue
            if k == "properties":
                out[k] = {name: _clean(sub) for name, sub in v.items()}
            else:
                out[k] = _clean(v)
        return out
    if isinstance(node, list):
        return [_clean(v) for v in node]
    return node


def _schemas(models: list[type[Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in models:
        schema = m.model_json_schema(ref_template=REF)
        for name, sub in schema.pop("$defs", {}).items():
            out[name] = _clean(sub)
        out[m.__name__] = _clean(schema)
    return dict(sorted(out.items()))


def _example(model: Payload | DeskStatus | CueState) -> dict[str, Any]:
    return {"payload": model.model_dump(mode="json")}


def _ref(path: str) -> dict[str, str]:
    return {"$ref": path}


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document as a dict."""
    desk_params = {"site": _ref("#/components/parameters/site"),
                   "desk": _ref("#/components/parameters/desk")}
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def channel(name: str, suffix: str, message: str, params: dict[str, Any] | None = None,
                description: str | None = None) -> None:
        channels[name] = {"address": f"deskcue/{{site}}/{{desk}}/{suffix}",
                          **({"description": description} if description else {}),
                          "parameters": params or desk_params,
                          "messages": {message: _ref(f"#/components/messages/{message}")}}

    def send(op: str, ch: str, qos: int, retain: bool, **extra: Any) -> None:
        operations[op] = {"action": "send", "channel": _ref(f"#/channels/{ch}"),
                          "bindings": {"mqtt": {"qos": qos, "retain": retain, **extra}}}

    channel("status", "status", "status")
    messages["status"] = {"name": "status", "contentType": "text/plain",
                          "summary": "online / offline (retained; offline is also the last "
                                     "will).",
                          "payload": _ref(REF.format(model="DeskStatus")),
                          "examples": [_example(EXAMPLES["status"])]}
    send("sendStatus", "status", 1, True)
    channel("info", "info", "info")
    messages["info"] = {"name": "info", "summary": "Retained description of the desk.",
                        "payload": _ref(REF.format(model="Info")),
                        "examples": [_example(EXAMPLES["info"])]}
    send("sendInfo", "info", 1, True)
    channel("telemetry", "telemetry", "telemetry")
    messages["telemetry"] = {"name": "telemetry",
                             "summary": "Periodic measurements and health (expiring).",
                             "payload": _ref(REF.format(model="Telemetry")),
                             "examples": [_example(EXAMPLES["telemetry"])]}
    send("sendTelemetry", "telemetry", 0, False, messageExpiryInterval=TELEMETRY_EXPIRY_S)
    channel("events", "events", "event")
    messages["event"] = {
        "name": "event", "summary": "One event in the common envelope; `type` selects the "
                                    "model of `data`.",
        "payload": _ref(REF.format(model="EventEnvelope")),
        "examples": [{"name": t, **_example(event_example(t))} for t in EVENT_DATA]}
    send("sendEvent", "events", 1, False)
    channel("state", "state/{name}", "state",
            params={**desk_params, "name": {"enum": list(STATE_NAMES),
                                            "description": "The cue (raised_voice, tense_voice, "
                                                           "caller, laughter) or the call."}},
            description="Whether each cue, and the call, is active now (retained).")
    messages["state"] = {"name": "state", "contentType": "text/plain",
                         "summary": "ON / OFF, retained: sent when the cue (or call) starts and "
                                    "ends, and at every connect with the current state.",
                         "payload": _ref(REF.format(model="CueState")),
                         "examples": [_example(EXAMPLES["state"])]}
    send("sendState", "state", 1, True)
    channel("selftest", "selftest", "selftest")
    messages["selftest"] = {"name": "selftest",
                            "summary": "`deskcue selftest`'s broker round trip: published with "
                                       "the desk's account, read back by the same command.",
                            "payload": _ref(REF.format(model="SelftestPing")),
                            "examples": [_example(EXAMPLES["selftest"])]}
    send("sendSelftest", "selftest", 1, False)
    operations["receiveSelftest"] = {"action": "receive", "channel": _ref("#/channels/selftest"),
                                     "bindings": {"mqtt": {"qos": 1, "retain": False}}}

    for name, model in ALL_ARG_MODELS.items():
        cmd, res = f"{name}Command", f"{name}Result"
        channel(cmd, f"cmd/{name}", cmd)
        channel(res, f"cmd/{name}/result", res)
        example = EXAMPLES["status_command" if name == "status" else name]
        messages[cmd] = {"name": name, "summary": COMMAND_SUMMARY[name],
                         "payload": _ref(REF.format(model=model.__name__)),
                         "examples": [_example(example)]}
        messages[res] = {"name": f"{name}Result", "summary": f"The answer to {name}, with its "
                                                             "txid.",
                         "payload": _ref(REF.format(model="CommandResult")),
                         "examples": [_example(RESULT_EXAMPLES[name])]}
        operations[f"receive{name.capitalize()}"] = {
            "action": "receive", "channel": _ref(f"#/channels/{cmd}"),
            "bindings": {"mqtt": {"qos": 1, "retain": False}},
            "reply": {"channel": _ref(f"#/channels/{res}"),
                      "messages": [_ref(f"#/channels/{res}/messages/{res}")]}}
    channel("commandResult", "cmd/{name}/result", "commandResult",
            params={**desk_params, "name": {"description": "The command's name as it arrived "
                                                           "(also an unknown one)."}},
            description="Answers to rejected commands, whatever name they arrived under.")
    messages["commandResult"] = {"name": "commandResult",
                                 "summary": "The answer to a command the link rejected.",
                                 "payload": _ref(REF.format(model="CommandResult")),
                                 "examples": [_example(RESULT_EXAMPLES["rejected"])]}
    send("sendCommandResult", "commandResult", 1, False)

    models: list[type[Any]] = [DeskStatus, Info, Telemetry, EventEnvelope, CueState, CommandResult,
                               SelftestPing, *ALL_ARG_MODELS.values()]
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "deskcue supervisor link", "version": "1.0.0",
                 "description": DESCRIPTION},
        "defaultContentType": "application/json",
        "servers": {"site-broker": {
            "host": "broker.example:8883", "protocol": "mqtt", "protocolVersion": "5",
            "description": "The site's broker; TLS with CA verification. 3.1.1 also works (no "
                           "expiry).",
            "security": [_ref("#/components/securitySchemes/userPassword"),
                         _ref("#/components/securitySchemes/clientCertificate")]}},
        "channels": channels,
        "operations": operations,
        "components": {
            "securitySchemes": {
                "userPassword": {"type": "userPassword", "description": "Per-desk account; "
                                 "read from a credentials file or systemd credentials."},
                "clientCertificate": {"type": "X509", "description": "Per-desk client "
                                      "certificate (mqtt.tls.cert_file / key_file)."}},
            "parameters": {"site": {"description": "Site name (letters, digits, _ and -)."},
                           "desk": {"description": "Desk name, unique within the site."}},
            "messages": messages,
            "schemas": _schemas(models),
        },
    }


# -- a small YAML writer (block style; strings JSON-quoted unless plainly safe) --------------------

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ./()-]*$")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return json.dumps(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _RESERVED and not s.endswith((" ", ":")):
        return s
    return json.dumps(s, ensure_ascii=False)


def _key(k: str) -> str:
    return k if _PLAIN.match(k) and k.lower() not in _RESERVED else json.dumps(k)


def _yaml(node: Any, indent: int = 0) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, str) and "\n" in v:
                lines.append(f"{pad}{_key(k)}: {'|' if v.endswith(chr(10)) else '|-'}")
                lines += [f"{pad}  {line}" if line else "" for line in v.rstrip("\n").split("\n")]
            elif isinstance(v, dict | list) and v:
                lines.append(f"{pad}{_key(k)}:")
                lines += _yaml(v, indent + 1)
            else:
                lines.append(f"{pad}{_key(k)}: {_scalar(v) if not isinstance(v, dict | list) else json.dumps(v)}")  # noqa: E501
    elif isinstance(node, list):
        for v in node:
            if isinstance(v, dict | list) and v:
                sub = _yaml(v, indent + 1)
                lines.append(f"{pad}- {sub[0].lstrip()}")
                lines += sub[1:]
            else:
                lines.append(f"{pad}- {_scalar(v) if not isinstance(v, dict | list) else json.dumps(v)}")  # noqa: E501
    return lines


def render() -> str:
    """The document as YAML text (what `--write` puts in docs/asyncapi.yaml)."""
    return HEADER + "\n".join(_yaml(document())) + "\n"


USAGE = "usage: python -m firmware.contract.asyncapi [--write | --check]"


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the document; 2 on an unknown option (argparse stays in the CLI)."""
    args = sys.argv[1:] if argv is None else argv
    if args in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if args not in ([], ["--write"], ["--check"]):
        print(USAGE, file=sys.stderr)
        return 2
    text = render()
    if args == ["--check"]:
        current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
        if current != text:
            print(f"{DOC_PATH} is stale: run python -m firmware.contract.asyncapi --write",
                  file=sys.stderr)
            return 1
        return 0
    if args == ["--write"]:
        DOC_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {DOC_PATH}")
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
