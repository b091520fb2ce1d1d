"""Supervisor commands: the allow-list, payload validation and result payloads.

A command arrives on ``<prefix>/<site>/<desk>/cmd/<name>`` as a JSON object with an optional
transaction id, optional send time and the command's own arguments, e.g.::

    deskcue/site1/desk1/cmd/snooze   {"txid": "a1", "ts": 1767225600.0, "minutes": 10}
    deskcue/site1/desk1/cmd/identify {"seconds": 10}

A repeat with the same ``txid`` and arguments runs once (its result is sent again; the
same txid with other arguments is another command: a txid taken first by someone else
must not answer for the real one). A command without one
gets a fresh id from the desk (``desk:`` and 16 hex digits, echoed in the result), so a fixed
payload, such as a dashboard button's, runs every time; ``config`` alone requires a txid, as
its signature covers it.

and is answered on ``.../cmd/<name>/result``::

    {"txid": "a1", "cmd": "snooze", "ok": true, "ts": 1767225600.2, "data": {...}}
    {"txid": "a1", "cmd": "snooze", "ok": false, "ts": ..., "error": {"code": "invalid_args",
     "message": "minutes: Input should be less than or equal to 480"}}

Allowed commands (anything else is ``unknown_command``):

=============  =====================================  ==========================================
name           arguments                              effect (carried out by the appliance)
=============  =====================================  ==========================================
snooze         ``minutes`` (0 <= m <= 480, optional;  silence cues for that long, capped at the
               none = the configured default;         desk's ``snooze.max_min``; the result
               ``0`` cancels)                         says the minutes applied
identify       ``seconds`` (0 < s <= 120, default 10) blink so a technician can find the desk
recalibrate    none                                   re-learn the agent's usual voice
status         none                                   answer with the current state
config         a signed config (``txid``, ``issued``,  install it on trial, if a key the desk
               ``config``, ``signature``; added by    trusts signed it
               `firmware.flashing.remote`)
=============  =====================================  ==========================================

Arguments are checked strictly against the contract's models
(`firmware.contract.commands`): a number must be a JSON number (``"5"``, ``true`` and
``null`` are not), finite and within its bounds; a key the command does not take, a key given
twice, or ``NaN``/``Infinity`` is refused. Nothing is coerced: a command runs with exactly the
values that were sent, or not at all (``invalid_args``, naming the field).

Retained commands are ignored without an answer (a command must never run again because a
broker kept it): the copy a broker hands over at connect. A command published retained reaches
a desk that is listening live, without the flag, and runs once. Stale ones (``ts`` further
than ``command_max_age_s`` from the desk's clock, either way; judged only when the desk's
clock is synced) get a ``stale`` error. Oversized, malformed or unknown ones get an error
result whenever a result topic can be named (over MQTT 5 a payload more than 64 KiB over the
limit never reaches the desk: `firmware.link.mqtt_client` asks the broker not to send it).
`parse_command` never raises.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from firmware.contract.base import Payload
from firmware.contract.commands import (
    ARG_MODELS,
    TXID_PATTERN,
    CommandArgs,
    CommandError,
    CommandResult,
    IdentifyArgs,
    RecalibrateArgs,
    SnoozeArgs,
    StatusArgs,
)

__all__ = ["ARG_MODELS", "COMMAND_NAMES", "Command", "CommandArgs", "IdentifyArgs",
           "RecalibrateArgs", "Rejection", "SnoozeArgs", "StatusArgs", "new_txid",
           "parse_command", "read_txid", "result_payload"]

COMMAND_NAMES = tuple(ARG_MODELS)
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")

ErrorCode = Literal[
    "too_large", "malformed", "unknown_command", "invalid_args", "stale", "rate_limited",
    "busy", "failed",
]


@dataclass(frozen=True)
class Command:
    """A validated command for the appliance: ``name``, ``txid`` and typed ``args``.

    ``args`` is one of `SnoozeArgs`, `IdentifyArgs`, `RecalibrateArgs`, `StatusArgs`, or
    `ConfigCommandArgs` where the link was given the ``config`` command.
    """

    name: str
    txid: str
    args: CommandArgs


@dataclass(frozen=True)
class Rejection:
    """A command that will not run, with the error to answer (``txid`` None if unknown)."""

    name: str
    txid: str | None
    code: ErrorCode
    message: str


_JSON_TYPES: dict[type, str] = {
    str: "a string", bool: "true/false", int: "a number", float: "a number",
    list: "an array", dict: "an object", type(None): "null",
}


def _key(key: str) -> str:
    """A key as the message names it: plain names as they are, anything else quoted (so that
    a sender's newline or control character cannot reach a log line or a result raw)."""
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}", key) else json.dumps(key[:32])


def _short_errors(exc: ValidationError) -> str:
    """At most three problems, each naming the field and, for a wrong type, what was sent
    (one per field: the alternatives of an optional field would only repeat it)."""
    parts: dict[str, str] = {}
    for err in exc.errors():
        loc = _key(str(err["loc"][0])) if err["loc"] else "(payload)"
        if loc in parts:
            continue
        if err["type"] == "extra_forbidden":
            msg = "unknown argument"
        elif err["type"].endswith("_type"):
            got = _JSON_TYPES.get(type(err.get("input")), "another type")
            msg = f"{err['msg']}, not {got}"
        else:
            msg = err["msg"].removeprefix("Value error, ")
        parts[loc] = f"{loc}: {msg}"
    return "; ".join(list(parts.values())[:3])


