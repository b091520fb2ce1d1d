"""The composition root: builds a running desk from its settings.

Chooses the audio source (the headset tap, or a recording), the pins, the MQTT link, and
judges a config on trial before the appliance uses it. Everything the CLI passes in is a plain
parameter, so the demo, the tests and `deskcue run` assemble the same desk.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware.appliance.worker import Appliance
from firmware.audio.source import PyAudioSource, WavFileSource
from firmware.config.load import load_settings
from firmware.config.settings import Settings
from firmware.errors import ConfigError
from firmware.flashing.records import clear_fault, fault_record, record_fault
from firmware.flashing.remote import mqtt_extra_commands
from firmware.flashing.trial import last_good_settings, startup_check
from firmware.indicator.desk import Indicator
from firmware.indicator.pins import pin_factory
from firmware.link.home_assistant import discovery_messages
from firmware.link.states import state_names
from firmware.platform.systemd import Notifier

log = logging.getLogger("deskcue")


def with_dirs(settings: Settings, *, state_dir: Path | None = None,
              runtime_dir: Path | None = None) -> Settings:
    """``settings`` with ``device.state_dir`` / ``device.runtime_dir`` replaced where given."""
    upd: dict[str, Path] = {}
    if state_dir:
        upd["state_dir"] = state_dir
    if runtime_dir:
        upd["runtime_dir"] = runtime_dir
    if not upd:
        return settings
    return settings.model_copy(update={"device": settings.device.model_copy(update=upd)})


def source_opener(settings: Settings, recording: Path | None, *,
                  realtime: bool = True) -> Callable[[], Any]:
    """A callable that opens the audio source: ``recording`` (played in real time unless
    ``realtime`` is False), or the capture device ``audio.device`` when it is None."""
    a = settings.audio
    if recording is not None:
        path = recording

        def open_recording() -> Any:
            return WavFileSource(path, realtime=realtime, block_s=a.block_s)
        return open_recording

    def open_device() -> Any:
        return PyAudioSource(device=a.device, channels=a.channels, rate_hz=a.rate_hz,
                             block_s=a.block_s, queue_s=a.queue_s)
    return open_device


def make_link(settings: Settings, app: Appliance) -> Any:
    """The MQTT link, its commands and outbox reports routed to the appliance's worker."""
    if not settings.mqtt.enabled:
        return None
    from firmware.link.mqtt_client import MqttLink  # paho only when the desk has a broker

    return MqttLink(settings.mqtt, site=settings.device.site, desk=settings.device.desk,
                    state_dir=settings.device.state_dir, on_command=app.on_mqtt_command,
                    on_dropped=app.on_outbox_dropped,
                    extra_commands=mqtt_extra_commands(settings),
                    states=state_names(settings.mqtt), announce=discovery_messages(settings))


def build_appliance(settings: Settings, *, recording: Path | None = None, fast: bool = False,
                    pins: str = "auto", factory: Any = None, link: Any = "auto",
                    notifier: Notifier | None = None,
                    config_path: Path | None = None) -> Appliance:
    """The whole desk: source, analysis and policy, indicator on ``pins`` (or ``factory``),
    and the MQTT link (``"auto"``: from the settings; or a given link, or None)."""
    notifier = notifier or Notifier()
    app = Appliance(settings, open_source=source_opener(settings, recording, realtime=not fast),
                    notifier=notifier, exit_on_audio_error=not notifier.enabled)
    app.config_path = config_path
    app.link = make_link(settings, app) if link == "auto" else link
    app.indicator = Indicator(settings.indicator, pin_factory=factory or pin_factory(pins),
                              on_button=app.on_button,
                              unlogged=() if settings.mqtt.publish_snooze else ("snoozed",))
    return app


def settings_after_trial_check(config: Path, settings: Settings) -> Settings:
    """Judge a config on trial before using it: an expired one is rolled back first, and the
    settings of the config now live are returned."""
    try:
        check = startup_check(config)
    except OSError as exc:
        log.warning("cannot check the config trial of %s: %s", config, exc)
        return settings
    if check.action == "rolled_back":
        log.error("config rolled back to the last good one: %s", check.message)
        return load_settings(config)
    if check.message:
        log.info("%s", check.message)
    return settings


# `record_fault`'s source for a live config that could not be used at a start
UNUSABLE_LIVE = "live"


def settings_for_run(config: Path | None, *, state_dir: Path | None = None,
                     runtime_dir: Path | None = None) -> Settings:
    """The settings `deskcue run` starts on: the config at ``config`` (None: the shipped
    default) after its trial check, with the directories given on the command line.

    On an installed desk a live config that cannot be used (edited by hand, damaged or lost on
    the card) does not leave the desk dark: it runs on the last good config that the last
    install kept beside it, and records a config fault naming every problem, which shows the
    fault pattern and goes to the supervisor like a refused config. The file is left as it is
    for the tech to mend; once it loads again, the fault it caused is cleared at the next
    start. Without a usable last good config (a config given by hand, a desk never installed
    onto) the `ConfigError` is raised: the command says what is wrong and stops.
    """
    if config is None:
        return with_dirs(Settings(), state_dir=state_dir, runtime_dir=runtime_dir)
    try:
        settings = settings_after_trial_check(config, load_settings(config))
    except ConfigError as exc:
        good = last_good_settings(config)
        if good is None:
            raise
        settings = with_dirs(good, state_dir=state_dir, runtime_dir=runtime_dir)
        message = (f"{exc}; the desk runs on its last good config until it is mended "
                   f"(deskcue config check {config} lists every problem)")
        log.error("config %s", message)
        try:
            record_fault(Path(settings.device.state_dir), UNUSABLE_LIVE, message, exc.problems,
                         time.time())
        except OSError as err:  # a read-only card: the log line above is what is left
            log.warning("cannot record the config fault: %s", err)
        return settings
    settings = with_dirs(settings, state_dir=state_dir, runtime_dir=runtime_dir)
    state = Path(settings.device.state_dir)
    if (fault_record(state) or {}).get("source") == UNUSABLE_LIVE:
        clear_fault(state)  # the file was mended: what it was faulted for is gone
    return settings
