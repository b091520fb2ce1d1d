"""`deskcue selftest` without a Pi: gpiozero mock pins, a WAV for the headset, real mosquitto."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin
from wav_file import write_pcm16

from firmware.audio.source import WavFileSource
from firmware.cli import selftest as st
from firmware.cli.main import main as deskcue
from firmware.config.load import parse_settings
from firmware.config.settings import Settings
from firmware.demo.local_broker import LocalBroker


def write_wav(path: Path, left_db: float, right_db: float | None, seconds: float = 3.0,
              rate: int = 16000) -> Path:
    """A voice-like 150 Hz buzz with syllable-rate bursts on the left, and noise on the right
    (levels in dBFS re a full-scale square)."""
    t = np.arange(int(seconds * rate)) / rate
    voice = np.sign(np.sin(2 * np.pi * 150 * t)) * (np.sin(2 * np.pi * 3 * t) > 0)
    rng = np.random.default_rng(1)
    chans = [voice * 10 ** (left_db / 20) / max(np.sqrt(np.mean(voice ** 2)), 1e-9)]
    if right_db is not None:
        chans.append(rng.standard_normal(t.size) * 10 ** (right_db / 20))
    return write_pcm16(path, np.clip(np.stack(chans, axis=1), -1, 0.999) * 32767, rate)


@pytest.fixture(scope="module")
def broker():
    with LocalBroker() as b:
        yield b


def quiet(answers: list[str] | None = None) -> st.Console:
    out = io.StringIO()
    if answers is None:
        return st.Console(assume_yes=True, out=out)
    replies = iter(answers)
    return st.Console(assume_yes=False, out=out, ask=lambda q: next(replies))


def config(text: str = "") -> Settings:
    return parse_settings('[mqtt]\nhost = "127.0.0.1"\n' + text)


def test_on_mock_pins_the_parts_nobody_can_see_are_skipped_and_the_rest_passes(tmp_path,
                                                                                broker):
    wav = write_wav(tmp_path / "tap.wav", -20.0, -50.0)
    factory = MockFactory(pin_class=MockPWMPin)
    s = config()
    steps = st.run_selftest(s, factory=factory, ui=quiet(), broker=(broker.host, broker.port),
                            open_source=lambda: WavFileSource(wav, realtime=False),
                            listen_s=2.0)
    by = {x.name: x for x in steps}
    assert [x.status for x in steps] == ["SKIP", "SKIP", "SKIP", "PASS", "PASS"], steps
    assert by["LED"].detail.startswith(st.NO_EYES)
    assert "took the value it was given (red, green, blue, white)" in by["LED"].detail
    assert by["motor"].detail.startswith(st.NO_HANDS)
    assert by["button"].detail == st.NO_BUTTON
    assert "agent on left" in by["audio"].detail
    assert "round trip" in by["broker"].detail
    ind = s.indicator
    for pin in (ind.red_pin, ind.green_pin, ind.blue_pin):  # each leg went up and back down
        values = [p.state for p in factory.pin(pin).states]
        assert max(values) == 1.0 and values[-1] == 0.0, (pin, values)
    motor = [p.state for p in factory.pin(ind.motor_pin).states]
    assert motor.count(ind.motor_strength) == 2 and motor[-1] == 0.0
    text, code = st.summary(steps, "site1/desk1")
    assert code == 0 and "RESULT: PASS (2 passed, 0 failed, 3 skipped)" in text


def test_an_interactive_run_on_mock_pins_asks_nothing_and_waits_for_no_button(tmp_path):
    """A tech at a bench without a Pi is not asked about colours that appear nowhere, nor
    kept waiting for a button that does not exist."""
    asked: list[str] = []

    def ask(question: str) -> str:
        asked.append(question)
        return "y"

    out = io.StringIO()
    ui = st.Console(assume_yes=False, out=out, ask=ask)
    wav = write_wav(tmp_path / "tap.wav", -20.0, -50.0, seconds=1.0)
    done = threading.Event()
    steps: list[st.Step] = []

    def run() -> None:
        steps.extend(st.run_selftest(
            config(), factory=MockFactory(pin_class=MockPWMPin), ui=ui, skip=("broker",),
            open_source=lambda: WavFileSource(wav, realtime=False), listen_s=1.0))
        done.set()

    threading.Thread(target=run, daemon=True).start()
    # far less than the 10 s the button step would wait for a press
    assert done.wait(5.0), "the self-test waited for a button nobody can press"
    assert asked == []
    assert [x.status for x in steps[:3]] == ["SKIP", "SKIP", "SKIP"], steps
    text = out.getvalue()
    assert "gpiozero mock pins" in text and "Did the LED" not in text
    assert "press the snooze button" not in text


class StuckPin(MockPWMPin):
    """A pin that stays low whatever it is told (a shorted or dead output)."""

    def _set_state(self, value: float) -> None:
        self._change_state(0.0)


def test_a_mock_pin_that_does_not_follow_still_fails():
    factory = MockFactory(pin_class=StuckPin)
    ind = config().indicator
    led = st.check_led(ind, factory, quiet(), 0.0)
    assert led.status == "FAIL" and f"GPIO{ind.red_pin} reads 0.00" in led.detail
    motor = st.check_motor(ind, factory, quiet(), 0.0)
    assert motor.status == "FAIL" and f"GPIO{ind.motor_pin} did not follow" in motor.detail


def test_a_swapped_tap_fails_and_says_what_to_set(tmp_path):
    wav = write_wav(tmp_path / "tap.wav", -20.0, -50.0)
    s = config('[audio]\nagent_channel = "right"\ncaller_channel = "left"\n')
    step = st.check_audio(s.audio, lambda: WavFileSource(wav, realtime=False), quiet(), 2.0)
    assert step.status == "FAIL"
    assert 'set agent_channel = "left" and caller_channel = "right"' in step.detail


def test_silence_fails(tmp_path):
    wav = write_wav(tmp_path / "dead.wav", -95.0, -95.0)
    step = st.check_audio(config().audio, lambda: WavFileSource(wav, realtime=False),
                          quiet(), 2.0)
    assert step.status == "FAIL" and "no signal" in step.detail


def test_mono_tap(tmp_path):
    wav = write_wav(tmp_path / "mono.wav", -25.0, None)
    s = config("[audio]\nchannels = 1\n")
    step = st.check_audio(s.audio, lambda: WavFileSource(wav, realtime=False), quiet(), 2.0)
    assert step.status == "PASS"


def test_a_stereo_config_on_a_mono_device_fails(tmp_path):
    wav = write_wav(tmp_path / "mono.wav", -25.0, None)
    step = st.check_audio(config().audio, lambda: WavFileSource(wav, realtime=False),
                          quiet(), 2.0)
    assert step.status == "FAIL" and "audio.channels = 2" in step.detail


def test_at_a_desk_the_techs_answers_decide_the_led_motor_and_button():
    """What a tech at a real desk goes through: mock pins stand in for the board, and the
    step is told a person can see, feel and press (as on real GPIO)."""
    factory = MockFactory(pin_class=MockPWMPin)
    ind = config().indicator
    led = st.check_led(ind, factory, quiet(["n"]), step_s=0.0, seen=True)
    assert led.status == "FAIL" and "check the wiring" in led.detail
    led = st.check_led(ind, factory, quiet(["y"]), step_s=0.0, seen=True)
    assert led.status == "PASS" and "red, green, blue, white" in led.detail
    motor = st.check_motor(ind, factory, quiet(["n"]), 0.0, felt=True)
    assert motor.status == "FAIL" and "not felt" in motor.detail
    pin = factory.pin(ind.button_pin)
    threading.Timer(0.2, pin.drive_low).start()
    assert st.check_button(ind, factory, quiet([]), wait_s=3.0,
                           pressable=True).status == "PASS"


def test_at_a_desk_with_yes_nobody_confirms_so_nothing_passes_unseen():
    factory = MockFactory(pin_class=MockPWMPin)
    ind = config().indicator
    led = st.check_led(ind, factory, quiet(), 0.0, seen=True)
    motor = st.check_motor(ind, factory, quiet(), 0.0, felt=True)
    button = st.check_button(ind, factory, quiet(), wait_s=3.0, pressable=True)
    assert [x.status for x in (led, motor, button)] == ["SKIP"] * 3
    assert all(x.detail.startswith(st.NOT_ASKED) for x in (led, motor, button))
    assert "nobody confirmed the colours; each pin" in led.detail


def test_single_led_and_no_motor():
    factory = MockFactory(pin_class=MockPWMPin)
    ind = config('[indicator]\nled = "single"\nmotor_pin = "none"\n').indicator
    assert st.check_led(ind, factory, quiet(["y"]), 0.0, seen=True).status == "PASS"
    assert [p.state for p in factory.pin(ind.led_pin).states][1:] == [1.0, 0.0, 1.0, 0.0]
    assert st.check_motor(ind, factory, quiet(), 0.0).status == "SKIP"


def test_cli_end_to_end_and_a_dead_broker_fails(tmp_path, broker, capsys):
    wav = write_wav(tmp_path / "tap.wav", -20.0, -50.0)
    base = ["selftest", "--pins", "mock", "--source", str(wav), "--yes", "--seconds", "1"]
    assert deskcue(base + ["--broker", f"127.0.0.1:{broker.port}"]) == 0
    out = capsys.readouterr().out
    assert "RESULT: PASS (2 passed, 0 failed, 3 skipped)" in out
    assert "SKIP  LED" in out and "no LED anyone can see" in out
    from broker import dead_port

    with dead_port() as port:
        assert deskcue(base + ["--broker", f"127.0.0.1:{port}"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  broker" in out and "RESULT: FAIL" in out


def desk_config(tmp_path: Path, port: int, creds: Path | None = None) -> Path:
    """lyon/d07's config for a broker on 127.0.0.1:``port`` (``creds``: its credentials file;
    else the credstore's, as a desk run by hand reads it)."""
    cfg = tmp_path / "deskcue.toml"
    cfg.write_text(f'[device]\nsite = "lyon"\ndesk = "d07"\nstate_dir = "{tmp_path}/s"\n'
                   f'runtime_dir = "{tmp_path}/r"\n[mqtt]\nhost = "127.0.0.1"\nport = {port}\n'
                   + (f'credentials_file = "{creds}"\n' if creds else ""))
    return cfg


