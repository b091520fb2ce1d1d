"""The desk light, the vibration motor and the snooze button (gpiozero).

Each pattern is named for what it tells the agent. Callers hand patterns to `Indicator.show`
and `Indicator.buzz`, which only enqueue: a worker thread drives the pins, so a slow GPIO
never holds up the analysis. A pattern may come with a gate (``after``) its worker waits on
first, e.g. until the cue's event is stored for the supervisor, so that what the agent saw is
never missing upstream; later patterns queue behind it. Boots dark; `close()` leaves
everything dark.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from firmware.config.indicator import IndicatorSettings

log = logging.getLogger("deskcue.indicator")

Color = tuple[float, float, float]
Gate = Callable[[], bool]
_Item = tuple[str, str, Gate | None]


@dataclass(frozen=True)
class LightPattern:
    """A light pattern: colour and how it moves (steady, blink or pulse; times in seconds)."""

    label: str
    color: Color
    mode: str = "steady"  # "steady" | "blink" | "pulse" | "off"
    on_s: float = 0.0
    off_s: float = 0.0
    single: str = "steady"  # what a single (one-colour) LED does: steady|blink|pulse|off
    fade_s: float = 0.0  # blink: fade-out time after each on phase (seconds)
    single_s: tuple[float, float] | None = None  # a single LED's blink (on, off), seconds,
    # where it is not on_s/off_s


# Patterns by name. Colours are full scale; brightness from the config scales them.
LIGHTS: dict[str, LightPattern] = {
    "off": LightPattern("dark", (0, 0, 0), "off", single="off"),
    "warming": LightPattern("learning your usual voice (slow green breathing)", (0, 1, 0),
                            "pulse", 1.5, 1.5, single="pulse"),
    "ready": LightPattern("ready (steady dim green)", (0, 0.6, 0), "steady", single="steady"),
    "snoozed": LightPattern("snoozed (steady dim blue)", (0, 0, 0.6), "steady", single="off"),
    # Cues light at once (a blink starts on; a pulse would fade in from dark first).
    "raised_voice": LightPattern("raised voice: lower your voice (amber pulse)", (1, 0.45, 0),
                                 "blink", 0.5, 0.1, single="blink", fade_s=0.4),
    "tense_voice": LightPattern("tense voice: calm the tone (violet slow pulse)", (0.7, 0, 1),
                                "blink", 1.0, 0.2, single="blink", fade_s=0.8),
    # Not steady: steady teal differed from ready's steady green by colour alone, and for
    # an agent with tritanopia by little of that (CIEDE2000 11.6; tests/test_indicator_colours).
    "caller_escalation": LightPattern("caller's voice rising: stay steady (teal, a short dark "
                                      "beat every 1.5 s)", (0, 0.8, 0.8), "blink", 1.2, 0.3,
                                      single="blink", single_s=(0.3, 0.3)),
    "laughter": LightPattern("laughter-like burst (brief cyan flash)", (0, 0.7, 1),
                             "blink", 0.15, 0.15, single="blink"),
    "fault": LightPattern("fault: audio, config, broker link or storage (red blink)", (1, 0, 0),
                          "blink", 0.2, 1.8, single="blink"),
    "identify": LightPattern("identify (fast white blink)", (1, 1, 1), "blink", 0.1, 0.1,
                             single="blink"),
}

# Motor patterns: (duty 0-1 relative to motor_strength, seconds) steps.
BUZZES: dict[str, tuple[tuple[float, float], ...]] = {
    "raised_voice": ((1, 0.15), (0, 0.15), (1, 0.15)),  # two short buzzes
    "tense_voice": ((1, 0.5),),  # one long buzz
    "laughter": ((0.7, 0.08),),  # one discreet tick
    "caller_escalation": ((0.6, 0.1), (0, 0.2), (0.6, 0.1), (0, 0.2), (0.6, 0.1)),
    "identify": ((1, 0.3), (0, 0.3), (1, 0.3)),
}


class Indicator:
    """Drives the LED (RGB or single), the PWM motor and the snooze button.

    ``pin_factory``: a gpiozero pin factory (None = gpiozero's default). ``on_button``:
    called with "press" (snooze) or "hold" (cancel snooze) from gpiozero's thread.
    """

    def __init__(self, settings: IndicatorSettings, *, pin_factory: Any = None,
                 on_button: Callable[[str], None] | None = None,
                 unlogged: Collection[str] = ()):
        from gpiozero import PWMLED, RGBLED, Button, PWMOutputDevice

        self.s = settings
        # Light patterns shown but not logged (the journal keeps weeks of lines and is often
        # shipped off the desk): the agent's own snooze where it is private. `_logged` is the
        # last pattern logged, so the light going back to it after one of these is no line.
        self._unlogged = frozenset(unlogged)
        self._logged = "off"
        kw = {"pin_factory": pin_factory}
        self.led: Any = None
        self.rgb = settings.led == "rgb"
        if settings.led == "rgb":
            self.led = RGBLED(settings.red_pin, settings.green_pin, settings.blue_pin,
                              active_high=settings.active_high, pwm=True, **kw)
        elif settings.led == "single":
            self.led = PWMLED(settings.led_pin, active_high=settings.active_high, **kw)
        self.motor = (PWMOutputDevice(settings.motor_pin, frequency=200, **kw)
                      if settings.motor_pin is not None else None)
        self.button = None
        if settings.button_pin is not None:
            self.button = Button(settings.button_pin, pull_up=True, bounce_time=0.05,
                                 hold_time=2.0, **kw)
            if on_button is not None:
                self.button.when_pressed = lambda: on_button("press")
                self.button.when_held = lambda: on_button("hold")
        self.current = "off"
        # Light and motor have a worker each, so a buzz never delays the light.
        self._q: queue.Queue[_Item] = queue.Queue(maxsize=64)
        self._mq: queue.Queue[_Item] = queue.Queue(maxsize=16)
        self._motor_stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._worker, args=(self._q,), name="light",
                                        daemon=True)
        self._mthread = threading.Thread(target=self._worker, args=(self._mq,), name="motor",
                                         daemon=True)
        self._thread.start()
        self._mthread.start()

    # -- called from the analysis thread: never blocks -------------------------------------
    def show(self, name: str, *, after: Gate | None = None) -> None:
        """Show light pattern ``name`` (a key of `LIGHTS`) until told otherwise; with
        ``after``, once it has returned (False: it gave up waiting, and that is logged)."""
        if name not in LIGHTS:
            raise KeyError(name)
        self._put(self._q, ("light", name, after))

    def buzz(self, name: str, *, after: Gate | None = None) -> None:
        """Play motor pattern ``name`` (a key of `BUZZES`) once; with ``after`` as `show`."""
        if name in BUZZES and self.motor is not None:
            self._put(self._mq, ("buzz", name, after))

    def _put(self, q: queue.Queue[_Item], item: _Item) -> None:
        try:
            q.put_nowait(item)
        except queue.Full:  # the pins are stuck; drop rather than stall the analysis
            log.warning("indicator queue full; dropped %s", item)

    # -- workers -----------------------------------------------------------------------------
    def _worker(self, q: queue.Queue[_Item]) -> None:
        while True:
            kind, name, after = q.get()
            if kind == "stop":
                return
            try:
                if after is not None and not after():
                    log.warning("indicator: %s %s shown before its event was stored", kind, name)
                if kind == "light":
                    self._light(name)
                else:
                    self._buzz(name)
            except Exception:  # a pin error must not kill the indicator
                log.exception("indicator: %s %s failed", kind, name)

    def _light(self, name: str) -> None:
        if name == self.current:
            return
        pat = LIGHTS[name]
        if name not in self._unlogged and name != self._logged:
            self._logged = name
            log.info("LED -> %s", pat.label)
        self._drive(pat)
        # Named once the pins show it: `current` is what the light shows, not what it was
        # told (a pin error leaves the old name, and the next `show` of it drives again).
        self.current = name

    def _drive(self, pat: LightPattern) -> None:
        if self.led is None:
            return
        b = self.s.brightness
        if self.rgb:
            color = tuple(min(1.0, c * b) for c in pat.color)
            if pat.mode == "off":
                self.led.off()
            elif pat.mode == "steady":
                self.led.color = color
            elif pat.mode == "blink":
                self.led.blink(on_time=pat.on_s, off_time=pat.off_s,
                               fade_out_time=pat.fade_s, on_color=color, background=True)
            else:
                self.led.pulse(fade_in_time=pat.on_s, fade_out_time=pat.off_s,
                               on_color=color, background=True)
        else:
            mode = pat.single
            if mode == "off":
                self.led.off()
            elif mode == "steady":
                self.led.value = b
            elif mode == "blink":
                on, off = pat.single_s or (pat.on_s or 0.3, pat.off_s or 0.3)
                self.led.blink(on_time=on, off_time=off, background=True)
            else:
                self.led.pulse(fade_in_time=pat.on_s or 1.0, fade_out_time=pat.off_s or 1.0,
                               background=True)

    def _buzz(self, name: str) -> None:
        log.info("motor -> %s", name.replace("_", " "))
        assert self.motor is not None
        for duty, seconds in BUZZES[name]:
            self.motor.value = duty * self.s.motor_strength
            if self._motor_stop.wait(seconds):
                break
        self.motor.value = 0

    def close(self) -> None:
        """Go dark, stop the motor and release the pins."""
        if self._closed:
            return
        self._closed = True
        self._motor_stop.set()
        for q, t in ((self._q, self._thread), (self._mq, self._mthread)):
            with contextlib.suppress(queue.Full):
                q.put(("stop", "", None), timeout=1.0)
            t.join(timeout=2.0)
        for dev in (self.led, self.motor, self.button):
            if dev is not None:
                with contextlib.suppress(Exception):
                    dev.off() if hasattr(dev, "off") else None
                with contextlib.suppress(Exception):
                    dev.close()
        self._logged = "off"
        log.info("LED -> dark")
