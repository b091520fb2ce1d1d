"""The supervisor's side of the broker: a small MQTT client for the tools that read the desks.

`deskcue monitor`, `deskcue selftest`'s round trip and `deskcue demo`'s subscriber connect,
subscribe, publish and close through `SupervisorClient`, logged in as the desk logs in
(`firmware.link.login`); the desk's own link, with its outbox and commands, is
`firmware.link.mqtt_client`. These two modules alone import paho.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware.config.mqtt import MqttSettings
from firmware.link.login import log_in, reason_failed, refusal

log = logging.getLogger(__name__)


class BrokerError(ConnectionError):
    """The broker could not be used: not reachable, refused us, or refused a subscription."""


class SupervisorClient:
    """A small MQTT client for tools on the supervisor's side of the broker (`deskcue
    monitor`, `deskcue selftest`'s round trip, `deskcue demo`'s subscriber): connect with the
    same TLS and credentials code as the desk, subscribe, publish, close.

    ``on_message(topic, payload, retain)`` runs on the network thread for each message and
    must not block; exceptions it raises are logged. ``host``/``port`` override the
    settings'. Use as a context manager, or call `close`.
    """

    def __init__(self, settings: MqttSettings, *, client_id: str = "",
                 on_message: Callable[[str, bytes, bool], None] | None = None,
                 host: str | None = None, port: int | None = None) -> None:
        self.host = host or settings.host
        self.port = port or settings.port
        self.on_message = on_message
        v5 = settings.protocol == "5"
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id[:64],
                                   protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
        self._client.suppress_exceptions = True
        self._login = log_in(self._client, settings)  # CredentialsError: the caller says why
        self._connected = threading.Event()
        self._refused: str | None = None
        self._acks: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._acks_lock = threading.Lock()  # a SUBACK can beat `subscribe` registering it
        self._topics: list[tuple[str, int]] = []
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._started = False
        self._up = False  # connected and accepted now (paho reconnects by itself)

    @property
    def connected(self) -> bool:
        """True while the broker has accepted the connection; False once it is lost, until
        paho's reconnect is accepted again."""
        return self._up

    def connect(self, timeout: float = 5.0) -> SupervisorClient:
        """Connect and wait for the broker to accept; raises `BrokerError` (or OSError)."""
        where = f"{self.host}:{self.port}"
        try:
            self._client.connect(self.host, self.port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise BrokerError(f"cannot connect to {where}: {exc}") from None
        self._client.loop_start()
        self._started = True
        if not self._connected.wait(timeout):
            raise BrokerError(f"{where}: no answer")
        if self._refused:
            raise BrokerError(f"{where}: refused: {self._refused}")
        return self

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 5.0) -> None:
        """Subscribe (again after a reconnect) and wait for the SUBACK; `BrokerError` if the
        broker refuses (an ACL) or does not answer."""
        done, codes = threading.Event(), list[Any]()
        with self._acks_lock:
            rc, mid = self._client.subscribe(topic, qos=qos)
            if rc != mqtt.MQTT_ERR_SUCCESS or mid is None:
                raise BrokerError(f"subscribe to {topic} failed: {mqtt.error_string(rc)}")
            self._acks[mid] = (done, codes)
        if not done.wait(timeout):
            raise BrokerError(f"subscription to {topic} not answered")
        if any(reason_failed(c) for c in codes):
            raise BrokerError(f"subscription to {topic} refused (broker ACL?)")
        self._topics.append((topic, qos))

    def publish(self, topic: str, payload: str | bytes, *, qos: int = 1,
                retain: bool = False) -> None:
        """Publish (queued by paho; QoS 1 is delivered once the connection allows)."""
        self._client.publish(topic, payload, qos=qos, retain=retain)

    def close(self) -> None:
        """Disconnect and stop the network thread (idempotent)."""
        with contextlib.suppress(Exception):
            self._client.disconnect()
        if self._started:
            self._client.loop_stop()
            self._started = False

    def __enter__(self) -> SupervisorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        # a refusal for this client's settings says which setting, as the desk's fault does
        self._refused = ((refusal(rc, self._login) or str(rc))
                         if reason_failed(rc) else None)
        self._up = self._refused is None
        if self._refused is None:
            for topic, qos in self._topics:  # paho reconnected: subscribe again
                client.subscribe(topic, qos=qos)
        self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        self._up = False

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, rcs: Any, _p: Any) -> None:
        with self._acks_lock:
            waiter = self._acks.pop(mid, None)
        if waiter is not None:
            waiter[1].extend(rcs or [])
            waiter[0].set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if self.on_message is None:
            return
        try:
            self.on_message(msg.topic, bytes(msg.payload), bool(msg.retain))
        except Exception:  # noqa: BLE001 - never into paho's thread
            log.exception("mqtt: message handler failed for %s", msg.topic)
