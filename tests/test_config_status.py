"""`deskcue status`: the config's hash, source and time of the last apply, faults, appliance."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

from waiting import HANG_S

from firmware.cli import status as status_cmd
from firmware.cli.main import main as deskcue
from firmware.config.load import load_settings
from firmware.contract.examples import STATUS
from firmware.flashing.card import import_from_boot
from firmware.flashing.records import settings_hash
from firmware.platform.control_socket import SOCKET_NAME, send_reply


def make_desk(tmp_path: Path) -> tuple[Path, Path, Path]:
    etc, state, run = tmp_path / "etc", tmp_path / "state", tmp_path / "run"
    for d in (etc, state, run):
        d.mkdir()
    live = etc / "deskcue.toml"
    live.write_text(f'[device]\nsite = "lyon"\ndesk = "d07"\nstate_dir = "{state}"\n'
                    f'runtime_dir = "{run}"\n')
    return live, state, run


def test_status_after_a_card_import(tmp_path, capsys):
    live, state, run = make_desk(tmp_path)
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "deskcue.toml").write_text(live.read_text() + "[snooze]\ndefault_min = 5.0\n")
    import_from_boot([boot], live, now=1767225600.0)
    assert deskcue(["status", "--config", str(live), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    h = settings_hash(load_settings(live))
    assert info["desk"] == "lyon/d07" and info["config"]["hash"] == h
    assert info["last_apply"]["source"] == "card" and info["last_apply"]["hash"] == h
    assert info["last_apply"]["at"] == "2026-01-01T00:00:00Z"
    assert info["appliance"]["state"] == "not running"
    assert deskcue(["status", "--config", str(live)]) == 0
    text = capsys.readouterr().out
    assert "last apply:    card at 2026-01-01T00:00:00Z" in text and h in text
    assert "config fault:  none" in text and "last good:" in text


def test_status_shows_a_fault_with_its_lines_and_fails(tmp_path, capsys):
    live, state, run = make_desk(tmp_path)
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "deskcue.toml").write_text("[audio]\nchannels = 7\n")
    import_from_boot([boot], live)
    assert deskcue(["status", "--config", str(live)]) == 1
    text = capsys.readouterr().out
    assert "config fault:  card config deskcue.toml refused" in text
    assert "line 2: audio.channels: must be 1 or 2" in text


def test_status_asks_the_running_appliance(tmp_path):
    live, state, run = make_desk(tmp_path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(run / SOCKET_NAME))
    server.settimeout(HANG_S)  # a request that never comes fails the test, never hangs it

    def appliance() -> None:  # what the appliance does with a status request
        msg = json.loads(server.recv(4096))
        send_reply(msg["reply_to"], True, STATUS.to_json())

    t = threading.Thread(target=appliance)
    t.start()
    info = status_cmd.collect(live, timeout=HANG_S)  # returns on the reply
    t.join()
    server.close()
    assert info["appliance"] == {"state": "running", "status": STATUS}
    text = status_cmd.render(info)
    assert "  display:" in text and "ready" in text
    # every value stands apart from its name (long names ran into their values)
    rows = [ln for ln in text.splitlines() if ln.startswith("  ") and ":" in ln]
    assert rows and all(ln.split(":", 1)[1].startswith(" ") for ln in rows), rows


def test_status_says_when_the_appliance_answers_off_the_contract(tmp_path):
    live, state, run = make_desk(tmp_path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(run / SOCKET_NAME))
    server.settimeout(HANG_S)

    def appliance() -> None:  # an appliance of another version, without `learned_speech_s`
        msg = json.loads(server.recv(4096))
        send_reply(msg["reply_to"], True,
                   STATUS.model_dump(mode="json", exclude={"learned_speech_s"}))

    t = threading.Thread(target=appliance)
    t.start()
    info = status_cmd.collect(live, timeout=HANG_S)  # returns on the reply
    t.join()
    server.close()
    assert info["appliance"]["status"] is None
    assert "off the contract (learned_speech_s: Field required)" in status_cmd.render(info)


def test_status_shows_damaged_records_instead_of_failing_with_a_bug(tmp_path, capsys):
    """The records are files on the card; status is what a tech runs when something looks
    wrong. A record with fields of the wrong type (a worn card, a hand edit) ended status with
    "internal error", exit 70."""
    live, state, run = make_desk(tmp_path)
    (state / "config-apply.json").write_text(json.dumps(
        {"at": [], "source": None, "hash": 5, "txid": [1]}))
    (state / "config-fault.json").write_text(json.dumps(
        {"message": 7, "at": None, "problems": [1, {"line": "x", "key": "a.b"}]}))
    (live.parent / "deskcue.toml.trial").write_text(json.dumps(
        {"txid": "t1", "deadline_mono": "soon", "starts": [1]}))
    assert deskcue(["status", "--config", str(live), "--runtime-dir", str(run)]) == 1
    out, err = capsys.readouterr()
    assert "internal error" not in err
    assert "last apply:    None at [] (clock not synced), hash 5" in out
    assert "config fault:  7 [None]" in out and "line x: a.b: None" in out
    assert "trial:         MQTT config t1 (start [1], judged at the next start)" in out
