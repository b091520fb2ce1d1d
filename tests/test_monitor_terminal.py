"""`deskcue monitor` in a real terminal: tmux at 80x24, read back with ``capture-pane``.

A desk runs for real (a call recording played in real time -> analysis -> policy -> the MQTT
link to a real mosquitto) among 25 other desks that only have a retained status; the monitor
runs as a user starts it, in a tmux pane of 80 columns by 24 lines. The test reads the screen
as a person would see it and waits for the desk's row to show the raised-voice cue with the
agent's level of that moment (well above the usual level, not the usual one).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from broker import Broker
from paho.mqtt.enums import CallbackAPIVersion
from waiting import HANG_S, wait_until

from firmware.appliance.assemble import build_appliance
from firmware.config.settings import Settings
from firmware.demo.recording import CALLER, CALM_AGENT, RAISED_AGENT, Line, build_call

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
TMUX = shutil.which("tmux")
WIDTH, HEIGHT = 80, 24
SGR = re.compile(r"\x1b\[[0-9;]*m")


class Tmux:
    """A private tmux server (its own socket and config in ``tmp``) with one 80x24 pane."""

    def __init__(self, tmp: Path) -> None:
        assert TMUX is not None, "tmux is not installed (bash .ci/setup installs it)"
        self.socket = tmp / "tmux.sock"
        conf = tmp / "tmux.conf"
        # no status line (the pane gets all 24 lines); keep a pane whose command ended, so
        # a crash stays readable; a 256-colour terminal as most supervisors' terminals are
        conf.write_text("set -g status off\nset -g remain-on-exit on\n"
                        "set -g default-terminal screen-256color\n")
        self.base = [TMUX, "-u", "-S", str(self.socket), "-f", str(conf)]

    def start(self, argv: list[str]) -> None:
        env = {**os.environ, "LANG": "C.UTF-8"}
        subprocess.run([*self.base, "new-session", "-d", "-s", "mon", "-x", str(WIDTH),
                        "-y", str(HEIGHT), "-c", str(ROOT), shlex.join(argv)],
                       env=env, check=True, timeout=HANG_S)

    def capture(self, *flags: str) -> list[str]:
        """The pane's lines; ``-J`` joins lines the terminal wrapped, ``-e`` keeps colours."""
        out = subprocess.run([*self.base, "capture-pane", "-p", *flags, "-t", "mon"],
                             capture_output=True, text=True, check=True, timeout=HANG_S).stdout
        return out.rstrip("\n").split("\n")

    def pane_dead(self) -> bool:
        out = subprocess.run([*self.base, "display-message", "-p", "-t", "mon", "#{pane_dead}"],
                             capture_output=True, text=True, timeout=HANG_S).stdout
        return out.strip() == "1"

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=HANG_S)


