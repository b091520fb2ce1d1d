"""The `deskcue` command: run, analyze, snooze, recalibrate, demo, monitor, config, selftest,
status.

Every error deskcue raises on purpose is a `firmware.errors.DeskcueError`; `main` turns each
family into one line on stderr and an exit code. Only an exception outside that tree (or a
builtin one the command did not expect) is a bug, reported as "internal error" with exit 70;
``-v`` adds its traceback to the log.

====  ==========================================  ==============================================
exit  what                                        the line on stderr
====  ==========================================  ==============================================
0     done
1     the command's own verdict is "no" (config   its own report (problems with key and line,
      check, selftest FAIL or NOT TESTED (every   the selftest table ...)
      step skipped), import refused ...)
1     `AudioError`                                ``deskcue: audio: FILE-or-device: problem``
1     `LinkError` (credentials, TLS, outbox,      ``deskcue: link: problem``
      no running appliance)
1     `SigningError` (a key or signature)         ``deskcue: signing: private key FILE: problem``
1     `FlashingError` (e.g. card not mounted)     ``deskcue: flashing: DIR: problem``
1     `ReportError`, `DemoError`                  ``deskcue: problem`` (what to install)
1     `OSError` (a file or directory the          ``deskcue: FILE: reason`` (e.g. ``no such
      command reads or writes)                    file or directory``, ``not a directory``)
2     usage (argparse)                            argparse's usage and message
2     `ConfigError`                               ``deskcue: config error: FILE: line N: KEY:
                                                  problem (and K more)``
70    anything else: a bug                        ``deskcue: internal error: TYPE: message (run
                                                  with -v for details)``
75    ``run`` only: restart to use a new config   (systemd restarts it; not an error)
130   interrupted (Ctrl-C)
141   the reader of standard output went away     (nothing: ``deskcue analyze ... --events | head``)
====  ==========================================  ==============================================

The same table is in docs/field-tech.md.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import importlib
import io
import logging
import os
import select
import sys
from typing import Any

from firmware import build_version
from firmware.errors import (
    AudioError,
    ConfigError,
    DeskcueError,
    FlashingError,
    LinkError,
    SigningError,
)

# One analysis thread, small matrix products: OpenBLAS's own threads (one per core by default)
# spin and wait more than they compute, e.g. twice the CPU for `analyze` in 5 s blocks on a
# 2-core machine, and on the desk they would compete with the link and the light. Set before
# any verb imports numpy; an explicit setting in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

EXIT_FAILED = 1
EXIT_USAGE = 2  # also argparse's
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `cat big | head`

# Family -> (prefix of the one line, exit code); the first match wins (most specific first).
ERROR_FAMILIES: tuple[tuple[type[BaseException], str, int], ...] = (
    (ConfigError, "config error: ", EXIT_USAGE),
    (AudioError, "audio: ", EXIT_FAILED),
    (LinkError, "link: ", EXIT_FAILED),
    (SigningError, "signing: ", EXIT_FAILED),
    (FlashingError, "flashing: ", EXIT_FAILED),
    (DeskcueError, "", EXIT_FAILED),
)


def describe_os_error(exc: OSError) -> str:
    """``FILE: reason`` for an `OSError` from the file system (what a user can act on)."""
    name = exc.filename
    if name is None or exc.strerror is None:
        return str(exc)
    name = os.fsdecode(name)
    reason = exc.strerror[:1].lower() + exc.strerror[1:]
    if isinstance(exc, FileExistsError) and os.path.exists(name) and not os.path.isdir(name):
        reason = "is a file, not a directory"  # mkdir(parents=True) met a file on the way
    if exc.filename2 is not None:
        return f"{name} -> {os.fsdecode(exc.filename2)}: {reason}"
    return f"{name}: {reason}"


def error_line(exc: BaseException) -> tuple[str, int]:
    """The one line (without ``deskcue: ``) and exit code for an error reaching `main`."""
    for family, prefix, code in ERROR_FAMILIES:
        if isinstance(exc, family):
            return prefix + str(exc), code
    if isinstance(exc, OSError):
        return describe_os_error(exc), EXIT_FAILED
    return (f"internal error: {type(exc).__name__}: {exc} (run with -v for details)",
            EXIT_INTERNAL)

NAME_BYTES = "deskcue-name-bytes"


def _name_bytes(exc: UnicodeError) -> tuple[str | bytes, int]:
    """An encoding error handler: a file name's bytes that were not UTF-8 (kept as surrogates
    U+DC80-U+DCFF when the name was decoded) go out as those bytes, so that a terminal shows
    the name as ``ls`` does and a pasted line names the file again; anything else the stream
    cannot encode becomes a backslash escape, as Python does for stderr by default."""
    if isinstance(exc, UnicodeEncodeError):
        bad = exc.object[exc.start:exc.end]
        if all("\udc80" <= c <= "\udcff" for c in bad):
            return bytes(ord(c) - 0xDC00 for c in bad), exc.end
    return codecs.backslashreplace_errors(exc)


codecs.register_error(NAME_BYTES, _name_bytes)


def names_as_given() -> None:
    """Every line deskcue prints on its own stderr (an error, a warning, a log line, argparse's
    usage error) or stdout gives file names back byte for byte: Python's default writes a
    Latin-1 ``q\\xff.wav`` as ``q\\udcff.wav`` on stderr (and stops with an error on stdout
    under a UTF-8 locale outside Python's UTF-8 mode). Only the process's own streams are
    changed (a test's captured ones stay as they are)."""
    for stream, own in ((sys.stderr, sys.__stderr__), (sys.stdout, sys.__stdout__)):
        if stream is not None and stream is own and isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors=NAME_BYTES)


DESCRIPTION = ("deskcue measures the agent's voice on the desk (level, pitch, laughter-like "
               "bursts, against their own usual voice), cues the agent with a light and a "
               "buzz, and tells supervisors over MQTT. `deskcue VERB --help` tells more.")
EPILOG = ("A command that fails prints one `deskcue:` line on stderr and exits 1 (its verdict "
          "is no, or a recording, device, file, key or the link cannot be used), 2 (the "
          "command line or the config), 70 (a bug in deskcue: please report it) or 130 "
          "(Ctrl-C). Every code and line: docs/field-tech.md, section 7.")

# Every verb: its module under firmware.cli and its one-line help. A verb's module is imported
# only when that verb runs, so `deskcue --help` and light verbs load none of the heavy
# packages (scipy, paho, gpiozero, matplotlib) that others need.
VERBS: dict[str, tuple[str, str]] = {
    "run": ("run", "run the appliance (the service's main job)"),
    "analyze": ("analyze", "analyse a recording as fast as possible"),
    "snooze": ("snooze", "snooze the cues of the running appliance"),
    "recalibrate": ("recalibrate", "forget the agent's usual voice (a desk changing hands)"),
    "demo": ("demo", "run the appliance on a scripted demo call (mock pins, local broker)"),
    "monitor": ("monitor", "live view of every desk on a broker (supervisor's terminal)"),
    "config": ("config", "check, flash and import configs"),
    "selftest": ("selftest", "check this desk's LED, motor, button, headset tap and broker"),
    "status": ("status", "which config this desk runs, and how the appliance is"),
}
NEEDS_SETTINGS = {"analyze"}  # `run` loads its own (a bad config must not stop it)


def _chosen_verb(argv: list[str]) -> str | None:
    """The verb on the command line (the first word that is not an option), if any."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in VERBS else None
    return None


def _add_verb(sub: argparse._SubParsersAction, verb: str) -> None:  # type: ignore[type-arg]
    module = importlib.import_module(f"firmware.cli.{VERBS[verb][0]}")
    if hasattr(module, "register"):  # a verb with subcommands or its own parser set-up
        module.register(sub)
        return
    p = sub.add_parser(verb, help=VERBS[verb][1], description=VERBS[verb][1])
    module.add_arguments(p)
    p.set_defaults(func=module.main, needs_settings=verb in NEEDS_SETTINGS)


class _VersionAction(argparse.Action):
    """``--version``: the build's version, read only when asked (`firmware.build_version`)."""

    def __init__(self, option_strings: list[str], dest: str, **_: Any) -> None:
        super().__init__(option_strings, dest, nargs=0,
                         help="show the build's version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"deskcue {build_version()}")
        parser.exit()


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The `deskcue` parser. With ``argv``, only the verb it names is set up in full (the
    others are listed by name and help); without, every verb is (slower: imports them all)."""
    p = argparse.ArgumentParser(prog="deskcue", description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("--version", action=_VersionAction)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _chosen_verb(argv) if argv is not None else None
    for verb, (_module, help_text) in VERBS.items():
        if argv is None or verb == chosen:
            _add_verb(sub, verb)
        else:
            sub.add_parser(verb, help=help_text)
    _describe(p)
    return p


def _describe(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand without a description its one-line help as one, so that
    `deskcue config flash --help` starts by saying what the command does."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for pseudo in action._choices_actions:
                child = action.choices[pseudo.dest]
                if child.description is None and pseudo.help:
                    child.description = pseudo.help[:1].upper() + pseudo.help[1:] + "."
                _describe(child)


def main(argv: list[str] | None = None) -> int:
    names_as_given()
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("gpiozero").setLevel(logging.WARNING)
    try:
        if getattr(args, "needs_settings", False):
            # pydantic and the settings models: only for the verbs that need them, so that
            # --help and the light verbs start in a third of the CPU time
            from firmware.config.load import load_settings

            settings = load_settings(getattr(args, "config", None))
            code = int(args.func(args, settings))
        else:
            code = int(args.func(args, None) if args.func.__code__.co_argcount >= 2
                       else args.func(args))
        try:  # a reader that went away, or a full disk, shows here, not as a warning at exit
            if sys.stdout is not None:  # None: started with standard output closed
                sys.stdout.flush()
        except OSError as exc:
            if exc.filename is not None or exc.errno is None:
                raise
            raise OSError(exc.errno, exc.strerror, "standard output") from exc
        return code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError as exc:
        if not _stdout_gone():
            return _report(exc)
        # `deskcue analyze call.wav --events | head`: the reader has all it wanted. Stop
        # quietly, as cat does; stdout goes to /dev/null so the exit flush cannot fail again.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        return _report(exc)


def _stdout_gone() -> bool:
    """True when standard output is a pipe whose reader has gone (poll says POLLERR)."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _fd, events in poll.poll(0))
    except (OSError, ValueError, AttributeError):  # closed, or None (started without one)
        return False


def _report(exc: BaseException) -> int:
    """Print the one ``deskcue:`` line for an error reaching `main`; its exit code."""
    line, code = error_line(exc)
    if code == EXIT_INTERNAL:  # a bug: still one line, with the trace under --verbose
        logging.getLogger("deskcue").debug("unexpected error", exc_info=exc)
    print(f"deskcue: {line}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
