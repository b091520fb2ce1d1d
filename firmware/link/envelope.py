"""The event envelope every published event shares, and the per-boot identity behind it.

Consumers drop duplicates by ``id`` and spot gaps by (``boot_id``, ``seq``). Time on a Pi
without a real-time clock may be wrong until NTP syncs: ``clock_synced`` says which.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from firmware.platform.host import clock_is_synced

SCHEMA_VERSION = 1



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

    def stamp(self, event_type: str, data: dict[str, Any], *, stream_s: float) -> dict[str, Any]:
        """Wrap ``data`` for event ``event_type`` that happened at stream time ``stream_s`` (s)."""
        self.seq += 1
        now = float(self.wall_clock())
        return {
            "schema": SCHEMA_VERSION,
            "id": uuid.uuid5(uuid.NAMESPACE_OID, f"{self.boot_id}/{self.seq}").hex,
            "boot_id": self.boot_id,
            "seq": self.seq,
            "ts": round(now, 3),
            "ts_iso": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            + f".{int((now % 1) * 1000):03d}Z",
            "clock_synced": bool(self.synced()),
            "stream_s": round(stream_s, 3),
            "type": event_type,
            "data": data,
        }
