"""Bad input gives a clear one-line error (or a fault pattern while running), never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from broker import Subscriber, dead_port
from cli_process import DESKCUE, deskcue
from waiting import HANG_S, wait_until
from wav_file import write_pcm16

from firmware.appliance.worker import Appliance
from firmware.audio.source import AudioError
from firmware.config.settings import Settings
from firmware.indicator.desk import Indicator


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("deskcue:")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].isascii(), lines[0]  # read on serial consoles in a C locale too
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_missing_config(tmp_path):
    one_line_error(deskcue("run", "--config", str(tmp_path / "nope.toml")), "file not found")


def test_malformed_config(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[audio]\nchannels = \n")
    one_line_error(deskcue("analyze", "x.wav", "--events", "--config", str(cfg)),
                   "line 2", "TOML")


def test_bad_value_names_key_and_what_is_allowed(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[audio]\nchannels = 3\n[cues.raised_voice]\nhold_s = -1\n")
    line = one_line_error(deskcue("run", "--config", str(cfg)), "audio.channels")
    assert "must be 1 or 2" in line and "(and 1 more)" in line


def desk_dirs(tmp_path: Path) -> str:
    """The [device] section of a test desk: its state and runtime dirs in ``tmp_path``."""
    return f'[device]\nstate_dir = "{tmp_path}/s"\nruntime_dir = "{tmp_path}/r"\n'


def test_no_capture_device_points_to_source(tmp_path):
    """The shipped default audio settings (the system's default input) on a machine without a
    capture device; the desk's dirs are the test's own, and no broker is tried."""
    conf = tmp_path / "empty.conf"
    conf.write_text("")
    cfg = tmp_path / "c.toml"
    cfg.write_text(desk_dirs(tmp_path) + "[mqtt]\nenabled = false\n")
    proc = deskcue("run", "--config", str(cfg),
                   env={"ALSA_CONFIG_PATH": f"/usr/share/alsa/alsa.conf:{conf}"})
    one_line_error(proc, "--source")


def test_unknown_audio_device_lists_what_exists(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from alsa_tap import AlsaTap

    tap = AlsaTap(tmp_path)
    cfg = tmp_path / "c.toml"
    cfg.write_text(desk_dirs(tmp_path) + '[audio]\ndevice = "no-such-card"\n'
                   '[mqtt]\nenabled = false\n')
    proc = deskcue("run", "--config", str(cfg),
                   env={"ALSA_CONFIG_PATH": os.environ["ALSA_CONFIG_PATH"]})
    del tap
    # what is wrong, what there is, and what the tech does about it
    one_line_error(proc, "no-such-card", "deskcue_tap", "plugged in",
                   "set audio.device to a part of one of these names")


@pytest.mark.parametrize("kind", ["aiff", "text", "three_channels", "missing"])
def test_wrong_wav_format(tmp_path, kind):
    path = tmp_path / f"{kind}.{'aiff' if kind == 'aiff' else 'wav'}"
    if kind == "aiff":  # a container deskcue does not read: named, with the sox line
        subprocess.run(["sox", "-n", "-r", "16000", "-b", "16", str(path), "synth", "0.5",
                        "sine", "440"], check=True)
    elif kind == "text":
        path.write_text("this is not audio")
    elif kind == "three_channels":
        write_pcm16(path, np.zeros((1600, 3)))
    line = one_line_error(deskcue("analyze", str(path), "--events"), path.name)
    assert {"aiff": "AIFF", "text": "not a recording", "three_channels": "3 channels",
            "missing": "no such file"}[kind] in line
    if kind in ("aiff", "text"):
        assert f"sox {path} -b 16" in line


def test_broker_refusing_the_connection_never_stops_the_analysis(tmp_path, demo_wav):
    cfg = tmp_path / "c.toml"
    with dead_port() as port:
        cfg.write_text(f'[device]\nstate_dir = "{tmp_path}/s"\nruntime_dir = "{tmp_path}/r"\n'
                       f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n'
                       'reconnect_min_s = 0.1\nreconnect_max_s = 0.2\nstop_drain_s = 0.5\n')
        proc = deskcue("run", "--config", str(cfg), "--source", str(demo_wav), "--fast",
                       "--pins", "mock")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "raised_voice.started" in proc.stderr  # the cue still fired (logged)
    assert "LED -> raised voice" in proc.stderr


def test_audio_fault_shows_fault_pattern_and_status_while_running(tmp_path, broker):
    """Under systemd a missing device does not end the process: fault light, fault event,
    retries; once the device appears the fault clears."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    settings = Settings.model_validate({
        "device": {"site": "t", "desk": "d", "state_dir": str(tmp_path / "s"),
                   "runtime_dir": str(tmp_path / "r")},
        "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1}})
    attempts = []

    def open_source():
        attempts.append(time.monotonic())
        raise AudioError("no capture device matches audio.device = 'usb'")

    from firmware.appliance.assemble import make_link

    factory = MockFactory(pin_class=MockPWMPin)
    app = Appliance(settings, open_source=open_source, retry_s=0.2)
    app.indicator = Indicator(settings.indicator, pin_factory=factory)
    app.link = make_link(settings, app)
    sub = Subscriber(broker, "deskcue/t/d/#", qos=1).connect()
    stop = threading.Event()
    th = threading.Thread(target=app.run, args=(stop,))
    th.start()
    try:
        wait_until(lambda: any(e["type"] == "fault" for e in sub.events()))
        wait_until(lambda: len(attempts) >= 3)
        assert app.status().display == "fault"  # what `deskcue status` shows
        red = factory.pin(settings.indicator.red_pin)
        wait_until(lambda: any(s.state > 0 for s in red.states))
        fault = next(e for e in sub.events() if e["type"] == "fault")
        assert "usb" in fault["data"]["fault"] and fault["data"]["active"] is True
        assert "fault" in app.status_line()
    finally:
        stop.set()
        th.join(HANG_S)
        sub.close()
    assert not th.is_alive()


def test_a_desk_without_audio_still_says_who_it_is(tmp_path, broker):
    """`info` went out only once an audio source opened: a desk started without its tap left
    the broker's retained `info` from its previous run, so supervisors read the old boot id
    (not the one in this run's fault event) and the old config hash, just when a tech wanted
    to know what the faulty desk runs. The contract says `audio_device` is null while no
    source is open."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from firmware.appliance.assemble import make_link
    from firmware.contract.examples import EXAMPLES

    settings = Settings.model_validate({
        "device": {"site": "t", "desk": "d", "state_dir": str(tmp_path / "s"),
                   "runtime_dir": str(tmp_path / "r")},
        "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1}})
    old = EXAMPLES["info"].to_json()  # what the desk's previous run left
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    pub.publish("deskcue/t/d/info", json.dumps(old), qos=1, retain=True).wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()

    def open_source():
        raise AudioError("no capture device matches audio.device = 'usb'")

    app = Appliance(settings, open_source=open_source, retry_s=0.2)
    app.link = make_link(settings, app)
    sub = Subscriber(broker, "deskcue/t/d/#", qos=1).connect()
    stop = threading.Event()
    th = threading.Thread(target=app.run, args=(stop,))
    th.start()
    try:
        fault = wait_until(lambda: [e for e in sub.events() if e["type"] == "fault"])[0]
        info = wait_until(lambda: [m.json() for m in sub.on("info") if not m.retain])[-1]
        assert info["boot_id"] == fault["boot_id"] != old["boot_id"]
        assert info["audio_device"] is None and info["config_hash"] != old["config_hash"]
    finally:
        stop.set()
        th.join(HANG_S)
        sub.close()
    assert not th.is_alive()


class StallingSource:
    """A capture device that goes silent after ``blocks`` blocks, like an unplugged tap."""

    rate, channels, name = 16000, 1, "usb-tap"

    def __init__(self, blocks: int):
        self.left, self.overflows, self.gap_s = blocks, 0, 0.0

    def start(self) -> None:
        pass

    def read(self, timeout: float):
        if self.left <= 0:
            time.sleep(timeout)
            return None
        self.left -= 1
        return np.zeros((800, 1), np.float32)

    def close(self) -> None:
        pass


def test_a_stalled_device_is_reopened_and_the_stream_goes_on(tmp_path):
    """No audio for no_audio_fault_s: fault, the device is closed and opened again; when it
    delivers again the fault clears and stream time continues where it was."""
    settings = Settings.model_validate({
        "device": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")},
        "audio": {"no_audio_fault_s": 0.3}, "mqtt": {"enabled": False}})
    opened: list[StallingSource] = []

    def open_source():
        opened.append(StallingSource(20))
        return opened[-1]

    events: list[dict] = []
    app = Appliance(settings, open_source=open_source, retry_s=0.2, on_event=events.append)
    stop = threading.Event()
    th = threading.Thread(target=app.run, args=(stop,))
    th.start()
    try:
        wait_until(lambda: len(opened) >= 3)
        wait_until(lambda: sum(e["type"] == "fault" for e in events) >= 2)
    finally:
        stop.set()
        th.join(HANG_S)
    faults = [e["data"] for e in events if e["type"] == "fault"]
    assert faults[0]["active"] and "nothing from usb-tap" in faults[0]["fault"]
    assert faults[1]["active"] is False
    assert app.stream_s >= 2 * 20 * 0.05 - 1e-9  # the second device's audio continued it


def test_sigterm_stops_cleanly_and_leaves_the_light_dark(tmp_path, demo_wav):
    """systemd stops the service with SIGTERM: clean exit, light dark, baseline saved."""
    import signal

    from firmware.appliance.pipeline import make_usual_voice
    from firmware.config.load import load_settings

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[device]\nstate_dir = "{tmp_path}/s"\nruntime_dir = "{tmp_path}/r"\n'
                   '[baseline]\nwarmup_speech_s = 5.0\n[mqtt]\nenabled = false\n')
    proc = subprocess.Popen([*DESKCUE, "run", "--config", str(cfg),
                             "--source", str(demo_wav), "--pins", "mock"],
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")),
                              daemon=True)
    reader.start()
    # stopped once some speech is learned (a baseline with none is not saved)
    wait_until(lambda: any("event usual_voice_learned" in ln for ln in lines),
               alive=lambda: proc.poll() is None)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(HANG_S) == 0
    reader.join(HANG_S)
    assert "LED -> dark" in lines[-1] or any("LED -> dark" in ln for ln in lines[-5:])
    assert "Traceback" not in "".join(lines)
    saved = make_usual_voice(load_settings(cfg))
    saved.load(json.loads((tmp_path / "s" / "baseline.json").read_text()))
    assert saved.learned and saved.speech_s > 0


def analyze_a_float_tone_with_a_glitch(tmp_path, rate, value, n):
    """`deskcue analyze --features` of 4 s of a 200 Hz tone at amplitude 0.1 in a float WAV
    whose ``n`` samples 1 s in are ``value``: (the WAV, the finished process, the CSV's
    rows)."""
    import soundfile as sf

    t = np.arange(rate * 4) / rate
    x = (0.1 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)[:, None]
    x[rate:rate + n] = value
    wav = tmp_path / "float.wav"
    sf.write(wav, x, rate, subtype="FLOAT")
    csv = tmp_path / "f.csv"
    proc = deskcue("analyze", str(wav), "--features", str(csv))
    assert proc.returncode == 0, proc.stderr
    assert "RuntimeWarning" not in proc.stderr
    return wav, proc, [line.split(",") for line in csv.read_text().splitlines()[1:]]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_a_float_recording_is_read_as_silence_and_said(tmp_path, bad):
    """One NaN (or Inf) sample in a float WAV stayed in the filters' state: every loudness
    after it was NaN, so no cue could fire for the rest of the recording, and nothing said
    why (a numpy RuntimeWarning at most)."""
    wav, proc, rows = analyze_a_float_tone_with_a_glitch(tmp_path, 16000, bad, 10)
    assert f"deskcue: warning: {wav}: 10 frame(s) held NaN or infinite samples" in proc.stderr
    late = [float(r[4]) for r in rows if float(r[0]) > 3.5]  # short-term loudness, LUFS
    assert late and all(np.isfinite(late)), "the measures after the bad samples are numbers"


@pytest.mark.parametrize("big, rate", [(1e5, 16000), (3e38, 48000)])
def test_samples_beyond_full_scale_in_a_float_recording_are_read_as_full_scale(tmp_path, big,
                                                                                rate):
    """A float WAV can hold any finite number. Three samples at 1e5 (+100 dBFS) set the
    pitch tracker's running peak 120 dB above a -20 dBFS voice, which decays 1 dB/s: no pitch
    for two minutes; at 3e38 the float32 resampler overflowed to inf and every loudness after
    it was NaN. A 16-bit capture cannot go past full scale: read them as full scale, and say
    so."""
    wav, proc, rows = analyze_a_float_tone_with_a_glitch(tmp_path, rate, big, 3)
    assert (f"deskcue: warning: {wav}: 3 sample(s) beyond full scale (up to {big:.3g}); read "
            "as full scale") in proc.stderr
    late = [(float(r[4]), float(r[6])) for r in rows if float(r[0]) > 2.0]
    assert late and all(np.isfinite(s) for s, _ in late), "loudness after the glitch"
    assert np.median([f0 for _, f0 in late]) == pytest.approx(200.0, rel=0.01), "pitch too"


def test_a_source_whose_name_is_not_utf8_still_goes_online(tmp_path, broker):
    """`deskcue run --source` with a Latin-1 file name: the info payload (audio_device
    "file:<name>") could not be encoded, the link's on_connect failed, and the desk never
    said online nor listened for commands for the whole run."""
    from quiet_desk import quiet_wav

    from firmware.appliance.assemble import build_appliance

    wav = quiet_wav(tmp_path / os.fsdecode(b"appel-r\xe9clamation.wav"))
    settings = Settings.model_validate({
        "device": {"site": "t", "desk": "d", "state_dir": str(tmp_path / "s"),
                   "runtime_dir": str(tmp_path / "r")},
        "mqtt": {"host": broker.host, "port": broker.port}})
    sub = Subscriber(broker, "deskcue/t/d/#", qos=1).connect()
    app = build_appliance(settings, recording=wav, pins="mock")
    stop = threading.Event()
    th = threading.Thread(target=app.run, args=(stop,))
    th.start()
    try:
        wait_until(lambda: any(m.payload == b"online" for m in sub.on("status")),
                   alive=th.is_alive)
        # The first info (sent at start) has no device yet; online can come before the one
        # sent once the file is open, on a loaded machine.
        wait_until(lambda: sub.on("info")[-1].json()["audio_device"] is not None,
                   alive=th.is_alive)
        info = sub.on("info")[-1].json()
        assert info["audio_device"] == "file:appel-r\ufffdclamation.wav"
    finally:
        stop.set()
        th.join(HANG_S)
        sub.close()


@pytest.mark.parametrize("channels", [1, 2])
def test_info_says_a_mono_input_is_mono(tmp_path, broker, channels):
    """`info.channel_map.agent` offers `mono`, but the desk said `left` (the config's
    audio.agent_channel) on a mono tap, and `left`/`right` for a mono recording played on a
    stereo config, where there is no left, right or caller at all."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin
    from tone import tone_wav

    from firmware.appliance.assemble import build_appliance

    settings = Settings.model_validate({
        "device": {"site": "t", "desk": "d", "state_dir": str(tmp_path / "s"),
                   "runtime_dir": str(tmp_path / "r")},
        "audio": {"channels": channels},
        "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1}})
    app = build_appliance(settings, recording=tone_wav(tmp_path / "mono.wav", 2.0), fast=True,
                          factory=MockFactory(pin_class=MockPWMPin))
    with Subscriber(broker, "deskcue/t/d/#", qos=1) as sub:
        assert app.run(threading.Event()) == 0
        wait_until(lambda: any(m.payload == b"offline" for m in sub.on("status")))
        maps = [m.json()["channel_map"] for m in sub.on("info")
                if m.json()["audio_device"] is not None]
    assert maps and all(c == {"agent": "mono", "caller": "none"} for c in maps), maps
