"""`deskcue config ...`: check, flash, import, apply, acknowledge, roll back, sign configs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from firmware.cli.args import same_file
from firmware.config import schema as config_schema
from firmware.config.checks import CheckResult, check_file, resolve_desk_text
from firmware.config.load import load_settings, read_config_text
from firmware.config.settings import Settings
from firmware.contract.commands import ISSUED_AHEAD_MAX_S, ConfigCommandArgs
from firmware.errors import ConfigError, NotRunning
from firmware.flashing.card import flash_to_boot, import_from_boot
from firmware.flashing.install import ApplyResult, apply_text
from firmware.flashing.records import (
    CONFIG_NAME,
    DEFAULT_BOOT_DIRS,
    DEFAULT_ETC,
    clear_fault,
    fault_record,
    reset_replay,
    state_dir_of,
)
from firmware.flashing.trial import last_good_problem, rollback
from firmware.link.acl import DEFAULT_USER_FORMAT, desk_account, mosquitto_acl, passwords_script
from firmware.platform.control_socket import request
from firmware.platform.host import clock_is_synced

HERE_NOTE = ("{n} warning(s) name files or directories that are unusable on this machine; the "
             "desk refuses the config if they are unusable there (on the desk, run `deskcue "
             "config check --here FILE` to treat them as problems)")


def check(path: Path, desk: str | None = None, quiet_warnings: bool = False,
          here: bool = False) -> int:
    """Validate ``path``; print every problem and warning (key path, line); exit code.

    0 = usable (warnings allowed), 1 = problems. ``here``: this machine is the desk, so the
    directories and files the config names must be usable here (else they are warnings).
    """
    result = check_file(path, desk, here=here)
    for line in result.lines():
        if quiet_warnings and ": warning: " in line:
            continue
        print(line, file=sys.stderr if not result.ok else sys.stdout)
    _host_note(result, quiet_warnings)
    n_p, n_w = len(result.problems), len(result.warnings) + len(result.host_warnings)
    if not result.ok:
        print(f"{path}: {n_p} problem(s), {n_w} warning(s); config NOT usable", file=sys.stderr)
        return 1
    desks = f" ({len(result.configs)} desks: {', '.join(result.configs)})" \
        if result.site_file else ""
    print(f"{path}: OK{desks}" + (f", {n_w} warning(s)" if n_w else ""))
    return 0


def _host_note(result: CheckResult, quiet: bool = False) -> None:
    if result.host_warnings and not quiet:
        print(f"{result.source}: " + HERE_NOTE.format(n=len(result.host_warnings)),
              file=sys.stderr if not result.ok else sys.stdout)


def _print_result(result: ApplyResult) -> None:
    stream = sys.stdout if result.ok else sys.stderr
    print(result.message or result.status, file=stream)
    for p in result.problems:
        print(f"  {p}", file=stream)
    for w in result.warnings:
        print(f"  warning: {w}", file=stream)
    if result.note is not None:
        print(f"note: {result.note}", file=stream)


def _cmd_flash(a: argparse.Namespace, _s: Any = None) -> int:
    target, result = flash_to_boot(a.file, a.boot, desk=a.desk, here=a.here)
    for line in result.lines():
        print(line, file=sys.stderr if not result.ok else sys.stdout)
    _host_note(result)
    if target is None:
        print(f"{a.file}: {len(result.problems)} problem(s); nothing written", file=sys.stderr)
        return 1
    print(f"wrote {target}: the desk installs it at its next boot (the result is left next "
          f"to it as {CONFIG_NAME}.applied-<time>.result.txt)")
    return 0


def _cmd_import(a: argparse.Namespace, _s: Any = None) -> int:
    config = a.etc / CONFIG_NAME
    result = import_from_boot(a.boot or list(DEFAULT_BOOT_DIRS), config, state_dir=a.state)
    _print_result(result)
    return 0 if result.ok else 1


def _cmd_apply(a: argparse.Namespace, _s: Any = None) -> int:
    text = read_config_text(a.file)
    result = apply_text(text, source="local", config_path=a.etc / CONFIG_NAME,
                        state_dir=a.state, desk=a.desk, origin=str(a.file))
    _print_result(result)
    if result.ok and result.status == "applied":
        print("restart the appliance to use it: systemctl restart deskcue")
    return 0 if result.ok else 1


def _cmd_ack(a: argparse.Namespace, _s: Any = None) -> int:
    config = a.etc / CONFIG_NAME
    state = a.state or state_dir_of(config)
    cleared = clear_fault(state)
    print("config fault cleared" if cleared else "no config fault pending")
    # The running appliance shows the fault it read at its start: tell it, so that the red
    # blink ends now (what docs/field-tech.md promises), not at the next restart.
    restart = "restart the appliance to clear its light: sudo systemctl restart deskcue"
    try:
        reply = request(_runtime_dir(config), {"cmd": "config_ack"})
    except NotRunning:
        return 0
    except PermissionError as exc:
        print(f"cannot tell the running appliance ({exc.filename}: permission denied); "
              f"{restart}")
        return 0
    data = reply.get("data") if reply is not None and reply.get("ok") else None
    if not isinstance(data, dict):
        print(f"the running appliance did not take it; {restart}")
    elif data.get("config_fault"):
        print(f"the running appliance still shows a config fault ({data['config_fault']}): "
              f"it reads its own state directory; {restart}")
    elif cleared:
        print("the desk's light no longer shows it")
    return 0


def _runtime_dir(config: Path) -> Path:
    """The runtime directory (the appliance's control socket) the config names, else the
    default one."""
    try:
        return Path(load_settings(config).device.runtime_dir)
    except ConfigError:
        return Path(Settings().device.runtime_dir)


def _cmd_reset_replay(a: argparse.Namespace, _s: Any = None) -> int:
    state = a.state or state_dir_of(a.etc / CONFIG_NAME)
    issued = a.issued
    if issued is None:
        if not clock_is_synced():
            print("deskcue: the clock is not synced, so `now` is no safe floor: give --issued N "
                  "(the `issued` of the newest config signed for this desk)", file=sys.stderr)
            return 1
        issued = int(time.time())
    before, aside = reset_replay(state, issued, time.time())
    if aside is not None:
        print(f"damaged replay record kept as {aside}")
    fault = fault_record(state) or {}
    if "replay record" in str(fault.get("message", "")):
        clear_fault(state)  # the refusal it caused is answered by this reset
        print("config fault about the replay record cleared (restart the appliance to clear "
              "its light: systemctl restart deskcue)")
    kept = max(issued, before) if before is not None else issued
    print(f"replay record reset: configs over MQTT must now have issued > {kept}"
          + (f" (it was {before})" if before is not None else "")
          + "; sign a fresh one (deskcue config sign uses the current time)")
    return 0


def _cmd_rollback(a: argparse.Namespace, _s: Any = None) -> int:
    config = a.etc / CONFIG_NAME
    if not rollback(config, "rolled back by hand", state_dir=a.state, fault=False):
        why = last_good_problem(config) or "it could not be put back"
        print(f"deskcue: {config}: nothing rolled back: {why}", file=sys.stderr)
        return 1
    print(f"{config}: last good config restored; restart the appliance: "
          "systemctl restart deskcue")
    return 0


def _cmd_keygen(a: argparse.Namespace, _s: Any = None) -> int:
    from firmware.flashing.signing import generate_keypair

    try:
        line = generate_keypair(a.private, a.public, a.comment or "")
    except FileExistsError as exc:
        what = "private key" if exc.filename == str(a.private) else "public key"
        print(f"deskcue: {exc.filename} exists; keygen never overwrites a file (the {what} "
              "to write): give a new name", file=sys.stderr)
        return 1
    print(f"private key: {a.private} (keep it off the desks)\npublic key:  {a.public}\n{line}")
    return 0


def _cmd_sign(a: argparse.Namespace, _s: Any = None) -> int:
    from firmware.flashing.signing import load_private_key, sign_config

    text = read_config_text(a.file)
    resolved, result = resolve_desk_text(text, str(a.file), a.desk, here=False)
    if not result.ok:
        for line in result.lines():
            print(line, file=sys.stderr)
        return 1
    issued = a.issued if a.issued is not None else int(time.time())
    if issued > time.time() + ISSUED_AHEAD_MAX_S and clock_is_synced():
        print(f"deskcue: config sign: --issued {issued} is more than a day ahead of this "
              "machine's clock; every desk would refuse it (accepted, it would make every "
              "config signed before it a replay)", file=sys.stderr)
        return 2
    txid = a.txid or f"cfg-{issued}"
    # The desk checks the payload against this model before anything else: a txid it cannot
    # read is answered `malformed` with no txid to match, a negative issued `invalid_args`.
    try:
        ConfigCommandArgs(txid=txid, issued=issued, config=resolved, key_id=a.key_id)
    except ValidationError as exc:
        options = {"txid": "--txid", "issued": "--issued", "key_id": "--key-id"}
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            print(f"deskcue: config sign: {options.get(field, field)} {err['input']!r}: "
                  f"{err['msg']}; every desk would refuse this payload", file=sys.stderr)
        return 2
    payload = sign_config(load_private_key(a.key), resolved, txid=txid, issued=issued,
                          key_id=a.key_id)
    print(json.dumps(payload))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``deskcue config {check,schema,flash,import,ack,keygen,sign}`` to ``sub``."""
    c = sub.add_parser("config", help="check, flash and import configs",
                       description="Check, flash and import configs (see docs/field-tech.md).")
    csub = c.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")

    ck = csub.add_parser("check", help="validate a config file; list every problem and warning")
    ck.add_argument("file", type=Path,
                    help="the config file (a desk file or a site file)")
    ck.add_argument("--desk", help="in a site file, check only this desk")
    ck.add_argument("--no-warnings", action="store_true", help="show problems only")
    ck.add_argument("--here", action="store_true",
                    help="this machine is the desk: a state directory, credentials or TLS "
                    "file the config names that is unusable here is a problem, not a warning")
    ck.set_defaults(func=lambda a, _s=None: check(a.file, a.desk, a.no_warnings, a.here),
                    needs_settings=False)

    sc = csub.add_parser("schema", help="print the JSON schema (or default TOML) of the config")
    sc.add_argument("--toml", action="store_true", help="print the commented default instead")
    sc.add_argument("--write", action="store_true",
                    help="regenerate config/schema.json and config/deskcue.toml (developers)")

    def _schema(a: argparse.Namespace, _s: Any = None) -> int:
        if a.write:
            for path in config_schema.write():
                print(f"wrote {path}")
        else:
            sys.stdout.write(config_schema.schema_text() if not a.toml
                             else config_schema.default_toml())
        return 0

    sc.set_defaults(func=_schema, needs_settings=False)
    _register_install(csub)
    _register_acl(csub)


def _register_install(csub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add flash, import, apply, ack, reset-replay, rollback, keygen and sign under
    ``deskcue config``."""
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--etc", type=Path, default=DEFAULT_ETC,
                       help=f"config directory (default {DEFAULT_ETC})")
        p.add_argument("--state", type=Path,
                       help="state directory (default: the config's device.state_dir)")

    f = csub.add_parser("flash", help="check a config and put it on a desk's SD card")
    f.add_argument("file", type=Path,
                   help="the config file to put on the card (a desk file, or a site file "
                   "with --desk)")
    f.add_argument("--boot", type=Path, required=True,
                   help="the card's boot partition, mounted (e.g. /media/$USER/bootfs)")
    f.add_argument("--desk", help="for a site file: which desk's config to write")
    f.add_argument("--here", action="store_true",
                   help="check the files and directories the config names on this machine "
                   "as problems (as the desk will), not warnings")
    f.set_defaults(func=_cmd_flash, needs_settings=False)

    i = csub.add_parser("import", help="install deskcue.toml from the boot partition "
                        "(run at boot by deskcue-config-import.service)")
    i.add_argument("--boot", type=Path, action="append",
                   help="boot partition to look in (repeatable; default /boot/firmware, /boot)")
    common(i)
    i.set_defaults(func=_cmd_import, needs_settings=False)

    ap = csub.add_parser("apply", help="install a config file on this desk now")
    ap.add_argument("file", type=Path,
                    help="the config file to install (a desk file, or a site file with --desk)")
    ap.add_argument("--desk", help="for a site file: which desk's config to install")
    common(ap)
    ap.set_defaults(func=_cmd_apply, needs_settings=False)

    ack = csub.add_parser("ack", help="clear a pending config fault (after reading it)")
    common(ack)
    ack.set_defaults(func=_cmd_ack, needs_settings=False)

    rr = csub.add_parser("reset-replay", help="reset a damaged anti-replay record (configs "
                         "over MQTT are refused until this is done)",
                         description="Reset the record of the newest config accepted over "
                         "MQTT after it was damaged: from now on only configs signed with "
                         "`issued` above the given value (default: now) are accepted.")
    rr.add_argument("--issued", type=int, metavar="N",
                    help="accept only configs issued after N (default: the current time, "
                    "Unix seconds; required when the clock is not synced)")
    common(rr)
    rr.set_defaults(func=_cmd_reset_replay, needs_settings=False)

    rb = csub.add_parser("rollback", help="put the last good config back")
    common(rb)
    rb.set_defaults(func=_cmd_rollback, needs_settings=False)

    kg = csub.add_parser("keygen", help="make an Ed25519 key pair for signing configs")
    kg.add_argument("--private", type=Path, required=True, help="private key file to create")
    kg.add_argument("--public", type=Path, required=True, help="public key file for the desks")
    kg.add_argument("--comment", help="comment on the public key line")
    kg.set_defaults(func=_cmd_keygen, needs_settings=False)

    sg = csub.add_parser("sign", help="make a signed cmd/config payload (JSON on stdout)")
    sg.add_argument("file", type=Path,
                    help="the config file to sign (a desk file, or a site file with --desk)")
    sg.add_argument("--key", type=Path, required=True, help="Ed25519 private key (PEM)")
    sg.add_argument("--desk", help="for a site file: which desk's config to sign")
    sg.add_argument("--txid", help="transaction id (default cfg-<issued>)")
    sg.add_argument("--issued", type=int, help="counter that must grow (default: now, Unix s)")
    sg.add_argument("--key-id", help="name of the key, for the desk's log")
    sg.set_defaults(func=_cmd_sign, needs_settings=False)


def _output_problem(outputs: dict[str, Path | None]) -> str | None:
    """Why one of the files a command is to write cannot be written (None if each can be):
    said before anything is printed or written, so a command never half-succeeds."""
    named = {opt: path for opt, path in outputs.items() if path is not None}
    for opt, path in named.items():
        if path.is_dir():
            return f"{opt} {path} is a directory: give a file name"
        if not path.parent.is_dir():
            return f"{opt} {path}: no directory {path.parent}"
    paths = list(named.values())
    if any(same_file(p, q) for i, p in enumerate(paths) for q in paths[i + 1:]):
        return f"{' and '.join(named)} name the same file: give each its own"
    return None


def _cmd_acl(a: argparse.Namespace, _s: Any = None) -> int:
    if (problem := _output_problem({"--out": a.out, "--script": a.script})) is not None:
        print(f"deskcue: config acl: {problem}", file=sys.stderr)
        return 2
    result = check_file(a.file)
    if not result.ok:
        for line in result.lines():
            print(line, file=sys.stderr)
        return 1
    try:
        desks = [desk_account(s.mqtt.topic_prefix, s.device.site, s.device.desk, a.user_format)
                 for s in result.configs.values()]
        has = [s.mqtt.home_assistant for s in result.configs.values()]
        prefixes = sorted({h.discovery_prefix for h in has}) or ["homeassistant"]
        if len(prefixes) > 1:
            raise ValueError("the desks name different mqtt.home_assistant.discovery_prefix "
                             f"values: {', '.join(prefixes)}")
        prefix, ha_on = prefixes[0], any(h.enabled for h in has)
        acl = mosquitto_acl(desks, a.supervisor, title=f"from {a.file.name}",
                            discovery_prefix=prefix, home_assistant=ha_on)
    except (KeyError, IndexError, ValueError) as exc:
        print(f"deskcue: config acl: {exc}", file=sys.stderr)
        return 1
    if a.out is None:
        sys.stdout.write(acl)
    else:
        a.out.write_text(acl, encoding="utf-8")
        print(f"wrote {a.out}: use it as mosquitto's acl_file", file=sys.stderr)
    if a.script is not None:
        a.script.write_text(passwords_script(desks, a.supervisor, passwd_file=a.passwd_file))
        a.script.chmod(0o700)
        print(f"wrote {a.script}: run it on the broker to make every account", file=sys.stderr)
    return 0


def _register_acl(csub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    acl = csub.add_parser("acl", help="make a broker ACL that pins each desk to its subtree",
                          description="Write a mosquitto ACL for the desks of a site file (or "
                          "one desk file): each desk may publish and read only in its own "
                          "subtree; supervisors read the site and send commands.")
    acl.add_argument("file", type=Path, help="a site file (every desk) or a desk file")
    acl.add_argument("--supervisor", action="append", default=[], metavar="USER",
                     help="a supervisor's broker username (repeatable)")
    acl.add_argument("--user-format", default=DEFAULT_USER_FORMAT,
                     help="each desk's broker username (default: %(default)s)")
    acl.add_argument("--out", type=Path, help="write the ACL here (default: standard output)")
    acl.add_argument("--script", type=Path,
                     help="also write a shell recipe that makes the password file and each "
                     "desk's credentials file")
    acl.add_argument("--passwd-file", default="/etc/mosquitto/deskcue.passwd",
                     help="the broker's password file, for --script (default: %(default)s)")
    acl.set_defaults(func=_cmd_acl, needs_settings=False)


def main(argv: list[str] | None = None) -> int:
    """``python -m firmware.cli.config ...`` (the same as ``deskcue config ...``)."""
    p = argparse.ArgumentParser(prog="deskcue")
    register(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(["config", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args, None))


if __name__ == "__main__":
    sys.exit(main())
