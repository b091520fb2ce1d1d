"""Retained "is it active now" state: ``<prefix>/<site>/<desk>/state/<name>``, ``ON``/``OFF``.

One topic per cue, and one for the call, published retained (QoS 1) when the cue starts and
when it ends, and at every connect with the current state: a consumer that subscribes at any
time learns at once what is active (as Frigate's ``<camera>/motion``). Home Assistant's binary
sensors read them; so can any dashboard. The laughter-like cue has a state topic only where
``mqtt.publish_laughter`` is on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import RootModel

STATE_NAMES = ("raised_voice", "tense_voice", "caller", "laughter", "call")
"""Every state topic name: the three cues, the laughter-like bursts, and the call."""

StateName = Literal["raised_voice", "tense_voice", "caller", "laughter", "call"]


class CueState(RootModel[Literal["ON", "OFF"]]):
    """``state/<name>`` (plain text, retained): ``ON`` while the cue (or the call) is active,
    ``OFF`` otherwise."""

    model_config = {"frozen": True}
