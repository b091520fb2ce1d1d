"""The config described once: JSON Schema and the commented default TOML, both from the models.

``config/schema.json`` and ``config/deskcue.toml`` are generated from
`firmware.config.settings.Settings` (types, ranges, defaults and a description for every
field); tests fail when either is stale. Regenerate both after changing a model::

    deskcue config schema --write

``deskcue config schema`` / ``deskcue config schema --toml`` print one of them instead.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from firmware.config.settings import Settings

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"  # the repository's config/ folder
SCHEMA_FILE = "schema.json"
DEFAULT_FILE = "deskcue.toml"
SCHEMA_ID = "https://deskcue.invalid/schema/config.json"
WIDTH = 99


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a config file.

    An optional non-text field also accepts the string ``"none"`` (TOML has no null).
    """
    s = Settings.model_json_schema()
    for model in s.get("$defs", {}).values():
        for prop in model.get("properties", {}).values():
            options = prop.get("anyOf", [])
            types = {o.get("type") for o in options}
            if "null" in types and "string" not in types:
                options.append({"const": "none", "description": "unset (TOML has no null)"})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **s,
    }


def schema_text() -> str:
    """`schema` as the text of ``config/schema.json``."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref:
        return defs[ref.rsplit("/", 1)[-1]]
    return node


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def allowed(prop: dict[str, Any]) -> str:
    """What a field accepts, in words (from its JSON Schema)."""
    options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"
               and "const" not in o]
    nullable = any(o.get("type") == "null" for o in prop.get("anyOf", []))
    words = []
    for o in options:
        t = o.get("type")
        if "enum" in o:
            words.append("one of " + ", ".join(json.dumps(v) for v in o["enum"]))
        elif t == "boolean":
            words.append("true or false")
        elif t in ("integer", "number"):
            kind = "whole number" if t == "integer" else "number"
            lo = ("from " + _num(o["minimum"]) if "minimum" in o else
                  "above " + _num(o["exclusiveMinimum"]) if "exclusiveMinimum" in o else "")
            hi = ("to " + _num(o["maximum"]) if "maximum" in o else
                  "below " + _num(o["exclusiveMaximum"]) if "exclusiveMaximum" in o else "")
            if lo.startswith("above") and hi.startswith("to"):
                hi = "up " + hi
            words.append(" ".join(w for w in (kind, lo, hi) if w))
        elif t == "string" and o.get("format") == "path":
            words.append("a path")
        elif t == "string":
            text = "text"
            if "pattern" in o:
                text += " matching " + o["pattern"]
            elif o.get("minLength"):
                text = "non-empty text"
            words.append(text)
    text = " or ".join(words) or "any value"
    if nullable:
        text += ', or "none"' if not any(o.get("type") == "string" for o in options) else ""
    return text


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _num(value) if isinstance(value, int) else repr(float(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _comment(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH - len(indent) - 2, initial_indent=indent + "# ",
                         subsequent_indent=indent + "# ", break_on_hyphens=False,
                         break_long_words=False)


def _section(lines: list[str], path: tuple[str, ...], model: dict[str, Any],
             values: dict[str, Any], defs: dict[str, Any]) -> None:
    lines += ["", f"[{'.'.join(path)}]"]
    lines += _comment(model.get("description", "").strip())
    subs = []
    for name, prop in model.get("properties", {}).items():
        target = _resolve(prop, defs)
        if target.get("type") == "object" and "properties" in target:
            subs.append((name, target))
            continue
        lines.append("")
        lines += _comment(prop.get("description", ""))
        value = values.get(name)
        lines += _comment(f"allowed: {allowed(prop)}")
        if value is None:
            lines.append(f"# {name} = ...  (unset by default)")
        else:
            lines.append(f"{name} = {_toml_value(value)}")
    for name, target in subs:
        _section(lines, path + (name,), target, values.get(name, {}), defs)


def default_toml() -> str:
    """The shipped default config: every key present (or commented out when unset), each
    with its description and what it allows; parses to exactly ``Settings()``."""
    s = Settings.model_json_schema()
    defs = s.get("$defs", {})
    values = Settings().model_dump(mode="json")
    lines = [
        "#:schema ./schema.json",
        "# deskcue configuration: the shipped default.",
        "#",
        "# Every key is optional; a key left out takes the value shown here. Unknown keys and",
        "# values out of range are errors: check a file with `deskcue config check FILE`.",
        "# Secrets (broker password, keys) never go here: see docs/field-tech.md.",
        "#",
        "# GENERATED from the models in firmware/ by `deskcue config schema --write`: edit the",
        "# models, not this file. Copy it to start a desk's own config.",
    ]
    for name, prop in s["properties"].items():
        _section(lines, (name,), _resolve(prop, defs), values[name], defs)
    return "\n".join(lines) + "\n"


def dump_toml(data: dict[str, Any], header: list[str] | None = None) -> str:
    """Plain TOML for nested ``data`` (tables of str, numbers, booleans and arrays of them).

    Used to write a desk's resolved config (a site file merged with the desk's overrides).
    """
    lines = [f"# {h}" if h else "#" for h in (header or [])]

    def table(path: tuple[str, ...], node: dict[str, Any]) -> None:
        scalars = {k: v for k, v in node.items() if not isinstance(v, dict)}
        if path and (scalars or not node):
            lines.extend(["", f"[{'.'.join(_toml_key(p) for p in path)}]"])
        for key, value in scalars.items():
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
        for key, value in node.items():
            if isinstance(value, dict):
                table(path + (key,), value)

    table((), data)
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "_-" for c in key) else json.dumps(key)


def write(config_dir: Path = CONFIG_DIR) -> list[Path]:
    """Regenerate ``schema.json`` and ``deskcue.toml`` in ``config_dir``; the paths changed."""
    changed = []
    for name, text in ((SCHEMA_FILE, schema_text()), (DEFAULT_FILE, default_toml())):
        path = config_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed
