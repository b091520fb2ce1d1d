"""Flashing fails closed: a config that would stop the desk, a replayed one, and one that would
end in an internal error (exit 70) are refused on every path, each with why in one line.

The same check runs for `deskcue config check`, the card import and a config pushed over
MQTT (`firmware.config.usable` through `check_text`), so each refusal is tested on all three
and the messages compared.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware.cli.main import main as deskcue
from firmware.config.load import load_settings
from firmware.flashing.records import (
    REMOTE_FILE,
    fault_record,
    last_apply,
    pending_fault,
    trial_path,
)
from firmware.flashing.remote import RemoteResult, apply_remote
from firmware.flashing.signing import generate_keypair, load_private_key, sign_config

BASE = """\
[device]
site = "lyon"
desk = "d07"
state_dir = "{state}"

[flash]
signing_keys_file = "{keys}"
trial_s = 60.0
healthy_s = 10.0
"""


class Desk:
    """A desk's /etc/deskcue, state dir and boot partition, with the supervisor's key."""

    def __init__(self, root: Path):
        self.root = root
        self.etc, self.state, self.boot = root / "etc", root / "state", root / "boot"
        for d in (self.etc, self.state, self.boot):
            d.mkdir()
        self.keys = self.etc / "config-signing.pub"
        generate_keypair(root / "ops.pem", self.keys, "ops")
        self.key = load_private_key(root / "ops.pem")
        self.live = self.etc / "deskcue.toml"
        self.old = self.config()
        self.live.write_text(self.old)
        self.issued = 1000

    def config(self, extra: str = "") -> str:
        return BASE.format(state=self.state, keys=self.keys) + extra

    def payload(self, text: str, **kw: object) -> dict:
        self.issued += 1
        kw.setdefault("issued", self.issued)
        kw.setdefault("txid", f"t{kw['issued']}")
        return sign_config(self.key, text, **kw)

    def push(self, payload: dict) -> RemoteResult:
        return apply_remote(json.dumps(payload), config_path=self.live,
                            current=load_settings(self.live), credentials_dir=None,
                            now_mono=100.0)

    def card(self, text: str | bytes) -> Path:
        card = self.boot / "deskcue.toml"
        if isinstance(text, bytes):
            card.write_bytes(text)
        else:
            card.write_text(text)
        return card

    def import_card(self) -> int:
        return deskcue(["config", "import", "--boot", str(self.boot), "--etc", str(self.etc),
                        "--state", str(self.state)])

    def unchanged(self) -> bool:
        return self.live.read_text() == self.old and not trial_path(self.live).exists()


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return Desk(tmp_path)


def one_line_errors(err: str) -> list[str]:
    assert "internal error" not in err and "Traceback" not in err, err
    return [line for line in err.splitlines() if line.strip()]


def card_note(desk: Desk) -> str:
    notes = list(desk.boot.glob("deskcue.toml.rejected-*.result.txt"))
    assert len(notes) == 1, list(desk.boot.iterdir())
    assert not (desk.boot / "deskcue.toml").exists()
    return notes[0].read_text()


# -- replay protection ---------------------------------------------------------------------------

DAMAGE = {
    "not JSON": b'{"issued": 10',
    "not an object": b"[1001]",
    "issued not a number": b'{"issued": "1001"}',
    "not UTF-8": b"\xff\xfe{\x00",
    "empty": b"",
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_replay_record_refuses_remote_configs_until_a_tech_resets_it(desk, damage,
                                                                                capsys):
    newer = desk.config("\n[cues.raised_voice]\nthreshold_db = 10.0\n")
    old_payload = desk.payload(newer)  # signed early (issued 1001), replayed later
    assert desk.push(desk.payload(desk.config("\n[cues.raised_voice]\nhold_s = 1.5\n"))).ok
    accepted = desk.live.read_text()
    (desk.state / REMOTE_FILE).write_bytes(DAMAGE[damage])

    for payload in (old_payload, desk.payload(newer)):  # older and newer alike: refused
        r = desk.push(payload)
        assert not r.ok and r.code == "replay_record_damaged", (r.code, r.message)
        assert "deskcue config reset-replay" in r.message
        assert desk.live.read_text() == accepted
    assert "deskcue config reset-replay" in (pending_fault(desk.state) or "")

    assert deskcue(["config", "reset-replay", "--issued", "5000", "--etc", str(desk.etc),
                    "--state", str(desk.state)]) == 0
    out = capsys.readouterr().out
    assert "issued > 5000" in out and pending_fault(desk.state) is None
    kept = [p.read_bytes() for p in desk.state.glob(REMOTE_FILE + ".damaged-*")]
    assert kept == [DAMAGE[damage]]  # kept for whoever looks into why
    assert desk.push(old_payload).code == "replayed"
    assert desk.push(desk.payload(newer, issued=5001)).ok
    assert desk.live.read_text() == newer


def test_a_lost_replay_record_after_an_mqtt_install_is_damaged_too(desk):
    first = desk.payload(desk.config("\n[cues.raised_voice]\nthreshold_db = 10.0\n"))
    assert desk.push(first).ok
    (desk.state / REMOTE_FILE).unlink()
    r = desk.push(first)
    assert r.code == "replay_record_damaged" and "is missing" in r.message


def test_reset_replay_defaults_to_now_so_configs_signed_before_it_stay_refused(desk, capsys):
    import time

    before = int(time.time())
    (desk.state / REMOTE_FILE).write_text("{")
    assert deskcue(["config", "reset-replay", "--etc", str(desk.etc),
                    "--state", str(desk.state)]) == 0
    floor = int(capsys.readouterr().out.split("issued > ")[1].split()[0].rstrip(";"))
    assert before <= floor <= int(time.time())
    assert desk.push(desk.payload(desk.config(), issued=before - 1)).code == "replayed"
    assert desk.push(desk.payload(desk.config(), issued=floor + 1)).ok


def test_reset_replay_never_lowers_a_sound_record(desk, capsys):
    assert desk.push(desk.payload(desk.config("\n[cues.raised_voice]\nhold_s = 1.5\n"),
                                  issued=9000)).ok
    assert deskcue(["config", "reset-replay", "--issued", "10", "--etc", str(desk.etc),
                    "--state", str(desk.state)]) == 0
    assert "issued > 9000" in capsys.readouterr().out
    assert desk.push(desk.payload(desk.config(), issued=8999)).code == "replayed"


def test_a_config_issued_far_ahead_of_the_desk_s_clock_is_refused(desk, capsys):
    """`config sign --issued` with an extra digit: accepted, every later config signed with
    the right time would be a replay until a tech logs in to reset the record."""
    import time

    now = int(time.time())
    slip = desk.payload(desk.config("\n[cues.raised_voice]\nhold_s = 1.5\n"), issued=now * 10)
    r = desk.push(slip)
    assert not r.ok and r.code == "invalid_args" and "ahead of the desk's clock" in r.message
    assert desk.live.read_text() == desk.old
    # a signer's clock an hour fast is still taken, and so is the next config signed now
    assert desk.push(desk.payload(desk.config("\n[cues.raised_voice]\nhold_s = 2.0\n"),
                                  issued=now + 3600)).ok
    assert deskcue(["config", "sign", str(desk.live), "--key", str(desk.root / "ops.pem"),
                    "--issued", str(now * 10)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "more than a day ahead of this machine's clock" in err


# -- configs that would stop the desk: refused on every path with the same message --------------

BREAKING = {
    "permanent no-audio fault": ("\n[audio]\nblock_s = 0.5\nno_audio_fault_s = 0.2\n",
                                 "audio.no_audio_fault_s: 0.2 s is shorter than two audio "
                                 "blocks"),
    "deaf voice activity": ("\n[voice_activity]\nfloor_dbfs = -20.0\n",
                            "voice_activity.floor_dbfs: -20 dBFS is above calm speech"),
}


def _problem_line(lines: str, needle: str) -> str:
    found = [line for line in lines.splitlines() if needle in line]
    assert found, (needle, lines)
    return found[0]


@pytest.mark.parametrize("case", sorted(BREAKING))
def test_a_config_that_would_stop_the_desk_is_refused_by_check_card_and_mqtt(desk, case,
                                                                            capsys):
    extra, needle = BREAKING[case]
    text = desk.config(extra)
    src = desk.root / "new.toml"
    src.write_text(text)

    assert deskcue(["config", "check", str(src)]) == 1
    checked = _problem_line(capsys.readouterr().err, needle)
    message = checked.split(": ", 1)[1]  # "key: message" without "file:line"

    desk.card(text)
    assert desk.import_card() == 1
    capsys.readouterr()
    assert message in card_note(desk) and desk.unchanged()

    r = desk.push(desk.payload(text))
    assert not r.ok and r.code == "invalid" and desk.unchanged()
    assert any(f"{p.key}: {p.message}" == message for p in r.problems), r.problems


# -- files and directories the config names: warnings on a laptop, problems on the desk ----------

def _host_cases(desk: Desk) -> dict[str, tuple[str, str]]:
    plain = desk.root / "a-file"
    plain.write_text("not a directory\n")
    root = desk.root
    return {
        "state_dir under a file": (
            desk.config().replace(f'state_dir = "{desk.state}"', f'state_dir = "{plain}/state"'),
            "device.state_dir: "),
        "credentials file missing": (
            desk.config(f'\n[mqtt]\ncredentials_file = "{root / "no-credentials"}"\n'),
            "mqtt.credentials_file: "),
        "TLS CA missing": (
            desk.config(f'\n[mqtt]\nport = 8883\n[mqtt.tls]\nenabled = true\n'
                        f'ca_file = "{root / "no-ca.pem"}"\n'),
            "mqtt.tls.ca_file: "),
    }


@pytest.mark.parametrize("case", ["state_dir under a file", "credentials file missing",
                                  "TLS CA missing"])
def test_unusable_files_warn_on_a_laptop_and_are_refused_on_the_desk(desk, case, capsys):
    text, needle = _host_cases(desk)[case]
    src = desk.root / "new.toml"
    src.write_text(text)

    assert deskcue(["config", "check", str(src)]) == 0  # a laptop: a warning, and a note
    out = capsys.readouterr().out
    warned = _problem_line(out, needle)
    assert ": warning: " in warned and "--here" in out
    message = warned.split(": warning: ", 1)[1]

    assert deskcue(["config", "check", "--here", str(src)]) == 1
    assert message in _problem_line(capsys.readouterr().err, needle)

    desk.card(text)
    assert desk.import_card() == 1
    capsys.readouterr()
    assert message in card_note(desk) and desk.unchanged()

    r = desk.push(desk.payload(text))
    assert not r.ok and r.code == "invalid" and desk.unchanged(), (r.code, r.message)
    assert any(f"{p.key}: {p.message}" == message for p in r.problems), r.problems


# -- inputs that ended in an internal error (exit 70) --------------------------------------------

DEEP = "a = " + "[" * 1000 + "]" * 1000 + "\n"
DEEP_TABLES = "a = " + "{b = " * 1000 + "1" + "}" * 1000 + "\n"


@pytest.mark.parametrize("text", [DEEP, DEEP_TABLES], ids=["arrays", "inline tables"])
def test_deeply_nested_toml_is_one_problem_on_every_path(desk, text, capsys):
    src = desk.root / "deep.toml"
    src.write_text(text)
    assert deskcue(["config", "check", str(src)]) == 1
    err = one_line_errors(capsys.readouterr().err)
    assert "nested more than" in err[0]
    assert deskcue(["config", "flash", str(src), "--boot", str(desk.boot)]) == 1
    assert "nested more than" in one_line_errors(capsys.readouterr().err)[0]
    assert not (desk.boot / "deskcue.toml").exists()

    desk.card(text)
    assert desk.import_card() == 1  # the card file moved aside with a note, a fault recorded
    one_line_errors(capsys.readouterr().err)
    assert "nested more than" in card_note(desk) and desk.unchanged()
    assert "nested more than" in json.dumps(fault_record(desk.state))


def test_flashing_a_file_that_is_not_utf8_is_one_problem(desk, capsys):
    src = desk.root / "latin1.toml"
    src.write_bytes('[device]\nsite = "café"\n'.encode("latin-1"))
    # a file that cannot be read as a config is a config error (exit 2), as for --config
    assert deskcue(["config", "flash", str(src), "--boot", str(desk.boot)]) == 2
    err = one_line_errors(capsys.readouterr().err)
    assert "not UTF-8" in err[0] and "latin1.toml: line 2:" in err[0], err
    assert not (desk.boot / "deskcue.toml").exists()
    assert deskcue(["config", "apply", str(src), "--etc", str(desk.etc),
                    "--state", str(desk.state)]) == 2
    assert "not UTF-8" in one_line_errors(capsys.readouterr().err)[0] and desk.unchanged()


def test_cr_only_line_endings_are_refused_alike_by_check_and_card(desk, capsys):
    text = desk.config().replace("\n", "\r").encode()
    src = desk.root / "mac.toml"
    src.write_bytes(text)
    assert deskcue(["config", "check", str(src)]) == 1
    checked = _problem_line(capsys.readouterr().err, "carriage return")
    desk.card(text)
    assert desk.import_card() == 1
    capsys.readouterr()
    assert checked.split(": ", 1)[1].split(": ", 1)[1] in card_note(desk)
    assert desk.unchanged() and last_apply(desk.state) == {}
    # CRLF (Windows) is fine everywhere
    crlf = desk.config("\n[cues.raised_voice]\nhold_s = 1.5\n").replace("\n", "\r\n")
    src.write_bytes(crlf.encode())
    assert deskcue(["config", "check", str(src)]) == 0
    desk.card(crlf.encode())
    assert desk.import_card() == 0
    assert desk.live.read_bytes() == crlf.encode()


def test_a_card_import_writes_its_note_even_when_the_fault_cannot_be_recorded(desk, capsys):
    blocked = desk.root / "a-file"
    blocked.write_text("not a directory\n")
    desk.card("[audio]\nchanels = 2\n")
    assert deskcue(["config", "import", "--boot", str(desk.boot), "--etc", str(desk.etc),
                    "--state", str(blocked / "state")]) == 1
    one_line_errors(capsys.readouterr().err)
    assert "audio.chanels: unknown key" in card_note(desk) and desk.unchanged()


# -- a running appliance answers a config whose state_dir cannot be used, and keeps running ----

def test_a_pushed_config_with_an_unusable_state_dir_is_refused_and_answered(tmp_path, broker):
    import subprocess
    import sys

    from broker import Subscriber
    from test_flash_e2e import BASE as TOPICS
    from test_flash_e2e import ROOT, desk_config, publish
    from tone import tone_wav
    from waiting import wait_until

    generate_keypair(tmp_path / "ops.pem", tmp_path / "keys.pub")
    key = load_private_key(tmp_path / "ops.pem")
    etc = tmp_path / "etc"
    etc.mkdir()
    live = etc / "deskcue.toml"
    old = desk_config(tmp_path, broker.port)
    live.write_text(old)
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory\n")
    new = old.replace(f'state_dir = "{tmp_path / "state"}"', f'state_dir = "{blocked}/state"')
    assert new != old
    sub = Subscriber(broker, f"{TOPICS}/#", qos=1, check_schema=False).connect()
    app = subprocess.Popen(
        [sys.executable, "-m", "firmware.cli", "run", "--config", str(live), "--source",
         str(tone_wav(tmp_path / "long.wav", 60.0)), "--pins", "mock"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: any(m.payload == b"online" for m in sub.on("status")),
                   alive=lambda: app.poll() is None)
        # "online" goes out once the desk listens for commands: one send is answered.
        publish(broker, f"{TOPICS}/cmd/config", sign_config(key, new, txid="s1", issued=101))
        result = wait_until(lambda: sub.on("cmd/config/result"),
                            alive=lambda: app.poll() is None)[0].json()
        assert result["txid"] == "s1" and not result["ok"], result
        assert result["error"]["code"] == "invalid"
        assert any(p["key"] == "device.state_dir" and "is not a directory" in p["message"]
                   for p in result["data"]["problems"]), result
        assert app.poll() is None, app.stdout.read() if app.stdout else ""
        assert live.read_text() == old and not trial_path(live).exists()
    finally:
        sub.close()
        app.terminate()
        app.wait(10)


def test_every_new_refusal_is_listed_for_field_techs():
    guide = (Path(__file__).resolve().parent.parent / "docs" / "field-tech.md").read_text()
    for fragment in ("not UTF-8 text", "byte-order mark (BOM)",
                     "a carriage return (CR) without a line feed",
                     "nested more than 16 levels deep", "shorter than two audio blocks",
                     "is above calm speech", "is not a directory", "cannot be made",
                     "is not writable by this user", "is not a usable CA bundle",
                     "is not a usable client certificate", "could not install it",
                     "the config checker failed", "replay_record_damaged", "install_failed",
                     "sudo deskcue config reset-replay", "the clock is not synced",
                     "mqtt: cannot start", "--here"):
        assert fragment in guide, fragment
