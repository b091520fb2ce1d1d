"""`deskcue run`: the appliance's main job (systemd runs this)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from firmware.appliance.worker import Appliance
from firmware.audio.source import PyAudioSource, WavFileSource
from firmware.config.settings import Settings
from firmware.indicator.desk import Indicator
from firmware.platform.systemd import Notifier

log = logging.getLogger("deskcue")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="config file (default: the shipped default)")
    p.add_argument("--source", type=Path, metavar="AUDIO",
                   help="play this WAV file instead of capturing from the headset tap")
    p.add_argument("--fast", action="store_true",
                   help="with --source: play as fast as possible instead of in real time")
    p.add_argument("--pins", choices=("auto", "mock"), default="auto",
                   help="GPIO: real pins (auto) or gpiozero mock pins (mock)")
    p.add_argument("--state-dir", type=Path, help="override device.state_dir")
    p.add_argument("--runtime-dir", type=Path, help="override device.runtime_dir")


def pin_factory(kind: str) -> Any:
    """gpiozero's pin factory: real GPIO, or mock PWM pins that record their history."""
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    if kind == "mock":
        return MockFactory(pin_class=MockPWMPin)
    from gpiozero import Device
    from gpiozero.exc import BadPinFactory

    try:
        with warnings.catch_warnings():  # one line below says it better than four fallbacks
            warnings.simplefilter("ignore")
            return Device._default_pin_factory()
    except BadPinFactory:
        log.warning("no GPIO on this machine: using gpiozero mock pins (the light and motor "
                    "are shown in the log only)")
        return MockFactory(pin_class=MockPWMPin)


def override_dirs(settings: Settings, args: argparse.Namespace) -> Settings:
    dev = settings.device
    upd = {}
    if getattr(args, "state_dir", None):
        upd["state_dir"] = args.state_dir
    if getattr(args, "runtime_dir", None):
        upd["runtime_dir"] = args.runtime_dir
    if not upd:
        return settings
    return settings.model_copy(update={"device": dev.model_copy(update=upd)})


def build_appliance(settings: Settings, args: argparse.Namespace, *, factory: Any = None,
                    link: Any = "auto", notifier: Notifier | None = None) -> Appliance:
    a = settings.audio
    if args.source is not None:
        path, fast = args.source, args.fast

        def open_source():
            return WavFileSource(path, realtime=not fast, block_s=a.block_s)
    else:
        def open_source():
            return PyAudioSource(device=a.device, channels=a.channels, rate_hz=a.rate_hz,
                                 block_s=a.block_s, queue_s=a.queue_s)
    notifier = notifier or Notifier()
    app = Appliance(settings, open_source=open_source, notifier=notifier,
                    exit_on_audio_error=not notifier.enabled)
    app.link = make_link(settings, app) if link == "auto" else link
    app.indicator = Indicator(settings.indicator,
                              pin_factory=factory or pin_factory(getattr(args, "pins", "auto")),
                              on_button=app.on_button)
    return app


def _config_startup(config: Path, settings: Settings) -> Settings:
    """Judge a config on trial before using it: an expired one is rolled back first."""
    from firmware.config.settings import load_settings
    from firmware.flashing import install as config_flash

    try:
        check = config_flash.startup_check(config)
    except OSError as exc:
        log.warning("cannot check the config trial of %s: %s", config, exc)
        return settings
    if check.action == "rolled_back":
        log.error("config rolled back to the last good one: %s", check.message)
        return load_settings(config)
    if check.message:
        log.info("%s", check.message)
    return settings


def make_link(settings: Settings, app: Appliance) -> Any:
    """The MQTT link, its commands and outbox reports routed to the appliance's worker."""
    if not settings.mqtt.enabled:
        return None
    from firmware.flashing.install import mqtt_extra_commands
    from firmware.link.mqtt_client import MqttLink

    return MqttLink(settings.mqtt, site=settings.device.site, desk=settings.device.desk,
                    state_dir=settings.device.state_dir, on_command=app.on_mqtt_command,
                    on_dropped=app.on_outbox_dropped,
                    extra_commands=mqtt_extra_commands(settings))


def main(args: argparse.Namespace, settings: Settings) -> int:
    if args.config is not None:
        settings = _config_startup(args.config, settings)
    settings = override_dirs(settings, args)
    app = build_appliance(settings, args)
    app.config_path = args.config
    stop = threading.Event()

    def _stop(signum, frame):
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    code = app.run(stop)
    if code != 0 and app.error:
        print(f"deskcue: {app.error}", file=sys.stderr)
    return code
