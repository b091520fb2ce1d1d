"""`deskcue config check`: every problem at once with key path and line; warnings don't fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.cli.main import main as deskcue
from firmware.config.checks import check_text
from firmware.config.load import key_line, key_lines


def problems(text: str) -> dict[str, tuple[int | None, str]]:
    r = check_text(text, "t.toml")
    return {p.key: (p.line, p.message) for p in r.problems}


def test_every_problem_at_once_with_its_line():
    text = """\
[device]
desk = "desk 7"
colour = "blue"

[audio]
channels = 3

[cues.raised_voice]
threshold_db = "8"
hold_s = 100
max_per_hour = 6.5
"""
    got = problems(text)
    assert got["device.desk"][0] == 2 and "pattern" in got["device.desk"][1]
    assert got["device.colour"][0] == 3 and "unknown key" in got["device.colour"][1]
    assert "desk" in got["device.colour"][1]  # says what is allowed
    assert got["audio.channels"] == (6, "must be 1 or 2 (got 3)")
    assert got["cues.raised_voice.threshold_db"][0] == 9
    assert "wrong type" in got["cues.raised_voice.threshold_db"][1]
    assert got["cues.raised_voice.hold_s"][0] == 10
    assert "less than or equal to 30" in got["cues.raised_voice.hold_s"][1]
    assert got["cues.raised_voice.max_per_hour"][0] == 11
    assert len(got) == 6


def test_syntax_error_names_its_line():
    r = check_text('[device]\nsite = "a"\ndesk = \n', "t.toml")
    assert not r.ok and r.problems[0].line == 3 and "TOML syntax" in r.problems[0].message


@pytest.mark.parametrize("value", ['"yes"', "1", '"true"'])
def test_wrong_type_for_a_boolean(value):
    got = problems(f"[cues.raised_voice]\nenabled = {value}\n")
    assert got["cues.raised_voice.enabled"][0] == 2
    assert "wrong type: must be true or false" in got["cues.raised_voice.enabled"][1]


def test_lines_found_in_inline_tables_dotted_keys_and_past_multiline_strings():
    text = '''\
note_not_a_key = """
[cues]
threshold_db = 1
"""
cues.raised_voice.hold_s = 0.01
[mqtt]
tls = { enabled = true, "bogus" = 1 }
'''
    got = problems(text)
    assert got["note_not_a_key"][0] == 1
    assert got["cues.raised_voice.hold_s"][0] == 5
    assert got["mqtt.tls.bogus"][0] == 7
    lines = key_lines(text)
    assert ("cues",) not in lines or lines[("cues",)] == 5  # the one in the string is skipped
    assert key_line(text, ("mqtt", "tls", "ca_file")) == 7  # absent key: nearest enclosing


def test_section_rule_points_at_the_section():
    got = problems('[audio]\nchannels = 2\nagent_channel = "left"\ncaller_channel = "left"\n')
    assert got["audio"][0] == 1 and "differ" in got["audio"][1]


def test_none_unsets_an_optional_pin():
    r = check_text('[indicator]\nmotor_pin = "none"\n')
    assert r.ok and next(iter(r.configs.values())).indicator.motor_pin is None


def test_warnings_are_shown_but_do_not_fail(tmp_path: Path, capsys):
    cfg = tmp_path / "nag.toml"
    cfg.write_text("""\
[cues.raised_voice]
threshold_db = 4.0
hold_s = 0.3
max_per_hour = 30

[mqtt]
host = "broker.example"
""")
    r = check_text(cfg.read_text(), str(cfg))
    assert r.ok
    warned = {w.key: w.line for w in r.warnings}
    assert warned == {"cues.raised_voice.threshold_db": 2, "cues.raised_voice.hold_s": 3,
                      "cues.raised_voice.max_per_hour": 4, "mqtt.host": 7}
    assert deskcue(["config", "check", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert f"{cfg}:2: warning: cues.raised_voice.threshold_db" in out
    assert "TLS is off" in out and "OK, 4 warning(s)" in out


def test_a_password_file_or_client_key_others_can_read_is_a_warning(tmp_path: Path):
    """The run warned of a readable password file only in its log, and of the key not at
    all; `config check` (and so the card import's note and an MQTT push's answer) said
    nothing of either."""
    creds, key, cert = tmp_path / "mqtt.cred", tmp_path / "client.key", tmp_path / "c.pem"
    for f in (creds, key, cert):
        f.write_text("x\n")
    text = f"""\
[mqtt]
host = "localhost"
port = 8883
credentials_file = "{creds}"

[mqtt.tls]
enabled = true
cert_file = "{cert}"
key_file = "{key}"
"""
    creds.chmod(0o640)
    key.chmod(0o604)
    warned = {w.key: (w.line, w.message) for w in check_text(text, here=False).warnings}
    assert warned == {
        "mqtt.credentials_file": (4, f"{creds} can be read or written by others (mode 640): "
                                     "chmod 600 it, owned by the desk's user"),
        "mqtt.tls.key_file": (9, f"{key} can be read or written by others (mode 604): "
                                 "chmod 600 it, owned by the desk's user")}
    creds.chmod(0o600)
    key.chmod(0o400)
    assert not check_text(text, here=False).warnings


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "::1"])
def test_loopback_broker_without_tls_is_fine(host):
    assert not check_text(f'[mqtt]\nhost = "{host}"\n').warnings


def test_check_exits_non_zero_and_lists_every_problem(tmp_path: Path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[audio]\nchannels = 5\n[snooze]\ndefault_min = "x"\nbogus = 1\n')
    assert deskcue(["config", "check", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert f"{cfg}:2: audio.channels" in err
    assert f"{cfg}:4: snooze.default_min" in err
    assert f"{cfg}:5: snooze.bogus: unknown key" in err
    assert "3 problem(s)" in err


def test_missing_file(tmp_path: Path, capsys):
    assert deskcue(["config", "check", str(tmp_path / "nope.toml")]) == 1
    assert "file not found" in capsys.readouterr().err


SITE = """\
[device]
site = "lyon"

