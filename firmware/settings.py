"""The appliance's configuration: one TOML file, typed models, validated as a whole at load.

Every section is a frozen pydantic model that forbids unknown keys and describes every field;
`Settings()` with no arguments is the shipped default (``config/deskcue.toml`` documents it and a
test keeps the two equal). Errors name the key path, the line in the file where it can be found,
and what is allowed.
"""

from __future__ import annotations

import contextlib
import json
import re
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from firmware.flash_settings import FlashSettings
from firmware.mqtt_settings import MqttSettings

TOPIC_SAFE = r"^[A-Za-z0-9_-]{1,64}$"


class Section(BaseModel):
    """Base of every config section: immutable, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


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
        Path("/run/deskcue"),
        description="Directory for the control socket used by `deskcue snooze`.",
    )


class AudioSettings(Section):
    """The headset tap: which capture device, how many channels, which one is the agent."""

    device: str = Field(
        "",
        description="Capture device chosen by a case-insensitive substring of its name; "
        "empty = the system's default input device.",
    )
    channels: Literal[1, 2] = Field(
        2, description="Channels to capture: 1 = mono tap (agent only), 2 = stereo tap."
    )
    agent_channel: Literal["left", "right"] = Field(
        "left", description="Which channel of a stereo tap carries the agent's voice."
    )
    caller_channel: Literal["left", "right", "none"] = Field(
        "right", description="Which channel of a stereo tap carries the caller; none = ignore."
    )
    rate_hz: int = Field(
        0,
        ge=0,
        le=192000,
        description="Capture rate in Hz; 0 = the device's default rate. Any rate is "
        "converted to the 16 kHz analysis rate.",
    )
    block_s: float = Field(
        0.1, gt=0.0, le=0.5,
        description="Capture and analysis block length in seconds: longer costs less CPU per "
        "second of audio (per-call overhead), shorter answers sooner (up to one block later).",
    )
    queue_s: float = Field(
        10.0,
        ge=0.5,
        le=600.0,
        description="Capacity of the queue between the capture callback and the analysis, in "
        "seconds of audio; a full queue drops blocks and counts them as input overflows.",
    )
    no_audio_fault_s: float = Field(
        3.0, gt=0.0, le=60.0, description="Seconds without audio before the fault pattern shows."
    )

    @model_validator(mode="after")
    def _distinct_channels(self) -> AudioSettings:
        if self.channels == 2 and self.agent_channel == self.caller_channel:
            raise ValueError("agent_channel and caller_channel must differ")
        return self


class VoiceActivitySettings(Section):
    """Voice activity: a hop is speech when its level clears the tracked noise floor."""

    floor_dbfs: float = Field(
        -60.0, ge=-100.0, le=-20.0, description="Hops below this level (dBFS) are never speech."
    )
    margin_db: float = Field(
        10.0, ge=3.0, le=40.0, description="dB above the tracked noise floor that counts as speech."
    )


class BaselineSettings(Section):
    """The usual voice: robust statistics of the agent's own speech, kept across restarts."""

    warmup_speech_s: float = Field(
        20.0,
        ge=5.0,
        le=30.0,
        description="Seconds of the agent's speech to learn from before any cue may fire.",
    )
    half_life_speech_s: float = Field(
        900.0,
        ge=60.0,
        le=36000.0,
        description="Half-life of the rolling statistics, in seconds of speech: older speech "
        "weighs half as much after this much new speech.",
    )
    save_interval_s: float = Field(
        60.0, ge=5.0, le=3600.0, description="How often the baseline is saved, in seconds."
    )


class RaisedVoiceCue(Section):
    """The raised-voice cue: loudness above the agent's usual level for a hold time."""

    enabled: bool = Field(True, description="Whether the raised-voice cue is active.")
    threshold_db: float = Field(
        8.0,
        ge=3.0,
        le=30.0,
        description="Momentary loudness above the usual level (dB) that counts as raised.",
    )
    hysteresis_db: float = Field(
        3.0,
        ge=0.0,
        le=10.0,
        description="Once raised, the cue holds until loudness falls below threshold minus this.",
    )
    hold_s: float = Field(
        1.0, ge=0.2, le=30.0, description="Seconds of raised speech before the cue fires."
    )
    gap_s: float = Field(
        0.6,
        ge=0.0,
        le=5.0,
        description="Pauses between words up to this long (s) do not break the evidence.",
    )
    release_s: float = Field(
        2.0, ge=0.2, le=30.0, description="Seconds below the release level before the cue ends."
    )
    cooldown_s: float = Field(
        30.0, ge=0.0, le=3600.0, description="Seconds after a cue ends before another may start."
    )
    max_per_hour: int = Field(
        6, ge=1, le=60, description="At most this many raised-voice cues in any rolling hour."
    )


