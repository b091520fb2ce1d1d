"""The `deskcue` command: run, analyze, snooze, demo, monitor, config, selftest, status."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from firmware import __version__
from firmware.audio.source import AudioError
from firmware.config.load import ConfigError, load_settings


def _cmd_snooze(args: argparse.Namespace) -> int:
    from firmware.platform.control_socket import send

    settings = load_settings(args.config)
    runtime = args.runtime_dir or settings.device.runtime_dir
    minutes = 0.0 if args.cancel else args.minutes
    send(runtime, {"cmd": "snooze", "minutes": minutes})
    print("snooze cancelled" if args.cancel else
          f"snoozed for {minutes if minutes is not None else settings.snooze.default_min} min")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from firmware.cli import analyze as analyze_cmd
    from firmware.cli import demo as demo_cmd
    from firmware.cli import run as run_cmd

    p = argparse.ArgumentParser(prog="deskcue", description=__doc__)
    p.add_argument("--version", action="version", version=f"deskcue {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run the appliance (the service's main job)")
    run_cmd.add_arguments(r)
    r.set_defaults(func=run_cmd.main, needs_settings=True)

    a = sub.add_parser("analyze", help="analyse a recording as fast as possible")
    analyze_cmd.add_arguments(a)
    a.set_defaults(func=analyze_cmd.main, needs_settings=True)

    s = sub.add_parser("snooze", help="snooze the cues of the running appliance")
    s.add_argument("--minutes", type=float, help="how long (default from the config)")
    s.add_argument("--cancel", action="store_true", help="end a snooze now")
    s.add_argument("--config", type=Path, help="config file (for runtime_dir)")
    s.add_argument("--runtime-dir", type=Path, help="where the appliance's socket is")
    s.set_defaults(func=lambda args, _s=None: _cmd_snooze(args), needs_settings=False)

    d = sub.add_parser("demo", help="set up and run the appliance on the bundled recording")
    demo_cmd.add_arguments(d)
    d.set_defaults(func=demo_cmd.main, needs_settings=False)

    for module in ("firmware.cli.monitor", "firmware.cli.config", "firmware.cli.selftest",
                   "firmware.cli.status"):
        __import__(module, fromlist=["register"]).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