[cues.raised_voice]
threshold_db = 99

[desks.d01]

[desks.d02.audio]
agent_channel = "middle"

[desks.d03.cues.raised_voice]
threshold_db = 9
"""


def test_site_file_problems_point_at_the_shared_part_or_the_desk_table():
    r = check_text(SITE, "site.toml")
    got = {(p.key, p.line) for p in r.problems}
    assert ("cues.raised_voice.threshold_db", 5) in got  # shared: reported once
    assert ("desks.d02.audio.agent_channel", 10) in got  # the desk's own value
    assert not any(k.startswith("desks.d03") for k, _ in got)  # d03 overrides the bad value
    assert len(r.problems) == 2


SHARED_ID = """\
[device]
site = "lyon"

[desks.d01]
[desks.d02]
device = { desk = "d01" }   # copied from d01's line and not changed
[desks.d03]
mqtt = { client_id = "front" }
[desks.d04]
mqtt = { client_id = "front" }
[desks.d05]
"""


def test_site_file_desks_that_take_one_identity_are_problems():
    """Two desk tables resolving to one MQTT identity checked OK: two boxes would throw each
    other off the broker (docs/field-tech.md, "Two boxes with one identity")."""
    r = check_text(SHARED_ID, "site.toml")
    got = {(p.key, p.line): p.message for p in r.problems}
    assert set(got) == {("desks.d01", 4), ("desks.d02", 5), ("desks.d03", 7),
                        ("desks.d04", 9)}, got
    assert "takes the MQTT subtree deskcue/lyon/d01, as desks.d02 does" in got["desks.d01", 4]
    assert "its own device.desk" in got["desks.d02", 5]
    assert "takes the MQTT client id front, as desks.d03 does" in got["desks.d04", 9]
    assert "its own mqtt.client_id" in got["desks.d04", 9]
    # flashing one of them from the file is refused too; d05 alone is fine
    assert not check_text(SHARED_ID, "site.toml", desk="d02").ok
    assert check_text(SHARED_ID, "site.toml", desk="d05").ok


def test_site_file_desk_selection():
    text = SITE.replace("threshold_db = 99", "threshold_db = 8").replace(
        '"middle"', '"right"\ncaller_channel = "left"')
    r = check_text(text, "site.toml", desk="d02")
    assert r.ok and list(r.configs) == ["d02"]
    s = r.configs["d02"]
    assert (s.device.site, s.device.desk, s.audio.agent_channel) == ("lyon", "d02", "right")
    assert not check_text(text, "site.toml", desk="d09").ok


def test_a_snooze_longer_than_the_longest_allowed_is_a_warning():
    """default_min above max_min checked OK without a word; every press then snoozed max_min,
    not the default the tech had written."""
    r = check_text("[snooze]\ndefault_min = 200\nmax_min = 30\n", "d.toml")
    assert r.ok
    assert [(w.key, w.line) for w in r.warnings] == [("snooze.default_min", 2)]
    assert "a button press snoozes 30 min" in r.warnings[0].message
    assert not check_text("[snooze]\ndefault_min = 30\nmax_min = 30\n", "d.toml").warnings


def test_every_pin_clash_at_once(tmp_path):
    """Two legs wired to one pin and the motor on another leg's pin: the tech hears of both
    clashes in one check, not one per round trip to the laptop."""
    import subprocess
    import sys

    cfg = tmp_path / "d07.toml"
    cfg.write_text("[indicator]\nred_pin = 17\ngreen_pin = 17\nblue_pin = 22\nmotor_pin = 22\n")
    proc = subprocess.run([sys.executable, "-m", "firmware.cli.main", "config", "check",
                           str(cfg)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "green_pin and red_pin both use GPIO17" in out, out
    assert "blue_pin and motor_pin both use GPIO22" in out, out


def test_a_pin_given_as_the_headers_number_or_a_name_says_the_bcm_number(tmp_path):
    """Pins are BCM GPIO numbers. A tech who counted the header's physical pins (40 of them)
    or wrote the pin's printed name is told the number to write, not only the range."""
    import subprocess
    import sys

    cfg = tmp_path / "d07.toml"
    cfg.write_text('[indicator]\nred_pin = "GPIO17"\ngreen_pin = 40\nblue_pin = 22\n'
                   'motor_pin = 18\nbutton_pin = 34\n')
    proc = subprocess.run([sys.executable, "-m", "firmware.cli.main", "config", "check",
                           str(cfg)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    lines = (proc.stdout + proc.stderr).splitlines()
    red = next(ln for ln in lines if "indicator.red_pin" in ln)
    assert "write the number alone: red_pin = 17" in red, red
    green = next(ln for ln in lines if "indicator.green_pin" in ln)
    assert "physical pin 40 is GPIO21: green_pin = 21" in green, green
    button = next(ln for ln in lines if "indicator.button_pin" in ln)
    assert "physical pin 34 is a ground pin" in button, button
