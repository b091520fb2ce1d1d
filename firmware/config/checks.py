"""Checking a config file: every problem with its key and line, warnings, site files.

A config file is either a **desk file** (one desk's settings, shaped like
``config/deskcue.toml``) or a **site file**: the settings a site's desks share, plus a
``[desks.<name>]`` table per desk holding only what differs for that desk::

    [device]
    site = "lyon"
    [mqtt]
    host = "broker.lyon.example"

    [desks.d01]                   # desk d01: the shared settings, plus these
    [desks.d02.audio]
    agent_channel = "right"       # this desk's tap is wired the other way round

A desk's effective config is the shared part with its own table merged over it, key by key;
``device.desk`` is the table's name unless the table sets it. `deskcue config check SITE.toml`
checks every desk; `deskcue config flash SITE.toml --desk d02 --boot DIR` writes d02's
resolved config (a plain desk file) onto the card. A desk only ever installs a desk file.

`check_text` finds every problem at once, each with its key path and line; warnings (settings
that are legal but will nag the agent or leak data) are reported without failing.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.config.load import (
    key_line,
    key_lines,
    parse_toml,
    read_config_text,
    validate_data,
)
from firmware.config.schema import dump_toml
from firmware.config.section import TOPIC_SAFE
from firmware.config.settings import Settings
from firmware.config.usable import desk_problems, host_problems, secret_warnings
from firmware.errors import ConfigError, ConfigProblem
from firmware.platform.files import printable_name

log = logging.getLogger("deskcue.config")

DESKS_KEY = "desks"


@dataclass(frozen=True)
class CheckResult:
    """What `check_text` found. ``configs``: desk name -> effective settings (one entry, keyed
    by its ``device.desk``, for a desk file); empty when there are problems."""

    source: str
    problems: list[ConfigProblem]
    warnings: list[ConfigProblem]
    configs: dict[str, Settings] = field(default_factory=dict)
    site_file: bool = False
    host_warnings: list[ConfigProblem] = field(default_factory=list)
    """Files and directories the config names that are unusable on the machine that checked
    it, when that is not the desk (``here=False``); on the desk they are `problems`."""

    @property
    def ok(self) -> bool:
        """True when the file can be used (warnings do not count)."""
        return not self.problems

    def lines(self) -> list[str]:
        """Every problem and warning as ``source:line: key: message``, in file order."""
        out = []
        items = [(p, "") for p in self.problems] + [
            (w, "warning: ") for w in self.warnings + self.host_warnings]
        items.sort(key=lambda it: (it[0].line or 0, it[1] != "", it[0].key))
        for p, tag in items:
            where = f"{self.source}:{p.line}" if p.line else self.source
            out.append(f"{where}: {tag}{p.key or '(file)'}: {p.message}")
        return out


# -- warnings: legal settings that will nag the agent or expose data -----------------------------


@dataclass(frozen=True)
class Rule:
    """A warning rule over the effective settings; ``key`` locates it in the file."""

    key: str
    applies: Callable[[Settings], bool]
    message: Callable[[Settings], str]


def _get(settings: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        settings = getattr(settings, part)
    return settings


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _cue_rule(base: str, key: str, nags: Callable[[Any], bool],
              why: Callable[[Any], str]) -> Rule:
    """A warning on ``cues.<base>.<key>`` when the cue is enabled and ``nags(cue)``."""
    def applies(s: Settings) -> bool:
        cue = _get(s, base)
        return bool(getattr(cue, "enabled", True)) and nags(cue)

    return Rule(f"{base}.{key}", applies, lambda s: why(_get(s, base)))


def _cue_rules() -> list[Rule]:
    """Nagging thresholds, for every cue section that has the field (cues added later too)."""
    rules: list[Rule] = []
    cues = Settings.model_fields["cues"].annotation
    assert cues is not None
    for name, f in cues.model_fields.items():
        fields = f.annotation.model_fields if f.annotation is not None else {}
        base = f"cues.{name}"
        if "threshold_db" in fields:
            rules.append(_cue_rule(
                base, "threshold_db", lambda c: c.threshold_db < 5.0,
                lambda c: f"{c.threshold_db:g} dB is below 5 dB: ordinary emphasis will set "
                "the cue off and nag the agent (6-10 dB is usual)"))
        if "hold_s" in fields:
            rules.append(_cue_rule(
                base, "hold_s", lambda c: c.hold_s < 0.5,
                lambda c: f"{c.hold_s:g} s is below 0.5 s: a single loud word will set the "
                "cue off"))
        if "max_per_hour" in fields:
            rules.append(_cue_rule(
                base, "max_per_hour", lambda c: c.max_per_hour > 20,
                lambda c: f"{c.max_per_hour} cues an hour is above 20: the agent will learn "
                "to ignore the light"))
    return rules


RULES: list[Rule] = [
    Rule("mqtt.host",
         lambda s: s.mqtt.enabled and not s.mqtt.tls.enabled and not _is_loopback(s.mqtt.host),
         lambda s: f"broker {s.mqtt.host!r} is not on this machine and TLS is off: events, "
         "commands and the broker password travel unencrypted; set [mqtt.tls] enabled = true"),
    Rule("mqtt.port",
         lambda s: s.mqtt.enabled and s.mqtt.tls.enabled and s.mqtt.port == 1883,
         lambda s: "TLS on port 1883, which brokers use for plain MQTT (TLS is usually 8883)"),
    Rule("indicator.led",
         lambda s: s.indicator.led == "none" and s.indicator.motor_pin is None,
         lambda s: "no LED and no motor: the agent gets no cue at all"),
    Rule("snooze.default_min",
         lambda s: s.snooze.default_min > s.snooze.max_min,
         lambda s: f"{s.snooze.default_min:g} min is above snooze.max_min "
         f"({s.snooze.max_min:g}): a button press snoozes {s.snooze.max_min:g} min"),
]


def warnings_for(settings: Settings) -> list[tuple[str, str]]:
    """``(key path, message)`` for every warning rule that applies to ``settings``."""
    return [(r.key, r.message(settings)) for r in RULES + _cue_rules() if r.applies(settings)]


# -- site files --------------------------------------------------------------------------------


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in, table by table (``over`` wins for a key in both)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def desk_data(data: dict[str, Any], desk: str) -> dict[str, Any]:
    """The effective config data for ``desk`` of a parsed site file ``data``."""
    base = {k: v for k, v in data.items() if k != DESKS_KEY}
    over = data.get(DESKS_KEY, {}).get(desk)
    if over is None:
        raise KeyError(desk)
    merged = deep_merge(base, over)
    own_device = over.get("device") if isinstance(over.get("device"), dict) else {}
    if isinstance(merged.get("device", {}), dict) and "desk" not in own_device:
        merged["device"] = {**merged.get("device", {}), "desk": desk}
    return merged


def _relocate(p: ConfigProblem, desk: str, over: dict[str, Any],
              lines: dict[tuple[str, ...], int]) -> ConfigProblem:
    """A problem in ``desk``'s merged config, pointed at the desk table when it set the key."""
    path = tuple(p.key.split(".")) if p.key else ()
    node: Any = over
    depth = 0
    for part in path:
        if isinstance(node, dict) and part in node:
            node, depth = node[part], depth + 1
        else:
            break
    if depth and (depth == len(path) or not isinstance(node, dict)):
        full = (DESKS_KEY, desk) + path
        return ConfigProblem(".".join(full), key_line("", full, lines), p.message)
    return ConfigProblem(p.key, key_line("", path, lines) if path else p.line, p.message)


