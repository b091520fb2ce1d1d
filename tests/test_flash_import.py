"""SD-card import: a good file applies and is reported; a bad one changes nothing and says
why, line by line; a crash at any step never leaves a half-written config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from crash import died_at

from firmware.cli.main import main as deskcue
from firmware.config.load import load_settings
from firmware.flashing.card import IMPORT_STEPS, import_from_boot
from firmware.flashing.records import last_apply, last_good_path, pending_fault, settings_hash

OLD = """\
[device]
site = "lyon"
desk = "d07"
state_dir = "{state}"

[cues.raised_voice]
threshold_db = 8.0
"""
NEW = OLD.replace("threshold_db = 8.0", "threshold_db = 9.5\nhold_s = 1.5")

BAD = {
    "syntax": ("[device]\nsite = \"lyon\"\ndesk = \n", [(3, "TOML syntax")]),
    "unknown key": ("[device]\nsite = \"lyon\"\n\n[audio]\nchanels = 2\n",
                    [(5, "audio.chanels: unknown key")]),
    "out of range": ("[cues.raised_voice]\nthreshold_db = 45.0\n",
                     [(2, "cues.raised_voice.threshold_db: must be less than or equal to 30")]),
    "wrong type": ("[indicator]\nbrightness = 0.3\nred_pin = \"17\"\n",
                   [(3, "indicator.red_pin: wrong type")]),
    "several": ("[audio]\nchannels = 4\n\n[snooze]\nmax_min = \"long\"\n",
                [(2, "audio.channels"), (5, "snooze.max_min")]),
}


@pytest.fixture
def desk(tmp_path: Path) -> dict[str, Path]:
    """A desk's /etc/deskcue with a running config, its state dir and a boot partition."""
    d = {"etc": tmp_path / "etc", "state": tmp_path / "state", "boot": tmp_path / "boot"}
    for p in d.values():
        p.mkdir()
    d["live"] = d["etc"] / "deskcue.toml"
    d["live"].write_text(OLD.format(state=d["state"]))
    return d


def drop(desk: dict[str, Path], text: str) -> Path:
    card = desk["boot"] / "deskcue.toml"
    card.write_text(text.format(state=desk["state"]) if "{state}" in text else text)
    return card


