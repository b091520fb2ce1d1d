"""Commands a supervisor sends on ``cmd/<name>`` and the results the desk answers with on
``cmd/<name>/result`` (same ``txid``).

Command arguments are validated as strictly as everything the desk publishes: a JSON number
where the model says number (an integer is a number; a string, ``true`` or ``null`` is not),
finite, within the bounds below, and no key the model does not name. The bounds are stated
here once; the appliance and the config use these constants.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from firmware.contract.base import Absent, Payload
from firmware.contract.desk import ApplianceStatus
from firmware.contract.events import Recalibrate, Snooze
from firmware.contract.limits import SNOOZE_MAX_MIN

TXID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"

# How far a config's `issued` may be ahead of the desk's clock (s), when that clock is synced:
# a slip (an extra digit) accepted once would make every config signed before it a replay.
ISSUED_AHEAD_MAX_S = 86400
IDENTIFY_MAX_S = 120.0
"""Longest identify blink, s."""
IDENTIFY_DEFAULT_S = 10.0
"""Identify blink when ``seconds`` is left out, s."""


def _may_be_absent(annotation: Any) -> bool:
    """Whether a field's type is ``X | Absent`` (optional, never null)."""
    return any(a == Absent for a in get_args(annotation))


class CommandArgs(Payload):
    """Arguments common to every command: transaction id and optional send time."""

    model_config = ConfigDict(strict=True, allow_inf_nan=False)
    name: ClassVar[str] = ""

    txid: Annotated[str, Field(pattern=TXID_PATTERN)] | Absent = Field(
        None, description="Transaction id, echoed in the result; a repeat with the same txid "
                          "and arguments runs once. Left out: the desk makes a fresh one, so "
                          "a fixed payload (a dashboard button) runs every time it is sent.")
    ts: Annotated[float, Field(ge=0)] | Absent = Field(
        None, description="When the command was sent, Unix seconds (judged for staleness).")

    @field_validator("*", mode="before")
    @classmethod
    def _absent_is_not_null(cls, value: Any, info: ValidationInfo) -> Any:
        # An optional argument is left out or given; null is neither (the schema forbids it).
        if value is None and info.field_name is not None and _may_be_absent(
                cls.model_fields[info.field_name].annotation):
            raise ValueError("may be left out, but not null")
        return value


class SnoozeArgs(CommandArgs):
    """``snooze``: silence the cues for ``minutes`` (left out = configured default; 0 =
    cancel). The desk caps it at its ``snooze.max_min`` and answers the minutes it applied."""

    name: ClassVar[str] = "snooze"
    minutes: Annotated[float, Field(ge=0, le=SNOOZE_MAX_MIN)] | Absent = Field(
        None, description="Snooze length, minutes (0 cancels; the desk caps it at its "
                          "snooze.max_min and answers what it applied).")


class IdentifyArgs(CommandArgs):
    """``identify``: blink the desk light for ``seconds`` so a technician can find the desk."""

    name: ClassVar[str] = "identify"
    seconds: float = Field(IDENTIFY_DEFAULT_S, gt=0, le=IDENTIFY_MAX_S,
                           description="Blink duration, s.")


class RecalibrateArgs(CommandArgs):
    """``recalibrate``: forget and re-learn the agent's usual voice."""

    name: ClassVar[str] = "recalibrate"


class StatusArgs(CommandArgs):
    """``status``: answer with the desk's current state."""

    name: ClassVar[str] = "status"


class ConfigCommandArgs(CommandArgs):
    """``config``: install a signed config on trial (see `firmware.flashing.signing`).

    Checked strictly like every command: a signed payload is taken exactly as signed.
    """

    name: ClassVar[str] = "config"
    txid: str = Field(..., pattern=TXID_PATTERN, description="Transaction id, echoed in the "
                      "result; required here, as the signature covers it.")
    issued: int = Field(..., ge=0, description="Signer's counter (Unix seconds); must grow.")
    config: str = Field(..., description="The complete config, as TOML text.")
    signature: str | None = Field(None, description="Base64 Ed25519 signature.")
    key_id: str | None = Field(None, max_length=64, description="Which key signed (for logs).")


ARG_MODELS: dict[str, type[CommandArgs]] = {
    m.name: m for m in (SnoozeArgs, IdentifyArgs, RecalibrateArgs, StatusArgs)
}
"""The built-in allow-list: command name -> arguments model (``config`` is added by the
appliance when remote config is possible)."""

ALL_ARG_MODELS: dict[str, type[CommandArgs]] = {**ARG_MODELS, "config": ConfigCommandArgs}


# -- results --------------------------------------------------------------------------------------


class IdentifyResult(Payload):
    """``identify`` result data."""

    seconds: Annotated[float, Field(ge=0, description="How long the light blinks, s.")]


