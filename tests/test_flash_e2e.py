"""A signed config pushed over MQTT to a running appliance (real mosquitto, mock pins, a WAV):
installed, run on trial, and rolled back when the appliance does not come back healthy; the
next start reports the rollback over MQTT. Unsigned configs are refused on the wire."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from broker import Subscriber, free_port, wait_until
from paho.mqtt.enums import CallbackAPIVersion

from firmware import config_flash as cf
from firmware.config_signing import generate_keypair, load_private_key, sign_config

ROOT = Path(__file__).resolve().parent.parent
BASE = "deskcue/lyon/d07"


def wav(path: Path, seconds: float) -> Path:
    t = np.arange(int(seconds * 16000)) / 16000
    x = (0.05 * np.sin(2 * np.pi * 200 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(x.tobytes())
    return path


def desk_config(tmp: Path, port: int) -> str:
    return f"""\
[device]
site = "lyon"
desk = "d07"
state_dir = "{tmp / 'state'}"
runtime_dir = "{tmp / 'run'}"

[audio]
channels = 1

[mqtt]
host = "127.0.0.1"
port = {port}
reconnect_min_s = 0.1
reconnect_max_s = 0.5

[flash]
signing_keys_file = "{tmp / 'keys.pub'}"
trial_s = 30.0
healthy_s = 5.0
"""


def run(live: Path, audio: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "firmware.cli", "run", "--config", str(live), "--source",
         str(audio), "--pins", "mock", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def publish(broker, topic: str, payload: dict) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect(broker.host, broker.port)
    c.loop_start()
    c.publish(topic, json.dumps(payload), qos=1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def test_pushed_config_runs_on_trial_and_an_unhealthy_one_is_rolled_back(tmp_path, broker):
    generate_keypair(tmp_path / "ops.pem", tmp_path / "keys.pub")
    key = load_private_key(tmp_path / "ops.pem")
    etc = tmp_path / "etc"
    etc.mkdir()
    live = etc / "deskcue.toml"
    old = desk_config(tmp_path, broker.port)
    live.write_text(old)
    new = desk_config(tmp_path, free_port())  # a broker that is not there: never healthy
    sub = Subscriber(broker, f"{BASE}/#", qos=1, check_schema=False).connect()
    long_wav = wav(tmp_path / "long.wav", 60.0)
    try:
        # 1. the running appliance refuses an unsigned config, installs a signed one, restarts
        app = run(live, long_wav)
        wait_until(lambda: any(m.payload == b"online" for m in sub.on("status")), 10)
        unsigned = sign_config(key, new, txid="u1", issued=100)
        del unsigned["signature"]
        publish(broker, f"{BASE}/cmd/config", unsigned)
        first = wait_until(lambda: sub.on("cmd/config/result"), 5)[0].json()
        assert first["txid"] == "u1" and not first["ok"]
        assert first["error"]["code"] == "unsigned" and live.read_text() == old
        publish(broker, f"{BASE}/cmd/config", sign_config(key, new, txid="c1", issued=101))
        assert app.wait(10) == cf.RESTART_EXIT_CODE, app.stdout.read()
        result = [m.json() for m in sub.on("cmd/config/result")][-1]
        assert result["txid"] == "c1" and result["ok"] and result["data"]["trial_s"] == 30.0
        assert live.read_text() == new and cf.trial_info(live)["txid"] == "c1"

        # 2. on the new config the broker never answers: the trial fails and is rolled back
        #    (the deadline is brought forward: trial_s cannot be set below 30 s)
        #    The running appliance notices and exits to be restarted on the last good config;
        #    had it started only after the deadline, `deskcue run` would roll back first thing.
        trial = cf.trial_info(live)
        trial["deadline_mono"] = time.monotonic() + 5.0
        cf.trial_path(live).write_text(json.dumps(trial))
        app = run(live, long_wav)
        wait_until(lambda: live.read_text() == old, 15)
        try:
            code = app.wait(5)
        except subprocess.TimeoutExpired:  # rolled back at start, running the old config
            app.terminate()
            code = app.wait(5)
            assert "config rolled back to the last good one" in app.stdout.read()
        else:
            assert code == cf.RESTART_EXIT_CODE, app.stdout.read()
        assert not cf.trial_path(live).exists()
        state = tmp_path / "state"
        assert "broker not connected" in cf.pending_fault(state)
        assert cf.last_apply(state)["source"] == "rollback"

        # 3. back on the last good config, the desk reports the rollback to the supervisor
        app = run(live, wav(tmp_path / "short.wav", 1.0), "--fast")
        assert app.wait(15) == 0, app.stdout.read()
        faults = [e for e in sub.events() if e["type"] == "fault"]
        assert faults and "rolled back" in faults[-1]["data"]["fault"]
        info = [m.json() for m in sub.on("info")][-1]
        assert info["config_apply"]["source"] == "rollback"
        assert info["config_apply"]["rolled_back_txid"] == "c1"
    finally:
        if app.poll() is None:
            app.kill()
        sub.close()


def test_a_healthy_pushed_config_is_confirmed_every_time(tmp_path, broker):
    # A desk whose audio keeps flowing and whose broker answers confirms each pushed config;
    # repeated, since a trial that confirms only sometimes is a desk that rolls back at random.
    generate_keypair(tmp_path / "ops.pem", tmp_path / "keys.pub")
    key = load_private_key(tmp_path / "ops.pem")
    etc = tmp_path / "etc"
    etc.mkdir()
    live = etc / "deskcue.toml"
    live.write_text(desk_config(tmp_path, broker.port))
    sub = Subscriber(broker, f"{BASE}/#", qos=1, check_schema=False).connect()
    long_wav = wav(tmp_path / "long.wav", 60.0)
    state = tmp_path / "state"
    app = None
    try:
        for i in range(3):
            new = desk_config(tmp_path, broker.port) + f"# revision {i}\n"
            onlines = len([m for m in sub.on("status") if m.payload == b"online"])
            app = run(live, long_wav)
            wait_until(lambda n=onlines: len([m for m in sub.on("status")
                                              if m.payload == b"online"]) > n, 10)
            publish(broker, f"{BASE}/cmd/config",
                    sign_config(key, new, txid=f"h{i}", issued=200 + i))
            assert app.wait(10) == cf.RESTART_EXIT_CODE, app.stdout.read()
            assert live.read_text() == new and cf.trial_info(live)["txid"] == f"h{i}"
            # healthy_s = 5 s of audio played in real time; trial_s = 30 s bounds the wait
            app = run(live, long_wav)
            wait_until(lambda: not cf.trial_path(live).exists(), 30)
            rec = cf.last_apply(state)
            assert rec["txid"] == f"h{i}" and rec["trial"] is False and "confirmed_at" in rec
            assert live.read_text() == new and cf.pending_fault(state) is None
            app.terminate()
            assert app.wait(10) == 0, app.stdout.read()
    finally:
        if app is not None and app.poll() is None:
            app.kill()
        sub.close()
