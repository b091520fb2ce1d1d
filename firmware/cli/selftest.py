"""`deskcue selftest`: in a minute, does this desk's LED, motor, headset tap and broker work?

Steps, each PASS, FAIL or SKIP, then a summary and exit code: 0 when nothing failed and at
least one step passed; 1 when a step failed, or when every step was skipped (RESULT: NOT
TESTED: nothing was checked, so nothing can be said to work):

1. **LED**: shows red, green, blue and white in turn (a single LED blinks) and checks every
   pin took the value it was given; the tech confirms the colours.
2. **motor**: buzzes twice; the tech confirms feeling it.
3. **button**: (interactive only) the tech presses the snooze button within 10 s.

On gpiozero mock pins (``--pins mock``, or a machine without GPIO) there is no LED to see, no
motor to feel and no button to press: those checks are SKIPped and say so, asking nothing;
what mock pins can show (each pin took the value it was given) is still checked, and a pin
that did not follow FAILs. With ``--yes`` nobody is asked, so those three are SKIP too.
4. **audio**: shows a live level meter per channel while the tech speaks into the headset,
   then says which channel carried the voice (the agent) and whether that matches
   ``audio.agent_channel``; no signal at all is a failure.
5. **broker**: connects with the desk's own settings (TLS, credentials), subscribes to
   ``<prefix>/<site>/<desk>/selftest`` and publishes a message there (QoS 1, not retained):
   the round trip must come back within 5 s.

Run it with the appliance stopped (it needs the pins and the capture device)::

    sudo systemctl stop deskcue && sudo deskcue selftest --config /etc/deskcue/deskcue.toml

Non-interactive (CI, a bench): ``--pins mock --source FILE.wav --yes --broker HOST:PORT``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from firmware.audio.source import (
    EndOfStream,
    PyAudioSource,
    WavFileSource,
    list_input_devices,
    open_pyaudio,
)
from firmware.cli.args import number_in
from firmware.config.audio import AudioSettings
from firmware.config.indicator import IndicatorSettings
from firmware.config.load import load_settings
from firmware.config.settings import Settings
from firmware.contract.desk import SelftestPing
from firmware.errors import AudioError, CredentialsError, IndicatorError
from firmware.indicator.pins import is_mock, pin_factory
from firmware.indicator.selftest import LedLegs, Motor, wait_for_press
from firmware.platform.control_socket import SOCKET_NAME

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
COLOURS = (("red", (1.0, 0.0, 0.0)), ("green", (0.0, 1.0, 0.0)), ("blue", (0.0, 0.0, 1.0)),
           ("white", (1.0, 1.0, 1.0)))
SILENT_DBFS = -70.0  # a channel never louder than this carries no signal
DISTINCT_DB = 6.0  # the agent's channel must be this much louder while the tech speaks


@dataclass(frozen=True)
class Step:
    """One self-test step's outcome."""

    name: str
    status: str
    detail: str


class Console:
    """Talks to the tech: messages, yes/no questions, a live meter line.

    ``assume_yes``: never ask (`confirm` counts as answered yes; the steps do not ask a
    non-interactive console at all and report SKIP). ``answers``: scripted
    replies instead of the keyboard (tests).
    """

    def __init__(self, *, assume_yes: bool, out: TextIO | None = None,
                 ask: Callable[[str], str] | None = None):
        self.assume_yes = assume_yes
        self.out = out or sys.stdout
        self._ask = ask or input
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self._meter_shown = False

    @property
    def interactive(self) -> bool:
        """True when the tech is asked questions."""
        return not self.assume_yes

    def say(self, text: str) -> None:
        """Print a line (ending a meter line first)."""
        if self._meter_shown:
            self.out.write("\n")
            self._meter_shown = False
        self.out.write(text + "\n")
        self.out.flush()

    def confirm(self, question: str) -> bool:
        """Ask a yes/no question; True without asking when ``assume_yes``."""
        if self.assume_yes:
            return True
        while True:
            try:
                reply = self._ask(f"{question} [y/n] ").strip().lower()
            except EOFError:
                return False
            if reply in ("y", "yes"):
                return True
            if reply in ("n", "no"):
                return False

    def meter(self, text: str) -> None:
        """Show a meter line: redrawn in place on a terminal, else printed now and then."""
        if self.tty:
            self.out.write("\r" + text + "\x1b[K")
            self.out.flush()
            self._meter_shown = True
        else:
            self.say(text)


# -- LED, motor, button ----------------------------------------------------------------------


