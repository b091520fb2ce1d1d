"""The self-test drives the pins through the indicator room (the only one that imports
gpiozero: tests/test_architecture.py checks that)."""

from __future__ import annotations

import io
import threading

import pytest
from gpiozero import PWMOutputDevice
from gpiozero.pins.mock import MockFactory, MockPWMPin
from waiting import wait_until

from firmware.cli import selftest as st
from firmware.config.indicator import IndicatorSettings
from firmware.errors import IndicatorError
from firmware.indicator.desk import Indicator
from firmware.indicator.selftest import LedLegs, Motor, wait_for_press


def test_led_legs_read_back_each_pin_and_follow_active_low():
    factory = MockFactory(pin_class=MockPWMPin)
    s = IndicatorSettings(active_high=False)
    with LedLegs(s, pin_factory=factory) as legs:
        assert legs.pins == f"GPIO {s.red_pin}/{s.green_pin}/{s.blue_pin}"
        assert legs.show((1.0, 0.0, 0.5)) == []
        assert factory.pin(s.red_pin).state == 0.0  # active low: on is a low pin
        assert factory.pin(s.green_pin).state == 1.0
    # released: the pins can be claimed again
    LedLegs(s, pin_factory=factory).close()


def test_motor_drives_and_reads_its_pin():
    factory = MockFactory(pin_class=MockPWMPin)
    s = IndicatorSettings()
    with Motor(s, pin_factory=factory) as motor:
        assert motor.drive(0.8) == pytest.approx(0.8)
        assert motor.drive(0) == 0.0


def test_a_pin_that_is_taken_is_an_indicator_error_naming_it():
    factory = MockFactory(pin_class=MockPWMPin)
    s = IndicatorSettings()
    busy = PWMOutputDevice(s.green_pin, pin_factory=factory)
    try:
        with pytest.raises(IndicatorError, match=f"cannot drive the LED pins \\(GPIO {s.red_pin}/"):
            LedLegs(s, pin_factory=factory)
        # the legs claimed before the failure were released again
        PWMOutputDevice(s.red_pin, pin_factory=factory).close()
        step = st.check_led(s, factory, st.Console(assume_yes=True, out=io.StringIO()), 0.0)
        assert step.status == "FAIL" and "cannot drive the LED pins" in step.detail
    finally:
        busy.close()


def test_wait_for_press_sees_a_press():
    factory = MockFactory(pin_class=MockPWMPin)
    s = IndicatorSettings()
    pin = factory.pin(s.button_pin)
    pin.drive_high()
    assert wait_for_press(s, 0.05, pin_factory=factory) is False
    threading.Timer(0.05, pin.drive_low).start()
    assert wait_for_press(s, 2.0, pin_factory=factory) is True


def test_the_light_is_named_only_once_its_pins_show_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """`Indicator.current` is what the light shows: while the pins are still being driven
    (the blue leg held mid-write here) it names the pattern before, never the new one."""
    factory = MockFactory(pin_class=MockPWMPin)
    s = IndicatorSettings()
    indicator = Indicator(s, pin_factory=factory)
    try:
        blue = factory.pin(s.blue_pin)
        writing, release = threading.Event(), threading.Event()
        set_state = MockPWMPin._set_state

        def held(pin: MockPWMPin, value: float) -> None:
            if pin is blue and value > 0 and not writing.is_set():
                writing.set()
                release.wait(60)
            set_state(pin, value)

        monkeypatch.setattr(MockPWMPin, "_set_state", held)
        indicator.show("snoozed")
        assert writing.wait(60)
        named_mid_write = indicator.current
        release.set()
        wait_until(lambda: indicator.current == "snoozed")
        assert named_mid_write == "off"
        assert factory.pin(s.red_pin).state == 0.0 and blue.state > 0.0
    finally:
        release.set()
        indicator.close()


def test_mock_pins_remember_a_bounded_history() -> None:
    """A desk without GPIO runs on mock pins (``--pins mock``, or ``auto`` falling back with a
    warning) for as long as it runs. A breathing light changes each pin 25 times a second;
    a pin's history must not keep every change for days (8 MB an hour)."""
    from firmware.indicator.pins import PIN_HISTORY, pin_factory

    factory = pin_factory("mock")
    dev = PWMOutputDevice(18, pin_factory=factory)
    try:
        pin = factory.pin(18)
        for i in range(3 * PIN_HISTORY):  # what 10 minutes of breathing sets, directly
            dev.value = (i % 100) / 100 + 0.005
        assert len(pin.states) <= PIN_HISTORY
        assert pin.states[-1].state == dev.value  # the latest changes are the ones kept
    finally:
        dev.close()
