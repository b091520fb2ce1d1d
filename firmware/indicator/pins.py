"""The pin factory: real GPIO on a Pi, or gpiozero's mock pins that record their history."""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal

from gpiozero import Device
from gpiozero.exc import BadPinFactory
from gpiozero.pins.mock import MockFactory, MockPWMPin

log = logging.getLogger("deskcue")

PinKind = Literal["auto", "mock"]


def pin_factory(kind: PinKind | str = "auto") -> Any:
    """gpiozero's pin factory: real GPIO (``auto``), or mock PWM pins (``mock``).

    ``auto`` on a machine without GPIO falls back to mock pins, with one warning.
    """
    if kind == "mock":
        return MockFactory(pin_class=MockPWMPin)
    try:
        with warnings.catch_warnings():  # one line below says it better than four fallbacks
            warnings.simplefilter("ignore")
            return Device._default_pin_factory()
    except BadPinFactory:
        log.warning("no GPIO on this machine: using gpiozero mock pins (the light and motor "
                    "are shown in the log only)")
        return MockFactory(pin_class=MockPWMPin)


def is_mock(factory: Any) -> bool:
    """Whether ``factory`` gives gpiozero's mock pins: pins that record what they are told,
    with no LED anyone can see, no motor anyone can feel and no button anyone can press."""
    return isinstance(factory, MockFactory)