class TenseVoiceCue(Section):
    """The calm-down cue: pitch held above the agent's usual together with raised effort
    (loudness or spectral tilt) or a speaking rate well above usual."""

    enabled: bool = Field(True, description="Whether the tense-voice cue is active.")
    pitch_st: float = Field(
        4.0, ge=1.0, le=12.0,
        description="Pitch above the agent's usual pitch (semitones, median of the last "
        "0.5 s of voiced speech) that counts.")
    effort_db: float = Field(
        4.0, ge=1.0, le=20.0,
        description="Loudness above usual (dB) that counts as raised effort with the pitch.")
    tilt_db: float = Field(
        3.0, ge=0.5, le=20.0,
        description="Alpha ratio above usual (dB; a flatter, more pressed spectrum) that "
        "counts as raised effort with the pitch.")
    rate_ratio: float = Field(
        1.3, ge=1.05, le=3.0,
        description="Speaking rate at least this many times the usual rate counts with the "
        "pitch.")
    hysteresis_st: float = Field(
        1.0, ge=0.0, le=6.0, description="The cue holds until pitch falls below pitch_st "
        "minus this.")
    hold_s: float = Field(2.0, ge=0.2, le=30.0, description="Seconds before the cue fires.")
    gap_s: float = Field(0.6, ge=0.0, le=5.0, description="Pauses up to this long are bridged.")
    release_s: float = Field(2.0, ge=0.2, le=30.0, description="Seconds below release to end.")
    cooldown_s: float = Field(60.0, ge=0.0, le=3600.0, description="Seconds between cues.")
    max_per_hour: int = Field(4, ge=1, le=60, description="At most this many per rolling hour.")


class CallerEscalationCue(Section):
    """The caller's voice rising above the caller's own start-of-call level: "stay steady"."""

    enabled: bool = Field(True, description="Whether the caller-escalation cue is active.")
    baseline_speech_s: float = Field(
        8.0, ge=2.0, le=60.0,
        description="Seconds of the caller's speech at the start of each call that set the "
        "caller's usual level for that call.")
    threshold_db: float = Field(
        6.0, ge=2.0, le=30.0,
        description="Caller loudness above the caller's start-of-call level (dB) that counts.")
    pitch_st: float = Field(
        4.0, ge=1.0, le=12.0,
        description="Caller pitch above the caller's start-of-call pitch (semitones) that "
        "counts when the caller is also at least half the level threshold louder.")
    hysteresis_db: float = Field(
        2.0, ge=0.0, le=10.0, description="The cue holds until below threshold minus this.")
    hold_s: float = Field(2.0, ge=0.2, le=30.0, description="Seconds before the cue fires.")
    gap_s: float = Field(0.8, ge=0.0, le=5.0, description="Pauses up to this long (s) are bridged.")
    release_s: float = Field(3.0, ge=0.2, le=30.0, description="Seconds below release to end.")
    cooldown_s: float = Field(60.0, ge=0.0, le=3600.0, description="Seconds between cues.")
    max_per_hour: int = Field(10, ge=1, le=60, description="At most this many per rolling hour.")


class LaughterCue(Section):
    """Laughter-like bursts in the agent's voice: a short, discreet nudge."""

    enabled: bool = Field(True, description="Whether the laughter-like burst cue is active.")
    threshold: float = Field(
        0.5, ge=0.3, le=0.95,
        description="Verified laughter-likeness (0-1) at which a train of bursts counts: the "
        "pulse detector proposes trains of bursts, a small learned verifier scores the last "
        "second of sound (mel bands, the pulse measures, pitch against the usual); 0.5 is its "
        "operating point, higher asks for clearer laughter.")
    pitch_st: float = Field(
        3.0, ge=0.0, le=24.0,
        description="The bursts' median pitch must be at least this many semitones above "
        "the agent's usual pitch (laughter sits well above the speaking voice; read speech "
        "with a laugh-like rhythm does not). Cues wait for the usual voice to be learned.")
    cooldown_s: float = Field(30.0, ge=0.0, le=3600.0, description="Seconds between cues.")
    max_per_hour: int = Field(4, ge=1, le=60, description="At most this many per rolling hour.")


