"""`deskcue demo`: the whole appliance on a built-in default, on any machine.

A recording made on the spot (espeak-ng: calm speech, a laugh-like burst, a raised-voice
passage, calm again), gpiozero mock pins whose changes are printed live, and a local broker (a
private mosquitto when none listens on localhost:1883) with a subscriber that prints what a
supervisor receives.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from firmware.appliance.assemble import build_appliance
from firmware.config.mqtt import MqttSettings
from firmware.config.settings import Settings
from firmware.contract.events import EventEnvelope
from firmware.demo.local_broker import LocalBroker, port_open
from firmware.demo.recording import Recording, demo_recording
from firmware.link.supervisor_client import SupervisorClient

log = logging.getLogger("deskcue.demo")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fast", action="store_true", help="play as fast as possible")
    p.add_argument("--source", type=Path, help="another WAV instead of the scripted demo call")
    p.add_argument("--cache-dir", type=Path,
                   default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                   / "deskcue", help="where the demo recording is kept")


class Subscriber:
    """A supervisor's view: subscribes to the desk's subtree and prints every message."""

    def __init__(self, settings: MqttSettings, prefix: str):
        self.messages: list[tuple[str, Any]] = []
        self.client = SupervisorClient(settings, client_id="deskcue-demo-supervisor",
                                       on_message=self._on_message)
        self.client.connect()
        self.client.subscribe(f"{prefix}/#", qos=1)

    def _on_message(self, topic: str, raw: bytes, _retain: bool) -> None:
        try:
            payload: Any = json.loads(raw.decode())
        except ValueError:
            payload = raw.decode(errors="replace")
        self.messages.append((topic, payload))
        if topic.endswith("/events"):
            env = EventEnvelope.model_validate(payload)
            shown = getattr(env.data, "summary", None) or json.dumps(env.data.to_json())[:120]
            print(f"  MQTT {topic}  {env.type} seq={env.seq}: {shown}", flush=True)
        elif not topic.endswith("/telemetry"):
            text = json.dumps(payload) if not isinstance(payload, str) else payload
            print(f"  MQTT {topic}  {text[:140]}", flush=True)

    def close(self) -> None:
        self.client.close()


def recording_line(source: Path, rec: Recording) -> str:
    """What the demo recording at ``source`` holds: its length (s), channels and the
    passages the desk will cue on (s)."""
    parts = [f"{rec.samples.shape[0] / rec.rate:.0f} s", "agent left, caller right"]
    for tag, what in (("laugh", "laugh-like burst"), ("raised", "raised-voice passage")):
        try:
            a, b = rec.span(tag)
        except KeyError:
            continue
        parts.append(f"{what} {a:.1f}-{b:.1f} s")
    return f"recording: {source} ({'; '.join(parts)})"


def main(args: argparse.Namespace, _settings: Settings | None = None) -> int:
    if args.source is None:
        print("making the demo call recording with espeak-ng ...", flush=True)
        source, rec = demo_recording(args.cache_dir)
        print(recording_line(source, rec), flush=True)
    else:
        source = args.source
    broker = None
    host, port = "127.0.0.1", 1883
    if not port_open(host, port):
        broker = LocalBroker().start()
        port = broker.port
        print(f"started a private mosquitto on {host}:{port}", flush=True)
    else:
        print(f"using the broker on {host}:{port}", flush=True)
    state = Path(tempfile.mkdtemp(prefix="deskcue-demo-"))
    settings = Settings.model_validate({
        "device": {"site": "demo", "desk": "desk1", "state_dir": str(state / "state"),
                   "runtime_dir": str(state / "run")},
        "mqtt": {"host": host, "port": port},
    })
    sub = Subscriber(settings.mqtt, f"{settings.mqtt.topic_prefix}/demo/desk1")
    app = build_appliance(settings, recording=source, fast=args.fast, pins="mock")
    print("running (mock pins; LED and motor changes below; Ctrl-C to stop) ...", flush=True)
    stop = threading.Event()
    try:
        code = app.run(stop)
    except KeyboardInterrupt:
        stop.set()
        code = 130
    finally:
        threading.Event().wait(1.0)  # let the last messages arrive
        sub.close()
        if broker is not None:
            broker.stop()
    events = [p for t, p in sub.messages if t.endswith("/events")]
    print(f"\nsupervisor received {len(sub.messages)} MQTT messages, {len(events)} events: "
          + ", ".join(sorted({p['type'] for p in events})), flush=True)
    return code
