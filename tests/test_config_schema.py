"""The config is described once: schema.json and deskcue.toml are generated and never stale."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from pydantic import BaseModel

from firmware.config import schema as config_schema
from firmware.config.checks import check_text
from firmware.config.load import parse_settings
from firmware.config.settings import Settings

CONFIG = Path(__file__).resolve().parent.parent / "config"
REGEN = "stale: run `deskcue config schema --write` and commit config/"


def test_schema_json_is_current():
    assert (CONFIG / "schema.json").read_text(encoding="utf-8") == config_schema.schema_text(), \
        REGEN


def test_default_toml_is_current():
    assert (CONFIG / "deskcue.toml").read_text(encoding="utf-8") == \
        config_schema.default_toml(), REGEN


def test_default_toml_parses_to_exactly_the_default():
    text = (CONFIG / "deskcue.toml").read_text(encoding="utf-8")
    assert parse_settings(text) == Settings()


def test_default_toml_sets_every_key_that_has_a_value():
    data = tomllib.loads((CONFIG / "deskcue.toml").read_text(encoding="utf-8"))

    def walk(dumped: dict, toml: dict, path: str) -> None:
        for key, value in dumped.items():
            if isinstance(value, dict):
                walk(value, toml[key], f"{path}{key}.")
            elif value is not None:
                assert key in toml, f"{path}{key} missing from config/deskcue.toml"

    walk(Settings().model_dump(mode="json"), data, "")


def test_every_field_has_a_description():
    def walk(model: type[BaseModel], path: str) -> None:
        assert model.__doc__, f"{path or 'Settings'} has no docstring"
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{path}{name}.")  # a section: described by its docstring
            else:
                assert field.description, f"{path}{name} has no description"

    walk(Settings, "")


def test_schema_is_valid_json_schema_and_accepts_the_default():
    import jsonschema

    schema = json.loads((CONFIG / "schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(tomllib.loads((CONFIG / "deskcue.toml").read_text()), schema)
    bad = {"cues": {"raised_voice": {"threshold_db": 99}}}
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(bad))


def example(name: str, tmp_path: Path) -> str:
    """An example config with the desk's own paths moved under ``tmp_path``, so that what this
    machine has in /etc/deskcue or /var/lib/deskcue does not change the result."""
    text = (CONFIG / "examples" / name).read_text(encoding="utf-8")
    return (text.replace("/etc/deskcue", str(tmp_path / "etc"))
            .replace("/var/lib/deskcue", str(tmp_path / "state")))


def test_examples_check_clean(tmp_path):
    for name in ("single-desk.toml", "site.toml"):
        # checked as on a tech's laptop: the desk's own files may be absent (host warnings)
        result = check_text(example(name, tmp_path), name, here=False)
        assert result.ok, result.lines()
        assert not result.warnings, result.lines()
    site = check_text(example("site.toml", tmp_path), "site.toml", here=False)
    assert site.site_file and set(site.configs) == {"d01", "d02", "d03", "d04"}
    assert site.configs["d02"].audio.agent_channel == "right"
    assert site.configs["d03"].indicator.motor_pin is None
    assert site.configs["d01"].device.site == "lyon"
