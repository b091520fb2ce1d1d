"""Config over MQTT: only a correctly signed config for this desk is installed, on trial, and
it is rolled back when the appliance does not come back healthy in time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from crash import DIED, died_at

from firmware.config.load import load_settings
from firmware.flashing.records import (
    last_apply,
    last_good_path,
    pending_fault,
    settings_hash,
    trial_path,
)
from firmware.flashing.remote import RemoteResult, apply_remote
from firmware.flashing.signing import (
    generate_keypair,
    load_private_key,
    parse_public_keys,
    sign_config,
    signed_message,
)
from firmware.flashing.trial import (
    ROLLBACK_STEPS,
    TrialWatch,
    rollback,
    startup_check,
    trial_info,
)

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
    """A desk's config dir, state dir and trusted key, with the supervisor's private key."""

    def __init__(self, root: Path):
        self.etc, self.state = root / "etc", root / "state"
        self.etc.mkdir()
        self.state.mkdir()
        self.keys = self.etc / "config-signing.pub"
        generate_keypair(root / "ops.pem", self.keys, "ops")
        self.key = load_private_key(root / "ops.pem")
        self.live = self.etc / "deskcue.toml"
        self.old = self.config()
        self.live.write_text(self.old)
        self.issued = 1000

    def config(self, extra: str = "") -> str:
        return BASE.format(state=self.state, keys=self.keys) + extra

    def payload(self, text: str, *, key=None, **kw) -> dict:
        self.issued += 1
        kw.setdefault("issued", self.issued)
        kw.setdefault("txid", f"t{self.issued}")
        return sign_config(key or self.key, text, **kw)

    def push(self, payload, now_mono: float = 100.0) -> RemoteResult:
        return apply_remote(json.dumps(payload) if isinstance(payload, dict) else payload,
                               config_path=self.live, current=load_settings(self.live),
                               credentials_dir=None, now_mono=now_mono)


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return Desk(tmp_path)


NEW_EXTRA = "\n[cues.raised_voice]\nthreshold_db = 10.0\n"


def test_signed_config_is_installed_on_trial(desk):
    new = desk.config(NEW_EXTRA)
    r = desk.push(desk.payload(new))
    assert r.ok and r.restart and r.code == "ok"
    assert desk.live.read_text() == new
    assert last_good_path(desk.live).read_text() == desk.old
    trial = trial_info(desk.live)
    assert trial["txid"] == r.txid and trial["deadline_mono"] == 160.0
    rec = last_apply(desk.state)
    assert rec["source"] == "mqtt" and rec["txid"] == r.txid and rec["trial"] is True
    assert rec["hash"] == r.data["hash"] == settings_hash(load_settings(desk.live))


def refused(desk: Desk, r: RemoteResult, code: str) -> None:
    assert not r.ok and r.code == code, (r.code, r.message)
    assert desk.live.read_text() == desk.old
    assert not trial_path(desk.live).exists()
    assert last_apply(desk.state) == {}


def test_unsigned_config_is_refused(desk):
    p = desk.payload(desk.config(NEW_EXTRA))
    del p["signature"]
    refused(desk, desk.push(p), "unsigned")


def test_config_signed_by_an_unknown_key_is_refused(desk, tmp_path):
    generate_keypair(tmp_path / "rogue.pem", tmp_path / "rogue.pub")
    rogue = load_private_key(tmp_path / "rogue.pem")
    refused(desk, desk.push(desk.payload(desk.config(NEW_EXTRA), key=rogue)), "bad_signature")


def test_config_changed_after_signing_is_refused(desk):
    p = desk.payload(desk.config(NEW_EXTRA))
    p["config"] = p["config"].replace("10.0", "3.0")
    refused(desk, desk.push(p), "bad_signature")


@pytest.mark.parametrize("field,value", [("txid", "other"), ("issued", 5)])
def test_signature_covers_txid_and_issued(desk, field, value):
    p = desk.payload(desk.config(NEW_EXTRA))
    p[field] = value
    refused(desk, desk.push(p), "bad_signature")


def test_garbage_signature_is_refused(desk):
    p = desk.payload(desk.config(NEW_EXTRA))
    p["signature"] = "not base64!"
    refused(desk, desk.push(p), "bad_signature")


def test_no_trusted_key_installed_refuses_everything(desk):
    p = desk.payload(desk.config(NEW_EXTRA))
    desk.keys.unlink()
    refused(desk, desk.push(p), "no_key")


def test_replayed_config_is_refused(desk):
    p = desk.payload(desk.config(NEW_EXTRA))
    assert desk.push(p).ok
    desk.live.write_text(desk.old)  # as if rolled back; the old payload must not come back
    trial_path(desk.live).unlink()
    r = desk.push(p)
    assert not r.ok and r.code == "replayed"
    assert desk.live.read_text() == desk.old


def test_invalid_config_is_refused_with_every_problem_and_line(desk):
    bad = desk.config("\n[audio]\nchannels = 3\nbogus = 1\n")
    r = desk.push(desk.payload(bad))
    refused(desk, r, "invalid")
    lines = {(p.key, p.line) for p in r.problems}
    assert lines == {("audio.channels", 12), ("audio.bogus", 13)}
    assert r.result_data()["problems"][0]["line"] in (12, 13)
    assert pending_fault(desk.state).startswith("config: MQTT config")


def test_config_for_another_desk_is_refused(desk):
    other = desk.config().replace('desk = "d07"', 'desk = "d08"')
    refused(desk, desk.push(desk.payload(other)), "wrong_desk")


def test_malformed_and_oversized_payloads_are_refused(desk):
    refused(desk, desk.push(b"{not json"), "malformed")
    refused(desk, desk.push(b"[1, 2]"), "malformed")
    refused(desk, desk.push({"txid": "x", "config": "", "signature": "AA=="}), "malformed")
    big = desk.config("#" + "x" * 70000 + "\n")
    refused(desk, desk.push(desk.payload(big)), "too_large")


def test_remote_config_can_be_switched_off(desk):
    desk.live.write_text(desk.old + "remote = false\n")
    desk.old = desk.live.read_text()
    refused(desk, desk.push(desk.payload(desk.config(NEW_EXTRA))), "refused")


def test_public_key_file_formats(desk, tmp_path):
    from cryptography.hazmat.primitives import serialization

    pem = desk.key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
    line = desk.keys.read_text().strip()
    keys = parse_public_keys(f"# site keys\n{pem.decode()}\ned25519 {line}\n")
    assert len(keys) == 2 and keys[0].fingerprint == keys[1].fingerprint
    assert signed_message("a", 1, "x").startswith(b"deskcue-config-v1\ntxid=a\nissued=1\n")


# -- the trial ---------------------------------------------------------------------------------


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_a_config_that_fails_its_health_check_is_rolled_back(desk):
    r = desk.push(desk.payload(desk.config(NEW_EXTRA)), now_mono=100.0)
    assert r.ok
    clock = Clock(100.0)
    assert startup_check(desk.live, now_mono=101.0).action == "trial"
    watch = TrialWatch(desk.live, clock=clock)
    audio = 0.0
    while clock.t < 170.0:  # audio flows but the appliance reports a fault the whole time
        clock.t += 0.5
        audio += 0.5
        action = watch.tick(audio_s=audio, fault="audio: no capture device matches 'USB'",
                            broker_connected=True)
        if action != "pending":
            break
    assert action == "rollback" and 160.0 < clock.t <= 160.5
    assert desk.live.read_text() == desk.old
    assert not trial_path(desk.live).exists()
    assert "rolled back" in pending_fault(desk.state)
    assert "no capture device" in pending_fault(desk.state)
    rec = last_apply(desk.state)
    assert rec["source"] == "rollback" and rec["rolled_back_txid"] == r.txid


def test_a_broker_that_never_comes_back_rolls_back(desk):
    desk.push(desk.payload(desk.config(NEW_EXTRA)), now_mono=100.0)
    clock = Clock(100.0)
    watch = TrialWatch(desk.live, clock=clock)
    for i in range(200):
        clock.t = 100.0 + i
        if watch.tick(audio_s=float(i), fault=None, broker_connected=False) != "pending":
            break
    assert watch.state == "rollback" and desk.live.read_text() == desk.old
    assert "broker" in pending_fault(desk.state)


def test_a_healthy_appliance_confirms_the_trial(desk):
    r = desk.push(desk.payload(desk.config(NEW_EXTRA)), now_mono=100.0)
    clock = Clock(100.0)
    watch = TrialWatch(desk.live, clock=clock)
    assert watch.tick(audio_s=0.0, fault="audio: starting", broker_connected=True) == "pending"
    states = []
    for i in range(1, 40):
        clock.t = 100.0 + i
        states.append(watch.tick(audio_s=float(i), fault=None, broker_connected=True))
    assert states.index("confirmed") == 10  # healthy_s = 10 s of audio with no fault
    assert desk.live.read_text() == desk.config(NEW_EXTRA)
    assert not trial_path(desk.live).exists()
    rec = last_apply(desk.state)
    assert rec["txid"] == r.txid and rec["trial"] is False and "confirmed_at" in rec
    assert pending_fault(desk.state) is None
    assert TrialWatch(desk.live).tick(audio_s=0, fault="x") == "none"


@pytest.mark.parametrize("first_tick_s", [0.0, 0.1])
def test_a_desk_healthy_from_stream_time_zero_confirms_the_trial(desk, first_tick_s):
    # The appliance's first tick comes at stream time 0.0 when audio flows from the start:
    # that moment must count as the start of the healthy stretch, not as "not yet healthy".
    desk.push(desk.payload(desk.config(NEW_EXTRA)), now_mono=100.0)
    clock = Clock(100.0)
    watch = TrialWatch(desk.live, clock=clock)
    audio, states = first_tick_s, []
    while clock.t < 200.0 and watch.state == "pending":
        states.append(watch.tick(audio_s=audio, fault=None, broker_connected=True))
        audio += 0.1
        clock.t += 0.1
    assert watch.state == "confirmed"
    assert 10.0 <= audio - first_tick_s <= 10.2  # healthy_s = 10 s, counted from the first tick
    assert desk.live.read_text() == desk.config(NEW_EXTRA)
    assert pending_fault(desk.state) is None


def test_a_crash_loop_is_rolled_back_at_start(desk):
    desk.push(desk.payload(desk.config(NEW_EXTRA)), now_mono=100.0)
    boot = trial_info(desk.live)["boot_id"]
    actions = [startup_check(desk.live, now_mono=100.0 + i, boot_id=boot).action
               for i in range(4)]
    assert actions == ["trial", "trial", "trial", "rolled_back"]
    assert desk.live.read_text() == desk.old
    assert "restarted 3 times" in pending_fault(desk.state)


@pytest.mark.parametrize("why", ["deadline", "reboot"])
def test_an_expired_trial_is_rolled_back_at_start(desk, why):
    desk.push(desk.payload(desk.config(NEW_EXTRA)), now_mono=100.0)
    boot = trial_info(desk.live)["boot_id"]
    check = startup_check(desk.live, now_mono=161.0 if why == "deadline" else 101.0,
                             boot_id=boot if why == "deadline" else "another-boot")
    assert check.action == "rolled_back"
    assert desk.live.read_text() == desk.old


def test_a_second_push_during_a_trial_keeps_the_proven_config_as_last_good(desk):
    assert desk.push(desk.payload(desk.config(NEW_EXTRA))).ok
    assert desk.push(desk.payload(desk.config(NEW_EXTRA + "hold_s = 2.0\n"))).ok
    assert last_good_path(desk.live).read_text() == desk.old


def test_an_unfinished_install_is_abandoned(desk):
    def crash(step: str) -> None:
        if step == "live.partial":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        apply_remote(json.dumps(desk.payload(desk.config(NEW_EXTRA))),
                        config_path=desk.live, current=load_settings(desk.live),
                        credentials_dir=None, hook=crash)
    assert desk.live.read_text() == desk.old and trial_path(desk.live).exists()
    assert startup_check(desk.live).action == "none"
    assert not trial_path(desk.live).exists()


def test_sign_cli_makes_a_payload_the_desk_accepts(desk, tmp_path, capsys):
    from firmware.cli.main import main as deskcue

    src = tmp_path / "new.toml"
    src.write_text(desk.config(NEW_EXTRA))
    assert deskcue(["config", "sign", str(src), "--key", str(tmp_path / "ops.pem"),
                    "--txid", "cli-1", "--issued", "5000"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["txid"] == "cli-1" and desk.push(payload).ok


@pytest.mark.parametrize(("option", "value"), [
    ("--txid", "cfg 7"), ("--txid", "x" * 65), ("--issued", "-1"), ("--key-id", "k" * 65),
])
def test_sign_cli_refuses_a_payload_every_desk_refuses(desk, tmp_path, capsys, option, value):
    """It printed the payload, exit 0: the desk then answered `malformed` with no txid to
    match (a txid it cannot read), or `invalid_args` (a negative issued)."""
    from firmware.cli.main import main as deskcue

    src = tmp_path / "new.toml"
    src.write_text(desk.config(NEW_EXTRA))
    args = {"--txid": "cli-1", "--issued": "5000", option: value}
    code = deskcue(["config", "sign", str(src), "--key", str(tmp_path / "ops.pem"),
                    *[w for kv in args.items() for w in kv]])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert f"deskcue: config sign: {option} " in err and "every desk would refuse" in err
    payload = desk.payload(desk.config(NEW_EXTRA), txid=args["--txid"],
                           issued=int(args["--issued"]), key_id=args.get("--key-id"))
    assert not desk.push(payload).ok, "the desk refuses it, as said"


@pytest.mark.parametrize("damage", [
    "not JSON", "a list", "starts is text", "deadline_mono is null", "max_starts is null",
    "healthy_s is text", "boot_id is missing",
])
def test_a_damaged_trial_marker_rolls_back_at_start(desk, damage):
    """A worn card or a hand edit: the marker can no longer judge the config on trial. Not a
    crash at every start (the desk dark for ever), nor a marker silently ignored (the
    unproven config kept): the last good config comes back and the fault says why."""
    desk.push(desk.payload(desk.config(NEW_EXTRA)), now_mono=100.0)
    marker = trial_path(desk.live)
    trial = trial_info(desk.live)
    boot = trial["boot_id"]
    field, _, how = damage.partition(" is ")
    if damage == "not JSON":
        marker.write_bytes(marker.read_bytes()[:20])
    elif damage == "a list":
        marker.write_text("[1, 2]")
    else:
        if how == "missing":
            del trial[field]
        else:
            trial[field] = None if how == "null" else "x"
        marker.write_text(json.dumps(trial))
    check = startup_check(desk.live, now_mono=101.0, boot_id=boot)
    assert check.action == "rolled_back" and "damaged" in check.message
    assert desk.live.read_text() == desk.old and not marker.exists()
    assert "trial record" in pending_fault(desk.state)
    assert TrialWatch(desk.live).state == "none"


@pytest.mark.parametrize("last_good", ["[device\nsite =", "[device]\nold_key = 1\n", b"\xff\xfe"])
def test_a_last_good_config_that_cannot_run_is_never_rolled_back_to(desk, capsys, last_good):
    """A last good config damaged on the card, or from a firmware whose keys this one does not
    know: rolling back to it put it live, and every later start ended with a config error
    (exit 2), the desk dark for good. The config running now starts, so it stays."""
    from firmware.cli.main import main as deskcue

    new = desk.config(NEW_EXTRA)
    desk.push(desk.payload(new), now_mono=100.0)
    good = last_good_path(desk.live)
    if isinstance(last_good, bytes):
        good.write_bytes(last_good)
    else:
        good.write_text(last_good)
    check = startup_check(desk.live, now_mono=101.0, boot_id="another-boot")
    assert check.action == "none" and "last good config" in check.message
    assert desk.live.read_text() == new and not trial_path(desk.live).exists()
    load_settings(desk.live)  # the desk still starts
    assert deskcue(["config", "rollback", "--etc", str(desk.etc)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"deskcue: {desk.live}: nothing rolled back: ") and str(good) in err
    assert desk.live.read_text() == new


def run_desk_on_a_second_of_tone(desk, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The real `deskcue run` of the desk's live config on 1 s of tone, as fast as it goes:
    what the next start does with what a killed one left."""
    from tone import tone_wav

    return subprocess.run(
        [sys.executable, "-m", "firmware.cli", "run", "--config", str(desk.live), "--source",
         str(tone_wav(tmp_path / "short.wav", 1.0)), "--fast", "--pins", "mock",
         "--runtime-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("step", ROLLBACK_STEPS)
def test_a_rollback_killed_at_any_step_still_reaches_the_tech_and_the_supervisor(
        desk, tmp_path, step):
    """kill -9 (or a power cut) part way through a rollback: at the next start the desk runs
    the last good config, its apply record says rollback, and the fault that tells the
    supervisor and the tech that the pushed config was rolled back, and why, is there. (Cut
    between putting the last good config live and ending the trial, the next start took the
    leftover trial record for an unfinished install and forgot the rollback: `status` showed
    the pushed config on trial, hash and all, and no fault.)"""

    off = "\n[mqtt]\nenabled = false\n"
    desk.old = desk.config(off)
    desk.live.write_text(desk.old)
    assert desk.push(desk.payload(desk.config(off + NEW_EXTRA), txid="c9")).ok
    died = died_at(step, lambda hook: rollback(
        desk.live, "not healthy within 60.0 s (no audio)", hook=hook))
    assert died == DIED, f"step {step} never reached"

    proc = run_desk_on_a_second_of_tone(desk, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert desk.live.read_text() == desk.old and not trial_path(desk.live).exists()
    rec = last_apply(desk.state)
    assert rec["source"] == "rollback" and rec["rolled_back_txid"] == "c9", rec
    assert rec["hash"] == settings_hash(load_settings(desk.live))
    fault = pending_fault(desk.state)
    assert fault and "MQTT config c9 rolled back" in fault, fault


def test_a_rollback_the_full_card_cannot_take_is_a_fault_not_a_crash_loop(desk, tmp_path):
    """The trial of a pushed config runs out on a card that takes no write (full, or turned
    read-only: the desk's process limited to files of 0 bytes, every write failing as it
    would). The rollback cannot be written; the desk must not die of it (systemd would
    restart it into the same failure every few seconds, the light dark in between): it goes
    on, shows the config fault and says what the tech does."""
    import resource
    import subprocess
    import sys

    from tone import tone_wav

    off = "\n[mqtt]\nenabled = false\n"
    desk.old = desk.config(off)
    desk.live.write_text(desk.old)
    assert desk.push(desk.payload(desk.config(off + NEW_EXTRA), txid="c7")).ok
    trial = trial_info(desk.live)
    pushed = desk.live.read_text()
    wav = tone_wav(tmp_path / "short.wav", 3.0)
    (tmp_path / "run").mkdir()

    def full_card() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))

    proc = subprocess.run(
        [sys.executable, "-m", "firmware.cli", "run", "--config", str(desk.live), "--source",
         str(wav), "--fast", "--pins", "mock", "--runtime-dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        preexec_fn=full_card)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 0, said
    assert "config: MQTT config c7 could not be rolled back" in said, said
    assert "free space on the card" in said, said
    # nothing half done: the pushed config and its trial are as they were, for the next start
    assert desk.live.read_text() == pushed and trial_info(desk.live) == trial


def test_a_push_killed_before_its_apply_record_is_recorded_at_the_next_start(desk, tmp_path):
    """kill -9 (or a power cut) after a pushed config went live on trial but before its apply
    record: the desk restarts onto it on trial, but `deskcue status` and the retained info's
    config_apply went on naming the config before it (or none), even once it was confirmed.
    The next start records the apply from the trial record."""

    off = "\n[mqtt]\nenabled = false\n"
    desk.old = desk.config(off)
    desk.live.write_text(desk.old)
    payload = desk.payload(desk.config(off + NEW_EXTRA), txid="c5")
    died = died_at("live.written", lambda hook: apply_remote(
        json.dumps(payload), config_path=desk.live, current=load_settings(desk.live),
        credentials_dir=None, hook=hook))
    assert died == DIED
    assert trial_info(desk.live)["txid"] == "c5" and last_apply(desk.state) == {}

    proc = run_desk_on_a_second_of_tone(desk, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert trial_info(desk.live) is not None  # still on trial: 1 s of audio proves nothing
    rec = last_apply(desk.state)
    assert rec.get("source") == "mqtt" and rec.get("txid") == "c5", rec
    assert rec.get("trial") is True and rec["hash"] == settings_hash(load_settings(desk.live))
    assert rec.get("at") == trial_info(desk.live)["at"]


def test_every_remote_config_refusal_is_quoted_for_field_techs(desk):
    """docs/field-tech.md §6 quotes each refusal as the desk words it (numbers as examples)."""
    guide = (Path(__file__).resolve().parent.parent / "docs" / "field-tech.md").read_text()

    def quoted(r: RemoteResult) -> str:
        assert not r.ok
        text = re.sub(r"issued \d+ is not newer than the last accepted config \(\d+\)",
                      "issued N is not newer than the last accepted config (M)", r.message)
        text = re.sub(r"^\d+ problem\(s\)", "N problem(s)", text)
        return f"`{r.code}`: `{text}`"

    accepted = desk.payload(desk.config(NEW_EXTRA))
    assert desk.push(accepted).ok
    desk.live.write_text(desk.old)
    trial_path(desk.live).unlink()
    results = [
        desk.push(accepted),
        desk.push(desk.payload(desk.config().replace('desk = "d07"', 'desk = "d08"'))),
        desk.push(desk.payload(desk.config("\n[audio]\nchannels = 3\n"))),
        desk.push(desk.payload(desk.config("#" + "x" * 70000 + "\n"))),
    ]
    desk.live.write_text(desk.old + "remote = false\n")
    results.append(desk.push(desk.payload(desk.config(NEW_EXTRA))))
    for r in results:
        assert quoted(r) in guide, quoted(r)


def test_a_rollback_for_the_broker_says_what_the_link_last_met(desk):
    """`rolled back: not healthy within 60 s (broker not connected)` left the supervisor to
    guess whether the pushed config named a wrong host or port or the broker was down: the
    config it names is gone from the desk by then. The reason carries the link's last error."""
    desk.push(desk.payload(desk.config(NEW_EXTRA)), now_mono=100.0)
    clock = Clock(100.0)
    watch = TrialWatch(desk.live, clock=clock)
    why = "cannot connect to broker.example:1884: [Errno 111] Connection refused"
    for i in range(200):
        clock.t = 100.0 + i
        if watch.tick(audio_s=float(i), fault=None, broker_connected=False,
                      broker_error=why) != "pending":
            break
    assert watch.state == "rollback"
    assert f"(broker not connected: {why})" in pending_fault(desk.state)
