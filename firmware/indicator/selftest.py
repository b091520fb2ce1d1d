"""The pins as `deskcue selftest` drives them: each LED leg, the motor, the button, read back.

`Indicator` drives patterns for the agent; the self-test needs the parts one by one and
needs to read back what each pin is driving, so it gets these small wrappers instead. They
keep gpiozero inside this room: the command (firmware/cli/selftest.py) only asks and judges.
A pin that cannot be claimed (busy, no GPIO chip, a bad number) is an `IndicatorError`
naming the pins, whatever gpiozero raised.
"""

from __future__ import annotations

import contextlib
from typing import Any

from firmware.config.indicator import IndicatorSettings
from firmware.errors import IndicatorError


def _close(devices: list[Any]) -> None:
    for dev in devices:
        with contextlib.suppress(Exception):
            dev.close()


class LedLegs:
    """The LED as one PWM output per leg (red, green, blue; or the single LED), so each pin
    can be set and read back. Use as a context manager; `close` releases the pins."""

    def __init__(self, settings: IndicatorSettings, *, pin_factory: Any = None):
        from gpiozero import PWMLED

        s = settings
        self.active_high = s.active_high
        self.numbers: tuple[int, ...] = ((s.red_pin, s.green_pin, s.blue_pin) if s.led == "rgb"
                                         else (s.led_pin,) if s.led == "single" else ())
        self._legs: list[Any] = []
        try:
            for n in self.numbers:
                self._legs.append(PWMLED(n, active_high=s.active_high, pin_factory=pin_factory))
        except Exception as exc:  # gpiozero raises many kinds: busy pin, no GPIO chip ...
            _close(self._legs)
            raise IndicatorError(f"cannot drive the LED pins ({self.pins}): {exc}") from exc

    @property
    def pins(self) -> str:
        """The LED's pins for messages, e.g. ``GPIO 17/27/22``."""
        return "GPIO " + "/".join(str(n) for n in self.numbers)

    def show(self, levels: tuple[float, ...]) -> list[str]:
        """Set each leg to its level (0-1, one per pin); what did not follow, e.g.
        ``GPIO17 reads 0.00`` (empty when every pin drives what it was told)."""
        wrong = []
        for leg, n, want in zip(self._legs, self.numbers, levels, strict=True):
            leg.value = want
            want_pin = want if self.active_high else 1.0 - want
            got = float(leg.pin.state)
            if abs(got - want_pin) > 0.01:
                wrong.append(f"GPIO{n} reads {got:.2f}")
        return wrong

    def off(self) -> None:
        for leg in self._legs:
            leg.off()

    def close(self) -> None:
        _close(self._legs)
        self._legs = []

    def __enter__(self) -> LedLegs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Motor:
    """The vibration motor as a PWM output whose pin can be read back."""

    def __init__(self, settings: IndicatorSettings, *, pin_factory: Any = None):
        from gpiozero import PWMOutputDevice

        if settings.motor_pin is None:
            raise IndicatorError("no motor fitted (indicator.motor_pin = none)")
        self.pin_number = settings.motor_pin
        try:
            self._motor = PWMOutputDevice(self.pin_number, frequency=200,
                                          pin_factory=pin_factory)
        except Exception as exc:
            raise IndicatorError(f"cannot drive GPIO{self.pin_number}: {exc}") from exc

    def drive(self, value: float) -> float:
        """Run the motor at ``value`` (0-1); what its pin drives now."""
        self._motor.value = value
        return float(self._motor.pin.state)

    def close(self) -> None:
        _close([self._motor])

    def __enter__(self) -> Motor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_for_press(settings: IndicatorSettings, timeout_s: float, *,
                   pin_factory: Any = None) -> bool:
    """Whether the snooze button was pressed within ``timeout_s`` seconds."""
    from gpiozero import Button

    if settings.button_pin is None:
        raise IndicatorError("no button fitted (indicator.button_pin = none)")
    try:
        button = Button(settings.button_pin, pull_up=True, bounce_time=0.05,
                        pin_factory=pin_factory)
    except Exception as exc:
        raise IndicatorError(f"cannot read GPIO{settings.button_pin}: {exc}") from exc
    try:
        return bool(button.wait_for_press(timeout=timeout_s))
    finally:
        _close([button])