class CueSettings(Section):
    """All cues; each has its own thresholds, hold, hysteresis, cooldown and cap."""

    raised_voice: RaisedVoiceCue = Field(default_factory=RaisedVoiceCue)
    tense_voice: TenseVoiceCue = Field(default_factory=TenseVoiceCue)
    caller_escalation: CallerEscalationCue = Field(default_factory=CallerEscalationCue)
    laughter: LaughterCue = Field(default_factory=LaughterCue)


class CallSettings(Section):
    """Calls are found from channel activity: they end after a silence on both channels."""

    silence_gap_s: float = Field(
        15.0, ge=2.0, le=600.0,
        description="Seconds of silence on both channels that end a call.")
    min_call_s: float = Field(
        5.0, ge=0.0, le=600.0,
        description="Calls shorter than this are marked short in their summary.")


class SnoozeSettings(Section):
    """Snooze from the desk button or `deskcue snooze`."""

    default_min: float = Field(
        15.0, gt=0.0, le=240.0, description="Minutes a button press or plain snooze lasts."
    )
    max_min: float = Field(120.0, gt=0.0, le=480.0, description="Longest snooze allowed (min).")


class IndicatorSettings(Section):
    """Desk LED, vibration motor and snooze button (BCM GPIO numbers)."""

    led: Literal["rgb", "single", "none"] = Field(
        "rgb", description="LED fitted: an RGB LED, a single LED, or none."
    )
    red_pin: int = Field(17, ge=0, le=27, description="BCM pin of the RGB LED's red leg.")
    green_pin: int = Field(27, ge=0, le=27, description="BCM pin of the RGB LED's green leg.")
    blue_pin: int = Field(22, ge=0, le=27, description="BCM pin of the RGB LED's blue leg.")
    led_pin: int = Field(24, ge=0, le=27, description="BCM pin of a single LED (led = single).")
    active_high: bool = Field(
        True, description="True for common-cathode LEDs (on = high), False for common-anode."
    )
    brightness: float = Field(
        0.3, gt=0.0, le=1.0, description="LED brightness 0-1 (a desk light should not glare)."
    )
    motor_pin: int | None = Field(
        18, ge=0, le=27, description="BCM pin driving the vibration motor (PWM); none if unset."
    )
    motor_strength: float = Field(0.8, gt=0.0, le=1.0, description="Motor PWM duty cycle 0-1.")
    button_pin: int | None = Field(
        23, ge=0, le=27, description="BCM pin of the snooze button (to ground); none if unset."
    )

    @model_validator(mode="after")
    def _distinct_pins(self) -> IndicatorSettings:
        used: dict[int, str] = {}
        names = ["motor_pin", "button_pin"]
        if self.led == "rgb":
            names += ["red_pin", "green_pin", "blue_pin"]
        elif self.led == "single":
            names += ["led_pin"]
        for name in names:
            pin = getattr(self, name)
            if pin is None:
                continue
            if pin in used:
                raise ValueError(f"{name} and {used[pin]} both use GPIO{pin}")
            used[pin] = name
        return self