NO_EYES = "mock pins: no LED anyone can see, so the colours were not checked"
NO_HANDS = "mock pins: no motor anyone can feel, so the buzz was not checked"
NO_BUTTON = "mock pins: no button anyone can press, so the button was not checked"
NOT_ASKED = "not asked (--yes)"


def check_led(s: IndicatorSettings, factory: Any, ui: Console, step_s: float, *,
              seen: bool | None = None) -> Step:
    """Walk the LED through its colours and check each pin followed.

    ``seen``: whether a person can see the LED (default: unless ``factory`` gives mock
    pins). When nobody can, nothing is asked and the step is SKIP (pins that did not
    follow still FAIL).
    """
    seen = not is_mock(factory) if seen is None else seen
    if s.led == "none":
        return Step("LED", SKIP, "no LED fitted (indicator.led = none)")
    try:
        legs = LedLegs(s, pin_factory=factory)
    except IndicatorError as exc:
        return Step("LED", FAIL, str(exc))
    if s.led == "rgb":
        ui.say("LED: red, green, blue, white ...")
        sequence: list[tuple[str, tuple[float, ...]]] = list(COLOURS)
        question = "Did the LED show red, then green, then blue, then white?"
    else:
        sequence = [("on", (1.0,)), ("off", (0.0,)), ("on", (1.0,))]
        question = "Did the LED light, go dark and light again?"
    names = ", ".join(name for name, _ in sequence)
    ui.say(f"LED: {names} ..." if seen else f"LED: {names} on the pins ({NO_EYES}) ...")
    wrong = []
    with legs:
        for name, colour in sequence:
            wrong += [f"{name}: {w}" for w in legs.show(colour)]
            if seen:
                time.sleep(step_s)
        legs.off()
        ask = seen and ui.interactive and not wrong
        confirmed = ui.confirm(question) if ask else False
    if wrong:
        return Step("LED", FAIL, f"pins did not follow ({legs.pins}): " + "; ".join(wrong))
    took = f"each pin ({legs.pins}) took the value it was given ({names})"
    if not seen:
        return Step("LED", SKIP, f"{NO_EYES}; {took}")
    if not ui.interactive:
        return Step("LED", SKIP, f"{NOT_ASKED}: nobody confirmed the colours; {took}")
    if not confirmed:
        return Step("LED", FAIL, f"tech did not see the colours: check the wiring ({legs.pins}, "
                    f"indicator.active_high = {str(s.active_high).lower()})")
    return Step("LED", PASS, f"red, green, blue, white on {legs.pins}" if s.led == "rgb"
                else f"single LED on {legs.pins}")


def check_motor(s: IndicatorSettings, factory: Any, ui: Console, step_s: float, *,
                felt: bool | None = None) -> Step:
    """Buzz the vibration motor twice and check its pin followed.

    ``felt``: whether a person can feel the motor (default: unless ``factory`` gives mock
    pins); when nobody can, nothing is asked and the step is SKIP.
    """
    can_feel = not is_mock(factory) if felt is None else felt
    if s.motor_pin is None:
        return Step("motor", SKIP, "no motor fitted (indicator.motor_pin = none)")
    try:
        motor = Motor(s, pin_factory=factory)
    except IndicatorError as exc:
        return Step("motor", FAIL, str(exc))
    readings = []
    pause = step_s if can_feel else 0.0
    with motor:
        ui.say("motor: two buzzes ..." if can_feel else f"motor: two buzzes on the pin "
               f"({NO_HANDS}) ...")
        for _ in range(2):
            readings.append(motor.drive(s.motor_strength))
            time.sleep(pause)
            readings.append(motor.drive(0))
            time.sleep(pause / 2)
        expected = [s.motor_strength, 0.0] * 2
        followed = all(abs(r - e) <= 0.01 for r, e in zip(readings, expected, strict=True))
        confirmed = (followed and can_feel and ui.interactive
                     and ui.confirm("Did you feel the motor buzz twice?"))
    if not followed:
        return Step("motor", FAIL, f"GPIO{s.motor_pin} did not follow: {readings}")
    took = f"GPIO{s.motor_pin} took {s.motor_strength:g} and 0 twice, as driven"
    if not can_feel:
        return Step("motor", SKIP, f"{NO_HANDS}; {took}")
    if not ui.interactive:
        return Step("motor", SKIP, f"{NOT_ASKED}: nobody confirmed the buzz; {took}")
    if not confirmed:
        return Step("motor", FAIL, f"not felt: check the motor and its driver on "
                    f"GPIO{s.motor_pin}")
    return Step("motor", PASS, f"buzzed on GPIO{s.motor_pin} at {s.motor_strength:g}")


