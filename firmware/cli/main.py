"""The `deskcue` command: run, analyze, snooze, demo, monitor, config, selftest, status."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from firmware import __version__
from firmware.audio.source import AudioError
from firmware.config.load import ConfigError, load_settings

# Every verb: its module under firmware.cli and its one-line help. A verb's module is imported
# only when that verb runs, so `deskcue --help` and light verbs load none of the heavy
# packages (scipy, paho, gpiozero, matplotlib) that others need.
VERBS: dict[str, tuple[str, str]] = {
    "run": ("run", "run the appliance (the service's main job)"),
    "analyze": ("analyze", "analyse a recording as fast as possible"),
    "snooze": ("snooze", "snooze the cues of the running appliance"),
    "demo": ("demo", "set up and run the appliance on the bundled recording"),
    "monitor": ("monitor", "live view of every desk on a broker (supervisor's terminal)"),
    "config": ("config", "check, flash and import configs"),
    "selftest": ("selftest", "check this desk's LED, motor, button, headset tap and broker"),
    "status": ("status", "which config this desk runs, and how the appliance is"),
}
NEEDS_SETTINGS = {"run", "analyze"}


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


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The `deskcue` parser. With ``argv``, only the verb it names is set up in full (the
    others are listed by name and help); without, every verb is (slower: imports them all)."""
    p = argparse.ArgumentParser(prog="deskcue", description=__doc__)
    p.add_argument("--version", action="version", version=f"deskcue {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)
    chosen = _chosen_verb(argv) if argv is not None else None
    for verb, (_module, help_text) in VERBS.items():
        if argv is None or verb == chosen:
            _add_verb(sub, verb)
        else:
            sub.add_parser(verb, help=help_text)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    logging.getLogger("gpiozero").setLevel(logging.WARNING)
    try:
        if getattr(args, "needs_settings", False):
            settings = load_settings(getattr(args, "config", None))
            return int(args.func(args, settings))
        return int(args.func(args, None) if args.func.__code__.co_argcount >= 2
                   else args.func(args))
    except ConfigError as exc:
        print(f"deskcue: config error: {exc}", file=sys.stderr)
        return 2
    except AudioError as exc:
        print(f"deskcue: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"deskcue: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line, with the trace under --verbose
        logging.getLogger("deskcue").debug("unexpected error", exc_info=True)
        print(f"deskcue: internal error: {type(exc).__name__}: {exc} (run with -v for details)",
              file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
