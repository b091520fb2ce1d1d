"""Loading a config: TOML text to `Settings`, every problem with its key path and line."""

from __future__ import annotations

import contextlib
import json
import re
import tomllib
import typing
from pathlib import Path

from pydantic import BaseModel, ValidationError

from firmware.config.settings import Settings
from firmware.errors import ConfigError, ConfigNotFound, ConfigProblem

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
        except (IndexError, ValueError, RecursionError):
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
            if path and path[-1].endswith("_pin"):
                msg += _pin_hint(path[-1], err["input"])
        problems.append(ConfigProblem(".".join(path), key_line(text, path, lines), msg))
    return problems


# The Raspberry Pi's 40-pin header: physical pin -> BCM GPIO number (the others are power
# or ground).
_HEADER_TO_BCM = {3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23,
                  18: 24, 19: 10, 21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5,
                  31: 6, 32: 12, 33: 13, 35: 19, 36: 16, 37: 26, 38: 20, 40: 21}
_POWER_PINS = {1: "a 3.3 V", 2: "a 5 V", 4: "a 5 V", 17: "a 3.3 V"}
_PIN_NAME = re.compile(r"\s*(?:GPIO|BCM|IO)\s*-?\s*(\d{1,2})\s*", re.IGNORECASE)
_BOARD_NAME = re.compile(r"\s*(?:BOARD|PIN|P1-?)\s*-?\s*(\d{1,2})\s*", re.IGNORECASE)


def _pin_hint(key: str, value: object) -> str:
    """What to write instead of ``value`` for a pin (pins are BCM GPIO numbers, 0-27): a
    pin's printed name (``"GPIO17"``) as its number, a physical header pin as its GPIO."""
    if isinstance(value, str):
        m = _PIN_NAME.fullmatch(value)
        if m:
            return f"; write the number alone: {key} = {int(m.group(1))}"
        m = _BOARD_NAME.fullmatch(value)
        if m:
            return _header_hint(key, int(m.group(1)))
        if value.strip().lower() == "none" and key not in ("motor_pin", "button_pin"):
            return '; an LED pin cannot be "none": set led = "none" for a desk without a light'
        return ""
    if isinstance(value, bool) or not isinstance(value, int) or not 27 < value <= 40:
        return ""
    return _header_hint(key, value)


def _header_hint(key: str, value: int) -> str:
    """The GPIO a physical header pin ``value`` carries, as what to write for ``key``."""
    if not 1 <= value <= 40:
        return ""
    if value in _HEADER_TO_BCM:
        gpio = _HEADER_TO_BCM[value]
        return (f"; pins are BCM GPIO numbers, not the header's: physical pin {value} is "
                f"GPIO{gpio}: {key} = {gpio}")
    kind = _POWER_PINS.get(value, "a ground")
    return (f"; pins are BCM GPIO numbers, not the header's: physical pin {value} is {kind} "
            "pin, no GPIO (README: Wiring)")


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


MAX_DEPTH = 16
"""Deepest nesting of tables and arrays a config may have. A desk config needs four levels
(``desks.d02.cues.raised_voice``); anything near the parser's recursion limit is refused
with one problem instead of ending in a `RecursionError`."""


def text_problems(text: str) -> list[ConfigProblem]:
    """Problems with the text itself, before TOML parsing: zero bytes (a copy cut short), a
    byte-order mark, or a carriage return not followed by a line feed (old Mac line endings;
    TOML lines end in LF or CRLF).

    Every path reads a config the same way (`read_config_text`, no newline translation), so a
    file `deskcue config check` accepts is one the desk accepts.
    """
    problems = []
    nul = text.find("\0")
    if nul >= 0:
        # What a copy cut short leaves on a FAT card: the file at its full length, zeros
        # where the data never arrived. A syntax error at that line would send the tech
        # looking for a typo in a copy that is whole on their laptop.
        return [ConfigProblem("", text.count("\n", 0, nul) + 1, "zero bytes from here on: "
                              "the copy was cut short (a power cut, or the card pulled before "
                              "it was ejected); copy it again")]
    if text.startswith("\ufeff"):
        problems.append(ConfigProblem("", 1, "the file starts with a byte-order mark (BOM): "
                                      "save it as UTF-8 without BOM"))
    at = re.search(r"\r(?!\n)", text)
    if at is not None:
        line = text.count("\n", 0, at.start()) + text.count("\r", 0, at.start()) \
            - text.count("\r\n", 0, at.start()) + 1
        problems.append(ConfigProblem("", line, "a carriage return (CR) without a line feed: "
                                      "save the file with Unix (LF) or Windows (CRLF) line "
                                      "endings"))
    return problems


def _depth(data: object) -> int:
    """How deeply ``data`` nests tables and arrays (iterative: safe on any depth)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(data, 0)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict):
            children: list[object] = list(node.values())
        elif isinstance(node, list):
            children = list(node)
        else:
            continue
        deepest = max(deepest, d + 1)
        stack.extend((c, d + 1) for c in children)
    return deepest


def parse_toml(text: str, source: Path | str = "<config>") -> dict[str, object]:
    """TOML ``text`` as data; `ConfigError` (one problem with its line) for text problems, a
    syntax error, or nesting deeper than `MAX_DEPTH`."""
    problems = text_problems(text)
    if problems:
        raise ConfigError(source, problems)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            source, [ConfigProblem("", int(m.group(1)) if m else None, f"TOML syntax: {exc}")]
        ) from None
    except RecursionError:
        data = None
    if data is None or _depth(data) > MAX_DEPTH:
        raise ConfigError(source, [ConfigProblem(
            "", None, f"tables or arrays nested more than {MAX_DEPTH} levels deep; a deskcue "
            "config needs at most 4")])
    if not data:
        # Every key is optional, but a file that sets none is what a copy cut short leaves
        # (a card pulled or a power cut mid-write): run, it would give the desk the shipped
        # default's identity and broker and leave it dark to its supervisor.
        raise ConfigError(source, [ConfigProblem(
            "", None, "the file sets no setting (it is empty, or only comments): a copy cut "
            "short? Copy the desk's config again (for the defaults, copy config/deskcue.toml)")])
    return data


def parse_settings(text: str, source: Path | str = "<config>") -> Settings:
    """Validate TOML ``text`` as a whole; raise `ConfigError` listing every problem."""
    return validate_data(parse_toml(text, source), text, source)


def read_config_text(path: Path | str) -> str:
    """The text of the config file at ``path``, exactly as written (UTF-8, no newline
    translation); `ConfigNotFound` if it is missing, `ConfigError` with one problem if it is
    unreadable or not UTF-8.

    The one way every command and the desk read a config file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigNotFound(path, [ConfigProblem("", None, "file not found")]) from None
    except IsADirectoryError:
        raise ConfigError(path, [ConfigProblem("", None, "is a directory, not a file")]) from None
    except OSError as exc:
        raise ConfigError(path, [ConfigProblem(
            "", None, f"cannot read: {exc.strerror or exc}")]) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        hint = " (saved as UTF-16?)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise ConfigError(path, [ConfigProblem(
            "", line, f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}"
            f"{hint}; save the file as UTF-8")]) from None


def load_settings(path: Path | str | None) -> Settings:
    """Load the config file at ``path``; None gives the shipped default."""
    if path is None:
        return Settings()
    path = Path(path)
    text = read_config_text(path)
    return parse_settings(text, path)
