"""Makes the demo recording on the spot (cached): a scripted call spoken by espeak-ng, with
known timings.

Agent on the left channel (wideband), caller on the right (telephone band). The script is
data: tests build their own variants (a raised passage, a steady one) and get the exact
segment times back as ground truth.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.signal import butter, resample_poly, sosfilt

from firmware.demo import voice_synth
from firmware.errors import SpeechSynthError

RATE = 16000
LAUGH = "<laugh>"


@dataclass(frozen=True)
class Line:
    """One utterance: who says it, the text, gain in dB and espeak-ng pitch (0-99) and speed."""

    who: str  # "agent" | "caller"
    text: str  # what is said; LAUGH = a synthesised laugh-like burst train instead
    gain_db: float = 0.0
    pitch: int = 50
    speed_wpm: int = 165
    pause_s: float = 0.6
    tag: str = ""  # a label for ground truth, e.g. "raised"


@dataclass
class Recording:
    """A stereo recording (frames, 2) float32 and the time span of every tagged line (s)."""

    samples: np.ndarray
    rate: int
    spans: list[tuple[str, str, float, float]] = field(default_factory=list)

    def span(self, tag: str) -> tuple[float, float]:
        """(start_s, end_s) covering every line tagged ``tag``."""
        hits = [(s, e) for _, t, s, e in self.spans if t == tag]
        if not hits:
            raise KeyError(tag)
        return min(s for s, _ in hits), max(e for _, e in hits)

    def write_wav(self, path: Path | str, *, mono: bool = False) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        a = self.samples[:, :1] if mono else self.samples
        pcm = np.clip(np.round(a * 32767.0), -32768, 32767).astype("<i2")
        with wave.open(str(path), "wb") as w:
            w.setnchannels(a.shape[1])
            w.setsampwidth(2)
            w.setframerate(self.rate)
            w.writeframes(pcm.tobytes())
        return path


def speak(text: str, *, pitch: int = 50, speed_wpm: int = 165, voice: str = "en-us") -> np.ndarray:
    """espeak-ng speech at 16 kHz, float32 mono, trimmed of leading/trailing silence."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SpeechSynthError("espeak-ng is not installed (apt-get install espeak-ng)")
    try:
        wav = subprocess.run([exe, "-v", voice, "-p", str(pitch), "-s", str(speed_wpm),
                              "-a", "100", "--stdout", text],
                             check=True, capture_output=True, timeout=60).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        raise SpeechSynthError(f"espeak-ng failed: {exc}") from None
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        # espeak-ng --stdout leaves the frame count unset; read what is there.
        a = np.frombuffer(w.readframes(1 << 30), "<i2").astype(np.float32) / 32768.0
    a = resample_poly(a, RATE, rate).astype(np.float32)
    loud = np.nonzero(np.abs(a) > 1e-3)[0]
    return a[loud[0]: loud[-1] + 1] if loud.size else a


def telephone_band(x: np.ndarray) -> np.ndarray:
    """300-3400 Hz band-pass, as the caller is heard through the phone network."""
    sos = butter(4, [300, 3400], btype="bandpass", fs=RATE, output="sos")
    return sosfilt(sos, x).astype(np.float32)


def build_call(lines: list[Line], *, agent_dbfs: float = -26.0, caller_dbfs: float = -30.0,
               lead_s: float = 1.0, noise_dbfs: float = -70.0, seed: int = 7) -> Recording:
    """Speak ``lines`` in turn into a stereo call; levels are RMS of speech at 0 dB gain."""
    chunks: dict[str, list[tuple[int, np.ndarray]]] = {"agent": [], "caller": []}
    spans: list[tuple[str, str, float, float]] = []
    pos = int(lead_s * RATE)
    for line in lines:
        voice = "en-us" if line.who == "agent" else "en-gb"
        if line.text == LAUGH:
            a = voice_synth.laugh(n_calls=6, rate_hz=5.0, f0_hz=240.0,
                                  seed=len(spans)).astype(np.float32)
        else:
            a = speak(line.text, pitch=line.pitch, speed_wpm=line.speed_wpm, voice=voice)
        rms = float(np.sqrt(np.mean(a.astype(np.float64) ** 2))) or 1e-9
        target = agent_dbfs if line.who == "agent" else caller_dbfs
        a = a * (10 ** ((target + line.gain_db) / 20) / rms)
        if line.who == "caller":
            a = telephone_band(a)
        chunks[line.who].append((pos, a))
        spans.append((line.who, line.tag, pos / RATE, (pos + a.size) / RATE))
        pos += a.size + int(line.pause_s * RATE)
    n = pos + int(lead_s * RATE)
    rng = np.random.default_rng(seed)
    out = (rng.standard_normal((n, 2)) * 10 ** (noise_dbfs / 20)).astype(np.float32)
    for ch, who in enumerate(("agent", "caller")):
        for start, a in chunks[who]:
            out[start:start + a.size, ch] += a
    return Recording(np.clip(out, -1.0, 0.999), RATE, spans)


