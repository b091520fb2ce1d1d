"""The ``[indicator]`` section: the desk light, the vibration motor and the snooze button."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from firmware.config.section import Section


class IndicatorSettings(Section):
    """Desk LED, vibration motor and snooze button (BCM GPIO numbers)."""

    led: Literal["rgb", "single", "none"] = Field(
        "rgb", description="LED fitted: an RGB LED, a single LED, or none."
    )
    red_pin: int = Field(17, ge=0, le=27, description="BCM pin of the RGB LED's red leg.")
    green_pin: int = Field(27, ge=0, le=27, description="BCM pin of the RGB LED's green leg.")
    blue_pin: int = Field(22, ge=0, le=27, description="BCM pin of the RGB LED's blue leg.")
    led_pin: int = Field(24, ge=0, le=27, description="BCM pin of a single LED (led = single).")
    active_high: bool = Field(
        True, description="True for common-cathode LEDs (on = high), False for common-anode."
    )
    brightness: float = Field(
        0.3, gt=0.0, le=1.0, description="LED brightness 0-1 (a desk light should not glare)."
    )
    motor_pin: int | None = Field(
        18, ge=0, le=27, description="BCM pin driving the vibration motor (PWM); none if unset."
    )
    motor_strength: float = Field(0.8, gt=0.0, le=1.0, description="Motor PWM duty cycle 0-1.")
    button_pin: int | None = Field(
        23, ge=0, le=27, description="BCM pin of the snooze button (to ground); none if unset."
    )

    @model_validator(mode="after")
    def _distinct_pins(self) -> IndicatorSettings:
        used: dict[int, str] = {}
        names = ["motor_pin", "button_pin"]
        if self.led == "rgb":
            names += ["red_pin", "green_pin", "blue_pin"]
        elif self.led == "single":
            names += ["led_pin"]
        clashes = []
        for name in names:
            pin = getattr(self, name)
            if pin is None:
                continue
            if pin in used:
                clashes.append(f"{name} and {used[pin]} both use GPIO{pin}")
            else:
                used[pin] = name
        if clashes:  # all at once: a tech fixes the wiring or the file in one go
            raise ValueError("; ".join(clashes))
        return self
