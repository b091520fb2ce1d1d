"""The pin factory: real GPIO on a Pi, or gpiozero's mock pins that record their history."""

from __future__ import annotations

import logging
import warnings
from collections import deque
from time import monotonic
from typing import Any, Literal

from gpiozero import Device
from gpiozero.exc import BadPinFactory
from gpiozero.pins.mock import MockFactory, MockPWMPin, PinState

log = logging.getLogger("deskcue")

PinKind = Literal["auto", "mock"]

PIN_HISTORY = 10_000
"""Changes a mock pin remembers (the latest). gpiozero's own keeps every change for as long
as the process runs: a breathing light changes each pin 25 times a second, 8 MB an hour of
history on a desk left learning or showing a fault on mock pins for days."""


class RecentMockPWMPin(MockPWMPin):  # type: ignore[misc]
    """gpiozero's mock PWM pin, with the history (``states``) of its latest `PIN_HISTORY`
    changes only."""

    def clear_states(self) -> None:
        self._last_change = monotonic()
        self.states = deque([PinState(0.0, self._state)], maxlen=PIN_HISTORY)


def pin_factory(kind: PinKind | str = "auto") -> Any:
    """gpiozero's pin factory: real GPIO (``auto``), or mock PWM pins (``mock``).

    ``auto`` on a machine without GPIO falls back to mock pins, with one warning.
    """
    if kind == "mock":
        return MockFactory(pin_class=RecentMockPWMPin)
    try:
        with warnings.catch_warnings():  # one line below says it better than four fallbacks
            warnings.simplefilter("ignore")
            return Device._default_pin_factory()
    except BadPinFactory:
        log.warning("no GPIO on this machine: using gpiozero mock pins (the light and motor "
                    "are shown in the log only)")
        return MockFactory(pin_class=RecentMockPWMPin)


def is_mock(factory: Any) -> bool:
    """Whether ``factory`` gives gpiozero's mock pins: pins that record what they are told,
    with no LED anyone can see, no motor anyone can feel and no button anyone can press."""
    return isinstance(factory, MockFactory)