def check_button(s: IndicatorSettings, factory: Any, ui: Console, wait_s: float = 10.0, *,
                 pressable: bool | None = None) -> Step:
    """Ask the tech to press the snooze button (interactive runs only).

    ``pressable``: whether a person can press it (default: unless ``factory`` gives mock
    pins); when nobody can, nobody is asked or waited for and the step is SKIP.
    """
    if s.button_pin is None:
        return Step("button", SKIP, "no button fitted (indicator.button_pin = none)")
    if not (not is_mock(factory) if pressable is None else pressable):
        return Step("button", SKIP, NO_BUTTON)
    if not ui.interactive:
        return Step("button", SKIP, f"{NOT_ASKED}: nobody pressed it")
    ui.say(f"button: press the snooze button within {wait_s:.0f} s ...")
    try:
        pressed = wait_for_press(s, wait_s, pin_factory=factory)
    except IndicatorError as exc:
        return Step("button", FAIL, str(exc))
    if not pressed:
        return Step("button", FAIL, f"no press seen on GPIO{s.button_pin} (wired to ground?)")
    return Step("button", PASS, f"press seen on GPIO{s.button_pin}")


# -- audio ------------------------------------------------------------------------------------


def _dbfs(x: np.ndarray) -> np.ndarray:
    """RMS level per channel of a (frames, channels) block, dBFS re a full-scale square."""
    rms = np.sqrt(np.mean(np.square(x, dtype=np.float64), axis=0))
    return 20.0 * np.log10(np.maximum(rms, 1e-6))


def _bar(db: float, width: int = 24) -> str:
    filled = int(round(width * min(1.0, max(0.0, (db + 70.0) / 70.0))))
    return "#" * filled + "." * (width - filled)


def check_audio(s: AudioSettings, open_source: Callable[[], Any], ui: Console,
                seconds: float) -> Step:
    """Listen for ``seconds``, show a meter per channel, and find the agent's channel."""
    ui.say("audio: speak into the headset now (count to ten), with no call on the line ...")
    try:
        source = open_source()
        source.start()
    except AudioError as exc:
        return Step("audio", FAIL, str(exc))
    names = ["left", "right"][: source.channels] if source.channels <= 2 else \
        [f"ch{i}" for i in range(source.channels)]
    if source.channels == 1:
        names = ["mono"]
    roles: dict[str, str] = {"mono": "agent"} if source.channels == 1 else {
        s.agent_channel: "agent", **({s.caller_channel: "caller"}
                                     if s.caller_channel != "none" else {})}
    levels: list[np.ndarray] = []
    heard = 0.0
    next_meter = 0.0
    try:
        while heard < seconds:
            try:
                block = source.read(timeout=0.5)
            except EndOfStream:
                break
            if block is None or len(block) == 0:
                continue
            heard += len(block) / source.rate
            db = _dbfs(np.asarray(block))
            levels.append(db)
            if heard >= next_meter:
                next_meter = heard + 0.25
                ui.meter("  ".join(f"{roles.get(n, n):>6} {n:<5} {d:6.1f} dBFS {_bar(d)}"
                                   for n, d in zip(names, db, strict=True)))
    except AudioError as exc:
        return Step("audio", FAIL, f"{source.name}: {exc}")
    finally:
        with contextlib.suppress(Exception):
            source.close()
    ui.say("")
    if not levels:
        return Step("audio", FAIL, f"no audio at all from {source.name}")
    if source.channels < s.channels:
        return Step("audio", FAIL, f"{source.name} has {source.channels} channel(s) but "
                    f"audio.channels = {s.channels}")
    loud = np.percentile(np.array(levels), 90, axis=0)  # the voiced part, per channel
    summary = ", ".join(f"{n} {v:.0f} dBFS" for n, v in zip(names, loud, strict=True))
    if float(loud.max()) < SILENT_DBFS:
        return Step("audio", FAIL, f"no signal on {source.name} ({summary}): check the tap "
                    "cable and the capture device (audio.device)")
    if s.channels == 1 or source.channels == 1:
        return Step("audio", PASS, f"voice heard on {source.name} ({summary})")
    order = np.argsort(loud)[::-1]
    top, second = int(order[0]), int(order[1])
    if loud[top] - loud[second] < DISTINCT_DB:
        return Step("audio", FAIL, f"cannot tell the agent's channel ({summary}, under "
                    f"{DISTINCT_DB:g} dB apart): speak alone, with no call on the line")
    agent = names[top]
    if agent != s.agent_channel:
        other = names[second]
        return Step("audio", FAIL, f"the voice is on the {agent} channel but "
                    f"audio.agent_channel = \"{s.agent_channel}\" ({summary}): set "
                    f"agent_channel = \"{agent}\" and caller_channel = \"{other}\"")
    return Step("audio", PASS, f"agent on {agent} as configured ({summary})")