def import_card(desk: dict[str, Path], boot: Path | None = None
                ) -> subprocess.CompletedProcess[str]:
    """The real `deskcue config import` of ``boot`` (the desk's card) into the desk's /etc."""
    return subprocess.run(
        [sys.executable, "-m", "firmware.cli.main", "config", "import",
         "--boot", str(boot or desk["boot"]), "--etc", str(desk["etc"])],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def refused_note(desk: dict[str, Path], before: bytes) -> str:
    """The real card import of what is on the card, refused: exit 1, the live config still
    ``before``; the note it left beside the card file."""
    proc = import_card(desk)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert desk["live"].read_bytes() == before
    (note,) = desk["boot"].glob("deskcue.toml.rejected-*.result.txt")
    return note.read_text()


def test_good_card_import_applies_and_is_reported(desk):
    old_text = desk["live"].read_text()
    drop(desk, NEW)
    r = import_from_boot([desk["boot"]], desk["live"], now=1767225600.0)
    assert r.status == "applied"
    assert desk["live"].read_text() == NEW.format(state=desk["state"])
    assert last_good_path(desk["live"]).read_text() == old_text
    assert load_settings(desk["live"]).cues.raised_voice.threshold_db == 9.5
    assert not (desk["boot"] / "deskcue.toml").exists()
    assert r.moved_to == desk["boot"] / "deskcue.toml.applied-20260101T000000Z"
    assert r.moved_to.read_text() == desk["live"].read_text()
    note = r.note.read_text()
    assert note.startswith("deskcue config import: APPLIED") and r.record["hash"] in note
    rec = last_apply(desk["state"])
    assert rec["source"] == "card" and rec["at"] == "2026-01-01T00:00:00Z"
    assert rec["hash"] == settings_hash(load_settings(desk["live"]))
    assert pending_fault(desk["state"]) is None


@pytest.mark.parametrize("case", list(BAD))
def test_bad_card_import_changes_nothing_and_reports_each_error_with_its_line(desk, case):
    text, expected = BAD[case]
    before = desk["live"].read_bytes()
    drop(desk, text)
    r = import_from_boot([desk["boot"]], desk["live"], now=1767225600.0)
    assert r.status == "rejected"
    assert desk["live"].read_bytes() == before
    assert not last_good_path(desk["live"]).exists()
    assert last_apply(desk["state"]) == {}
    assert r.moved_to.name == "deskcue.toml.rejected-20260101T000000Z"
    note = r.note.read_text()
    assert "REJECTED" in note and "Nothing was changed" in note
    for line, words in expected:
        assert any(f"line {line}: " in n and words in n for n in note.splitlines()), note
    assert len(r.problems) == len(expected)
    fault = pending_fault(desk["state"])
    assert fault and fault.startswith("config: card config deskcue.toml refused")
    # the tech fixes the file: the next import applies it and clears the fault
    drop(desk, NEW)
    assert import_from_boot([desk["boot"]], desk["live"]).status == "applied"
    assert pending_fault(desk["state"]) is None


def test_non_utf8_card_file_is_rejected(desk):
    before = desk["live"].read_bytes()
    (desk["boot"] / "deskcue.toml").write_bytes(b"[device]\nsite = \"\xff\"\n")
    r = import_from_boot([desk["boot"]], desk["live"])
    assert r.status == "rejected" and desk["live"].read_bytes() == before
    assert "UTF-8" in r.note.read_text()


def test_no_card_file_is_a_no_op(desk):
    assert import_from_boot([desk["boot"]], desk["live"]).status == "absent"


def test_same_config_again_keeps_the_last_good(desk):
    drop(desk, NEW)
    import_from_boot([desk["boot"]], desk["live"])
    good = last_good_path(desk["live"]).read_text()
    drop(desk, NEW)
    r = import_from_boot([desk["boot"]], desk["live"])
    assert r.status == "unchanged" and last_good_path(desk["live"]).read_text() == good


def _crash_at(step: str, desk: dict[str, Path]) -> int:
    """Run the import in a forked child that dies (os._exit) at ``step``; its exit status."""
    return died_at(step, lambda hook: import_from_boot([desk["boot"]], desk["live"], hook=hook))


@pytest.mark.parametrize("step", IMPORT_STEPS)
def test_a_crash_at_any_step_never_leaves_a_half_written_config(desk, step):
    old = desk["live"].read_text()
    new = NEW.format(state=desk["state"])
    drop(desk, NEW)
    assert _crash_at(step, desk) == 99, f"step {step} never reached"
    assert desk["live"].read_text() in (old, new)  # whole: the old one or the new one
    good = last_good_path(desk["live"])
    assert not good.exists() or good.read_text() == old
    # the next boot runs the import again and finishes the job
    card = desk["boot"] / "deskcue.toml"
    if card.exists():
        r = import_from_boot([desk["boot"]], desk["live"])
        assert r.ok
    assert desk["live"].read_text() == new
    assert good.read_text() == old
    assert last_apply(desk["state"])["source"] == "card"
    assert list(desk["boot"].glob("deskcue.toml.applied-*.result.txt"))


@pytest.mark.parametrize("step", ["read", "checked", "note.written"])
def test_a_crash_while_rejecting_leaves_the_running_config_alone(desk, step):
    before = desk["live"].read_bytes()
    drop(desk, BAD["unknown key"][0])
    assert _crash_at(step, desk) == 99
    assert desk["live"].read_bytes() == before
    assert import_from_boot([desk["boot"]], desk["live"]).status == "rejected"
    assert desk["live"].read_bytes() == before


def test_flash_to_card_then_import(desk, tmp_path, capsys):
    src = tmp_path / "site.toml"
    src.write_text(f"""\
[device]
site = "lyon"
state_dir = "{desk['state']}"

[desks.d07]

[desks.d08.audio]
agent_channel = "right"
caller_channel = "left"
""")
    # a site file needs a desk
    assert deskcue(["config", "flash", str(src), "--boot", str(desk["boot"])]) == 1
    assert "site file" in capsys.readouterr().err
    assert not (desk["boot"] / "deskcue.toml").exists()
    assert deskcue(["config", "flash", str(src), "--desk", "d08",
                    "--boot", str(desk["boot"])]) == 0
    assert deskcue(["config", "import", "--boot", str(desk["boot"]),
                    "--etc", str(desk["etc"])]) == 0
    s = load_settings(desk["live"])
    assert (s.device.site, s.device.desk, s.audio.agent_channel) == ("lyon", "d08", "right")


def test_flash_refuses_a_bad_file(desk, tmp_path, capsys):
    src = tmp_path / "bad.toml"
    src.write_text(BAD["out of range"][0])
    assert deskcue(["config", "flash", str(src), "--boot", str(desk["boot"])]) == 1
    assert f"{src}:2: cues.raised_voice.threshold_db" in capsys.readouterr().err
    assert not (desk["boot"] / "deskcue.toml").exists()


def test_import_cli_exit_code_and_ack(desk, capsys):
    drop(desk, BAD["wrong type"][0])
    assert deskcue(["config", "import", "--boot", str(desk["boot"]),
                    "--etc", str(desk["etc"])]) == 1
    assert "line 3: indicator.red_pin" in capsys.readouterr().err
    assert pending_fault(desk["state"])
    assert deskcue(["config", "ack", "--etc", str(desk["etc"])]) == 0
    assert pending_fault(desk["state"]) is None


def test_local_apply_and_manual_rollback(desk, tmp_path):
    old = desk["live"].read_text()
    src = tmp_path / "new.toml"
    src.write_text(NEW.format(state=desk["state"]))
    assert deskcue(["config", "apply", str(src), "--etc", str(desk["etc"])]) == 0
    assert last_apply(desk["state"])["source"] == "local"
    assert deskcue(["config", "rollback", "--etc", str(desk["etc"])]) == 0
    assert desk["live"].read_text() == old
    assert last_apply(desk["state"])["source"] == "rollback"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="drops root's permission override with setpriv")
