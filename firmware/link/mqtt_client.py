"""The desk's link to the supervisor's broker: device topics, durable events and commands.

Topics, under ``base = <prefix>/<site>/<desk>``:

=========================  ====  ========  ===============================================
topic                      QoS   retained  what
=========================  ====  ========  ===============================================
``base/status``            1     yes       ``online`` / ``offline``; ``online`` once the
                                           broker has confirmed the command subscription
                                           (a command sent on seeing it is heard);
                                           ``offline`` is the last will and is also
                                           published by hand on `stop`
``base/info``              1     yes       what `set_info` was given (firmware version,
                                           config hash, boot id, audio device, channel map)
``base/telemetry``         0     no        `publish_telemetry`, MQTT 5 message expiry
``base/events``            1     no        event envelopes, through the durable outbox
``base/state/<name>``      1     yes       ``ON`` / ``OFF`` per cue and the call (`set_state`),
                                           the current ones again at every connect
``base/cmd/<name>``        1     (no)      commands to the desk (retained ones ignored)
``base/cmd/<name>/result`` 1     no        answers, with the command's ``txid``
=========================  ====  ========  ===============================================

Commands are rate limited: beyond 20 a second (bursts of 40) a command is not run but answered
``rate_limited``; beyond a further 20 such answers a second (bursts of 40) the excess of a
flood is dropped unanswered, so that a flood costs bounded memory. Each outcome is counted in
`stats` (``commands``, ``commands_rate_limited``, ``commands_dropped``).

``announce`` (topic, payload) pairs, e.g. Home Assistant discovery configs
(`firmware.link.home_assistant`), are published retained (QoS 1) at every connect;
`set_announce` replaces them (those that changed go out at once).

Use from the appliance (`firmware.appliance.worker`)::

    link = MqttLink(settings.mqtt, site=..., desk=..., state_dir=..., on_command=handler,
                    on_dropped=report_drop)
    link.start()                      # returns at once; connects and reconnects by itself
    link.set_info(Info(...))          # retained; re-sent on every reconnect
    link.publish_event(envelope)      # an EventEnvelope, from the analysis thread: never blocks
    link.publish_telemetry(TelemetryReading(...))  # every settings.telemetry_interval_s
    link.publish_command_result(cmd, True, data=Snooze(...))
    link.set_state("raised_voice", True)  # retained state/raised_voice ON
    link.connected, link.last_error   # for the status line
    link.stop()                       # drain briefly, "offline" by hand, disconnect

Payloads are the models of `firmware.contract` (a mapping is validated into the model first).
Tools on the supervisor's side use `firmware.link.supervisor_client` instead; both log in
through `firmware.link.login`. paho is imported by these two modules only.

Identity. Two boxes given one site and desk id (a config copied from box to box) take over each
other's session without end. The link watches its own ``info`` topic (subscribed before it
publishes its own on each connection): another boot id there is another device when it arrives
live, or when it is found retained after the broker stored this run's info (before that it can
be this box's previous run). Brokers that say why they closed a session (MQTT 5 reason code
0x8E, "session taken over"; mosquitto 2.0 only closes the socket) add a second sign: two such
takeovers within ``identity_window_s``. Then
`identity_conflict` says so (the appliance raises its ``identity`` fault: light, ``fault``
event, status), the link disconnects without a will and waits ``identity_backoff_min_s``,
doubling up to ``identity_backoff_max_s``, before it connects again, instead of flapping. A
connection that lasts ``identity_window_s`` with no sign of the other device clears it.

Threads. The caller's calls only put items on a queue. One worker thread owns the outbox
(SQLite) and does every publish; paho's network thread runs the callbacks, which never raise
(exceptions are caught and logged) and only queue work or validate commands.

Delivery. Each event is stored (fsync'd) before it is published and deleted when its PUBACK
arrives with a success code; at most ``outbox_inflight`` events are unacknowledged at once,
sent in the order they were stored. Within one run paho itself re-sends unacknowledged events
after a reconnect (same bytes, DUP flag); after a restart the outbox re-sends them. An event
that did not go out live (handed over while disconnected, or by an earlier run) carries
``"replayed": true`` in its envelope; one handed over once `connected` is true is live on that
connection, however late the worker hears of it. QoS 1 is at-least-once: consumers drop the
rare duplicate by ``id`` and spot gaps by (``boot_id``, ``seq``); a broker refusing an event
(PUBACK reason code >= 0x80) holds it and retries with backoff, never skipping it silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import queue
import random
import sqlite3
import ssl
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from firmware.config.mqtt import MqttSettings
from firmware.contract.base import Payload
from firmware.contract.desk import Info, OutboxDepth, Telemetry, TelemetryReading
from firmware.contract.events import EventEnvelope
from firmware.contract.states import CueState
from firmware.errors import CredentialsError, OutboxLocked
from firmware.link.commands import (
    ARG_MODELS,
    NAME_RE,
    Command,
    CommandArgs,
    Rejection,
    parse_command,
    read_txid,
    result_payload,
)
from firmware.link.login import log_in, reason_failed, refusal
from firmware.link.outbox import Outbox, storage_trouble
from firmware.platform.host import clock_is_synced

log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.db"
_TICK_S = 0.5  # worker wake-up when idle: bounds checks, hold expiry, stop
_AGE_CHECK_S = 60.0  # how often the outbox age bound is enforced
_REPORT_EVERY_S = 60.0  # at most one outbox_dropped report per minute
_STORAGE_RETRY_S = 5.0  # how often an outbox kept in memory tries the state directory again
_COMMAND_RATE_PER_S = 20.0  # commands beyond this (burst 40) are answered rate_limited ...
_COMMAND_BURST = 40.0
_REFUSAL_RATE_PER_S = 20.0  # ... and rate_limited answers beyond this (burst 40) are not sent,
_REFUSAL_BURST = 40.0  # so that a flood costs bounded memory and bandwidth (counted, dropped)
_SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason: another client connected with our id
# Room above the largest command payload for the topic, the properties and the desk's own
# retained info, which it reads back: a packet up to this much larger is still answered
# too_large, a larger one is never sent to the desk at all (MQTT 5 Maximum Packet Size).
_PACKET_SLACK = 64 * 1024
_TAKEOVERS_FOR_CONFLICT = 2  # one alone can be our own half-open connection being replaced
_JITTER = random.SystemRandom()  # no state to share with a forked process or a twin desk


class _Client(mqtt.Client):
    """paho's client, keeping the exception of the last failed connection attempt, and
    drawing each wait before it reconnects with jitter (`set_backoff`, `failed`)."""

    last_connect_error: BaseException | None = None
    _backoff = (1.0, 60.0)
    _failures = 0

    def set_backoff(self, first_s: float, longest_s: float) -> None:
        """Back off from ``first_s`` doubling up to ``longest_s`` (seconds), each wait drawn
        between half and all of that (paho's own backoff has no jitter)."""
        self._backoff = (first_s, longest_s)
        self._failures = 0
        self.reconnect_delay_set(first_s, first_s)  # type: ignore[arg-type]

    def failed(self) -> float:
        """A connection attempt failed or a connection ended: set and return the next wait
        (s). Desks that lost one broker at one moment would otherwise all retry it at the same
        moments, and come back in one burst however long it was away."""
        first, longest = self._backoff
        self._failures += 1
        full = min(first * 2.0 ** min(self._failures - 1, 32), longest)
        wait = _JITTER.uniform(full / 2.0, full)
        # paho waits its "min_delay" next: its own doubling restarts from each value set here
        self.reconnect_delay_set(wait, wait)  # type: ignore[arg-type]
        return wait

    def succeeded(self) -> None:
        """The broker accepted the connection: the next loss backs off from the start."""
        self._failures = 0

    def reconnect(self) -> MQTTErrorCode:
        """paho's reconnect, remembering why it failed (paho's loop only retries)."""
        try:
            rc = super().reconnect()
        except OSError as exc:
            self.last_connect_error = exc
            raise
        self.last_connect_error = None
        return rc


class _Bucket:
    """A token bucket: `take` is true at most ``rate`` times a second on average, ``burst``
    times at once."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.t = burst, time.monotonic()

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


def _disconnect_reason(flags: Any, reason_code: Any) -> str:
    """What ended the connection, in words a tech reading the log can act on.

    paho reports a connection that dropped without the broker's DISCONNECT (a broker killed,
    a cable pulled, a NAT timeout) as the reason code "Unspecified error"; the flags tell the
    two apart.
    """
    from_broker = bool(getattr(flags, "is_disconnect_packet_from_server", True))
    if not from_broker and str(reason_code) == "Unspecified error":
        return "connection lost (the network or the broker dropped it)"
    if from_broker:
        return f"the broker ended it: {reason_code}"
    return str(reason_code)


def _run_once_key(cmd: Command) -> tuple[str, str, str]:
    """What makes a command the same command for run-once: its name, its txid and its
    arguments (``ts`` left out: a sender's retry may stamp it anew). A txid alone would let
    anyone who may send commands take one first - `deskcue config sign`'s are guessable - and
    the real command under it would get that one's answer without being run."""
    args = cmd.args.model_dump(mode="json", exclude={"txid", "ts"})
    digest = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()
    return cmd.name, cmd.txid, digest


class MqttLink:
    """The desk's MQTT link; see the module docstring for topics, threads and delivery.

    ``on_command(cmd)`` is called on paho's network thread for each valid, fresh command and
    must not block (queue it and answer later with `publish_command_result`); an exception it
    raises becomes an error result. ``on_dropped(data)`` is called on the link's thread with
    the ``data`` of an ``outbox_dropped`` event whenever the outbox bounds drop events: the
    appliance stamps it (``stamper.stamp("outbox_dropped", data, ...)``) and publishes it.
    ``extra_commands`` adds commands beyond the built-in allow-list: name -> (args model, a
    `CommandArgs` subclass; largest payload in bytes), e.g. a signed ``config``.
    ``command_rate`` is (commands a second, burst) run before the rest are answered
    ``rate_limited``.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        site: str,
        desk: str,
        state_dir: Path | str,
        on_command: Callable[[Command], None] | None = None,
        on_dropped: Callable[[dict[str, Any]], None] | None = None,
        extra_commands: Mapping[str, tuple[type[CommandArgs], int]] | None = None,
        command_rate: tuple[float, float] = (_COMMAND_RATE_PER_S, _COMMAND_BURST),
        states: Sequence[str] = (),
        announce: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.settings = settings
        self.site = site
        self.desk = desk
        self.state_dir = Path(state_dir)
        self.on_command = on_command
        self.on_dropped = on_dropped
        extra = dict(extra_commands or {})
        self._command_models: dict[str, type[CommandArgs]] = {
            **ARG_MODELS,
            **{name: model for name, (model, _) in extra.items()},
        }
        self._command_limits = {name: limit for name, (_, limit) in extra.items()}
        self._states = dict.fromkeys(states, False)  # state/<name>: active; under _lock
        self._announce = list(announce)
        self.base = f"{settings.topic_prefix}/{site}/{desk}"
        self.client_id = settings.client_id or f"deskcue-{site}-{desk}"
        self._v5 = settings.protocol == "5"

        self._q: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._client: _Client | None = None
        self._worker: threading.Thread | None = None
        self._started = False
        self._stopped = False
        self._connected = False
        self._commands_ready = False
        self._epoch = 0
        self._last_error = ""
        self._login = ""  # how the client logs in, in words (`login_words`)
        self._lock = threading.Lock()
        self._start_error: str | None = None  # why the client cannot be made (files, TLS)
        self._refused: str | None = None  # why the broker refuses this desk's connection
        self._refused_since: float | None = None  # monotonic s of the first refusal in a row
        self._start_failures = 0
        self._next_start = 0.0
        self._info: dict[str, Any] | None = None
        self._info_sent: dict[str, Any] | None = None  # what this connection already has
        self._token = uuid.uuid4().hex[:12]  # tells this run's outbox rows from earlier runs'
        # The connection an event handed over now goes out on live ("" while disconnected); set
        # by paho's thread before `connected` turns true, read by `publish_event`.
        self._handover_origin = ""

        # worker-owned state
        self._outbox: Outbox | None = None
        self._inflight: dict[int, int] = {}  # paho mid -> outbox rowid
        self._cursor = 0  # highest rowid handed to paho
        self._live_origin = ""
        self._worker_connected = False
        self._hold_until = 0.0
        self._hold_s = 0.0
        self._next_age_check = 0.0
        self._stop_deadline: float | None = None
        self._next_report = 0.0
        self._accept = threading.Lock()  # publish_event vs the worker's last drain
        self._worker_done = False
        # Tickets: the n-th event handed over is settled once the worker has stored it (or
        # knows it cannot); `wait_settled` lets the desk light wait for its cue's event.
        self._handed = 0
        self._settled = 0
        self._settled_cv = threading.Condition()
        self._storage_down: str | None = None  # the outbox cannot be written: in memory
        self._storage_incident: str | None = None  # rows or a file set aside since the start
        self._next_storage_try = 0.0

        # commands (paho thread)
        self._command_bucket = _Bucket(*command_rate)
        self._refusal_bucket = _Bucket(_REFUSAL_RATE_PER_S, _REFUSAL_BURST)
        self._sub_mid: int | None = None  # the command subscription awaiting its SUBACK
        # `_run_once_key` -> its answer (None while running): a redelivery is answered, not run
        self._recent: OrderedDict[tuple[str, str, str], dict[str, Any] | None] = OrderedDict()
        # `_run_once_key` -> redeliveries that came while it ran: each gets the answer then
        self._waiting: dict[tuple[str, str, str], int] = {}

        # identity (paho thread sets, worker acts)
        self._takeovers: deque[float] = deque()
        self._identity_conflict: str | None = None
        self._conflicts = 0  # conflicts since the identity last held: the backoff exponent
        self._conflict_hold = False  # the client is down until `_next_start`
        self._info_sub_mid: int | None = None
        self._info_mid: int | None = None  # our latest info publish
        self._info_acked: str | None = None  # boot id of our info once the broker stored it
        self._connected_at = 0.0

        self.counters: dict[str, int] = {
            "events_stored": 0,
            "events_published": 0,
            "events_acked": 0,
            "events_rejected": 0,
            "events_duplicate": 0,
            "commands": 0,
            "commands_rejected": 0,
            "commands_ignored": 0,
            "commands_rate_limited": 0,
            "commands_dropped": 0,
        }

    # -- topics ---------------------------------------------------------------------------------

    def topic(self, suffix: str) -> str:
        """The full topic for ``suffix`` (``status``, ``events``, ``cmd/snooze`` ...)."""
        return f"{self.base}/{suffix}"

    # -- public API -----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while connected to the broker (CONNACK accepted, not yet disconnected)."""
        return self._connected

    @property
    def commands_ready(self) -> bool:
        """True once the broker has confirmed the command subscription on this connection."""
        return self._connected and self._commands_ready

    @property
    def start_error(self) -> str | None:
        """Why the link cannot start (a credentials or TLS file missing or unusable), while it
        cannot; None once it has started. The link retries with backoff until it works; the
        appliance shows this as its ``mqtt`` fault."""
        return self._start_error

    @property
    def refused(self) -> str | None:
        """Why the broker refuses this desk's connection for a reason of its settings (bad
        user name or password, not authorized, client id or protocol refused, a TLS certificate
        that cannot be verified), once it has done so for ``refused_fault_s`` in a row; None
        before, and once a connection is accepted. The link keeps retrying with backoff; the
        appliance shows this as its ``mqtt`` fault (a broker that is down or busy is not)."""
        since = self._refused_since
        if self._refused is None or since is None \
                or time.monotonic() - since < self.settings.refused_fault_s:
            return None
        return self._refused

    def _refuse(self, why: str) -> None:
        """Note a refusal for the desk's settings (the paho thread), and when the run began."""
        self._refused = why
        if self._refused_since is None:
            self._refused_since = time.monotonic()

    @property
    def identity_conflict(self) -> str | None:
        """Why another device seems to hold this desk's identity, while it does; None
        otherwise (see the module docstring). The appliance shows it as its ``identity``
        fault."""
        return self._identity_conflict

    @property
    def last_error(self) -> str:
        """The latest connection or delivery problem, for the status line; "" when none."""
        return self._last_error

    @property
    def storage_fault(self) -> str | None:
        """What is wrong with the outbox's storage, in words, or None: it cannot be written
        (events kept in memory until it can; retried every few seconds), or unreadable rows or
        a damaged file were set aside since the link started (kept for a tech). The appliance
        shows it as its ``storage`` fault."""
        parts = [p for p in (self._storage_down, self._storage_incident) if p]
        return "; ".join(parts) or None

    def outbox_depth(self) -> OutboxDepth:
        """The outbox as the supervisor sees it in ``telemetry`` and ``status`` (approximate
        when read from another thread)."""
        box = self._outbox
        if box is None:
            return OutboxDepth(depth=0, dropped=0)
        return OutboxDepth(depth=len(box), dropped=box.dropped_total,
                           set_aside=box.set_aside_total, durable=box.durable)

    def wait_settled(self, ticket: int, timeout: float) -> bool:
        """Wait up to ``timeout`` s until the event `publish_event` returned ``ticket`` for is
        settled: stored in the outbox (committed with an fsync), or known not to be storable
        on disk (then it is kept in memory and `storage_fault` says why). True if it is."""
        with self._settled_cv:
            return self._settled_cv.wait_for(lambda: self._settled >= ticket, timeout)

    def stats(self) -> dict[str, Any]:
        """Counters and the outbox depth (approximate when read from another thread)."""
        box = self._outbox
        return {
            "connected": self._connected,
            "last_error": self._last_error,
            "identity_conflicts": self._conflicts,
            "outbox_depth": len(box) if box is not None else 0,
            "outbox_dropped": box.dropped_total if box is not None else 0,
            "outbox_durable": bool(box.durable) if box is not None else False,
            "outbox_set_aside": box.set_aside_total if box is not None else 0,
            "inflight": len(self._inflight),
            **self.counters,
        }

    def start(self) -> None:
        """Start the worker and the background connection; returns at once, never raises.

        A broker that is down, unreachable or refusing is retried with backoff
        (``reconnect_min_s`` doubling up to ``reconnect_max_s``, each wait drawn between half
        and all of that, so that a floor's desks do not all come back at one moment);
        `last_error` says why.
        """
        if self._started:
            return
        self._started = True
        if not self.settings.enabled:
            log.info("mqtt: disabled in config; events are not published")
            return
        self._worker = threading.Thread(target=self._run, name="deskcue-mqtt", daemon=True)
        self._worker.start()
        self._start_client()

    def _start_client(self) -> bool:
        """Make the paho client and start connecting; on failure (a credentials or TLS file
        missing or unusable) say why and schedule a retry with backoff (``reconnect_min_s``
        doubling up to ``reconnect_max_s``): the worker calls this again when it is due."""
        s = self.settings
        try:
            client = self._make_client()
            with self._lock:  # in place before any callback can answer a command with it
                self._client = client
            client.connect_async(
                s.host,
                s.port,
                keepalive=s.keepalive_s,
                clean_start=True if self._v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                properties=self._connect_properties(),
            )
            client.loop_start()
        except (CredentialsError, OSError, ValueError) as exc:
            with self._lock:
                self._client = None
            self._start_failures += 1
            wait = min(s.reconnect_min_s * 2.0 ** (self._start_failures - 1), s.reconnect_max_s)
            self._next_start = time.monotonic() + wait
            self._start_error = f"cannot start: {exc}"
            self._set_error(f"{self._start_error}; retrying in {wait:g} s")
            return False
        if self._start_error is not None:
            log.info("mqtt: started after %d failed attempt(s)", self._start_failures)
        self._start_error = None
        self._start_failures = 0
        log.info("mqtt: connecting to %s:%d as %s", s.host, s.port, self.client_id)
        return True

    def publish_event(self, envelope: EventEnvelope | Mapping[str, Any]) -> int:
        """Hand an event envelope over for durable, ordered delivery; returns at once, with a
        ticket for `wait_settled` (0: nothing to wait for).

        Called from the analysis thread: only a queue put happens here; the worker stores it
        within milliseconds. Every envelope handed over is published: filters such as
        ``mqtt.publish_laughter`` belong before stamping, or consumers would see a gap in
        ``seq`` where nothing was lost. A mapping is validated as an `EventEnvelope` first
        (`pydantic.ValidationError` if it is off the contract).
        """
        if not self.settings.enabled:
            return 0
        wire = _contract(EventEnvelope, envelope)
        with self._accept:
            if not self._worker_done:
                self._handed += 1
                self._q.put(("event", wire, self._handover_origin, self._handed))
                return self._handed
        self._store_after_stop(wire)
        return 0

    def publish_telemetry(self, reading: TelemetryReading | Mapping[str, Any]) -> None:
        """Publish telemetry now (QoS 0, expiring), if connected; otherwise it is dropped.

        The link adds ``ts`` (Unix seconds) and ``outbox`` (depth, dropped): see `Telemetry`.
        """
        if self.settings.enabled and not self._stopped:
            if not isinstance(reading, TelemetryReading):
                reading = TelemetryReading.model_validate(reading)
            self._q.put(("telemetry", reading))

    def set_info(self, info: Info | Mapping[str, Any]) -> None:
        """Set the retained ``info`` document; published now and on every reconnect."""
        wire = _contract(Info, info)
        with self._lock:
            self._info = wire
        if self.settings.enabled and not self._stopped:
            self._q.put(("info",))

    def set_announce(self, announce: Sequence[tuple[str, str]]) -> None:
        """Replace the ``announce`` messages (e.g. discovery when the analysed channels
        change): the ones that changed are published now if connected (an empty payload
        removes a retained one), and all of them at every connect."""
        new = list(announce)
        with self._lock:
            old = dict(self._announce)
            self._announce = new
        changed = frozenset(t for t, p in new if old.get(t) != p)
        if changed and self.settings.enabled and not self._stopped:
            self._q.put(("announce", changed))

    def set_state(self, name: str, active: bool) -> None:
        """Set ``state/<name>`` (``ON``/``OFF``, retained); sent now if connected, and again at
        every connect. A name not given as one of ``states`` is ignored (e.g. laughter where
        ``mqtt.publish_laughter`` is off)."""
        with self._lock:
            if name not in self._states:
                return
            self._states[name] = bool(active)
        if self.settings.enabled and not self._stopped:
            self._q.put(("state", name))

    def publish_command_result(
        self,
        cmd: Command,
        ok: bool,
        data: Payload | Mapping[str, Any] | None = None,
        error: str | tuple[str, str] | None = None,
    ) -> None:
        """Answer ``cmd`` on ``cmd/<name>/result`` with its txid (QoS 1, not retained).

        ``error`` is a message or a (code, message) pair; a plain message gets code
        ``failed``.
        """
        err = (("failed", error) if isinstance(error, str) else error) if not ok else None
        payload = result_payload(cmd.name, cmd.txid, ok, data=data, error=err)
        key = _run_once_key(cmd)
        with self._lock:
            if key in self._recent:
                self._recent[key] = payload
            repeats = self._waiting.pop(key, 0)
        for _ in range(1 + repeats):  # the command, and each redelivery that came meanwhile
            self._q.put(("result", cmd.name, payload))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event handed over so far is acknowledged; True if it happened."""
        if not self._started or self._worker is None:
            return True
        done = threading.Event()
        self._q.put(("flush", done))
        deadline = time.monotonic() + timeout
        if not done.wait(timeout):
            return False
        while time.monotonic() < deadline:
            if not self._inflight and (self._outbox is None or len(self._outbox) == 0):
                return True
            time.sleep(0.005)
        return False

    def stop(self, drain_s: float | None = None) -> None:
        """Store what is queued, wait up to ``drain_s`` (default ``stop_drain_s``) for pending
        events to be acknowledged, publish ``offline`` by hand, disconnect. Idempotent.

        Events not acknowledged by then stay in the outbox for the next start.
        """
        if self._stopped:
            return
        self._stopped = True
        drain = self.settings.stop_drain_s if drain_s is None else drain_s
        if self._worker is None:  # never started: keep what was handed over for the next run
            self._close_queue(self._store_after_stop)
        else:
            self._q.put(("stop", drain))
            self._worker.join(drain + 5.0)
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.disconnect()
            with contextlib.suppress(Exception):
                self._client.loop_stop()
        self._connected = False
        log.info("mqtt: stopped")

    # -- paho client and callbacks (network thread) ---------------------------------------------

    def _make_client(self) -> _Client:
        s = self.settings
        client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
            clean_session=None if self._v5 else True,  # MQTT 5 sets clean start per connect
        )
        client.suppress_exceptions = True
        client.set_backoff(s.reconnect_min_s, s.reconnect_max_s)
        client.max_inflight_messages_set(s.outbox_inflight + 16)
        client.connect_timeout = 5.0
        self._login = log_in(client, s)
        client.will_set(self.topic("status"), "offline", qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def max_packet_bytes(self) -> int:
        """The largest packet this desk takes from the broker, bytes: the largest command
        payload it accepts plus `_PACKET_SLACK`."""
        largest = max([self.settings.command_max_bytes, *self._command_limits.values()])
        return largest + _PACKET_SLACK

    def _connect_properties(self) -> Properties | None:
        """MQTT 5 CONNECT properties: the Maximum Packet Size, so that a payload no command
        takes (a broker allows 256 MB by default) is dropped by the broker, not read into
        the desk's memory first. MQTT 3.1.1 has no such property: the broker's
        ``max_packet_size`` bounds it there (docs/field-tech.md)."""
        if not self._v5:
            return None
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.MaximumPacketSize = self.max_packet_bytes()
        return props

    def _set_error(self, message: str) -> None:
        if message and message != self._last_error:
            log.warning("mqtt: %s", message)
        self._last_error = message

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        try:
            if reason_failed(rc):
                why = refusal(rc, self._login)
                if why is not None:
                    self._refuse(f"broker refused the connection: {why}")
                # the log's first line says it in words too: the fault waits refused_fault_s
                self._set_error(f"broker refused the connection: {rc}"
                                + (f": {why}" if why is not None else ""))
                return
            self._refused, self._refused_since = None, None
            if isinstance(client, _Client):
                client.succeeded()
            self._epoch += 1
            self._commands_ready = False
            # Before `connected`: whoever sees it true hands events over as live on this
            # connection, even if the worker hears of it ("connected" below) only later.
            self._handover_origin = f"{self._token}:{self._epoch}"
            self._connected = True
            self._last_error = ""
            log.info("mqtt: connected to %s:%d", self.settings.host, self.settings.port)
            self._connected_at = time.monotonic()
            # Before our own info: the retained one it delivers is what was there before.
            _, self._info_sub_mid = client.subscribe(self.topic("info"), qos=1)
            with self._lock:
                info = self._info
                self._info_sent = info
            if info is not None:
                self._info_mid = client.publish(self.topic("info"), _dumps(info), qos=1,
                                                retain=True).mid
            for name in list(self._states):
                self._publish_state(client, name)
            self._publish_announce(client)
            # "online" waits for the SUBACK (`_on_subscribe`): a supervisor that sends a command
            # as soon as it sees the desk online must find it listening.
            rc, self._sub_mid = client.subscribe(self.topic("cmd/+"), qos=1)
            if rc != mqtt.MQTT_ERR_SUCCESS:  # no SUBACK will come: online without commands
                self._set_error(f"command subscription failed: {mqtt.error_string(rc)}")
                client.publish(self.topic("status"), "online", qos=1, retain=True)
            self._q.put(("connected", self._epoch))
        except Exception:  # noqa: BLE001 - never into paho's thread
            log.exception("mqtt: on_connect failed")

    def _on_subscribe(self, client: mqtt.Client, _u: Any, mid: int, rcs: Any, _p: Any) -> None:
        try:
            if mid == self._info_sub_mid:
                if not rcs or any(reason_failed(rc) for rc in rcs):
                    log.info("mqtt: the broker does not let this desk read its own info; "
                             "only session takeovers can reveal a duplicate identity")
                return
            if mid != self._sub_mid:
                return
            self._sub_mid = None
            if rcs and all(not reason_failed(rc) for rc in rcs):
                self._commands_ready = True
            else:
                self._set_error(f"command subscription refused: {rcs}")
            # Online either way: a desk whose commands the broker refuses still publishes its
            # events, and says why in `last_error`.
            client.publish(self.topic("status"), "online", qos=1, retain=True)
        except Exception:  # noqa: BLE001
            log.exception("mqtt: on_subscribe failed")

    def _on_connect_fail(self, client: mqtt.Client, _u: Any) -> None:
        if isinstance(client, _Client):
            client.failed()
        exc = getattr(client, "last_connect_error", None)
        where = f"{self.settings.host}:{self.settings.port}"
        if isinstance(exc, ssl.SSLCertVerificationError):
            # Not the network: the CA file, the broker's certificate or its name is wrong,
            # and no retry fixes that.
            ca = self.settings.tls.ca_file
            self._refuse("the broker's TLS certificate cannot be verified: "
                         f"{exc.verify_message} (mqtt.tls.ca_file "
                         f"{ca if ca is not None else 'not set: the system CAs'}, or "
                         f"mqtt.host {self.settings.host}, a name the certificate must carry)")
        self._set_error(f"cannot connect to {where}" + (f": {exc}" if exc else ""))

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, flags: Any, rc: Any, _p: Any) -> None:
        try:
            if isinstance(_c, _Client):
                _c.failed()
            was = self._connected
            self._handover_origin = ""
            self._connected = False
            self._q.put(("disconnected",))
            if self._stopped or self._conflict_hold:
                return
            if getattr(rc, "value", None) == _SESSION_TAKEN_OVER:
                self._taken_over(_c)
                if self._conflict_hold:
                    return
            why = _disconnect_reason(flags, rc)
            if was:
                self._set_error(f"disconnected from broker: {why}")
            elif not self._last_error:
                # Closed before the CONNACK, e.g. a TLS 1.3 broker rejecting our certificate.
                self._set_error(f"broker closed the connection before accepting it: {why}")
        except Exception:  # noqa: BLE001
            log.exception("mqtt: on_disconnect failed")

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, rc: Any, _p: Any) -> None:
        try:
            if mid == self._info_mid and not reason_failed(rc):
                with self._lock:
                    self._info_acked = (self._info_sent or {}).get("boot_id")
            self._q.put(("ack", mid, reason_failed(rc), str(rc)))
        except Exception:  # noqa: BLE001
            log.exception("mqtt: on_publish failed")

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            if msg.topic == self.topic("info"):
                self._check_info(_c, bytes(msg.payload), bool(msg.retain))
                return
            self._handle_command_message(msg.topic, bytes(msg.payload), bool(msg.retain))
        except Exception:  # noqa: BLE001 - a command must never disturb the link
            log.exception("mqtt: command handling failed")

    # -- identity (paho's thread) ---------------------------------------------------------------

    def _check_info(self, client: mqtt.Client, payload: bytes, retained: bool) -> None:
        """Our own ``info`` topic, watched from before we publish ours on each connection.

        Another boot id there means another device, when it is published live while we are
        connected, or found retained after the broker stored ours earlier in this run (what
        was retained before that can be this box's previous run)."""
        with self._lock:
            mine = (self._info_sent or {}).get("boot_id")
            acked = self._info_acked
        if mine is None or not self._connected or (retained and acked != mine):
            return
        try:
            theirs = json.loads(payload).get("boot_id")
        except (ValueError, AttributeError):
            theirs = None
        if isinstance(theirs, str) and theirs != mine:
            self._conflict(client, f"another device (boot id {theirs[:12]}) publishes this "
                           f"desk's info on {self.topic('info')}")

    def _taken_over(self, client: mqtt.Client) -> None:
        now = time.monotonic()
        window = self.settings.identity_window_s
        self._takeovers.append(now)
        while self._takeovers and self._takeovers[0] < now - window:
            self._takeovers.popleft()
        # Once in conflict, a single further takeover renews it: the other device is still there.
        need = 1 if self._identity_conflict is not None else _TAKEOVERS_FOR_CONFLICT
        if len(self._takeovers) >= need:
            self._conflict(client, f"another device uses client id {self.client_id!r}: session "
                           f"taken over {len(self._takeovers)} times within {window:g} s")
        else:
            self._set_error("session taken over by another client with this desk's client id")

    def _conflict(self, client: mqtt.Client, why: str) -> None:
        """Another device holds our identity: say so, disconnect (no will) and stay away."""
        s = self.settings
        self._conflicts += 1
        hold = min(s.identity_backoff_min_s * 2.0 ** (self._conflicts - 1),
                   s.identity_backoff_max_s)
        self._takeovers.clear()
        with self._lock:
            # What we find retained on the next connection may be the very overwrite we react
            # to now (the other box may be gone by then): judge only overwrites after our
            # info is stored again.
            self._info_acked = None
        self._identity_conflict = f"identity: {why} (config copied from another desk?)"
        self._conflict_hold = True
        self._set_error(f"{self._identity_conflict}; connecting again in {hold:g} s")
        # From inside paho's loop: a disconnect here ends the loop instead of a reconnect.
        client.disconnect()
        self._q.put(("conflict", hold))

    # -- commands ---------------------------------------------------------------------------------

    def _rate_limited(self, name: str, payload: bytes) -> bool:
        """Whether a command is over the rate; if so it is answered ``rate_limited`` (while
        such answers are themselves within their rate) or dropped, and counted either way."""
        now = time.monotonic()
        if self._command_bucket.take(now):
            return False
        if not NAME_RE.match(name) or not self._refusal_bucket.take(now):
            self.counters["commands_dropped"] += 1
            return True
        self.counters["commands_rate_limited"] += 1
        txid = read_txid(payload, self._command_limits.get(name, self.settings.command_max_bytes))
        bucket = self._command_bucket
        error = ("rate_limited", f"over {bucket.rate:g} commands a second (bursts of "
                                 f"{bucket.burst:g}); not run, send it again later")
        self._q.put(("result", name, result_payload(name, txid, False, error=error)))
        return True

    def _handle_command_message(self, topic: str, payload: bytes, retain: bool) -> None:
        prefix = self.topic("cmd/")
        if not topic.startswith(prefix):
            return
        name = topic[len(prefix) :]
        if retain:
            self.counters["commands_ignored"] += 1
            log.warning("mqtt: ignored a retained command on %s", topic)
            return
        if self._rate_limited(name, payload):
            return
        self.counters["commands"] += 1
        s = self.settings
        parsed = parse_command(
            name,
            payload,
            retain=retain,
            max_bytes=self._command_limits.get(name, s.command_max_bytes),
            max_age_s=s.command_max_age_s,
            clock_synced=clock_is_synced(),
            models=self._command_models,
        )
        if parsed is None:
            self.counters["commands_ignored"] += 1
            return
        if isinstance(parsed, Rejection):
            self.counters["commands_rejected"] += 1
            log.info("mqtt: rejected command %s: %s (%s)", name[:32], parsed.code, parsed.message)
            error = (parsed.code, parsed.message)
            self._q.put(("result", name, result_payload(name, parsed.txid, False, error=error)))
            return
        with self._lock:
            key = _run_once_key(parsed)
            if key in self._recent:
                cached = self._recent[key]
                duplicate = True
                if cached is None:  # still running: answered when its result comes
                    self._waiting[key] = self._waiting.get(key, 0) + 1
            else:
                duplicate = False
                self._recent[key] = None
                while len(self._recent) > 256:
                    self._recent.popitem(last=False)
        if duplicate:
            log.info("mqtt: command %s txid %s seen before; not run again", name, parsed.txid)
            if cached is not None:
                self._q.put(("result", name, cached))
            return
        if self.on_command is None:
            error = ("failed", "this desk takes no commands")
            self._q.put(("result", name, result_payload(name, parsed.txid, False, error=error)))
            return
        try:
            self.on_command(parsed)
        except Exception as exc:  # noqa: BLE001
            log.exception("mqtt: command handler failed for %s", name)
            self.publish_command_result(parsed, False, error=("failed", type(exc).__name__))

    # -- worker thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._open_outbox()
            while True:
                try:
                    self._step()
                except sqlite3.Error as exc:
                    self._heal(exc)
                except Exception:  # noqa: BLE001 - the worker never dies: log, go on
                    log.exception("mqtt: worker step failed; going on")
                    self._set_error("mqtt worker step failed; see the log")
                    time.sleep(_TICK_S)
                if self._stop_deadline is not None and self._stop_ready():
                    break
            self._finish()
        except Exception:  # noqa: BLE001 - log; the caller's threads go on
            log.exception("mqtt: worker failed")
            self._set_error("mqtt worker failed; see the log")
        finally:
            with contextlib.suppress(Exception):
                self._drain_late_events()
            self._settle(self._handed)
            if self._outbox is not None:
                self._outbox.close()

    def _step(self) -> None:
        """One round of the worker: take what is queued, remove what is acknowledged, keep
        the outbox within its bounds, hand stored events to paho."""
        try:
            item: tuple[Any, ...] | None = self._q.get(timeout=_TICK_S)
        except queue.Empty:
            item = None
        acks: list[int] = []
        while item is not None:
            self._handle(item, acks)
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                item = None
        if acks and self._outbox is not None:
            try:
                n = self._outbox.remove(acks)
            except sqlite3.Error as exc:  # the acknowledged rows went along: remove them there
                self._heal(exc)
                n = self._outbox.remove(acks)
            self.counters["events_acked"] += n
        self._maintain()
        self._pump()

    def _settle(self, ticket: int) -> None:
        with self._settled_cv:
            if ticket > self._settled:
                self._settled = ticket
                self._settled_cv.notify_all()

    def _open_outbox(self) -> None:
        try:
            self._outbox = self._durable_outbox()
        except (OSError, OutboxLocked, sqlite3.Error) as exc:
            self._storage_lost(f"cannot open {self.state_dir / OUTBOX_FILE}: {exc}")
        else:
            if self._outbox.recovered is not None:
                kept, lost = self._outbox.salvaged
                self._storage_incident = (
                    f"storage: {self.state_dir / OUTBOX_FILE} was unreadable; moved aside to "
                    f"{self._outbox.recovered} and a fresh one started"
                    + (f" ({kept} pending event(s) carried over, {lost} lost)"
                       if kept or lost else ""))
        assert self._outbox is not None
        if len(self._outbox):
            log.info("mqtt: %d event(s) pending from an earlier run", len(self._outbox))
        try:
            self._outbox.enforce()
        except sqlite3.Error as exc:  # damage the open did not see
            self._heal(exc)
        self._next_age_check = time.monotonic() + _AGE_CHECK_S

    def _durable_outbox(self) -> Outbox:
        s = self.settings
        return Outbox(self.state_dir / OUTBOX_FILE, max_events=s.outbox_max_events,
                      max_age_s=s.outbox_max_age_h * 3600.0)

    def _storage_lost(self, why: str, rows: list[tuple[Any, ...]] | None = None) -> None:
        """The outbox cannot be written: keep events (and ``rows`` from the old one) in
        memory, say so, and try the state directory again every `_STORAGE_RETRY_S`."""
        s = self.settings
        box = Outbox(None, max_events=s.outbox_max_events, max_age_s=s.outbox_max_age_h * 3600.0)
        box.adopt(rows or [])
        box.continue_after(self._cursor)
        self._outbox = box
        self._storage_down = f"storage: outbox not durable ({why}); events kept in memory"
        self._next_storage_try = time.monotonic() + _STORAGE_RETRY_S
        self._set_error(self._storage_down)

    def _heal(self, exc: sqlite3.Error) -> None:
        """An outbox operation failed: a damaged file is moved aside and a fresh one started,
        an unwritable one left for memory; the rows that can be read go along, under their
        own rowids (so acknowledgements of events in flight still match)."""
        box = self._outbox
        trouble = storage_trouble(exc)
        log.error("mqtt: outbox %s failed (%s: %s)", box.path if box is not None else "?",
                  trouble, exc)
        if box is None or trouble == "transient":
            time.sleep(_TICK_S / 5)
            return
        rows, lost = box.salvage()
        if lost:
            log.error("mqtt: %d stored event(s) could not be read back", lost)
        if not box.durable:  # memory itself failed: nothing better to go to
            return
        if trouble == "corrupt":
            try:
                aside = box.move_aside(exc)
                box.close()
                fresh = self._durable_outbox()
                fresh.adopt(rows)
                fresh.continue_after(self._cursor)
            except (OSError, OutboxLocked, sqlite3.Error) as exc2:
                self._storage_lost(f"{self.state_dir / OUTBOX_FILE} damaged and no fresh one: "
                                   f"{exc2}", rows)
            else:
                self._outbox = fresh
                self._storage_incident = (
                    f"storage: {self.state_dir / OUTBOX_FILE} was damaged ({exc}); moved aside "
                    f"to {aside} "
                    f"and a fresh one started ({len(rows)} pending event(s) carried over"
                    + (f", {lost} unreadable" if lost else "") + ")")
            return
        box.close()
        self._storage_lost(f"{box.path or self.state_dir / OUTBOX_FILE}: {exc}", rows)

    def _retry_storage(self) -> None:
        """Move an outbox kept in memory back to the state directory, once it can be written."""
        box = self._outbox
        assert box is not None and not box.durable
        rows, _ = box.salvage()
        try:
            fresh = self._durable_outbox()
        except (OSError, OutboxLocked, sqlite3.Error) as exc:
            log.debug("mqtt: state directory still unusable: %s", exc)
            self._next_storage_try = time.monotonic() + _STORAGE_RETRY_S
            return
        try:
            # Rows the file kept from before it failed, acknowledged since from memory, would
            # only hold up the next stop: they go (a restart would send them again).
            keep = {r[0] for r in rows}
            fresh.remove([p.rowid for p in fresh.pending(limit=len(fresh) + 1)
                          if p.rowid <= self._cursor and p.rowid not in keep])
            fresh.adopt(rows)
            fresh.continue_after(self._cursor)
            fresh.check_writable()
        except sqlite3.Error as exc:
            fresh.close()
            log.debug("mqtt: state directory still unwritable: %s", exc)
            self._next_storage_try = time.monotonic() + _STORAGE_RETRY_S
            return
        box.close()
        self._outbox = fresh
        self._storage_down = None
        log.info("mqtt: outbox durable again in %s", self.state_dir / OUTBOX_FILE)

    def _handle(self, item: tuple[Any, ...], acks: list[int]) -> None:
        kind = item[0]
        if kind == "event":
            try:
                self._store(item[1], origin=item[2])
            finally:
                self._settle(item[3])
        elif kind == "ack":
            _, mid, failed, reason = item
            rowid = self._inflight.pop(mid, None)
            if rowid is None:
                return
            if not failed:
                acks.append(rowid)
                self._hold_s = 0.0
                return
            self.counters["events_rejected"] += 1
            self._hold_s = min(max(self._hold_s * 2, 1.0), 60.0)
            self._hold_until = time.monotonic() + self._hold_s
            self._cursor = min(self._cursor, rowid - 1)
            self._set_error(f"broker refused an event ({reason}); retrying in {self._hold_s:g} s")
        elif kind == "connected":
            self._worker_connected = True
            self._live_origin = f"{self._token}:{item[1]}"
            self._hold_until = 0.0
        elif kind == "disconnected":
            self._worker_connected = False
            self._live_origin = ""
        elif kind == "telemetry":
            self._send_telemetry(item[1])
        elif kind == "info":
            with self._lock:
                info = self._info
                fresh = info is not None and info is not self._info_sent
                if fresh and self._connected:
                    self._info_sent = info
            if fresh and self._connected and self._client is not None:
                self._info_mid = self._client.publish(self.topic("info"), _dumps(info), qos=1,
                                                      retain=True).mid
        elif kind == "result":
            _, name, payload = item
            if self._client is not None:
                self._client.publish(self.topic(f"cmd/{name}/result"), _dumps(payload), qos=1)
        elif kind == "state":
            if self._client is not None and self._connected:
                self._publish_state(self._client, item[1])
        elif kind == "announce":
            if self._client is not None and self._connected:
                self._publish_announce(self._client, item[1])
        elif kind == "conflict":
            self._hold_off(float(item[1]))
        elif kind == "flush":
            item[1].set()
        elif kind == "stop":
            self._stop_deadline = time.monotonic() + float(item[1])

    def _publish_state(self, client: mqtt.Client, name: str) -> None:
        # Under the lock: a change and a connect's re-send cannot reach paho out of order.
        with self._lock:
            payload = CueState("ON" if self._states[name] else "OFF").root
            client.publish(self.topic(f"state/{name}"), payload, qos=1, retain=True)

    def _publish_announce(self, client: mqtt.Client,
                          topics: frozenset[str] | None = None) -> None:
        """Publish the ``announce`` messages (those on ``topics``; all when None), retained."""
        # Under the lock: a change and a connect's re-send cannot reach paho out of order.
        with self._lock:
            for topic, payload in self._announce:
                if topics is None or topic in topics:
                    client.publish(topic, payload, qos=1, retain=True)

    def _hold_off(self, hold: float) -> None:
        """Drop the client until ``hold`` s from now (`_maintain` makes a new one); events in
        flight stay in the outbox and go out again on the next connection."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.disconnect()
            with contextlib.suppress(Exception):
                client.loop_stop()
        self._worker_connected = False
        self._live_origin = ""
        self._inflight.clear()
        self._info_mid = None  # the next client numbers its messages afresh
        self._cursor = 0
        self._next_start = time.monotonic() + hold

    def _store(self, envelope: dict[str, Any], origin: str = "") -> None:
        """Store ``envelope``; ``origin`` is the connection it was handed over on ("" = none:
        it will be marked replayed)."""
        assert self._outbox is not None
        try:
            try:
                rowid = self._outbox.put(envelope, origin=origin)
            except sqlite3.Error as exc:  # damaged, full, read-only: heal, then try again
                self._heal(exc)
                rowid = self._outbox.put(envelope, origin=origin)
        except Exception as exc:  # noqa: BLE001 - not even in memory: say so, count it
            self._set_error(f"outbox write failed: {exc}")
            with contextlib.suppress(Exception):
                self._outbox.note_lost(envelope)
            return
        if rowid is None:
            self.counters["events_duplicate"] += 1
            return
        self.counters["events_stored"] += 1
        # A drop report never evicts another event (reports come at most once a minute, while
        # connected, when the outbox is draining anyway).
        if len(self._outbox) > self._outbox.max_events and envelope.get("type") != "outbox_dropped":
            self._outbox.enforce(self._inflight.values())

    def _maintain(self) -> None:
        now = time.monotonic()
        if (self._client is None and (self._start_error is not None or self._conflict_hold)
                and not self._stopped and now >= self._next_start):
            self._conflict_hold = False
            self._start_client()
        if (self._identity_conflict is not None and self._connected and not self._conflict_hold
                and now - self._connected_at >= self.settings.identity_window_s):
            log.info("mqtt: this desk's identity has held for %g s; conflict cleared",
                     self.settings.identity_window_s)
            self._identity_conflict = None
            self._conflicts = 0
        box = self._outbox
        if box is None:
            return
        if not box.durable and now >= self._next_storage_try:
            self._retry_storage()
            box = self._outbox
            assert box is not None
        n = box.take_set_aside()
        if n:
            where = self.state_dir / OUTBOX_FILE if box.durable else "memory"
            self._storage_incident = (
                f"storage: {box.set_aside_total} unreadable outbox row(s) set aside in {where}, "
                "table set_aside")
        if now >= self._next_age_check:
            self._next_age_check = now + _AGE_CHECK_S
            box.enforce(self._inflight.values())
        # Drops are reported once the broker can hear it, at most once a minute, so that a
        # report does not evict yet another event from a full outbox while the broker is away.
        if box.unreported is not None and self._connected and now >= self._next_report:
            self._next_report = now + _REPORT_EVERY_S
            report = box.take_unreported()
            if report is None:
                return
            if self.on_dropped is None:
                log.warning("mqtt: outbox dropped %d event(s); no on_dropped to report it",
                            report.count)  # fmt: skip
                return
            try:
                self.on_dropped(report.as_event_data())
            except Exception:  # noqa: BLE001
                log.exception("mqtt: on_dropped failed")

    def _pump(self) -> None:
        """Hand stored events to paho, in order, up to the in-flight window."""
        box, client = self._outbox, self._client
        if box is None or client is None or not (self._worker_connected and self._connected):
            return
        if time.monotonic() < self._hold_until:
            return
        window = self.settings.outbox_inflight
        inflight_rows = set(self._inflight.values())
        while len(self._inflight) < window:
            rows = box.pending(after=self._cursor, limit=window - len(self._inflight))
            if not rows:
                return
            for row in rows:
                self._cursor = row.rowid
                if row.rowid in inflight_rows:
                    continue
                payload = row.payload
                if row.origin != self._live_origin:
                    env = json.loads(payload)
                    env["replayed"] = True
                    payload = _dumps(env)
                info = client.publish(self.topic("events"), payload, qos=1, retain=False)
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    self._cursor = row.rowid - 1  # paho did not keep it: try again later
                    self._set_error(f"publish failed: {mqtt.error_string(info.rc)}")
                    return
                self._inflight[info.mid] = row.rowid
                inflight_rows.add(row.rowid)
                self.counters["events_published"] += 1
                if len(self._inflight) >= window:
                    return

    def _send_telemetry(self, reading: TelemetryReading) -> None:
        client = self._client
        if client is None or not self._connected:
            return
        data = Telemetry(
            **dict(reading), ts=round(time.time(), 3),
            outbox=self.outbox_depth(),
        ).to_json()
        props = None
        if self._v5:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.MessageExpiryInterval = int(self.settings.telemetry_expiry_s)
        client.publish(self.topic("telemetry"), _dumps(data), qos=0, retain=False, properties=props)

    def _stop_ready(self) -> bool:
        # Pending events are waited for until the deadline even while (re)connecting: a stop
        # that comes just before a CONNACK must not skip the drain it was given.
        assert self._stop_deadline is not None
        if time.monotonic() >= self._stop_deadline:
            return True
        return not self._inflight and (self._outbox is None or len(self._outbox) == 0)

    def _finish(self) -> None:
        """Publish ``offline`` by hand (the will only covers unclean ends) and wait for it."""
        client = self._client
        if client is None or not self._connected:
            return
        try:
            info = client.publish(self.topic("status"), "offline", qos=1, retain=True)
            info.wait_for_publish(1.0)
        except (RuntimeError, ValueError) as exc:
            log.info("mqtt: offline status not confirmed: %s", exc)

    def _drain_late_events(self) -> None:
        """Store events handed over while stopping; later ones go to `_store_after_stop`."""
        if self._outbox is not None:
            self._close_queue(self._store)
        else:
            self._close_queue(lambda envelope: None)

    def _close_queue(self, store: Callable[[dict[str, Any]], None]) -> None:
        """Accept no more hand-overs; pass every event still queued to ``store``."""
        with self._accept:
            self._worker_done = True
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return
            if item[0] == "event":
                try:
                    store(item[1])
                finally:
                    self._settle(item[3])

    def _store_after_stop(self, envelope: dict[str, Any]) -> None:
        """An event after `stop`: store it for the next start, from the caller's thread."""
        try:
            with Outbox(self.state_dir / OUTBOX_FILE) as box:
                box.put(envelope, origin="")
        except Exception as exc:  # noqa: BLE001
            log.error("mqtt: event %s after stop not stored: %s", envelope.get("id"), exc)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _contract(model: type[Payload], value: Payload | Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as the JSON of ``model``: a model instance is dumped, a mapping validated."""
    if not isinstance(value, model):
        value = model.model_validate(value)
    return value.to_json()