class Settings(Section):
    """The whole configuration; `Settings()` is the shipped default."""

    device: DeviceSettings = Field(default_factory=DeviceSettings)
    audio: AudioSettings = Field(default_factory=AudioSettings)
    voice_activity: VoiceActivitySettings = Field(default_factory=VoiceActivitySettings)
    baseline: BaselineSettings = Field(default_factory=BaselineSettings)
    cues: CueSettings = Field(default_factory=CueSettings)
    calls: CallSettings = Field(default_factory=CallSettings)
    snooze: SnoozeSettings = Field(default_factory=SnoozeSettings)
    indicator: IndicatorSettings = Field(default_factory=IndicatorSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    flash: FlashSettings = Field(default_factory=FlashSettings)


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config file: where it is and what is wrong."""

    key: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.key or '(file)'}: {self.message}"


class ConfigError(Exception):
    """A config file that cannot be used; `problems` lists every problem found."""

    def __init__(self, path: Path | str, problems: list[ConfigProblem]):
        self.path = str(path)
        self.problems = problems
        first = problems[0] if problems else "invalid"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{self.path}: {first}{more}")


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class _KeyScanner:
    """Finds the line of every key and table in TOML text (tolerant: stops at what it can't read).

    Understands table and array-of-table headers, dotted and quoted keys, inline tables (their
    keys are recorded under the enclosing key), arrays and every kind of string, including
    multi-line ones, so a ``[`` or ``=`` inside a string never looks like a key.
    """

    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.line = 1
        self.lines: dict[tuple[str, ...], int] = {}

    def scan(self) -> dict[tuple[str, ...], int]:
        table: tuple[str, ...] = ()
        try:
            while True:
                self._skip_space(newlines=True)
                if self.i >= len(self.s):
                    break
                c = self.s[self.i]
                if c == "[":
                    self.i += 2 if self.s.startswith("[[", self.i) else 1
                    start = self.line
                    table = self._key()
                    self.lines.setdefault(table, start)
                    self._skip_to_eol()
                else:
                    self._key_value(table)
                    self._skip_to_eol()
        except (IndexError, ValueError):
            pass  # a syntax error: tomllib reports it; keep what was found so far
        return self.lines

    def _skip_space(self, newlines: bool) -> None:
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c in " \t\r":
                self.i += 1
            elif c == "\n" and newlines:
                self.line += 1
                self.i += 1
            elif c == "#" and newlines:
                while self.i < len(s) and s[self.i] != "\n":
                    self.i += 1
            else:
                return

    def _skip_to_eol(self) -> None:
        while self.i < len(self.s) and self.s[self.i] != "\n":
            self.i += 1

    def _key(self) -> tuple[str, ...]:
        parts = []
        while True:
            self._skip_space(newlines=False)
            c = self.s[self.i]
            if c in "\"'":
                parts.append(self._string())
            else:
                m = _BARE_KEY.match(self.s, self.i)
                if not m:
                    raise ValueError("not a key")
                parts.append(m.group())
                self.i = m.end()
            self._skip_space(newlines=False)
            if self.i < len(self.s) and self.s[self.i] == ".":
                self.i += 1
                continue
            return tuple(parts)

    def _key_value(self, prefix: tuple[str, ...]) -> None:
        start = self.line
        key = prefix + self._key()
        for n in range(len(prefix) + 1, len(key) + 1):
            self.lines.setdefault(key[:n], start)
        if self.s[self.i] != "=":
            raise ValueError("expected =")
        self.i += 1
        self._skip_space(newlines=False)
        self._value(key)

    def _value(self, key: tuple[str, ...]) -> None:
        s = self.s
        c = s[self.i]
        if c in "\"'":
            self._string()
        elif c == "{":
            self.i += 1
            while True:
                self._skip_space(newlines=True)
                if s[self.i] == "}":
                    self.i += 1
                    return
                if s[self.i] == ",":
                    self.i += 1
                    continue
                self._key_value(key)
        elif c == "[":
            self.i += 1
            index = 0
            while True:
                self._skip_space(newlines=True)
                if s[self.i] == "]":
                    self.i += 1
                    return
                if s[self.i] == ",":
                    self.i += 1
                    index += 1
                    continue
                self.lines.setdefault(key + (str(index),), self.line)
                self._value(key + (str(index),))
        else:
            while self.i < len(s) and s[self.i] not in ",]}\n#":
                self.i += 1

    def _string(self) -> str:
        s = self.s
        q = s[self.i]
        if s.startswith(q * 3, self.i):
            end = s.index(q * 3, self.i + 3)
            while s.startswith(q, end + 3):  # up to two quotes may close a multi-line string
                end += 1
            body = s[self.i + 3:end]
            self.line += body.count("\n")
            self.i = end + 3
            return body
        j = self.i + 1
        while s[j] != q:
            if s[j] == "\n":
                raise ValueError("unterminated string")
            j += 2 if (q == '"' and s[j] == "\\") else 1
        body = s[self.i + 1:j]
        self.i = j + 1
        if q == '"' and "\\" in body:
            with contextlib.suppress(ValueError):
                return str(json.loads(f'"{body}"'))
        return body


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Every key path and table in TOML ``text`` mapped to the 1-based line that sets it.

    Array items are keyed by their index as a string (``("x", "0")``). Best effort: text after
    a syntax error is not scanned.
    """
    return _KeyScanner(text).scan()


def key_line(text: str, key_path: tuple[str, ...],
             lines: dict[tuple[str, ...], int] | None = None) -> int | None:
    """The 1-based line where ``key_path`` is set in TOML ``text`` (best effort), else None.

    Falls back to the line of the nearest enclosing key or table when the key itself is absent
    (a missing key, or a rule about a whole section). ``lines``: a `key_lines` result to reuse.
    """
    if lines is None:
        lines = key_lines(text)
    path = tuple(key_path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None


def _problems_from_validation(exc: ValidationError, text: str) -> list[ConfigProblem]:
    problems = []
    lines = key_lines(text)
    for err in exc.errors():
        path = tuple(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            parent = _model_at(path[:-1])
            if parent is not None:
                msg += "; allowed here: " + ", ".join(sorted(parent.model_fields))
        elif err["type"] in ("literal_error", "string_pattern_mismatch") or err["type"].startswith(
            ("greater_than", "less_than", "string_too")
        ):
            msg = msg.replace("Input should be", "must be").replace("String should", "must")
        elif err["type"] in _TYPE_ERRORS:
            msg = f"wrong type: must be {_TYPE_ERRORS[err['type']]}"
            if "input" in err:
                msg += f", not {_toml_type(err['input'])}"
        elif err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        if "input" in err and err["type"] not in ("extra_forbidden", "missing"):
            shown = repr(err["input"])
            if len(shown) < 60 and not isinstance(err["input"], dict):
                msg += f" (got {shown})"
        problems.append(ConfigProblem(".".join(path), key_line(text, path, lines), msg))
    return problems


_TYPE_ERRORS = {
    "float_type": "a number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "string_type": "a quoted string",
    "model_type": "a table",
    "dict_type": "a table",
    "is_instance_of": "a quoted path",
}


def _toml_type(value: object) -> str:
    """How TOML calls the type of ``value`` (for "wrong type" messages)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _model_at(path: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Settings
    for part in path:
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


def _from_toml(model: type[BaseModel], data: object) -> object:
    """``data`` with strings converted to `Path` where ``model`` wants a path, and ``"none"``
    to None where an optional non-text field allows it (TOML has no null).

    Validation is strict (TOML has real types: ``"8"`` is not a number, ``"yes"`` not a
    boolean), and strict pydantic only takes `Path` objects for paths; TOML writes them as
    strings.
    """
    if not isinstance(data, dict):
        return data
    out = {}
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is not None:
            ann = field.annotation
            args = typing.get_args(ann) or (ann,)
            sub = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if sub and isinstance(value, dict):
                value = _from_toml(sub[0], value)
            elif Path in args and isinstance(value, str):
                value = Path(value)
            elif value == "none" and type(None) in args and str not in args:
                value = None  # TOML has no null: `motor_pin = "none"` unsets an optional pin
        out[key] = value
    return out


def validate_data(data: dict[str, object], text: str = "",
                  source: Path | str = "<config>") -> Settings:
    """Validate parsed TOML ``data`` strictly; `ConfigError` with lines found in ``text``."""
    try:
        return Settings.model_validate(_from_toml(Settings, data), strict=True)
    except ValidationError as exc:
        raise ConfigError(source, _problems_from_validation(exc, text)) from None


def parse_settings(text: str, source: Path | str = "<config>") -> Settings:
    """Validate TOML ``text`` as a whole; raise `ConfigError` listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            source, [ConfigProblem("", int(m.group(1)) if m else None, f"TOML syntax: {exc}")]
        ) from None
    return validate_data(data, text, source)


def load_settings(path: Path | str | None) -> Settings:
    """Load the config file at ``path``; None gives the shipped default."""
    if path is None:
        return Settings()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, [ConfigProblem("", None, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [ConfigProblem("", None, f"cannot read: {exc}")]) from None
    return parse_settings(text, path)