def publish_retained_statuses(broker: Broker, statuses: dict[str, str]) -> None:
    """Other desks on the floor: only their retained ``status`` (as after a restart)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        infos = [client.publish(f"deskcue/floor/{desk}/status", status, qos=1, retain=True)
                 for desk, status in statuses.items()]
        for info in infos:
            info.wait_for_publish(HANG_S)
    finally:
        client.disconnect()
        client.loop_stop()


def short_call() -> list[Line]:
    """Calm agent and a caller (long enough to learn a 5 s warm-up), a raised passage, calm."""
    lines = [Line("agent", CALM_AGENT[0], tag="calm"), Line("caller", CALLER[0], tag="caller"),
             Line("agent", CALM_AGENT[1], tag="calm"), Line("agent", CALM_AGENT[3], tag="calm")]
    lines += [Line("agent", t, gain_db=12.0, pitch=62, speed_wpm=180, pause_s=0.3,
                   tag="raised") for t in RAISED_AGENT]
    return lines + [Line("agent", CALM_AGENT[4], tag="calm_after")]


def desk_row(lines: list[str], name: str) -> tuple[int, str] | None:
    for i, line in enumerate(lines):
        if line.startswith(name + " "):
            return i, line
    return None


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_monitor_in_80x24_shows_the_cueing_desk_first_with_its_level_now(
        tmp_path: Path, broker: Broker) -> None:
    others = {f"a{i:02d}": "online" for i in range(20)}
    others.update({f"z{i}": "offline" for i in range(5)})
    publish_retained_statuses(broker, others)

    rec = build_call(short_call())
    wav = rec.write_wav(tmp_path / "call.wav")
    settings = Settings.model_validate({
        "device": {"site": "floor", "desk": "d9", "state_dir": str(tmp_path / "state"),
                   "runtime_dir": str(tmp_path / "run")},
        "baseline": {"warmup_speech_s": 5.0},
        "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.1,
                 "reconnect_max_s": 0.5},  # telemetry at the shipped rate
    })
    app = build_appliance(settings, recording=wav, pins="mock")
    events: list[dict[str, Any]] = []
    app.on_event = events.append

    tmux = Tmux(tmp_path)
    deskcue = str(Path(sys.executable).with_name("deskcue"))
    try:
        tmux.start([deskcue, "monitor", "--host", broker.host, "--port", str(broker.port)])
        # the floor is on screen before the desk starts: 25 desks, more than 24 lines hold
        wait_until(lambda: any(line.startswith("... ") and " more" in line
                               for line in tmux.capture()),
                   alive=lambda: not tmux.pane_dead())

        stop = threading.Event()
        worker = threading.Thread(target=app.run, args=(stop,), daemon=True)
        worker.start()
        seen: dict[str, Any] = {}

        def cue_with_its_level_on_screen() -> bool:
            # -J: a line the terminal wrapped comes back joined; -e: with its colours
            styled = tmux.capture("-e", "-J")
            lines = [SGR.sub("", line) for line in styled]
            found = desk_row(lines, "floor/d9")
            started = [e for e in events if e["type"] == "raised_voice.started"]
            if found is None or not started or "raised +" not in found[1]:
                return False
            usual = started[0]["data"]["usual_lufs"]
            agent = float(found[1].split()[2])  # DESK ST AGENT CALLR NOW ...
            seen.update(lines=lines, styled=styled[found[0]], row=found, agent=agent,
                        usual=usual)
            return agent >= usual + settings.cues.raised_voice.threshold_db - 2.0

        wait_until(cue_with_its_level_on_screen, alive=worker.is_alive)
        lines, (index, row), styled = seen["lines"], seen["row"], seen["styled"]
        print("\n".join(lines))
        print(f"agent {seen['agent']} LUFS on screen, usual {seen['usual']} LUFS")
        # the screen fits: nothing wrapped, the title, the column header and the footer all
        # on the 24 lines, and the cueing desk first although 25 desks sort before it
        assert all(len(line) <= WIDTH for line in lines), max(lines, key=len)
        assert len(lines) <= HEIGHT
        assert "deskcue monitor" in lines[0] and lines[1].split()[:4] == [
            "DESK", "ST", "AGENT", "CALLR"]
        assert lines[-1].startswith("AGENT, CALLR: short-term loudness")
        assert index == 2, row
        assert "raised_voice.started" not in row and row.split()[1] == "on"
        # the cue is drawn in a colour (the desk light's amber), the level bold (live: not
        # older than the monitor's LIVE_S), not dim
        assert re.search(r"\x1b\[[0-9;]*3[0-9;]*m[^\x1b]*raised \+", styled), styled
        assert re.search(r"\x1b\[[0-9;]*\b1m[^\x1b]*" + re.escape(row.split()[2]), styled), styled
        # the five offline desks are counted, not drawn, as they rank last
        assert any(re.match(r"\.\.\. \d+ more: \d+ no cue, 5 offline", line) for line in lines)

        stop.set()
        worker.join(HANG_S)
        assert not worker.is_alive()
        # after a clean stop the desk says offline: it drops out of view below the calm desks
        wait_until(lambda: desk_row(tmux.capture(), "floor/d9") is None,
                   alive=lambda: not tmux.pane_dead())
    finally:
        tmux.close()


@pytest.mark.parametrize("term", ["dumb", "vt100"])
def test_monitor_on_a_serial_console_draws_the_floor_in_ascii(tmp_path: Path, broker: Broker,
                                                             term: str) -> None:
    """A tech on a serial console or an editor's shell: TERM=dumb showed a blank screen until
    the monitor stopped (rich's full-screen view cannot redraw there), and in a C locale a
    cut desk name ended in a Unicode ellipsis, three bytes of junk on such a console."""
    desks = {"long-desk-name-by-the-window": "online", "b2": "online", "c3": "offline"}
    publish_retained_statuses(broker, desks)
    tmux = Tmux(tmp_path)
    deskcue = str(Path(sys.executable).with_name("deskcue"))
    try:
        tmux.start(["env", f"TERM={term}", "LC_ALL=C", deskcue, "monitor", "--host",
                    broker.host, "--port", str(broker.port), "--seconds", "600"])

        def floor_on_screen() -> list[str] | None:
            lines = tmux.capture()
            found = [desk_row(lines, f"floor/{d}") for d in ("b2", "c3")]
            return lines if all(found) and not tmux.pane_dead() else None

        lines = wait_until(floor_on_screen, alive=lambda: not tmux.pane_dead())
        screen = "\n".join(lines)
        assert screen.isascii(), [line for line in lines if not line.isascii()]
        assert all(len(line) <= WIDTH for line in lines), max(lines, key=len)
        long_row = next(line for line in lines if line.startswith("floor/long"))
        assert long_row.split()[0] == "floor/long-de~"  # cut to the narrow layout's 14
        assert "3 desk(s)" in lines[0]
    finally:
        tmux.close()