class _NotJson(ValueError):
    """JSON that Python's parser takes but the contract does not (why, in words)."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _NotJson(f"key {json.dumps(key[:32])} is given twice")
        obj[key] = value
    return obj


def _no_constants(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON number")


def _loads(payload: bytes) -> Any:
    """Parse a command payload as strict JSON: UTF-8, no NaN/Infinity, no repeated key."""
    return json.loads(payload.decode("utf-8"), object_pairs_hook=_no_duplicate_keys,
                      parse_constant=_no_constants)


def parse_command(
    name: str,
    payload: bytes,
    *,
    retain: bool = False,
    max_bytes: int = 1024,
    max_age_s: float = 60.0,
    now: float | None = None,
    clock_synced: bool = True,
    models: Mapping[str, type[CommandArgs]] | None = None,
) -> Command | Rejection | None:
    """Validate one command message; never raises.

    Returns a `Command` to execute, a `Rejection` to answer with an error result, or None
    for a message to ignore silently (retained, or a name that cannot form a result topic).
    ``now`` is Unix seconds (default `time.time`); ``models`` is the allow-list (default
    `ARG_MODELS`).
    """
    if retain or not NAME_RE.match(name):
        return None
    if len(payload) > max_bytes:
        return Rejection(name, None, "too_large", f"payload over {max_bytes} bytes")
    try:
        obj = _loads(payload) if payload else None
    except _NotJson as exc:
        return Rejection(name, None, "malformed", f"payload is not valid JSON: {exc}")
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Rejection(name, None, "malformed", "payload is not UTF-8 JSON")
    if not isinstance(obj, dict):
        return Rejection(name, None, "malformed", "payload must be a JSON object")
    allowed = ARG_MODELS if models is None else models
    model = allowed.get(name)
    if "txid" not in obj and (model is None or not model.model_fields["txid"].is_required()):
        # A fixed payload (a dashboard button) must run every time: it gets a fresh txid.
        obj["txid"] = new_txid()
    txid = obj.get("txid")
    txid = txid if isinstance(txid, str) and re.match(TXID_PATTERN, txid) else None
    if model is None:
        return Rejection(
            name, txid, "unknown_command", f"allowed commands: {', '.join(sorted(allowed))}"
        )
    try:
        args = model.model_validate(obj)
    except ValidationError as exc:
        code: ErrorCode = "malformed" if txid is None else "invalid_args"
        return Rejection(name, txid, code, _short_errors(exc))
    except Exception as exc:  # noqa: BLE001 - validation must never raise into paho
        return Rejection(name, txid, "malformed", type(exc).__name__)
    if args.ts is not None and clock_synced:
        wall = time.time() if now is None else now
        age = wall - args.ts
        if abs(age) > max_age_s:
            when = (f"sent {age:.0f} s ago" if age > 0 else
                    f"its ts is {-age:.0f} s ahead of the desk's clock (the sender's clock is "
                    "off?)")
            return Rejection(name, txid, "stale", f"{when} (limit {max_age_s:g})")
    return Command(name=name, txid=args.txid or obj["txid"], args=args)


_A = TypeVar("_A", bound=CommandArgs)


def checked_args(model: type[_A], args: Mapping[str, Any]) -> _A | str:
    """A command's arguments from this desk (its control socket, its button, or an MQTT
    command already parsed) checked by the same ``model`` as MQTT's: the model, or what is
    wrong in words. A null argument counts as left out: that is how the socket and
    ``model_dump`` say it."""
    try:
        return model.model_validate({k: v for k, v in args.items() if v is not None})
    except ValidationError as exc:
        return _short_errors(exc)


def new_txid() -> str:
    """A transaction id made by the desk for a command sent without one (``desk:`` and 16 hex
    digits: unique, and told apart from a sender's own ids in logs and results)."""
    return f"desk:{uuid.uuid4().hex[:16]}"


def read_txid(payload: bytes, max_bytes: int = 1024) -> str | None:
    """The ``txid`` of a command payload if it can be read (JSON object, at most
    ``max_bytes``, a valid txid), else None; never raises. For answering a command that will
    not be validated further (``rate_limited``)."""
    if len(payload) > max_bytes:
        return None
    try:
        obj = _loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    txid = obj.get("txid") if isinstance(obj, dict) else None
    return txid if isinstance(txid, str) and re.match(TXID_PATTERN, txid) else None


def result_payload(
    name: str,
    txid: str | None,
    ok: bool,
    *,
    data: Payload | Mapping[str, Any] | None = None,
    error: tuple[str, str] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The JSON object published on ``cmd/<name>/result``; ``error`` is (code, message).

    Built as the contract's `CommandResult`: ``data`` must be the model of the command's
    result (`firmware.contract.commands.RESULT_DATA`), or a mapping that validates as one.
    """
    if not ok:
        code, message = error or ("failed", "command failed")
    result = CommandResult(
        txid=txid,
        cmd=name,
        ok=bool(ok),
        ts=round(time.time() if now is None else now, 3),
        data=data or None,  # type: ignore[arg-type]  # validated into RESULT_DATA's model
        error=None if ok else CommandError(code=code, message=message),  # type: ignore[arg-type]
    )
    return result.to_json()