def selftest_process(cfg: Path, *skip: str, env: dict[str, str] | None = None,
                     prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """The real `deskcue selftest --pins mock --yes` of ``cfg``, skipping ``skip`` (default
    audio), as a tech runs it by hand: outside systemd (no CREDENTIALS_DIRECTORY)."""
    env = dict(os.environ if env is None else env)
    env.pop("CREDENTIALS_DIRECTORY", None)
    skips = [a for step in (skip or ("audio",)) for a in ("--skip", step)]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "firmware.cli", "selftest", "--config", str(cfg),
         "--pins", "mock", "--yes", *skips],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)


def test_run_by_hand_on_the_desk_it_uses_the_desks_broker_credentials(tmp_path):
    """docs/field-tech.md §1 puts the broker's user name and password in the file systemd
    hands to the service (/etc/credstore/deskcue-mqtt); §3 has the tech stop the service and
    run the self-test by hand, outside systemd. The self-test must log in as the desk does,
    not connect anonymously and FAIL with "Not authorized" on a broker with accounts, sending
    the tech to check a credentials file that is right. (The credstore is the test's own:
    DESKCUE_CREDSTORE, set for every test by conftest.py.)"""
    from broker import Broker

    credstore = Path(os.environ["DESKCUE_CREDSTORE"])
    credstore.mkdir(exist_ok=True)
    (credstore / "deskcue-mqtt").write_text("username = lyon-d07\npassword = s3cret\n")
    (credstore / "deskcue-mqtt").chmod(0o600)
    try:
        with Broker(tmp_path / "broker", users={"lyon-d07": "s3cret"}).start() as b:
            proc = selftest_process(desk_config(tmp_path, b.port))
    finally:
        (credstore / "deskcue-mqtt").unlink()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS  broker" in proc.stdout, proc.stdout