# -- checking ----------------------------------------------------------------------------------


def _check_one(data: dict[str, Any], text: str, source: str, here: bool
               ) -> tuple[Settings | None, list[ConfigProblem], list[ConfigProblem],
                          list[ConfigProblem]]:
    """(settings, problems, warnings, host warnings) of one desk's config data."""
    try:
        settings = validate_data(data, text, source)
    except ConfigError as exc:
        return None, exc.problems, [], []
    lines = key_lines(text)

    def located(findings: list[tuple[str, str]]) -> list[ConfigProblem]:
        return [ConfigProblem(k, key_line(text, tuple(k.split(".")), lines), m)
                for k, m in findings]

    warns = located(warnings_for(settings) + secret_warnings(settings))
    problems = located(desk_problems(settings))
    host = located(host_problems(settings))
    if here:
        problems, host = problems + host, []
    return (settings if not problems else None), problems, warns, host


def check_text(text: str, source: str = "<config>", desk: str | None = None, *,
               here: bool = True) -> CheckResult:
    """Check config ``text`` as a whole: every problem and warning, with key paths and lines.

    A site file (one with a ``[desks]`` table) is checked for every desk, or only ``desk``.
    Everything that would stop the desk is a problem (`firmware.config.usable`); ``here``
    False (a tech's laptop) reports the files and directories the config names that are
    unusable on this machine as `CheckResult.host_warnings` instead. Never raises: a failure
    of the checker itself refuses the file with one problem.
    """
    try:
        return _check_text(text, source, desk, here)
    except Exception as exc:  # noqa: BLE001 - fail closed: a checker bug never installs a file
        log.exception("config checker failed on %s", source)
        return CheckResult(source, [ConfigProblem(
            "", None, f"the config checker failed on this file ({type(exc).__name__}); "
            "it is refused: please report this")], [])


