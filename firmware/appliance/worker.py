"""The running appliance: one worker thread runs analysis and policy, everything else is fed.

Audio comes from a source's bounded queue; events go to the indicator and the MQTT link, both
of which only enqueue, so neither a stuck pin nor a dead broker can hold up the analysis.
Commands (desk button, `deskcue snooze`, MQTT) are queued to this thread and run between blocks.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import ValidationError

from firmware import build_version
from firmware.appliance.pipeline import Pipeline, make_usual_voice
from firmware.audio.source import EndOfStream
from firmware.config.device import BASELINE_FILE, SNOOZE_FILE
from firmware.config.settings import Settings
from firmware.contract.base import Payload
from firmware.contract.commands import IdentifyArgs, SnoozeArgs
from firmware.contract.desk import (
    ApplianceStatus,
    ChannelMap,
    CommandCounts,
    ConfigApply,
    Info,
    OutboxDepth,
    TelemetryReading,
)
from firmware.contract.events import EventEnvelope, Fault, OutboxDropped
from firmware.errors import AudioError
from firmware.flashing.records import (
    RESTART_EXIT_CODE,
    last_apply_shown,
    pending_fault,
    settings_hash,
)
from firmware.flashing.remote import apply_remote, command_reply
from firmware.flashing.trial import TrialWatch
from firmware.link.commands import Command, checked_args
from firmware.link.envelope import EventStamper
from firmware.link.home_assistant import discovery_messages
from firmware.link.states import state_change
from firmware.platform.control_socket import ControlServer, send_reply
from firmware.platform.files import StateWriter, read_json
from firmware.platform.host import boot_id, soc_temperature_c
from firmware.platform.systemd import Notifier
from firmware.policy.cue_policy import CuePolicy, PolicyEvent
from firmware.policy.usual_voice import UsualVoice

log = logging.getLogger("deskcue")

CUE_DISPLAYS = frozenset({"raised_voice", "tense_voice", "caller_escalation", "laughter"})
# How long the light and the motor wait for a cue's event to be committed to the outbox before
# they show the cue anyway. A commit with an fsync takes 0.6 ms (median) to 2.4 ms (p99) on
# the development machine when quiet, 118 ms at worst under load
# (tests/bench/bench_outbox_commit.py), and milliseconds to tens of ms on an SD card; a card
# stalling longer than this must not turn a cue into a late one, which the agent would no
# longer connect with what they just said. The wait is on the indicator's threads: the
# analysis never waits for the card.
DURABLE_WAIT_S = 0.5
# How long `save_usual` (the last save, as the desk stops) waits for the card: within
# systemd's TimeoutStopSec (15 s) with time to spare for the link's goodbye.
STATE_FLUSH_S = 8.0
CUE_BUZZ = {"raised_voice.started": "raised_voice",
            "tense_voice.started": "tense_voice",
            "caller.started": "caller_escalation",
            "laughter.cue": "laughter"}


class Source(Protocol):
    rate: int
    channels: int
    name: str
    overflows: int
    gap_s: float  # audio lost just before the block last read, s (0 when none)

    def start(self) -> None: ...
    def read(self, timeout: float) -> np.ndarray | None: ...
    def close(self) -> None: ...


class Link(Protocol):
    def start(self) -> None: ...
    def publish_event(self, envelope: EventEnvelope) -> int: ...
    def wait_settled(self, ticket: int, timeout: float) -> bool: ...
    def publish_telemetry(self, reading: TelemetryReading) -> None: ...
    def set_info(self, info: Info) -> None: ...
    def publish_command_result(self, cmd: Command, ok: bool,
                               data: Payload | Mapping[str, Any] | None = None,
                               error: str | tuple[str, str] | None = None) -> None: ...
    def set_state(self, name: str, active: bool) -> None: ...
    def set_announce(self, announce: Sequence[tuple[str, str]]) -> None: ...
    def stop(self) -> None: ...


@dataclass
class LocalCommand:
    """A command from the desk button, the control socket or MQTT, run by the worker.

    ``reply(ok, data)``: ``data`` is the JSON of the command's result model
    (`firmware.contract.commands.RESULT_DATA`), or holds ``error`` when ``ok`` is false.
    """

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    source: str = "local"
    reply: Callable[[bool, dict[str, Any]], None] | None = None


class Appliance:
    """Wires a source, the pipeline, the indicator and the link; `run` is the worker loop.

    ``on_event`` gets each published event's JSON (`EventEnvelope.to_json`), as the link
    publishes it. ``open_source`` is called (and retried every ``retry_s`` while it raises
    `AudioError`)
    to get the audio source. With ``exit_on_audio_error`` a source that cannot be opened at
    start ends `run` with the error instead (interactive use).
    """

    def __init__(self, settings: Settings, *, open_source: Callable[[], Source],
                 indicator: Any = None, link: Link | None = None,
                 notifier: Notifier | None = None, persist: bool = True,
                 exit_on_audio_error: bool = False, retry_s: float = 5.0,
                 on_event: Callable[[dict[str, Any]], None] | None = None):
        self.settings = settings
        self.open_source = open_source
        self.indicator = indicator
        self.link = link
        self.notifier = notifier or Notifier()
        self.persist = persist
        self.exit_on_audio_error = exit_on_audio_error
        self.retry_s = retry_s
        self._overflows_source: Any = None  # the source whose dropped blocks were last said
        self._overflows_logged = 0
        self._overflows_next_log = 0.0  # time.monotonic() before which no new line is logged
        self.overflow_log_every_s = 60.0
        """Least time between two log lines about dropped audio blocks, s."""
        self.on_event = on_event
        # State files go to the card from a thread of their own: a worn card's fsync can take
        # seconds, which on this thread would hold the analysis (and a snooze's answer).
        self._state = StateWriter(self._state_failed)
        self.stamper = EventStamper()
        self._announced_channels: int = settings.audio.channels  # what the link announces first
        self.commands: queue.Queue[LocalCommand] = queue.Queue(maxsize=256)
        self.usual = self._load_usual()
        # the usual voice's `changes` as last saved (or restored): None until then
        self._usual_saved: int | None = self.usual.changes if self.usual.learned else None
        self.pipeline: Pipeline | None = None
        self.source: Source | None = None
        self.faults: dict[str, str] = {}  # kind ("audio", "config", ...) -> what is wrong
        self.identify_until = 0.0
        self.cue_counts: Counter[str] = Counter()
        self.stream_s = 0.0
        self.error: str | None = None
        self._shown: str | None = None
        self._ticket = 0  # the link's ticket of the latest event handed over
        self._started = time.monotonic()
        self._last_level: dict[str, float] = {}
        # Config flashing (firmware.flashing): the live config file (set by `deskcue run
        # --config`), the trial of a config pushed over MQTT, and a restart to run a new one.
        self.config_path: Path | None = None
        self.trial: Any = None
        self.restart_requested = False
        self._next_watchdog = 0.0  # monotonic s when WATCHDOG=1 is next due
        self._snooze_kept = False  # snooze.json written for a snooze that may still run

    # -- state ----------------------------------------------------------------------------
    @property
    def baseline_path(self) -> Path:
        return self.settings.device.state_dir / BASELINE_FILE

    def _load_usual(self) -> UsualVoice:
        usual = make_usual_voice(self.settings)
        if not self.persist:
            return usual
        data = read_json(self.baseline_path, move_aside=True)
        if data is not None:
            try:
                usual.load(data)
                log.info("usual voice restored: %.1f s of speech, usual %.1f LUFS",
                         usual.speech_s, usual.usual_lufs)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("baseline state not usable (%s); learning afresh", exc)
                usual = make_usual_voice(self.settings)
        return usual

    @property
    def snooze_path(self) -> Path:
        return self.settings.device.state_dir / SNOOZE_FILE

    def _save_snooze(self, policy: CuePolicy) -> None:
        """Keep when the snooze ends, so that a restart of the service (a config pushed over
        MQTT restarts it) does not end it early; none kept when not snoozed. On the monotonic
        clock of this boot: a Pi has no clock of its own and boots in the past until it syncs,
        so a wall-clock end could come hours late; a reboot ends the snooze. The card only:
        nothing of it is published."""
        if not self.persist:
            return
        data = None
        if policy.snoozed:
            left = policy.snoozed_until_s - policy.now_s
            data = {"boot_id": boot_id(), "until_mono": time.monotonic() + left}
        self._keep(self.snooze_path, data, "cannot keep the snooze in",
                   "it holds until deskcue restarts, which would end it early")
        self._snooze_kept = data is not None

    def _restore_snooze(self, policy: CuePolicy) -> None:
        """Carry a snooze kept by `_save_snooze` in this boot into a new stream, for what is
        left of it."""
        if not self.persist:
            return
        data = read_json(self.snooze_path, move_aside=True)
        left = 0.0
        if isinstance(data, dict) and data.get("boot_id") == boot_id():
            until = data.get("until_mono")
            if isinstance(until, (int, float)) and not isinstance(until, bool):
                left = min(float(until) - time.monotonic(), 60.0 * self.settings.snooze.max_min)
        if math.isfinite(left) and left > 0:
            policy.snoozed_until_s = policy.now_s + left
            self._snooze_kept = True
        elif data is not None:
            # ended (ran out, or by a reboot): its time stamp would say when the agent last
            # snoozed, for as long as the card lasts
            self._save_snooze(policy)

    def save_usual(self, *, wait: bool = True) -> None:
        """Save the usual voice; with nothing learned (e.g. just recalibrated) remove the saved
        one instead, so that a restart neither restores a non-finite baseline nor a forgotten
        one. Only when it changed since it was last saved or restored: a desk idle all night
        (nobody speaks, nothing learned) would otherwise rewrite the same file on the card
        every ``baseline.save_interval_s``, with its fsyncs. With ``wait`` (as the desk
        stops), wait up to `STATE_FLUSH_S` for the card; without (the worker's periodic save),
        hand it to the state writer and go on."""
        if not self.persist:
            return
        if self._usual_saved != self.usual.changes:
            # counted as saved when handed over; a write the card refuses sets it back
            # (`_state_failed`), so the next save tries again
            self._usual_saved = self.usual.changes
            self._keep(self.baseline_path,
                       self.usual.to_dict() if self.usual.learned else None,
                       "cannot save the usual-voice baseline to",
                       "a restart would learn the agent's usual voice afresh")
        if wait and not self._state.flush(STATE_FLUSH_S):
            log.warning("the card took more than %.0f s to keep the state files in %s; the "
                        "usual voice may be learned afresh after a restart: replace the card",
                        STATE_FLUSH_S, self.settings.device.state_dir)

    def _keep(self, path: Path, data: dict[str, Any] | None, failed: str, cost: str) -> None:
        """Have the state file ``path`` replaced by ``data``, or removed for None, by the state
        writer (never waits for the card). A card that cannot take it is logged (``failed``
        the path, the error; ``cost``: what a restart then loses), never raised: the desk
        goes on."""
        self._state.put(path, data, (failed, cost))

    def _state_failed(self, path: Path, exc: OSError, note: tuple[str, str]) -> None:
        """The state writer could not write ``path`` (on its thread)."""
        if path == self.baseline_path:
            self._usual_saved = None  # not kept: the next periodic save writes it again
        failed, cost = note
        log.warning("%s %s (%s): %s; free space on the card (df -h %s) or replace it if it "
                    "turned read-only", failed, path, exc.strerror or exc, cost, path.parent)

    # -- commands from other threads ---------------------------------------------------------
    def submit(self, cmd: LocalCommand) -> None:
        """Queue a command for the worker; never blocks (drops when 256 are waiting)."""
        try:
            self.commands.put_nowait(cmd)
        except queue.Full:
            log.warning("command queue full; dropped %s", cmd.name)
            if cmd.reply:
                cmd.reply(False, {"error": ("busy", "the desk has 256 commands waiting; try "
                                                    "again in a few seconds")})

    def on_mqtt_command(self, cmd: Any) -> None:
        """From the MQTT link's thread: a validated command; answered by the worker."""
        # a config's signature covers its txid: keep it for that one
        args = cmd.args.model_dump(exclude={"ts"} if cmd.name == "config" else {"txid", "ts"})

        def reply(ok: bool, data: dict[str, Any]) -> None:
            if self.link is None:
                return
            if ok:
                self.link.publish_command_result(cmd, True, data=data)
            else:
                rest = {k: v for k, v in data.items() if k != "error"}
                self.link.publish_command_result(cmd, False, data=rest or None,
                                                 error=data.get("error", "failed"))

        self.submit(LocalCommand(cmd.name, args, source="mqtt", reply=reply))

    def on_outbox_dropped(self, data: dict[str, Any]) -> None:
        """From the link's thread: events were dropped; report it as an event of its own."""
        self.submit(LocalCommand("_report", {"type": "outbox_dropped",
                                             "data": OutboxDropped.model_validate(data)},
                                 source="link"))

    def on_button(self, what: str) -> None:
        self.submit(LocalCommand("snooze", {"minutes": 0 if what == "hold" else None},
                                 source="button"))

    # -- the worker ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> int:
        """Run until ``stop`` is set or a file source ends; returns an exit code."""
        control = ControlServer(self.settings.device.runtime_dir)
        if self.link is not None:
            self.link.start()
        # Who this desk is goes out at once, audio or not (audio_device null until a source
        # opens): a desk whose tap is missing must not leave its previous run's info standing.
        self._publish_info()
        self._config_start()
        self.notifier.ready("starting")
        try:
            return self._loop(stop, control)
        finally:
            control.close()
            self._shutdown()

    def _open(self) -> bool:
        try:
            self.source = self.open_source()
            self.source.start()
        except AudioError as exc:
            self.source = None
            self._set_fault("audio", f"audio: {exc}")
            return False
        p = self.pipeline
        if p is None or (p.source_rate, p.source_channels) != (self.source.rate,
                                                                self.source.channels):
            # A device that comes back with the same format continues the same stream; a
            # different format starts a new one (stream time restarts at 0).
            p = self.pipeline = Pipeline(self.settings, source_rate=self.source.rate,
                                         source_channels=self.source.channels, usual=self.usual)
            self._restore_snooze(p.policy)
        self._publish_info()
        log.info("listening on %s (%d Hz, %d ch, channels %s)", self.source.name,
                 self.source.rate, self.source.channels, list(p.channel_names))
        return True

    def _loop(self, stop: threading.Event, control: ControlServer) -> int:
        s = self.settings
        next_retry = 0.0
        last_audio = time.monotonic()
        next_save = time.monotonic() + s.baseline.save_interval_s
        self._next_watchdog = 0.0
        next_telemetry = time.monotonic() + s.mqtt.telemetry_interval_s
        cpu = (time.process_time(), time.monotonic())
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_telemetry:
                cpu = self._telemetry(cpu)
                next_telemetry = now + s.mqtt.telemetry_interval_s
            self._feed_watchdog(now)
            if self.source is None:
                if now >= next_retry:
                    if self._open():
                        last_audio = time.monotonic()
                    elif self.exit_on_audio_error:
                        self.error = self.fault
                        return 1
                    else:
                        next_retry = now + self.retry_s
                stop.wait(0.1)
                code = self._tick(control)
                if code is not None:
                    return code
                continue
            try:
                block = self.source.read(timeout=0.1)
            except EndOfStream:
                self._finish_stream()
                return 0
            except AudioError as exc:
                self._set_fault("audio", f"audio: {exc}")
                self._close_source()
                self._publish_info()
                continue
            if block is None:
                if time.monotonic() - last_audio > s.audio.no_audio_fault_s:
                    self._set_fault("audio", f"audio: nothing from {self.source.name} for "
                                    f"{s.audio.no_audio_fault_s:.0f} s")
                    # unplugged or stalled: close it and open it again (every retry_s)
                    self._close_source()
                    self._publish_info()
                    next_retry = time.monotonic() + self.retry_s
            else:
                last_audio = time.monotonic()
                if "audio" in self.faults:
                    self._clear_fault("audio")
                self._analyse(block, self.source.gap_s)
            code = self._tick(control)
            if code is not None:
                return code
            if time.monotonic() >= next_save:
                self.save_usual(wait=False)
                next_save = time.monotonic() + s.baseline.save_interval_s
        return 0

    def _analyse(self, block: np.ndarray, lost_s: float = 0.0) -> None:
        """Analyse ``block``; ``lost_s``: audio lost just before it (blocks dropped), s, which
        stream time counts and no cue's evidence spans (`Pipeline.lost`)."""
        assert self.pipeline is not None
        if lost_s > 0:
            for ev in self.pipeline.lost(lost_s):
                self._emit(ev)
        step = self.pipeline.process(block)
        self.stream_s = self.pipeline.stream_s
        f = step.features
        if f.n_hops:
            for c, name in enumerate(self.pipeline.channel_names):
                self._last_level[name] = float(f.loudness_s_lufs[c, -1])
        for ev in step.events:
            self._emit(ev)

    def _tick(self, control: ControlServer) -> int | None:
        """What the worker does between blocks (or while the audio is away): run commands,
        follow the link's faults, refresh the light, watch a config on trial; the exit code
        when the appliance must stop (a rollback or a new config), else None."""
        self._feed_watchdog(time.monotonic())  # also after a block's analysis (seconds, starved)
        policy = self.pipeline.policy if self.pipeline is not None else None
        if self._snooze_kept and policy is not None and not policy.snoozed:
            self._save_snooze(policy)  # it ran out: not kept a moment longer than it runs
        self._commands(control)
        self._check_link()
        self._refresh_display()
        return self._config_check()

    def _feed_watchdog(self, now: float) -> None:
        """WATCHDOG=1 to systemd when due (every `Notifier.watchdog_interval_s`, monotonic s)."""
        interval = self.notifier.watchdog_interval_s
        if interval and now >= self._next_watchdog:
            self.notifier.watchdog()
            self._next_watchdog = now + interval

    def _emit(self, ev: PolicyEvent) -> None:
        if ev.type.endswith((".started", ".cue")) and not ev.type.startswith("call."):
            self.cue_counts[ev.type.rsplit(".", 1)[0]] += 1
        change = state_change(ev.type)  # the retained state/<name> it turns ON or OFF
        if ev.publish:
            env = self.stamper.stamp(ev.type, ev.data,  # type: ignore[arg-type]
                                     stream_s=ev.stream_s)
            summary = getattr(ev.data, "summary", "")
            log.info("event %s at %.2f s %s", ev.type, ev.stream_s, summary)
            if self.link is not None:
                self._ticket = self.link.publish_event(env) or self._ticket
            if self.on_event is not None:
                self.on_event(env.to_json())
        if change is not None and self.link is not None:
            self.link.set_state(*change)
        buzz = CUE_BUZZ.get(ev.type)
        if buzz and ev.buzz and self.indicator is not None:
            self.indicator.buzz(buzz, after=self._durable_gate())

    def _durable_gate(self) -> Callable[[], bool] | None:
        """What the light and motor wait on before showing a cue: every event handed to the
        link so far stored in the outbox (bounded by `DURABLE_WAIT_S`), so that a desk killed
        just after showing a cue still delivers its event. None when there is nothing to
        wait for."""
        wait = getattr(self.link, "wait_settled", None)
        if not self._ticket or wait is None:
            return None
        return functools.partial(wait, self._ticket, DURABLE_WAIT_S)

    def _commands(self, control: ControlServer) -> None:
        for msg in control.poll():
            args = {k: v for k, v in msg.items() if k not in ("cmd", "reply_to")}
            reply = None
            if isinstance(msg.get("reply_to"), str):  # `deskcue status` waits for an answer
                reply = functools.partial(send_reply, msg["reply_to"])
            self.submit(LocalCommand(msg["cmd"], args, source="cli", reply=reply))
        while True:
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                return
            ok, data = self._run_command(cmd)
            if cmd.reply is not None:
                try:
                    cmd.reply(ok, data)
                except Exception:
                    log.exception("command reply failed")

    # -- config flashing (firmware.flashing) ------------------------------------------------------
    def _config_start(self) -> None:
        """Show a config that was refused or rolled back; start judging a config on trial."""
        fault = pending_fault(self.settings.device.state_dir)
        if fault:
            self._set_fault("config", fault)
        self.trial = TrialWatch(self.config_path)
        if self.trial.active:
            log.info("config %s on trial: %.0f s of healthy audio confirm it",
                     self.trial.trial.get("txid"), self.trial.trial.get("healthy_s", 0))

    def _config_check(self) -> int | None:
        """An exit code when the appliance must restart (new config, or rolled back)."""
        if self.restart_requested:
            return RESTART_EXIT_CODE
        if self.trial is not None and self.trial.active:
            connected = getattr(self.link, "connected", None) if self.link is not None else None
            error = getattr(self.link, "last_error", "") if self.link is not None else ""
            verdict = self.trial.tick(audio_s=self.stream_s, fault=self.fault,
                                      broker_connected=connected,
                                      broker_error=error if isinstance(error, str) else "")
            if verdict == "rollback":
                return RESTART_EXIT_CODE
            if verdict == "confirmed":
                # the retained info's config_apply says "on trial" until it is sent again:
                # a supervisor waits for it to push the next config (docs/field-tech.md §4)
                self._publish_info()
            if verdict == "failed":
                self._set_fault("config", self.trial.problem)
        return None

    def _install_config(self, cmd: LocalCommand) -> tuple[bool, dict[str, Any]]:
        if self.config_path is None:
            return False, {"error": ("failed", "started without --config: no config file to "
                                     "install into")}
        try:
            result = apply_remote(cmd.args, config_path=self.config_path,
                                  current=self.settings)
        except Exception as exc:  # noqa: BLE001 - the supervisor gets an answer whatever happens
            log.exception("cmd/config failed")
            return False, {"error": ("failed", f"the desk could not install the config "
                                     f"({type(exc).__name__}: {exc})")}
        self.restart_requested = result.restart
        if not result.ok:
            # A refusal that left a config fault (invalid config, damaged replay record) shows
            # now, not only after the next restart.
            fault = pending_fault(self.settings.device.state_dir)
            if fault:
                self._set_fault("config", fault)
        return command_reply(result)

    def _run_command(self, cmd: LocalCommand) -> tuple[bool, dict[str, Any]]:
        if cmd.name == "config":
            return self._install_config(cmd)
        policy = self.pipeline.policy if self.pipeline else None
        if cmd.name == "snooze":
            if policy is None:
                return False, {"error": "no audio yet"}
            snooze = checked_args(SnoozeArgs, cmd.args)
            if isinstance(snooze, str):
                return False, {"error": ("invalid_args", snooze)}
            ev = policy.snooze(snooze.minutes, source=cmd.source)
            self._save_snooze(policy)
            self._emit(ev)
            return True, _json(ev.data)
        if cmd.name == "recalibrate":
            # Forgotten on the card at once, not at the next periodic save: a recalibrate
            # is how a desk that changes hands forgets the previous agent's usual voice, and
            # a power cut before that save would bring it back.
            if policy is None:
                self.usual.reset()
                self.save_usual()
                return True, {"warmup_speech_s": float(self.usual.warmup_speech_s)}
            ev = policy.recalibrate()
            self.save_usual()
            self._emit(ev)
            return True, _json(ev.data)
        if cmd.name == "identify":
            identify = checked_args(IdentifyArgs, cmd.args)
            if isinstance(identify, str):
                return False, {"error": ("invalid_args", identify)}
            seconds = float(identify.seconds)
            self.identify_until = time.monotonic() + seconds
            if self.indicator is not None:
                self.indicator.buzz("identify")
            return True, {"seconds": seconds}
        if cmd.name == "config_ack" and cmd.source == "cli":
            # `deskcue config ack` has removed the fault record: the light follows now, not
            # at the next restart (the record is what it acknowledged, so it decides).
            if pending_fault(self.settings.device.state_dir) is None:
                self._clear_fault("config")
            return True, {"config_fault": self.faults.get("config")}
        if cmd.name == "status":
            return True, self.status(supervisor=cmd.source == "mqtt").to_json()
        if cmd.name == "_report" and cmd.source == "link":
            self._emit(PolicyEvent(cmd.args["type"], self.stream_s, cmd.args["data"]))
            return True, {}
        return False, {"error": f"unknown command {cmd.name!r}"}

    # -- display and faults ------------------------------------------------------------------
    def _display(self, *, reveal_snooze: bool = True, reveal_laughter: bool = True) -> str:
        if time.monotonic() < self.identify_until:
            return "identify"
        policy = (self.pipeline.policy.shown(reveal_snooze=reveal_snooze,
                                             reveal_laughter=reveal_laughter).value
                  if self.pipeline is not None else "off")
        if self.fault:
            # A storage fault leaves the desk working: its cues still show over the red blink.
            if set(self.faults) == {"storage"} and policy in CUE_DISPLAYS:
                return policy
            return "fault"
        return policy

    def _refresh_display(self) -> None:
        want = self._display()
        if want != self._shown:
            self._shown = want
            if self.indicator is not None:
                self.indicator.show(want, after=self._durable_gate())
            self.notifier.status(self.status_line())

    @property
    def fault(self) -> str | None:
        """Every active fault, one line; None when all is well."""
        return "; ".join(self.faults.values()) or None

    def _set_fault(self, kind: str, why: str, *, event_on_change: bool = False) -> None:
        """Raise (or update) the fault of one ``kind``; an event when it first appears (and,
        with ``event_on_change``, whenever its words change: each is news for a tech)."""
        if self.faults.get(kind) == why:
            return
        first = kind not in self.faults
        self.faults[kind] = why
        log.error("%s", why)
        self.notifier.status(f"fault: {self.fault}")
        if first or event_on_change:
            self._emit(PolicyEvent("fault", self.stream_s,
                                   Fault(kind=kind, fault=why, active=True)))  # type: ignore[arg-type]

    def _check_link(self) -> None:
        """A link that cannot start (credentials or TLS file missing or unusable) or that the
        broker refuses for its settings (wrong password, account not authorized) is the
        ``mqtt`` fault until it works: red blink, the status line, a ``fault`` event (stored in
        the outbox, so the supervisor gets it once the link can publish)."""
        why = None
        if self.link is not None:
            why = getattr(self.link, "start_error", None) or getattr(self.link, "refused", None)
        if isinstance(why, str) and why:
            self._set_fault("mqtt", f"mqtt: {why}")
        elif "mqtt" in self.faults:
            self._clear_fault("mqtt")
        # Another device with this desk's identity: a config fault of its own kind, shown until
        # the identity holds again (the link backs off meanwhile instead of flapping).
        clash = getattr(self.link, "identity_conflict", None) if self.link is not None else None
        if isinstance(clash, str) and clash:
            if "identity" not in self.faults:
                self._set_fault("identity", clash)
        elif "identity" in self.faults:
            self._clear_fault("identity")
        # The outbox's card: full, read-only, damaged rows or file set aside (`MqttLink.
        # storage_fault`). Cueing and publishing go on; the tech is told.
        why = getattr(self.link, "storage_fault", None) if self.link is not None else None
        if isinstance(why, str) and why:
            self._set_fault("storage", why, event_on_change=True)
        elif "storage" in self.faults:
            self._clear_fault("storage")

    def _clear_fault(self, kind: str) -> None:
        why = self.faults.pop(kind, None)
        if why is None:
            return
        log.info("fault cleared: %s", why)
        self._emit(PolicyEvent("fault", self.stream_s,
                               Fault(kind=kind, fault=why, active=False)))  # type: ignore[arg-type]

    def _close_source(self) -> None:
        if self.source is not None:
            with contextlib.suppress(Exception):
                self.source.close()
        self.source = None

    def _finish_stream(self) -> None:
        if self.pipeline is not None:
            for ev in self.pipeline.finish().events:
                self._emit(ev)
        self._refresh_display()

    def _shutdown(self) -> None:
        self.notifier.stopping()
        if self.pipeline is not None:
            for ev in self.pipeline.policy.finish():
                self._emit(ev)
        self._close_source()
        self.save_usual()
        if self.indicator is not None:
            self.indicator.close()
        if self.link is not None:
            self.link.stop()

    # -- reporting ---------------------------------------------------------------------------
    def _telemetry(self, last_cpu: tuple[float, float]) -> tuple[float, float]:
        """Publish periodic telemetry; returns the CPU reading the next load figure starts at."""
        now_cpu = (time.process_time(), time.monotonic())
        load = (now_cpu[0] - last_cpu[0]) / max(now_cpu[1] - last_cpu[1], 1e-6)
        self._log_overflows(load)
        if self.link is not None:
            st = self.status(supervisor=True)
            self.link.publish_telemetry(TelemetryReading(
                level_lufs=st.level_lufs, cues=st.cues, input_overflows=st.input_overflows,
                lost_audio_s=st.lost_audio_s,
                cpu_load=round(load, 4), soc_temp_c=st.soc_temp_c, uptime_s=st.uptime_s,
                display=st.display, stream_s=st.stream_s, snoozed=st.snoozed))
        return now_cpu

    def _log_overflows(self, load: float) -> None:
        """Say in the journal when audio blocks were dropped since the last telemetry (the
        analysis fell behind): counted in status and telemetry, a support engineer greps the
        log for why cues were missed. ``load``: CPU seconds per second since then."""
        source = self.source
        now = int(getattr(source, "overflows", 0)) if source is not None else 0
        seen = self._overflows_logged if source is self._overflows_source else 0
        if source is None or now <= seen:
            self._overflows_source, self._overflows_logged = source, now
            return
        # At most one line a `overflow_log_every_s` (telemetry runs every second): a desk
        # that stays overloaded says so with the count since its last line, not every tick.
        if time.monotonic() < self._overflows_next_log and source is self._overflows_source:
            return
        self._overflows_source, self._overflows_logged = source, now
        self._overflows_next_log = time.monotonic() + self.overflow_log_every_s
        temp = soc_temperature_c()
        lost = self.pipeline.lost_s if self.pipeline is not None else 0.0
        log.warning("audio: %d audio block(s) from %s dropped (%.1f s of audio lost in all): "
                    "the analysis fell behind (cpu load %.2f, SoC %s), so cues may be missed; "
                    "look for throttling (vcgencmd get_throttled; a hot or underpowered Pi) or "
                    "another busy process (top)", now - seen, source.name, lost, load,
                    "unknown" if temp is None else f"{temp:.0f} C")

    def info(self) -> Info:
        """The retained ``info`` document."""
        applied, problem = last_apply_shown(self.settings.device.state_dir)
        config_apply, off_contract = _config_apply(applied)
        return Info(
            firmware=build_version(),
            config_hash=settings_hash(self.settings),
            boot_id=self.stamper.boot_id,
            audio_device=self.source.name if self.source else None,
            channel_map=self._channel_map(),
            config_apply=config_apply,
            config_apply_problem=problem or off_contract,
        )

    def _channel_map(self) -> ChannelMap:
        """Whom each channel carries, as analysed: the open source's channels decide (a mono
        one is the agent alone, whatever the config's map says), else audio.channels."""
        a = self.settings.audio
        channels = self.source.channels if self.source is not None else a.channels
        if channels == 1:
            return ChannelMap(agent="mono", caller="none")
        return ChannelMap(agent=a.agent_channel, caller=a.caller_channel)

    def _publish_info(self) -> None:
        if self.link is not None:
            self.link.set_info(self.info())
            self._announce_discovery()

    def _announce_discovery(self) -> None:
        """Home Assistant discovery for the channels as analysed, as ``info.channel_map``: a
        mono source on a stereo config has no caller level, so its entity is removed. The
        link starts with the config's channels (`make_link`); this re-sends the configs when
        a source with other channels opens. A closed source (unplugged) keeps what was last
        analysed: the entities do not come and go with each retry."""
        analysed = (self.source.channels if self.source is not None
                    else self.pipeline.source_channels if self.pipeline is not None
                    else self.settings.audio.channels)
        if self.link is None or analysed == self._announced_channels:
            return
        self._announced_channels = analysed
        self.link.set_announce(discovery_messages(self.settings, channels=analysed))

    def status(self, *, supervisor: bool = False) -> ApplianceStatus:
        """The live state (`deskcue status`, MQTT ``cmd/status``, telemetry).

        ``supervisor``: for a supervisor (MQTT): unless ``mqtt.publish_snooze``, the agent's
        snooze is not in it (``snoozed`` left out, ``display`` as if not snoozed); unless
        ``mqtt.publish_laughter``, neither is the laughter-like cue (not counted in ``cues``,
        ``display`` as without its flash).
        """
        usual = self.usual
        reveal = not supervisor or self.settings.mqtt.publish_snooze
        laughter = not supervisor or self.settings.mqtt.publish_laughter
        policy = self.pipeline.policy if self.pipeline is not None else None
        snoozed = bool(policy and policy.snoozed)
        left = (round(policy.snoozed_until_s - policy.now_s, 1)
                if policy is not None and snoozed and reveal else None)
        return ApplianceStatus(
            display=self._display(reveal_snooze=reveal,  # type: ignore[arg-type]
                                  reveal_laughter=laughter),
            fault=self.fault,
            stream_s=round(float(self.stream_s), 2),
            usual_lufs=round(float(usual.usual_lufs), 2) if usual.ready else None,
            learned_speech_s=round(float(usual.speech_s), 1),
            snoozed=snoozed if reveal else None,
            snooze_left_s=left,
            cues={k: n for k, n in self.cue_counts.items() if laughter or k != "laughter"},
            input_overflows=int(self.source.overflows) if self.source else 0,
            lost_audio_s=round(self.pipeline.lost_s, 2) if self.pipeline is not None else 0.0,
            level_lufs={k: round(v, 1) for k, v in self._last_level.items()},  # type: ignore[misc]
            uptime_s=round(time.monotonic() - self._started, 1),
            soc_temp_c=soc_temperature_c(),
            commands=self._command_counts(),
            outbox=self._outbox_depth(),
        )

    def _command_counts(self) -> CommandCounts | None:
        stats = getattr(self.link, "stats", None)
        if not callable(stats):
            return None
        c = stats()
        return CommandCounts(checked=int(c["commands"]), refused=int(c["commands_rejected"]),
                             ignored=int(c["commands_ignored"]),
                             rate_limited=int(c["commands_rate_limited"]),
                             dropped=int(c["commands_dropped"]))

    def _outbox_depth(self) -> OutboxDepth | None:
        depth = getattr(self.link, "outbox_depth", None) if self.link is not None else None
        return depth() if callable(depth) else None

    def status_line(self) -> str:
        s = self.status()
        # stream time counts lost audio: what was heard is the rest
        return (f"{s.display}; usual {s.usual_lufs} LUFS; heard {s.stream_s - s.lost_audio_s:.0f} s"
                + (f", lost {s.lost_audio_s:.1f} s" if s.lost_audio_s else "")
                + (f"; fault: {s.fault}" if s.fault else ""))


def _json(data: Payload | None) -> dict[str, Any]:
    """A result's data as JSON (a command reply carries JSON to the link and the socket)."""
    return data.to_json() if data is not None else {}


def _config_apply(record: dict[str, Any]) -> tuple[ConfigApply | None, str | None]:
    """The last-apply record for ``info``, or None and why: None with no reason when there is
    none; None and the reason when it is not readable as the contract has it (an old record
    must not stop the appliance, nor read as no apply at all)."""
    if not record:
        return None, None
    try:
        return ConfigApply.model_validate(record), None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(record)"
        log.warning("config apply record not reported in info: %s: %s", where, first["msg"])
        return None, f"the config apply record is off the contract ({where}: {first['msg']})"
