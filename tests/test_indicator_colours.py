"""The desk light for an agent who does not see colours as most do: every two light patterns
that move alike (both steady, or blinking at much the same rhythm) must be told apart by
colour under each common colour-vision deficiency, simulated as Machado, Oliveira and
Fernandes (2009) do for protanopia, deuteranopia and tritanopia (severity 1.0).

The patterns are read from the LED's pins (gpiozero mock PWM pins, one `Indicator` each),
not from the pattern table: the colour a pattern reaches and the rhythm it moves in.
LED duty is linear light, so the simulation takes it as linear RGB; the distance is
CIEDE2000 between the simulated colours in CIELAB (D65). An LED's primaries are not sRGB's,
so the figures are a guide to which pairs are close, not a measurement of a given LED.
"""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from firmware.config.indicator import IndicatorSettings
from firmware.indicator.desk import LIGHTS, Indicator

MACHADO = {  # severity 1.0, applied to linear RGB
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}
VISIONS = {"typical": np.eye(3), **MACHADO}
MIN_DE = 20.0
"""Least CIEDE2000 distance between two colours that move alike. About 10 is a difference
seen side by side; a lone desk light is compared with a colour remembered, so twice that."""
WATCH_S = 7.0  # two cycles of the slowest rhythm (learning breathes in 3 s)


def _lab(rgb: np.ndarray) -> np.ndarray:
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ np.clip(rgb, 0, 1)
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> float:
    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    cb = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(cb ** 7 / (cb ** 7 + 25 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1, c2 = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1 = math.degrees(math.atan2(b1, a1p)) % 360
    h2 = math.degrees(math.atan2(b2, a2p)) % 360
    dh = 0.0 if c1 * c2 == 0 else (h2 - h1 + 180) % 360 - 180
    d_h = 2 * math.sqrt(c1 * c2) * math.sin(math.radians(dh / 2))
    lm, cm = (l1 + l2) / 2, (c1 + c2) / 2
    if c1 * c2 == 0:
        hm = h1 + h2
    elif abs(h1 - h2) <= 180:
        hm = (h1 + h2) / 2
    else:
        hm = (h1 + h2 + 360) / 2 if h1 + h2 < 360 else (h1 + h2 - 360) / 2
    t = (1 - 0.17 * math.cos(math.radians(hm - 30)) + 0.24 * math.cos(math.radians(2 * hm))
         + 0.32 * math.cos(math.radians(3 * hm + 6)) - 0.20 * math.cos(math.radians(4 * hm - 63)))
    rc = 2 * math.sqrt(cm ** 7 / (cm ** 7 + 25 ** 7))
    rt = -math.sin(math.radians(60 * math.exp(-(((hm - 275) / 25) ** 2)))) * rc
    sl = 1 + 0.015 * (lm - 50) ** 2 / math.sqrt(20 + (lm - 50) ** 2)
    sc, sh = 1 + 0.045 * cm, 1 + 0.015 * cm * t
    dl, dc = (l2 - l1) / sl, (c2 - c1) / sc
    return math.sqrt(dl ** 2 + dc ** 2 + (d_h / sh) ** 2 + rt * dc * (d_h / sh))


def test_ciede2000_matches_the_published_test_data() -> None:
    # Sharma, Wu and Dalal (2005), pairs 1, 7 and 17
    assert ciede2000(np.array([50, 2.6772, -79.7751]), np.array([50, 0, -82.7485])) == \
        pytest.approx(2.0425, abs=1e-4)
    assert ciede2000(np.array([50, 0, 0]), np.array([50, -1, 2])) == \
        pytest.approx(2.3669, abs=1e-4)
    assert ciede2000(np.array([50, 2.5, 0]), np.array([73, 25, -18])) == \
        pytest.approx(27.1492, abs=1e-4)


def _watch() -> dict[str, tuple[np.ndarray, float, float]]:
    """Pattern -> (the colour it reaches, full scale; its period, s; the share of that
    period it is lit), read from the pins of an RGB `Indicator` showing it."""
    settings = IndicatorSettings(led="rgb", brightness=1.0, motor_pin=None, button_pin=None)
    desks = {}
    for name in LIGHTS:
        if name == "off":
            continue
        factory = MockFactory(pin_class=MockPWMPin)
        desks[name] = (Indicator(settings, pin_factory=factory), factory)
        desks[name][0].show(name)
    start = time.monotonic()
    time.sleep(WATCH_S)  # a window to watch the light move in, not a wait for a result
    out = {}
    for name, (ind, factory) in desks.items():
        pins = [factory.pin(n) for n in (settings.red_pin, settings.green_pin,
                                         settings.blue_pin)]
        # each pin's duty on a 10 ms grid from when the pattern began (a mock pin keeps each
        # change with the time since the one before: all three pins began together)
        grid = np.arange(0.2, WATCH_S - 0.1, 0.01)
        duty = np.zeros((3, grid.size))
        for k, p in enumerate(pins):
            ts = np.cumsum([s.timestamp for s in p.states])
            vs = np.array([float(s.state) for s in p.states])
            idx = np.searchsorted(ts, grid, side="right") - 1
            duty[k] = vs[np.clip(idx, 0, None)]
        ind.close()
        level = duty.max(axis=0)
        colour = duty[:, level.argmax()]
        lit = level > 0.5 * level.max()
        rises = grid[1:][lit[1:] & ~lit[:-1]]
        period = float(np.median(np.diff(rises))) if rises.size >= 2 else 0.0
        out[name] = (colour, period, float(lit.mean()))
    assert time.monotonic() - start < WATCH_S + 30
    return out


def _alike(a: tuple[np.ndarray, float, float], b: tuple[np.ndarray, float, float]) -> bool:
    """Whether two lights move alike: both steady, or periods within 20 % and lit for
    shares of them within a quarter."""
    if a[1] == 0.0 or b[1] == 0.0:
        return a[1] == b[1]
    return abs(a[1] - b[1]) <= 0.2 * max(a[1], b[1]) and abs(a[2] - b[2]) <= 0.25


def test_lights_that_move_alike_differ_in_colour_for_colour_blind_agents() -> None:
    """Ready (steady dim green) and the caller's escalation (steady teal) differed by colour
    alone, and under tritanopia by CIEDE2000 11.6: an agent could read a rising caller as
    "all is well"."""
    seen = _watch()
    assert seen["ready"][1] == 0.0 and seen["raised_voice"][1] > 0.0  # the watching works
    close = []
    for a, b in itertools.combinations(seen, 2):
        if not _alike(seen[a], seen[b]):
            continue
        for vision, m in VISIONS.items():
            de = ciede2000(_lab(m @ seen[a][0]), _lab(m @ seen[b][0]))
            if de < MIN_DE:
                close.append((a, b, vision, round(de, 1)))
    assert not close, close