def test_rollback_without_write_access_names_the_directory_and_changes_nothing(desk, tmp_path):
    """A tech who forgets sudo: one line naming the config directory (not an internal lock
    file they never made) and what it needs; the live config untouched."""
    src = tmp_path / "new.toml"
    src.write_text(NEW.format(state=desk["state"]))
    assert deskcue(["config", "apply", str(src), "--etc", str(desk["etc"])]) == 0
    applied = desk["live"].read_text()
    lock = desk["etc"] / ".deskcue-config.lock"
    lock.unlink(missing_ok=True)  # as on a desk whose config came only from install.sh
    desk["etc"].chmod(0o555)
    try:
        # root without CAP_DAC_OVERRIDE meets the owner's permission bits like any user
        proc = subprocess.run(
            ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner",
             sys.executable, "-m", "firmware.cli.main", "config", "rollback",
             "--etc", str(desk["etc"])],
            capture_output=True, text=True, timeout=120)
    finally:
        desk["etc"].chmod(0o755)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"deskcue: {desk['etc']}: permission denied (installing a config there needs write "
        "access: run it as root)"]
    assert desk["live"].read_text() == applied


@pytest.mark.parametrize("left", ["", "\n\n", "#:schema ../schema.json\n# One desk's config\n"])
def test_a_card_file_cut_short_to_nothing_is_refused_not_run_as_the_defaults(desk, left):
    """A copy onto the FAT card cut short by pulling the card (or a power cut) leaves an empty
    file, or only its opening comments. Installed, it would turn lyon/d07 into the shipped
    default's site1/desk1 on localhost: a desk dark to its supervisor. The real import command
    refuses it, says why in the note, and the live config stays."""
    before = desk["live"].read_bytes()
    drop(desk, left)
    text = refused_note(desk, before)
    assert "sets no setting" in text and "cut short" in text, text
    assert pending_fault(desk["state"])


