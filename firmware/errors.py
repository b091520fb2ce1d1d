"""Every error deskcue raises on purpose, in one tree (as gpiozero keeps its own).

Each class also inherits the builtin it behaves like, so code that knows nothing of deskcue
still catches it (a missing config file is a `FileNotFoundError`, a config with bad values a
`ValueError`), and ``except DeskcueError`` catches everything deskcue means to say to a user.
An exception outside this tree that reaches the command line is a bug ("internal error").

::

    DeskcueError
    ├── ConfigError (ValueError)            a config that cannot be used; .path, .problems
    │   └── ConfigNotFound (FileNotFoundError)
    ├── AudioError (OSError)                a capture device or recording that cannot be used
    │   ├── AudioFileNotFound (FileNotFoundError)
    │   └── AudioFormatError (ValueError)   a recording in a format deskcue does not read
    ├── LinkError                           talking to the broker or the running appliance
    │   ├── CredentialsError (ValueError)   broker credentials or TLS files unusable
    │   ├── OutboxLocked (RuntimeError)     another process holds the event outbox
    │   └── NotRunning (ConnectionError)    no appliance listens on the control socket
    ├── FlashingError                       installing, flashing or signing configs
    │   ├── BootNotFound (FileNotFoundError) no boot partition (card) at the given path
    │   ├── ReplayRecordDamaged             the anti-replay record cannot be trusted
    │   └── SigningError (ValueError)       a key or signature that cannot be used; .code
    │       └── KeyNotFound (FileNotFoundError)
    ├── IndicatorError (OSError)            an LED, motor or button pin that cannot be used
    ├── ReportError (RuntimeError)          a report that cannot be made (a missing extra)
    └── DemoError (RuntimeError)            the demo's tools (espeak-ng, mosquitto) failed
        ├── ToolMissing (FileNotFoundError) a program the demo runs is not installed
        └── SpeechSynthError                espeak-ng failed

Not in the tree: `firmware.audio.source.EndOfStream` (an `EOFError`) is control flow - a file
source saying it has delivered its last block - not an error, so ``except DeskcueError``
never swallows the normal end of a recording.

The command line (`firmware.cli.main`) turns these families into one-line messages and exit
codes; the table is in its docstring and in docs/field-tech.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "AudioError", "AudioFileNotFound", "AudioFormatError", "BootNotFound", "ConfigError",
    "ConfigNotFound", "ConfigProblem", "CredentialsError", "DemoError", "DeskcueError",
    "FlashingError", "IndicatorError", "KeyNotFound", "LinkError", "NotRunning", "OutboxLocked",
    "ReportError", "SigningError", "SpeechSynthError", "ToolMissing",
]


class DeskcueError(Exception):
    """Root of every error deskcue raises on purpose; the message is for the user."""


# -- config --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config file: where it is and what is wrong."""

    key: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.key or '(file)'}: {self.message}"


class ConfigError(DeskcueError, ValueError):
    """A config file that cannot be used; `problems` lists every problem found."""

    def __init__(self, path: Path | str, problems: list[ConfigProblem]):
        self.path = str(path)
        self.problems = problems
        first = problems[0] if problems else "invalid"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{self.path}: {first}{more}")

    def __str__(self) -> str:  # OSError's own str() would hide the message in subclasses
        return str(self.args[0]) if self.args else ""


class ConfigNotFound(ConfigError, FileNotFoundError):
    """The config file does not exist."""


# -- audio ---------------------------------------------------------------------------------
class AudioError(DeskcueError, OSError):
    """An audio source (capture device or recording) that cannot be opened or read."""


class AudioFileNotFound(AudioError, FileNotFoundError):
    """The recording does not exist."""


class AudioFormatError(AudioError, ValueError):
    """A recording in a format (container, encoding, channels, rate) deskcue does not read,
    or not a recording at all; the message names what was found and how to convert it."""


# -- link ----------------------------------------------------------------------------------
class LinkError(DeskcueError):
    """Talking to the broker, or to the running appliance, cannot work as configured."""


class CredentialsError(LinkError, ValueError):
    """The credentials or TLS files cannot be used; the message names the file, not secrets."""


class OutboxLocked(LinkError, RuntimeError):
    """Another process holds this outbox."""


class NotRunning(LinkError, ConnectionError):
    """No running appliance listens on the control socket."""


# -- flashing ------------------------------------------------------------------------------
class FlashingError(DeskcueError):
    """Installing, flashing or signing a config cannot go ahead."""


class ReplayRecordDamaged(FlashingError):
    """The anti-replay record cannot be trusted (damaged, or missing after an MQTT install).

    Remote configs are refused until a tech resets it (`reset_replay`, `deskcue config
    reset-replay`): without it an older signed config could be replayed onto the desk.
    """

    def __init__(self, path: Path, why: str):
        self.path = path
        self.why = why
        super().__init__(f"the replay record {path} {why}: configs over MQTT are refused until "
                         "a tech runs `sudo deskcue config reset-replay` on the desk")


class BootNotFound(FlashingError, FileNotFoundError):
    """The boot partition to flash onto is not there (the card is not mounted)."""


# The command-result codes a signing error answers with (a subset of the contract's ErrorCode)
SigningCode = Literal["unsigned", "no_key", "bad_key", "bad_signature"]


class SigningError(FlashingError, ValueError):
    """A key file or signature that cannot be used; ``code`` is for the command result."""

    def __init__(self, code: SigningCode, message: str):
        super().__init__(message)
        self.code: SigningCode = code

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class KeyNotFound(SigningError, FileNotFoundError):
    """A key file that does not exist."""


# -- indicator -----------------------------------------------------------------------------
class IndicatorError(DeskcueError, OSError):
    """An LED, motor or button pin that cannot be claimed or driven (whatever gpiozero said)."""


# -- report and demo -----------------------------------------------------------------------
class ReportError(DeskcueError, RuntimeError):
    """A report (plot) cannot be made here, e.g. an optional package is not installed."""


class DemoError(DeskcueError, RuntimeError):
    """The demo's helpers (espeak-ng, a private mosquitto) are missing or failed."""


class ToolMissing(DemoError, FileNotFoundError):
    """A program the demo runs (mosquitto) is not installed."""


class SpeechSynthError(DemoError):
    """espeak-ng is missing or failed."""