# -- broker ----------------------------------------------------------------------------------


def check_broker(settings: Settings, host: str | None, port: int | None, ui: Console,
                 timeout: float = 5.0) -> Step:
    """Publish on the desk's own subtree and wait for the message to come back."""
    from firmware.link.supervisor_client import BrokerError, SupervisorClient

    m = settings.mqtt
    if host is None and not m.enabled:
        return Step("broker", SKIP, "MQTT is off (mqtt.enabled = false)")
    host = host or m.host
    port = port or m.port
    d = settings.device
    topic = f"{m.topic_prefix}/{d.site}/{d.desk}/selftest"
    nonce = uuid.uuid4().hex
    got = threading.Event()

    def on_message(_topic: str, payload: bytes, _retain: bool) -> None:
        with contextlib.suppress(ValueError):  # pydantic's ValidationError is a ValueError
            if SelftestPing.model_validate_json(payload).nonce == nonce:
                got.set()

    try:
        client = SupervisorClient(m, client_id=f"deskcue-selftest-{d.site}-{d.desk}",
                                  on_message=on_message, host=host, port=port)
    except CredentialsError as exc:
        return Step("broker", FAIL, str(exc))
    ui.say(f"broker: {host}:{port}{' (TLS)' if m.tls.enabled else ''} ...")
    t0 = time.monotonic()
    try:
        client.connect(timeout)
        client.subscribe(topic, qos=1, timeout=timeout)
        sent = time.monotonic()
        client.publish(topic, json.dumps(SelftestPing(nonce=nonce, ts=time.time()).to_json()),
                       qos=1)
        if not got.wait(timeout):
            return Step("broker", FAIL, f"published on {topic} but it never came back")
        rtt = (time.monotonic() - sent) * 1000.0
    except (BrokerError, OSError) as exc:
        return Step("broker", FAIL, str(exc))
    finally:
        client.close()
    return Step("broker", PASS, f"{host}:{port} round trip {rtt:.0f} ms on {topic} "
                f"(connect {1000 * (sent - t0):.0f} ms)")


# -- the whole run ----------------------------------------------------------------------------


def run_selftest(settings: Settings, *, factory: Any, open_source: Callable[[], Any],
                 ui: Console, broker: tuple[str, int] | None = None,
                 listen_s: float = 8.0, step_s: float | None = None,
                 skip: tuple[str, ...] = ()) -> list[Step]:
    """Every step in order (see the module docstring); ``skip`` names steps to leave out."""
    step_s = step_s if step_s is not None else (0.8 if ui.interactive else 0.05)
    ind = settings.indicator
    steps: list[Step] = []
    if is_mock(factory):
        ui.say("pins: gpiozero mock pins, not a desk's LED, motor and button: those checks "
               "are skipped (each pin is still checked to take the value it is given)")
    plan: list[tuple[str, Callable[[], Step]]] = [
        ("LED", lambda: check_led(ind, factory, ui, step_s)),
        ("motor", lambda: check_motor(ind, factory, ui, step_s)),
        ("button", lambda: check_button(ind, factory, ui)),
        ("audio", lambda: check_audio(settings.audio, open_source, ui, listen_s)),
        ("broker", lambda: check_broker(settings, broker[0] if broker else None,
                                        broker[1] if broker else None, ui)),
    ]
    for name, run in plan:
        if name.lower() in skip:
            steps.append(Step(name, SKIP, "skipped (--skip)"))
            continue
        try:
            step = run()
        except Exception as exc:  # a step must never stop the others
            step = Step(name, FAIL, f"{type(exc).__name__}: {exc}")
        ui.say(f"  {step.status}  {step.name}: {step.detail}")
        steps.append(step)
    return steps


NOT_TESTED = "NOT TESTED"