@pytest.fixture
def read_only_card(tmp_path: Path):
    """A boot partition mounted read-only (a failing card, which the kernel turns read-only,
    or a read-only mount): a small tmpfs, remounted read-only once ``deskcue.toml`` is on it."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounts a tmpfs (root only)")
    boot = tmp_path / "rocard"
    boot.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(boot)],
                      capture_output=True).returncode != 0:
        pytest.skip("this machine does not let us mount a tmpfs")

    def make_read_only() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(boot)], check=True)

    try:
        yield boot, make_read_only
    finally:
        subprocess.run(["umount", str(boot)], check=True)


def test_a_read_only_card_changes_nothing_and_says_so_not_installed_again_at_every_boot(
        desk, tmp_path, read_only_card):
    """The import cannot move a card file aside on a read-only boot partition. Installed all
    the same, it was installed again at every boot, undoing every config applied since (by
    hand or over MQTT) behind the tech's back. It is refused, changing nothing, with a fault
    that says what the tech does."""
    boot, make_read_only = read_only_card
    (boot / "deskcue.toml").write_text(NEW.format(state=desk["state"]))
    make_read_only()
    before = desk["live"].read_bytes()
    proc = import_card(desk, boot)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert desk["live"].read_bytes() == before
    said = proc.stdout + proc.stderr
    assert "read-only" in said and "nothing was changed" in said, said
    assert "deskcue config apply" in said, said
    fault = pending_fault(desk["state"])
    assert fault and "read-only" in fault, fault


def test_a_site_file_on_the_card_says_how_to_make_the_desk_file(desk):
    """A tech copies the whole site file onto the card. The card has no --desk option, so the
    note says how to write the desk's own file instead."""
    before = desk["live"].read_bytes()
    drop(desk, '[device]\nsite = "lyon"\n[mqtt]\nenabled = false\n[desks.d07]\n')
    text = refused_note(desk, before)
    assert "site file" in text and "deskcue config flash SITE.toml --desk NAME" in text, text


def test_a_card_file_ending_in_zeros_says_it_was_cut_short(desk):
    """A card pulled before the copy reached it (or a power cut) leaves the file its full
    length but zeros from some point on. A TOML syntax error at a line the tech finds whole
    on the laptop's copy sends them looking for a typo that is not there: the note says the
    file was cut short and to copy it again."""
    before = desk["live"].read_bytes()
    whole = NEW.format(state=desk["state"]).encode()
    (desk["boot"] / "deskcue.toml").write_bytes(whole[:50] + b"\0" * (len(whole) - 50))
    text = refused_note(desk, before)
    assert "line 4: (file): zero bytes from here on" in text and "copy it again" in text, text


def apply_as_root(desk, tmp_path) -> None:
    """`sudo deskcue config apply` of the NEW config on ``desk``, in its own process; it
    must succeed."""
    src = tmp_path / "new.toml"
    src.write_text(NEW.format(state=desk["state"]))
    proc = subprocess.run(
        [sys.executable, "-m", "firmware.cli.main", "config", "apply", str(src),
         "--etc", str(desk["etc"])],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="root's commands on a desk (sudo)")
def test_a_config_command_run_with_sudo_leaves_every_file_to_the_service_user(desk, tmp_path):
    """/etc/deskcue belongs to the service user, which installs configs pushed over MQTT
    there. `sudo deskcue config apply` (field-tech.md §1) made the directory's lock file as
    root's, 0644: from then on the service could not take the lock, and every pushed config
    was refused `install_failed` (permission denied). What root writes there stays the
    owner's."""
    owner = 65534  # nobody: any user but root
    os.chown(desk["etc"], owner, owner)
    os.chown(desk["live"], owner, owner)
    os.chown(desk["state"], owner, owner)
    apply_as_root(desk, tmp_path)
    for d in (desk["etc"], desk["state"]):
        for f in d.iterdir():
            assert f.stat().st_uid == owner, f"{f} is root's"


