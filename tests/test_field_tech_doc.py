"""docs/field-tech.md has a troubleshooting row for everything a desk can report: every error
code a command result can carry, and every kind of fault it shows (red blink, `deskcue
status`, a `fault` event). A code or kind added to the contract without a row fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from firmware.contract.commands import ErrorCode
from firmware.contract.events import Fault

GUIDE = (Path(__file__).resolve().parent.parent / "docs" / "field-tech.md").read_text()
ROWS = [line for line in GUIDE.splitlines() if line.startswith("| ")]


def _fault_kinds() -> tuple[str, ...]:
    return get_args(Fault.model_fields["kind"].annotation)


def test_every_command_error_code_has_a_troubleshooting_row() -> None:
    codes = get_args(ErrorCode)
    assert "replay_record_damaged" in codes  # the enumeration itself works
    missing = [c for c in codes if not any(re.match(rf"\| `{c}`[:,( ]", r) for r in ROWS)]
    assert missing == []


def test_every_fault_kind_has_a_troubleshooting_row() -> None:
    kinds = _fault_kinds()
    assert set(kinds) >= {"audio", "mqtt"}
    missing = [k for k in kinds
               if not any(re.match(rf"\| (fault )?`{k}: ", r) for r in ROWS)]
    assert missing == []


def test_the_capture_faults_are_quoted_as_the_desk_says_them() -> None:
    from firmware.audio.source import DeviceInfo, choose_device
    from firmware.errors import AudioError

    try:
        choose_device([], "", None)
    except AudioError as exc:
        assert f"`audio: {exc}`" in GUIDE
    else:
        raise AssertionError("no device chosen from none")
    try:
        choose_device([DeviceInfo(0, "Built-in", 2, 48000)], "USB", 0)
    except AudioError as exc:
        start = str(exc).split("; available")[0]
        assert f"`audio: {start}; available: ...`" in GUIDE
    else:
        raise AssertionError("a device chosen that does not match")


def test_the_signing_refusals_are_quoted_as_the_desk_says_them(tmp_path: Path) -> None:
    from firmware.flashing.signing import (
        SigningError,
        generate_keypair,
        load_private_key,
        parse_public_keys,
        sign_config,
        verify,
    )

    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    keys = parse_public_keys((tmp_path / "k.pub").read_text())
    good = sign_config(load_private_key(tmp_path / "k.pem"), "x = 1\n", txid="a", issued=5)
    cases = [([], good["signature"], "no_key"), (keys, None, "unsigned"),
             (keys, "not base64!", "bad_signature"), (keys, "AAAA", "bad_signature")]
    for trusted, signature, code in cases:
        try:
            verify(trusted, txid="a", issued=5, config_text="x = 1\n", signature=signature)
        except SigningError as exc:
            assert exc.code == code and f"`{code}`: " in GUIDE
            assert f"`{exc}`" in GUIDE, str(exc)
        else:
            raise AssertionError(code)
    try:
        parse_public_keys("\nnot-a-key\n", "/x")
    except SigningError as exc:
        assert exc.code == "bad_key" and f"`{exc}`" in GUIDE, str(exc)
    else:
        raise AssertionError("a key file that holds no key was accepted")


def test_the_outbox_dropped_event_has_a_troubleshooting_row() -> None:
    from firmware.contract.events import EVENT_DATA

    assert "outbox_dropped" in EVENT_DATA
    assert any(r.startswith("| an `outbox_dropped` event") for r in ROWS)


def test_dropped_input_blocks_have_a_troubleshooting_row() -> None:
    assert any("`input_overflows` rising" in r and "audio block(s)" in r for r in ROWS)