CALM_AGENT = [
    "Thank you for calling, my name is Sam, how can I help you today?",
    "I am sorry to hear that. Let me pull up your account so we can look at it together.",
    "Could you please confirm the postcode on the account for me?",
    "Thank you. I can see the order here, it was sent out on Monday morning.",
    "It looks like the parcel was held at the local depot because of the address.",
    "I can arrange for it to be delivered again tomorrow, between nine and twelve.",
    "I understand this has been frustrating, and I want to put it right for you.",
    "I will also add a note so that the courier calls you before they arrive.",
]
CALLER = [
    "Hello, I have been waiting two weeks for my order and nobody tells me anything.",
    "It is the same postcode as always, I have told your colleagues three times.",
    "That is not good enough, I took a day off work for that delivery.",
    "And what happens if they do not turn up again?",
]
RAISED_AGENT = [
    "No, listen to me, I have already told you what we are going to do!",
    "You need to let me finish, I am trying to fix this for you right now!",
]
CLOSING_AGENT = [
    "So, to sum up, the parcel will arrive tomorrow morning, and you will get a call first.",
    "Is there anything else I can help you with today?",
    "Thank you for your patience, and have a good afternoon.",
]


def demo_script(*, raised: bool = True, laugh: bool = False) -> list[Line]:
    """The demo call: calm agent, an escalating caller, a raised passage, calm again; with
    ``laugh`` the agent lets out a laugh-like burst after the caller's second complaint."""
    lines: list[Line] = []
    for i, text in enumerate(CALM_AGENT):
        if laugh and i == 6:
            lines.append(Line("agent", LAUGH, pause_s=0.4, tag="laugh"))
        lines.append(Line("agent", text, tag="calm"))
        if i % 2 == 1 and i // 2 < len(CALLER):
            lines.append(Line("caller", CALLER[i // 2], tag="caller"))
    for text in RAISED_AGENT:
        if raised:
            lines.append(Line("agent", text, gain_db=12.0, pitch=62, speed_wpm=180,
                              pause_s=0.3, tag="raised"))
        else:
            lines.append(Line("agent", text, pause_s=0.3, tag="steady"))
    lines.append(Line("caller", "Fine. Go on then.", tag="caller", pause_s=1.0))
    lines += [Line("agent", text, tag="calm_after") for text in CLOSING_AGENT]
    return lines


TENSE_AGENT = [
    "I really need you to understand that this is already being handled right now",
    "There is honestly nothing more that I can do about the courier today",
]


def tense_script(*, tense: bool = True) -> list[Line]:
    """Calm agent (long enough to learn the usual voice), then a passage whose pitch climbs
    (espeak-ng pitch 40 -> 85, about +9 semitones) with more effort (+5 dB) and a faster rate;
    with ``tense=False`` the same passage keeps the usual pitch (same level and rate)."""
    lines = [Line("agent", t, pitch=40) for t in CALM_AGENT]
    lines += [Line("agent", t, pitch=85 if tense else 40, gain_db=5.0, speed_wpm=185,
                   pause_s=0.25, tag="tense") for t in TENSE_AGENT]
    lines += [Line("agent", t, pitch=40, tag="after") for t in CALM_AGENT[:3]]
    return lines


def demo_recording(cache_dir: Path, *, raised: bool = True,
                   laugh: bool = True) -> tuple[Path, Recording]:
    """Build (once) and return the demo WAV in ``cache_dir`` and its ground truth."""
    lines = demo_script(raised=raised, laugh=laugh)
    rec = build_call(lines)
    # the script's hash in the name: a changed script never reuses a stale recording
    digest = hashlib.sha256(repr(lines).encode()).hexdigest()[:8]
    path = cache_dir / f"demo-call-{digest}.wav"
    if not path.exists():
        rec.write_wav(path)
    return path, rec