def test_a_broker_that_refuses_the_desks_account_says_where_to_look(tmp_path):
    """A wrong password: the broker step's FAIL names what to check (the credentials file,
    the broker's accounts), as the running desk's fault does, not only the broker's words."""
    from broker import Broker

    creds = tmp_path / "mqtt-creds"
    creds.write_text("username = lyon-d07\npassword = wrong\n")
    creds.chmod(0o600)
    with Broker(tmp_path / "broker", users={"lyon-d07": "s3cret"}).start() as b:
        proc = selftest_process(desk_config(tmp_path, b.port, creds))
    assert proc.returncode == 1
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("  FAIL  broker"))
    assert "the credentials file" in line, line


def test_run_by_hand_without_sudo_it_says_to_use_sudo(tmp_path):
    """/etc/credstore is root's (0700): the self-test run without sudo cannot read the desk's
    credentials, and its broker step says to run it with sudo rather than failing with a bare
    PermissionError. (Root without its permission override meets the owner's bits like any
    user: setpriv; the credstore is the test's own, DESKCUE_CREDSTORE.)"""
    import shutil

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("drops root's permission override with setpriv")
    credstore = tmp_path / "credstore"
    credstore.mkdir()
    (credstore / "deskcue-mqtt").write_text("username = lyon-d07\npassword = s3cret\n")
    (credstore / "deskcue-mqtt").chmod(0o600)
    os.chown(credstore / "deskcue-mqtt", 65534, 65534)
    os.chown(credstore, 65534, 65534)  # someone else's, as root's is to a tech's own user
    credstore.chmod(0o700)
    proc = selftest_process(
        desk_config(tmp_path, 9), env={**os.environ, "DESKCUE_CREDSTORE": str(credstore)},
        prefix=("setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("  FAIL  broker"))
    assert "permission denied" in line and "run the command with sudo" in line, line


def test_a_run_where_every_step_was_skipped_is_no_pass(tmp_path):
    """Every step left out (--skip for audio and broker, mock pins and --yes for the rest):
    nothing was tested, so the verdict is not PASS and the exit code is not 0; a script doing
    `deskcue selftest && ship` must not ship a desk nobody checked."""
    proc = selftest_process(desk_config(tmp_path, 9), "audio", "broker")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = proc.stdout.strip().splitlines()[-1]
    assert result == "RESULT: NOT TESTED (0 passed, 0 failed, 5 skipped)", proc.stdout
    assert "PASS" not in result


@pytest.mark.parametrize("encoded", [
    pytest.param(b"\xef\xbb\xbfusername = lyon-d07\npassword = s3cret\n", id="utf8-bom"),
    pytest.param(b"username = lyon-d07\r\npassword = s3cret\r\n", id="crlf"),
    pytest.param(b"\xef\xbb\xbfusername = lyon-d07\r\npassword = s3cret\r\n", id="bom-crlf"),
])
def test_a_credentials_file_saved_by_windows_notepad_logs_in(tmp_path, encoded):
    """Notepad saves UTF-8 with a byte-order mark and CRLF line ends: neither is visible in
    an editor on the desk, and neither can belong to a user name or password. The desk logs
    in with such a file as with a plain one, instead of "line 1: expected username"."""
    from broker import Broker

    creds = tmp_path / "mqtt-creds"
    creds.write_bytes(encoded)
    creds.chmod(0o600)
    with Broker(tmp_path / "broker", users={"lyon-d07": "s3cret"}).start() as b:
        proc = selftest_process(desk_config(tmp_path, b.port, creds))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS  broker" in proc.stdout, proc.stdout