def summary(steps: list[Step], title: str) -> tuple[str, int]:
    """The summary text and the exit code: 1 if any step failed or none passed, else 0.

    A run with no PASS at all (every step skipped) checked nothing: it is NOT TESTED and
    exits 1 like a FAIL, so `deskcue selftest && ...` never goes on for a desk nobody
    checked. Some passes with some skips is still a PASS: the skips say what was left out.
    """
    n = {k: sum(1 for s in steps if s.status == k) for k in (PASS, FAIL, SKIP)}
    width = max(len(s.name) for s in steps)
    lines = [f"deskcue self-test: {title}"]
    lines += [f"  {s.status}  {s.name:<{width}}  {s.detail}" for s in steps]
    verdict = FAIL if n[FAIL] else PASS if n[PASS] else NOT_TESTED
    lines.append(f"RESULT: {verdict} ({n[PASS]} passed, {n[FAIL]} failed, {n[SKIP]} skipped)")
    return "\n".join(lines), 0 if verdict == PASS else 1


def _parse_broker(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    # An empty host or port 0 fell back to the config's broker, which then PASSed as if the
    # broker asked for had been tested.
    if not sep or not host.strip("[]") or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text}: expected HOST:PORT, a port from 1 to 65535")
    return host.strip("[]"), int(port)


def _appliance_running(runtime_dir: Path) -> bool:
    path = Path(runtime_dir) / SOCKET_NAME
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def main(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """`deskcue selftest`."""
    settings = settings or load_settings(args.config)
    real = args.pins != "mock" or args.source is None
    if real and _appliance_running(settings.device.runtime_dir) and not args.force:
        print("deskcue is running and holds the pins and the capture device: stop it first "
              "(sudo systemctl stop deskcue), or use --force", file=sys.stderr)
        return 2
    ui = Console(assume_yes=args.yes)
    a = settings.audio
    if args.source is not None:
        path = args.source

        def open_source() -> Any:
            return WavFileSource(path, realtime=ui.interactive, block_s=a.block_s)
    else:
        _list_devices(ui)

        def open_source() -> Any:
            return PyAudioSource(device=a.device, channels=a.channels, rate_hz=a.rate_hz,
                                 block_s=a.block_s, queue_s=a.queue_s)
    steps = run_selftest(settings, factory=pin_factory(args.pins), open_source=open_source,
                         ui=ui, broker=args.broker, listen_s=args.seconds,
                         skip=tuple(x.lower() for x in args.skip))
    text, code = summary(steps, f"{settings.device.site}/{settings.device.desk}")
    print("\n" + text)
    return code


def _list_devices(ui: Console) -> None:
    try:
        pa = open_pyaudio()
    except AudioError as exc:
        ui.say(f"capture devices: none ({exc})")
        return
    try:
        devices = list_input_devices(pa)
    finally:
        pa.terminate()
    ui.say("capture devices (audio.device picks one by a part of its name):")
    for d in devices:
        ui.say(f"  {d.name!r}: {d.max_input_channels} ch, {d.default_rate} Hz")


def plain(doc: str) -> str:
    """The module docstring as a tech reads it in a terminal: without its reST markup."""
    return doc.replace("``", "").replace("**", "").replace("::\n", ":\n")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``deskcue selftest`` to the command's subparsers."""
    p = sub.add_parser("selftest", help="check the LED, motor, button, headset channels and "
                       "broker; pass/fail summary",
                       description=plain(__doc__ or ""),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="config file (default: the shipped default)")
    p.add_argument("--pins", choices=("auto", "mock"), default="auto",
                   help="real GPIO (auto) or gpiozero mock pins (mock)")
    p.add_argument("--source", type=Path, metavar="WAV",
                   help="read this WAV file instead of the capture device")
    p.add_argument("--yes", "--no-input", dest="yes", action="store_true",
                   help="ask nothing: the LED, motor and button steps, which need a person, "
                   "are skipped (their pins are still checked)")
    p.add_argument("--broker", type=_parse_broker, metavar="HOST:PORT",
                   help="broker to test instead of the config's mqtt.host:mqtt.port")
    p.add_argument("--seconds", type=number_in(0.0, 600.0, above=True), default=8.0,
                   help="seconds of audio to listen to (default 8; at most 600)")
    p.add_argument("--skip", action="append", default=[],
                   choices=("led", "motor", "button", "audio", "broker"),
                   help="leave a step out (repeatable)")
    p.add_argument("--force", action="store_true",
                   help="run even though the appliance seems to be running")
    p.set_defaults(func=main, needs_settings=True)
