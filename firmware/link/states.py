"""Which desk events turn which retained state topic (``state/<name>``) ON or OFF.

The appliance calls `state_change` for every policy event (published or not: the laughter-like
cue itself is an event for the desk only, ``laughter.cue``) and hands a change to the link's
`MqttLink.set_state`; the link keeps the current states and sends them again at every connect.
"""

from __future__ import annotations

from firmware.config.mqtt import MqttSettings
from firmware.contract.states import STATE_NAMES

STATE_CHANGES: dict[str, tuple[str, bool]] = {
    "raised_voice.started": ("raised_voice", True),
    "raised_voice.ended": ("raised_voice", False),
    "tense_voice.started": ("tense_voice", True),
    "tense_voice.ended": ("tense_voice", False),
    "caller.started": ("caller", True),
    "caller.ended": ("caller", False),
    "laughter.cue": ("laughter", True),  # the cue, as the agent sees it
    "laughter_burst": ("laughter", False),  # judged once the train of bursts is over
    "call.started": ("call", True),
    "call.ended": ("call", False),
}
"""Policy event type -> (state name, active)."""


def state_change(event_type: str) -> tuple[str, bool] | None:
    """(state name, active) that ``event_type`` sets; None for an event that sets none."""
    return STATE_CHANGES.get(event_type)


def state_names(settings: MqttSettings) -> tuple[str, ...]:
    """The state topics this desk publishes: every cue and the call; laughter only where
    ``mqtt.publish_laughter`` lets supervisors hear of it."""
    return tuple(n for n in STATE_NAMES if n != "laughter" or settings.publish_laughter)
