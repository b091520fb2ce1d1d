"""Property-based fuzz of config files through every path that reads one: `deskcue config
check`, `config flash`, the card import (`config import`) and a signed config over MQTT.

Whatever the file (mutated TOML text, deep nesting, odd encodings and line endings, cut
short), each path answers with exit 0 or 1 and one-line messages, never an internal error
(exit 70, an uncaught exception or a checker failure), and the live config is afterwards
either the old text or the new text, whole.

Bounded: a few dozen examples per property, no per-example deadline (fsyncs on a loaded CI
machine vary); the whole module runs in well under a minute.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.cli.main import main as deskcue
from firmware.config.load import load_settings
from firmware.flashing.remote import apply_remote
from firmware.flashing.signing import generate_keypair, load_private_key, sign_config

VALID = """\
# a desk file
[device]
site = "lyon"
desk = "d07"
state_dir = "{state}"

[audio]
channels = 2
agent_channel = "left"

[cues.raised_voice]
threshold_db = 9.0
hold_s = 1.0

[mqtt]
host = "localhost"
port = 1883

[flash]
signing_keys_file = "{keys}"
"""

TOML_CHARS = "[]{}=\"'#.,\n\r\t -_0123456789abcdefxyz\\\x00\ufeffé€\u2028"
EXAMPLES = 40


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("fuzz-keys")
    generate_keypair(root / "ops.pem", root / "ops.pub", "fuzz")
    return root, load_private_key(root / "ops.pem")


@st.composite
def mutated_text(draw: st.DrawFn) -> str:
    """The valid desk file with a few characters inserted, deleted or replaced."""
    text = VALID
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.text(alphabet=TOML_CHARS, min_size=1, max_size=4))
        if op == "insert":
            text = text[:at] + piece + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + len(piece):]
        else:
            text = text[:at] + piece + text[at + len(piece):]
    return text


@st.composite
def nested_text(draw: st.DrawFn) -> str:
    """The valid file plus a key nested 1 to 3,000 levels deep (arrays, inline or dotted
    tables), sometimes left unclosed."""
    n = draw(st.integers(1, 3000))
    kind = draw(st.sampled_from(["array", "inline", "dotted"]))
    closed = draw(st.booleans())
    if kind == "array":
        value = "[" * n + "1" + ("]" * n if closed else "")
    elif kind == "inline":
        value = "{a = " * n + "1" + (" }" * n if closed else "")
    else:
        return VALID + "\n[x" + ".y" * min(n, 500) + "]\nz = 1\n"
    return VALID + f"\nextra = {value}\n"


@st.composite
def config_bytes(draw: st.DrawFn) -> bytes:
    """Mutated or nested text, with its line endings changed, encoded oddly, maybe cut."""
    text = draw(st.one_of(mutated_text(), nested_text(), st.just(VALID)))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r", "mixed"]))
    if ending == "mixed":
        text = "".join(line + ("\r\n" if i % 2 else "\r")
                       for i, line in enumerate(text.split("\n")))
    elif ending != "\n":
        text = text.replace("\n", ending)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return data


def run(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = deskcue(list(argv))
    return code, out.getvalue() + err.getvalue()


def no_internal_error(code: int, output: str) -> None:
    # 0 done, 1 the command's verdict is no, 2 a file that cannot be read as a config
    assert code in (0, 1, 2), (code, output)
    assert "internal error" not in output and "checker failed" not in output, output
    assert "Traceback" not in output, output


FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(data=config_bytes())
def test_check_flash_and_card_import_never_fail_internally_nor_half_write(keys, data):
    root = keys[0]
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        d = Path(tmp)
        etc, state, boot, laptop_boot = d / "etc", d / "state", d / "boot", d / "sdcard"
        for p in (etc, state, boot, laptop_boot):
            p.mkdir()
        live = etc / "deskcue.toml"
        old = VALID.format(state=state, keys=root / "ops.pub").encode()
        live.write_bytes(old)
        raw = data.replace(b"{state}", str(state).encode()).replace(
            b"{keys}", str(root / "ops.pub").encode())
        src = d / "new.toml"
        src.write_bytes(raw)

        no_internal_error(*run("config", "check", str(src)))
        no_internal_error(*run("config", "check", "--here", str(src)))

        code, output = run("config", "flash", str(src), "--boot", str(laptop_boot))
        no_internal_error(code, output)
        written = laptop_boot / "deskcue.toml"
        assert (code == 0) == written.exists()
        if code == 0:
            assert written.read_bytes() == raw  # a desk file goes on the card as it is

        (boot / "deskcue.toml").write_bytes(raw)
        code, output = run("config", "import", "--boot", str(boot), "--etc", str(etc),
                           "--state", str(state))
        no_internal_error(code, output)
        assert live.read_bytes() in (old, raw), "half-written live config"
        assert (code == 0) == (live.read_bytes() == raw or raw == old)
        assert not (boot / "deskcue.toml").exists(), "card file left for the next boot"
        assert len(list(boot.glob("*.result.txt"))) == 1
        assert not list(etc.glob("*.tmp"))


@FUZZ
@given(data=config_bytes())
def test_a_signed_config_over_mqtt_never_fails_internally_nor_half_writes(keys, data):
    root, key = keys
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        d = Path(tmp)
        etc, state = d / "etc", d / "state"
        etc.mkdir()
        state.mkdir()
        live = etc / "deskcue.toml"
        old = VALID.format(state=state, keys=root / "ops.pub")
        live.write_text(old)
        text = data.decode("utf-8", errors="replace").replace("{state}", str(state)).replace(
            "{keys}", str(root / "ops.pub"))
        payload = sign_config(key, text, txid="fuzz-1", issued=1000)
        r = apply_remote(json.dumps(payload), config_path=live, current=load_settings(live),
                         credentials_dir=None, now_mono=100.0)
        assert not any("checker failed" in p.message for p in r.problems), r.problems
        assert live.read_bytes() in (old.encode(), text.encode()), "half-written live config"
        assert live.read_bytes() == (text if r.ok else old).encode()
        if not r.ok:
            assert r.code in ("invalid", "too_large", "wrong_desk"), (r.code, r.message)