def _check_text(text: str, source: str, desk: str | None, here: bool) -> CheckResult:
    try:
        data = parse_toml(text, source)
    except ConfigError as exc:
        return CheckResult(source, exc.problems, [])
    if DESKS_KEY not in data:
        settings, problems, warns, host = _check_one(data, text, source, here)
        configs = {settings.device.desk: settings} if settings is not None else {}
        return CheckResult(source, problems, warns, configs, host_warnings=host)
    # a site file: every desk's problems, relocated to the desk's own table
    lines = key_lines(text)
    desks = data[DESKS_KEY]
    problems = []
    warns = []
    hosts = []
    configs = {}
    if not isinstance(desks, dict) or not desks:
        return CheckResult(source, [ConfigProblem(
            DESKS_KEY, key_line(text, (DESKS_KEY,), lines),
            "a site file needs a [desks.<name>] table for each desk")], [], site_file=True)
    names = list(desks) if desk is None else [desk]
    for name in names:
        if name not in desks:
            problems.append(ConfigProblem(DESKS_KEY, key_line(text, (DESKS_KEY,), lines),
                                          f"no desk {name!r} here; desks: {', '.join(desks)}"))
            continue
        where = (DESKS_KEY, name)
        if not re.match(TOPIC_SAFE, name):
            problems.append(ConfigProblem(".".join(where), key_line(text, where, lines),
                                          "desk name: letters, digits, _ and - only"))
            continue
        if not isinstance(desks[name], dict):
            problems.append(ConfigProblem(".".join(where), key_line(text, where, lines),
                                          "must be a table of this desk's settings"))
            continue
        settings, ps, ws, hs = _check_one(desk_data(data, name), text, source, here)
        problems += [_relocate(p, name, desks[name], lines) for p in ps]
        warns += [_relocate(w, name, desks[name], lines) for w in ws]
        hosts += [_relocate(h, name, desks[name], lines) for h in hs]
        if settings is not None:
            configs[name] = settings
    problems += _shared_identities(data, names, text, lines)
    return CheckResult(source, _unique(problems), _unique(warns),
                       configs if not problems else {}, site_file=True,
                       host_warnings=_unique(hosts))


