"""The event envelope every published event shares, and the per-boot identity behind it.

Consumers drop duplicates by ``id`` and spot gaps by (``boot_id``, ``seq``). Time on a Pi
without a real-time clock may be wrong until NTP syncs: ``clock_synced`` says which.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from firmware.contract.base import Payload
from firmware.contract.events import EventEnvelope
from firmware.platform.host import clock_is_synced

SCHEMA_VERSION: Literal[1] = 1

@dataclass
class EventStamper:
    """Stamps event payloads into envelopes: unique id, boot id, sequence, timestamps.

    ``wall_clock`` is a callable returning Unix seconds; `analyze` passes a fixed-origin clock
    so that its output is reproducible.
    """

    boot_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    seq: int = 0
    wall_clock: Any = time.time
    synced: Any = clock_is_synced

    def stamp(self, event_type: str, data: Payload | Mapping[str, Any], *,
              stream_s: float) -> EventEnvelope:
        """Wrap ``data`` for event ``event_type`` that happened at stream time ``stream_s`` (s).

        ``data`` is the contract's model for the type (a mapping is validated into it, so an
        off-contract event fails here, at its producer, with a `pydantic.ValidationError`).
        """
        # One millisecond count for both stamps: rounding ts and cutting ts_iso told
        # consumers two different times in about half the events.
        ms = round(float(self.wall_clock()) * 1000)
        sec, milli = divmod(ms, 1000)
        env = EventEnvelope(
            schema_version=SCHEMA_VERSION,
            id=uuid.uuid5(uuid.NAMESPACE_OID, f"{self.boot_id}/{self.seq + 1}").hex,
            boot_id=self.boot_id,
            seq=self.seq + 1,
            ts=ms / 1000,
            ts_iso=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{milli:03d}Z",
            clock_synced=bool(self.synced()),
            stream_s=round(float(stream_s), 3),
            type=event_type,  # type: ignore[arg-type]
            data=data,  # type: ignore[arg-type]
        )
        self.seq += 1  # only once the event is valid: a refused one leaves no gap
        return env