class ConfigProblemItem(Payload):
    """One problem in a pushed config."""

    key: Annotated[str, Field(description="The config key (dotted), or empty for the file.")]
    line: Annotated[int | None, Field(description="Line in the TOML text; null if unknown.")]
    message: Annotated[str, Field(description="What is wrong and what is allowed.")]


class ConfigResult(Payload):
    """``config`` result data: the new config's hash and trial times when accepted; the
    problems (with lines) when refused as invalid; warnings either way."""

    hash: Annotated[str | Absent, Field(description="Short hash of the installed config.")] = None
    trial_s: Annotated[Annotated[float, Field(ge=0)] | Absent, Field(
        description="Time it has to prove healthy, s.")] = None
    healthy_s: Annotated[Annotated[float, Field(ge=0)] | Absent, Field(
        description="Healthy audio that confirms it, s.")] = None
    problems: Annotated[list[ConfigProblemItem] | Absent, Field(
        description="Why the config is invalid.")] = None
    warnings: Annotated[list[ConfigProblemItem] | Absent, Field(
        description="Settings that will work but may nag.")] = None


RESULT_DATA: dict[str, type[Payload]] = {
    "snooze": Snooze,
    "identify": IdentifyResult,
    "recalibrate": Recalibrate,
    "status": ApplianceStatus,
    "config": ConfigResult,
}
"""Command name -> the model of its result's ``data``."""

ResultData = Snooze | IdentifyResult | Recalibrate | ApplianceStatus | ConfigResult
if get_args(ResultData) != tuple(RESULT_DATA.values()):  # the schema pairs them by position
    raise TypeError("ResultData must list the models of RESULT_DATA, in the same order")

ErrorCode = Literal[
    "too_large", "malformed", "unknown_command", "invalid_args", "stale", "rate_limited",
    "busy", "failed",
    # config only
    "refused", "unsigned", "no_key", "bad_key", "bad_signature", "replayed", "invalid",
    "wrong_desk", "replay_record_damaged", "install_failed",
]


class CommandError(Payload):
    """Why a command failed."""

    code: Annotated[ErrorCode, Field(
        description="From the link: too_large, malformed, unknown_command, invalid_args, "
                    "stale, rate_limited, failed. From the desk: busy, failed; for config "
                    "also refused, unsigned, no_key, bad_key, bad_signature, replayed, "
                    "invalid, wrong_desk, replay_record_damaged (a tech must run `deskcue "
                    "config reset-replay` on the desk), install_failed (nothing changed).")]
    message: Annotated[str, Field(description="In words, for the supervisor.")]


def _result_schema(schema: dict[str, Any], _cls: Any = None) -> None:
    """JSON Schema: ok results carry data and no error; failed ones an error."""
    data = schema["properties"]["data"]
    refs = [r["$ref"] for r in data.pop("anyOf")]
    data["type"] = "object"
    schema["allOf"] = [
        {"if": {"properties": {"ok": {"const": True}}},
         "then": {"required": ["data"], "not": {"required": ["error"]}},
         "else": {"required": ["error"]}},
        *({"if": {"properties": {"cmd": {"const": name}}, "required": ["data"]},
           "then": {"properties": {"data": {"$ref": ref}}}}
          for name, ref in zip(RESULT_DATA, refs, strict=True)),  # ResultData's order
    ]


class CommandResult(Payload):
    """The answer on ``cmd/<name>/result``: ``ok`` with ``data``, or an ``error`` (a refused
    config also carries ``data`` with its problems)."""

    model_config = ConfigDict(json_schema_extra=_result_schema)

    txid: Annotated[str | None, Field(description="The command's txid; null if it could not "
                                                  "be read.")]
    cmd: Annotated[str, Field(description="The command's name as it arrived.")]
    ok: Annotated[bool, Field(description="Whether the command was carried out.")]
    ts: Annotated[float, Field(description="Unix time the result was made, s.")]
    data: Annotated[ResultData | Absent, Field(
        description="What the command did or reports; the model depends on cmd.")] = None
    error: Annotated[CommandError | Absent, Field(description="Why it failed.")] = None

    @field_validator("data", mode="wrap")
    @classmethod
    def _data_matches_cmd(cls, value: Any, _handler: ValidatorFunctionWrapHandler,
                          info: ValidationInfo) -> Payload | None:
        if value is None:
            return None
        name = info.data.get("cmd", "?")
        model = RESULT_DATA.get(name)
        if model is None:
            raise ValueError(f"command {name!r} has no result data")
        if isinstance(value, Payload):
            if type(value) is not model:
                raise ValueError(f"{type(value).__name__} is not the result of {name}")
            return value
        return model.model_validate(value)

    @model_validator(mode="after")
    def _ok_has_data_failed_has_error(self) -> CommandResult:
        if self.ok and (self.data is None or self.error is not None):
            raise ValueError("an ok result carries data and no error")
        if not self.ok and self.error is None:
            raise ValueError("a failed result carries an error")
        return self