@pytest.mark.skipif(os.geteuid() != 0, reason="root's commands on a desk (sudo)")
def test_a_config_command_run_with_sudo_follows_no_link_the_service_user_planted(desk, tmp_path):
    """/etc/deskcue and the state directory belong to the service user, a network-facing
    process. Links it leaves there under the names root writes (the lock, a temporary
    file) must not make `sudo deskcue config apply` hand root's files to it: the lock was
    opened through the link and chowned to the service user, and the temporary file was
    written, chmodded 0644 and chowned through it (/etc/shadow would have become theirs)."""
    owner = 65534  # nobody: any user but root
    for p in (desk["etc"], desk["live"], desk["state"]):
        os.chown(p, owner, owner)
    victims = {}
    for name in (".deskcue-config.lock", "deskcue.toml.tmp", "deskcue.toml.last-good.tmp"):
        victim = tmp_path / f"root-only-{name.strip('.')}"
        victim.write_text("root's secret\n")
        victim.chmod(0o600)
        (desk["etc"] / name).symlink_to(victim)
        victims[victim] = name
    state_victim = tmp_path / "root-only-record"
    state_victim.write_text("root's secret\n")
    state_victim.chmod(0o600)
    (desk["state"] / "config-apply.json.tmp").symlink_to(state_victim)
    victims[state_victim] = "config-apply.json.tmp"
    apply_as_root(desk, tmp_path)
    for victim, name in victims.items():
        st = victim.stat()
        got = (st.st_uid, st.st_mode & 0o777, victim.read_text())
        assert got == (0, 0o600, "root's secret\n"), f"root wrote through the link {name}"
    assert desk["live"].read_text() == NEW.format(state=desk["state"])
    assert not desk["live"].is_symlink()
    assert last_good_path(desk["live"]).read_text() == OLD.format(state=desk["state"])


@pytest.mark.skipif(os.geteuid() != 0, reason="root's commands on a desk (sudo)")
def test_a_config_root_can_use_but_the_service_user_cannot_is_refused(desk, tmp_path):
    """The card import and `sudo deskcue config apply` check the files a config names as
    root, who reads anything; the desk runs as its service user. A config naming a
    credentials file in root's credential store (where field-tech.md §1 keeps it, for
    systemd to hand over) was installed, and the desk then could not log in to its broker."""
    owner = 65534  # nobody: the service user, owner of the state directory
    for p in (desk["etc"], desk["live"], desk["state"]):
        os.chown(p, owner, owner)
    store = tmp_path / "credstore"
    store.mkdir(mode=0o700)
    secret = store / "deskcue-mqtt"
    secret.write_text('username = "lyon-d07"\npassword = "pw"\n')
    secret.chmod(0o600)
    src = tmp_path / "new.toml"
    src.write_text(NEW.format(state=desk["state"]) + f'\n[mqtt]\ncredentials_file = "{secret}"\n')
    before = desk["live"].read_bytes()
    proc = subprocess.run(
        [sys.executable, "-m", "firmware.cli.main", "config", "apply", str(src),
         "--etc", str(desk["etc"])],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    said = proc.stdout + proc.stderr
    assert f"mqtt.credentials_file: {secret} cannot be read by the user the desk runs as" in said
    assert desk["live"].read_bytes() == before
    # readable by that user (its own file, in a directory it may enter): installed
    store.chmod(0o711)
    os.chown(secret, owner, owner)
    proc = subprocess.run(
        [sys.executable, "-m", "firmware.cli.main", "config", "apply", str(src),
         "--etc", str(desk["etc"])],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