def _identity(s: Settings) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """What two desks on one broker must not share: the topic subtree and the client id."""
    m, d = s.mqtt, s.device
    return ((m.host, m.port, m.topic_prefix, d.site, d.desk),
            (m.host, m.port, m.client_id or f"deskcue-{d.site}-{d.desk}"))


def _shared_identities(data: dict[str, Any], names: list[str], text: str,
                       lines: dict[tuple[str, ...], int]) -> list[ConfigProblem]:
    """Desks of a site file that would take one identity on the broker (a desk table that
    sets device.desk or mqtt.client_id to another desk's): the two boxes would throw each
    other off the broker and mix their events. Judged against every desk of the file, also
    when one is checked (`--desk`), since the others are flashed from the same file."""
    subtrees: dict[tuple[Any, ...], list[str]] = {}
    clients: dict[tuple[Any, ...], list[str]] = {}
    for name, over in data[DESKS_KEY].items():
        if not isinstance(over, dict) or not re.match(TOPIC_SAFE, name):
            continue
        try:
            settings = Settings.model_validate(desk_data(data, name))
        except Exception:  # noqa: BLE001 - its own problems are reported for it
            continue
        subtree, client = _identity(settings)
        subtrees.setdefault(subtree, []).append(name)
        clients.setdefault(client, []).append(name)
    out = []
    for groups, what, fix in (
            (subtrees, "the MQTT subtree {}/{}/{}", "device.desk"),
            (clients, "the MQTT client id {}", "mqtt.client_id")):
        for key, group in groups.items():
            if len(group) < 2 or (groups is clients and any(
                    len(g) > 1 and set(group) <= set(g) for g in subtrees.values())):
                continue  # told once: desks sharing a subtree share its default client id
            for name in group:
                if name not in names:
                    continue
                others = ", ".join(f"desks.{o}" for o in group if o != name)
                where = (DESKS_KEY, name)
                out.append(ConfigProblem(
                    ".".join(where), key_line(text, where, lines),
                    f"takes {what.format(*key[-3:] if groups is subtrees else key[-1:])}, as "
                    f"{others} does: two boxes with one identity throw each other off the "
                    f"broker; give each desk its own {fix} (or leave it out: the desk table's "
                    "name is used)"))
    return out


def _unique(items: list[ConfigProblem]) -> list[ConfigProblem]:
    return list(dict.fromkeys(items))


def check_file(path: Path, desk: str | None = None, *, here: bool = True) -> CheckResult:
    """`check_text` of the file at ``path`` (an unreadable file is one problem)."""
    try:
        text = read_config_text(path)
    except ConfigError as exc:
        return CheckResult(str(path), exc.problems, [])
    return check_text(text, str(path), desk, here=here)


NAME_THE_DESK = "name the desk with --desk NAME"
"""What a command that takes ``--desk`` tells a tech who gave it a site file."""


def resolve_desk_text(text: str, source: str, desk: str | None, *, here: bool = True,
                      name_the_desk: str = NAME_THE_DESK) -> tuple[str, CheckResult]:
    """The desk file to install from ``text``: itself for a desk file, or ``desk``'s resolved
    config for a site file (a problem saying ``name_the_desk`` when no ``desk`` is named)."""
    result = check_text(text, source, desk, here=here)
    if not result.site_file:
        return text, result
    if desk is None:
        problem = ConfigProblem(DESKS_KEY, key_line(text, (DESKS_KEY,)),
                                f"this is a site file: {name_the_desk}")
        return text, CheckResult(source, [problem] + result.problems, result.warnings,
                                 site_file=True)
    if not result.ok:
        return text, result
    data = desk_data(parse_toml(text, source), desk)
    out = dump_toml(data, [f"desk {desk}, resolved from site file {printable_name(source)}",
                           "by deskcue; edit the site file, not this one."])
    return out, check_text(out, f"{source} [desk {desk}]", here=here)
