"""Loaders for the laughter benchmark: real recordings from ``../shared/data``, at 16 kHz.

Evaluation data only: files are read in place and never copied into the repository; joined
test streams are built in memory by the benchmark.
"""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import resample_poly

RATE_HZ = 16_000
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEEPLY = DATA / "laughter" / "deeply"
FDA = DATA / "pitch" / "fda"
RAVDESS = DATA / "voice-level" / "ravdess"
FDA_SEX = {"rl": "male", "sb": "female"}  # FDA speakers (data README)


@dataclass(frozen=True)
class Clip:
    """One recording at 16 kHz: ``audio`` float64 in [-1, 1), shape ``(n_samples,)``."""

    name: str
    label: str  # deeply class ("laughing", "coughing", ...) or "speech"
    speaker: str
    audio: np.ndarray
    sex: str = ""  # "female" | "male" (labels; FDA: rl male, sb female)

    @property
    def seconds(self) -> float:
        return self.audio.size / RATE_HZ


def read_16k(path: Path) -> np.ndarray:
    """Read a 16-bit PCM WAV (mono or first channel) and resample it to 16 kHz (float64)."""
    with warnings.catch_warnings():  # some files carry LIST chunks scipy does not parse
        warnings.simplefilter("ignore", wavfile.WavFileWarning)
        rate, data = wavfile.read(path)
    if data.ndim > 1:
        data = data[:, 0]
    if data.dtype != np.int16:
        raise ValueError(f"{path}: expected 16-bit PCM, got {data.dtype}")
    x = data.astype(np.float64) / 32768.0
    if rate != RATE_HZ:
        f = Fraction(RATE_HZ, rate)
        x = resample_poly(x, f.numerator, f.denominator)
    return x


def load_deeply() -> list[Clip]:
    """Deeply nonverbal vocalisations: one class per clip (labels.csv)."""
    with open(DEEPLY / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [
        Clip(r["file"], r["class_folder"], r["speaker"], read_16k(DEEPLY / r["file"]), r["sex"])
        for r in rows
    ]


def load_fda() -> list[Clip]:
    """FDA read sentences (speakers rl, sb), 20 kHz resampled to 16 kHz."""
    return [
        Clip(p.name, "speech", p.name[:2], read_16k(p), FDA_SEX[p.name[:2]])
        for p in sorted(FDA.glob("*.wav"))
    ]


def load_ravdess_neutral() -> list[Clip]:
    """RAVDESS actors 1-4, neutral statements only, 48 kHz resampled to 16 kHz."""
    with open(RAVDESS / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["emotion"] == "neutral"]
    return [
        Clip(r["file"], "speech", f"actor{r['actor']}", read_16k(RAVDESS / "audio" / r["file"]),
             r["sex"])
        for r in rows
    ]


# ------------------------------------------------------------------ development set
# Not evaluation data: espeak-ng speech and synthetic laughs, for choosing parameters before
# the real-data bench is run (see the history in bench_laughter.py).
DEV_TEXTS = (
    "Thank you for calling, how can I help you today? I understand that the delivery was "
    "late.",
    "Let me check your account details, it will only take a moment, please hold the line.",
    "Yes, I can see the order here. It was shipped on Tuesday and should arrive by Friday "
    "afternoon.",
    "I'm sorry to hear that. We'll refund the difference and send a voucher for your next "
    "purchase.",
    "Ha, well, that is certainly one way to look at it, but the policy says thirty days from "
    "purchase.",
    "Could you spell your surname for me? Thank you. And the postcode, please, starting with "
    "the letters.",
)
DEV_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
              "en-gb-x-gbclan", "en+f3", "en+f4", "en-us+f2", "en+m3", "en+klatt")


def dev_speech(tmp: Path, seed: int = 1) -> list[list[np.ndarray]]:
    """espeak-ng speech at 16 kHz: per voice (12), the six call-centre sentences at a random
    pitch (-p 25-80) and speed (-s 130-200 wpm) each (~7 min in all)."""
    import subprocess

    rng = np.random.default_rng(seed)
    out = []
    for i, voice in enumerate(DEV_VOICES):
        clips = []
        for j, text in enumerate(DEV_TEXTS):
            p, s = int(rng.integers(25, 80)), int(rng.integers(130, 200))
            fn = tmp / f"dev_{i}_{j}.wav"
            subprocess.run(["espeak-ng", "-w", str(fn), "-v", voice, "-p", str(p), "-s", str(s),
                            text], check=True, capture_output=True)
            clips.append(read_16k(fn))
        out.append(clips)
    return out


def synth_laugh(rng: np.random.Generator, *, n_calls: int = 6, rate_hz: float = 5.0,
                jitter: float = 0.05, f0_hz: float = 320.0, vowel: str = "a",
                aspiration: float = 0.1, voiced_s: float = 0.09, breathy: float = 0.05,
                decay_db: float = 0.7, level_jitter_db: float = 0.0) -> np.ndarray:
    """A laugh like ``firmware.demo.voice_synth.laugh`` with more freedom: call rate and timing
    jitter, voiced call length, breath noise in the vowel, level decay and jitter per call."""
    from firmware.demo.voice_synth import VOWELS, formants, glottal, ramp_env

    calls = []
    for c in range(n_calls):
        n = int(RATE_HZ / rate_hz * (1 + jitter * rng.standard_normal()))
        na = int(0.035 * RATE_HZ)
        nv = min(int(voiced_s * RATE_HZ), n - na - 80)
        seg = 0.005 * formants(rng.standard_normal(n), VOWELS[vowel])
        asp = aspiration * formants(rng.standard_normal(na), VOWELS[vowel])
        f0 = np.linspace(f0_hz, 0.85 * f0_hz, nv) * (1 - 0.03 * c)
        f0 *= 1 + 0.03 * rng.standard_normal()
        vo = formants(glottal(f0), VOWELS[vowel])
        vo = vo / np.max(np.abs(vo)) * ramp_env(nv, 0.01, 0.04)
        vo += breathy * formants(rng.standard_normal(nv), VOWELS[vowel]) * ramp_env(nv, 0.01, 0.04)
        seg[:na] += asp * ramp_env(na, 0.01, 0.005)
        seg[na:na + nv] += vo
        calls.append(seg * 10 ** ((-decay_db * c + level_jitter_db * rng.standard_normal()) / 20))
    x = np.concatenate(calls)
    return 0.3 * x / np.max(np.abs(x))


DEV_LAUGH_KINDS = {  # each for an acoustic variety of laughter
    "ha": {},
    "giggle": {"rate_hz": 7.0, "f0_hz": 450.0, "voiced_s": 0.07, "vowel": "i"},
    "giggle8": {"rate_hz": 8.0, "f0_hz": 500.0, "voiced_s": 0.06, "vowel": "i"},
    "chuckle": {"rate_hz": 4.0, "f0_hz": 130.0, "vowel": "o", "breathy": 0.15,
                "aspiration": 0.15},
    "heh": {"rate_hz": 4.5, "f0_hz": 220.0, "vowel": "e", "breathy": 0.3, "aspiration": 0.25,
            "voiced_s": 0.07},
    "slow": {"rate_hz": 3.5, "f0_hz": 280.0},
    "irregular": {"jitter": 0.15, "level_jitter_db": 2.0, "f0_hz": 300.0},
    "low_male": {"f0_hz": 160.0, "decay_db": 1.5},
}


def phone_band(x: np.ndarray) -> np.ndarray:
    """Telephone channel (data README): 8 kHz, 300-3400 Hz band-pass, G.711 mu-law, 16 kHz."""
    from scipy.signal import butter, sosfilt

    y = resample_poly(x, 1, 2)
    y = np.clip(sosfilt(butter(4, [300, 3400], "bandpass", fs=8000, output="sos"), y), -1, 1)
    mu = 255.0
    c = np.round(np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu) * 127) / 127
    return resample_poly(np.sign(c) * ((1 + mu) ** np.abs(c) - 1) / mu, 2, 1)


def dev_laughs(seed: int = 7) -> list[tuple[str, np.ndarray]]:
    """Four laughs of each kind (F0 +-15 %, 4-8 calls), each also through the phone band."""
    rng = np.random.default_rng(seed)
    out = []
    for kind, kw in DEV_LAUGH_KINDS.items():
        for _ in range(4):
            args = dict(kw)
            args["f0_hz"] = args.get("f0_hz", 320.0) * rng.uniform(0.85, 1.15)
            x = synth_laugh(rng, n_calls=int(rng.integers(4, 9)), **args)
            out += [(kind, x), (kind + "_phone", phone_band(x))]
    return out


# ------------------------------------------------------------------ realistic development laughs
# The first synthetic laughs were far cleaner than the phone-recorded Deeply laughs (bench
# history): silent unvoiced gaps (gap voicing 0 vs a median of 0.32 on the real laughs), one
# clean peak per call, 5 % timing jitter.  These add what the real ones have, each from the
# laughter literature (Bachorowski et al. 2001: F0 and level fall across a bout, call
# durations and intervals vary; Ruch & Ekman 2001: voiced inhalations and breathy murmur
# between calls) and from the channel (a phone: band limit, noise floor, mu-law).


def realistic_laugh(rng: np.random.Generator, *, n_calls: int = 6, rate_hz: float = 5.0,
                    f0_hz: float = 300.0, vowel: str = "a", jitter: float = 0.18,
                    gap_voiced_db: float = -20.0, double_peak_p: float = 0.4,
                    decay_db: float = 1.2, f0_decay: float = 0.04,
                    breathy: float = 0.15) -> np.ndarray:
    """A laugh bout at 16 kHz (peak 0.3) with the irregularities of real laughter.

    * interval jitter ``jitter`` (standard deviation relative to 1 / ``rate_hz``; 0.10-0.25
      on real bouts), voiced share of each call 40-65 %;
    * a breathy voiced murmur between calls ``gap_voiced_db`` (dB re the call) on about half
      of the gaps, at a lower F0: the voicing does not always break between calls;
    * with probability ``double_peak_p`` a call has two level humps, a dip 4-12 dB in depth
      (a "ha" that wobbles);
    * level falling ``decay_db`` per call +-2 dB, F0 falling ``f0_decay`` per call, +-5 %;
      formants +-8 % per call (the vowel is not held exactly).
    """
    from firmware.demo.voice_synth import VOWELS, formants, glottal, ramp_env

    calls = []
    fv = np.asarray(VOWELS[vowel], float)
    for c in range(n_calls):
        n = max(int(RATE_HZ / rate_hz * (1 + jitter * np.clip(rng.standard_normal(), -2, 2))),
                int(0.08 * RATE_HZ))
        fc = tuple(fv * (1 + 0.08 * rng.standard_normal(3)))
        na = int(rng.uniform(0.015, 0.04) * RATE_HZ)
        nv = max(min(int(rng.uniform(0.4, 0.65) * n), n - na - 80), 160)
        seg = 0.003 * formants(rng.standard_normal(n), fc)
        f_start = f0_hz * (1 - f0_decay * c) * (1 + 0.05 * rng.standard_normal())
        f0 = np.linspace(f_start, 0.85 * f_start, nv)
        vo = formants(glottal(f0), fc)
        vo = vo / np.max(np.abs(vo))
        env = ramp_env(nv, 0.01, 0.04)
        if rng.random() < double_peak_p:  # a dip 4-12 dB deep inside the call
            depth = 10 ** (-rng.uniform(4, 12) / 20)
            t = np.linspace(0, 1, nv)
            env *= 1 - (1 - depth) * np.exp(-0.5 * ((t - rng.uniform(0.4, 0.6)) / 0.08) ** 2)
        vo = vo * env + breathy * formants(rng.standard_normal(nv), fc) * env
        seg[na:na + nv] += vo
        asp = formants(rng.standard_normal(na), fc)
        seg[:na] += 0.15 * asp / (np.std(asp) + 1e-12) * np.std(vo) * ramp_env(na, 0.008, 0.005)
        ng = n - na - nv
        if ng > 160 and rng.random() < 0.5:  # breathy voiced murmur in the gap
            fg = np.full(ng, 0.8 * f0[-1])
            g = formants(glottal(fg), fc)
            g = g / np.max(np.abs(g)) + 0.7 * formants(rng.standard_normal(ng), fc) / 30
            seg[na + nv:] += 10 ** (gap_voiced_db / 20) * g * ramp_env(ng, 0.01, 0.01)
        calls.append(seg * 10 ** ((-decay_db * c + 2.0 * rng.standard_normal()) / 20))
    x = np.concatenate(calls)
    return 0.3 * x / np.max(np.abs(x))


REALISTIC_KINDS = {  # the acoustic varieties, now with realistic irregularity
    "ha": {},
    "giggle": {"rate_hz": 6.5, "f0_hz": 420.0, "vowel": "i"},
    "chuckle": {"rate_hz": 4.0, "f0_hz": 140.0, "vowel": "o", "breathy": 0.3},
    "heh": {"rate_hz": 4.5, "f0_hz": 220.0, "vowel": "e", "breathy": 0.5, "gap_voiced_db": -15},
    "irregular": {"jitter": 0.25, "double_peak_p": 0.5},
    "low_male": {"f0_hz": 150.0, "decay_db": 2.0, "vowel": "a"},
}


def phone_noisy(x: np.ndarray, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    """A phone recording: a noise floor ``snr_db`` below the 95th-percentile hop level, then
    the telephone channel (band limit, mu-law)."""
    h = x[: x.size // 160 * 160].reshape(-1, 160)
    lev = np.percentile(np.mean(h * h, axis=1), 95)
    noise = rng.standard_normal(x.size) * np.sqrt(lev) * 10 ** (-snr_db / 20)
    return phone_band(x + noise)


def dev_laughs_realistic(seed: int = 11) -> list[tuple[str, np.ndarray]]:
    """Five laughs of each realistic kind (F0 +-15 %, rate +-10 %, 4-9 calls), each clean and
    through a phone with a noise floor 25-40 dB down (60 laughs)."""
    rng = np.random.default_rng(seed)
    out = []
    for kind, kw in REALISTIC_KINDS.items():
        for _ in range(5):
            args = dict(kw)
            args["f0_hz"] = args.get("f0_hz", 300.0) * rng.uniform(0.85, 1.15)
            args["rate_hz"] = args.get("rate_hz", 5.0) * rng.uniform(0.9, 1.1)
            x = realistic_laugh(rng, n_calls=int(rng.integers(4, 10)), **args)
            out += [(kind, x), (kind + "_phone", phone_noisy(x, rng, rng.uniform(25, 40)))]
    return out



# ------------------------------------------------------------------ natural development data
# Recorded (not synthesised) voices outside the evaluation set, from two Debian packages,
# fetched at bench time into a cache outside the repository (never committed), pinned by
# version and SHA-256 of the .deb:
#
# * codec2-examples: codec2's speech test samples, LGPL-2.1 (debian/copyright).  Natural read
#   and conversational speech at 8 kHz (so telephone band, like the phone-recorded laughs),
#   some of it amateur-radio recordings with their noise: 3.0 min in 10 recordings, mostly
#   male voices, two female (one in ``hts.raw``, ``forig``).  Left out: the modem, sine and
#   codec-output files, ``all.wav`` (a concatenation), ``hts1*``/``hts2*`` (inside
#   ``hts.raw``) and the two wav files that hold no speech.
# * hedgewars-data: the game's voice packs, GFDL-1.3 (debian/copyright).  Per pack (one
#   recorded voice actor each, some processed: robot, singer) ~45 short acted lines ("Hello",
#   "Incoming", "Leave me alone") and one recorded ``Laugh.ogg``: 14 distinct acted laughs
#   (Classic and Default share one file).  The acted lines are exaggerated, not call-centre
#   speech: a second, harder kind of natural speech, not a substitute for the first.
# * eight more packages (``MORE_LAUGHS``, added in the sixth round): every laugh or giggle
#   recording Debian bookworm ships but five (see there), 19 in all - four people laughing
#   (scratch's sound library), two children's-software giggles, voice actors' cartoon and
#   "evil" laughs - and scratch's recorded coughs, sneezes, screams and a baby's cry.
DEV_DEBS = {
    "codec2-examples": ("1.0.5-1",
                        "7af8cd128f269a1d8116993c9d2bd7d4d452fc17da46a09899aaca2b9bd993d4"),
    "hedgewars-data": ("1.0.2-6",
                       "722225903a72604403e6e0026e40e9a6953f47a74d94efc5f55504bc05bb4761"),
    # Recorded laughs and other vocalisations of other packages (``more_laughs``,
    # ``more_vocalisations``); licences from each package's debian/copyright.
    "scratch": ("1.4.0.6~dfsg1-6.1",  # GPL-2
                "36c582eb93110f64f06c4e685c41e933ccba2fa68db12f79b10bfe840b21fc10"),
    "bambam": ("1.2.1+dfsg-1",  # GPL-3+
               "d0a33c8673098f7177c7c080e50a47d7b032377e7b9413036170f5d1514be326"),
    "tuxpaint-data": ("1:0.9.28-sdl2-1",  # GPL-2+
                      "f5d0de8f9a70d2efc1241d19f26168cb8bf279f1b77abd3631e7a1a55c40e5e5"),
    "monsterz-data": ("0.7.1-12",  # WTFPL
                      "8dc0fd62ac88995c27555714b70c3f6fbb67a6f42817a407139c847adb457d85"),
    "xemacs21-basesupport": ("2009.02.17.dfsg.3-1",  # "All under the GPL"
                             "439b91026324abc90a975df7aaaecdedd984a83a2524c0d2ab3f64a5dc79cebb"),
    "trackballs-data": ("1.3.4-1",  # GPL-2+
                        "ebc05f997c12896d8a0016990efbf01445b65b66f1eb45759a6277426cc13dac"),
    "btanks-data": ("0.9.8083-9",  # GPL with the Battle Tanks exception
                    "fbe1a476d95c68fe73d87715f4f0aecc1bc5428a979cd19451722665c9dbb5ae"),
    "ktuberling-data": ("4:22.12.3-1",  # GPL-2+
                        "fba44c875bfa31ea488dadd9263e87a4dcaea0bd47d28817f6c0dc6d2af970ed"),
}
MORE_LAUGHS = {  # package: laugh recordings in it (all that Debian bookworm's Contents-all
    #   lists under a laugh/giggle name, except redeclipse-data: 862 MB for two files, and
    #   wesnoth's and fillets-ng's, creature and cartoon effects)
    "scratch": ["usr/share/scratch/Media/Sounds/Human/Laugh-female.wav",
                "usr/share/scratch/Media/Sounds/Human/Laugh-male1.wav",
                "usr/share/scratch/Media/Sounds/Human/Laugh-male2.wav",
                "usr/share/scratch/Media/Sounds/Human/Laugh-male3.mp3"],
    "bambam": ["usr/share/bambam/data/giggle.wav"],
    "tuxpaint-data": ["usr/share/tuxpaint/sounds/giggle.wav"],
    "monsterz-data": ["usr/share/games/monsterz/sound/laugh.wav"],
    "xemacs21-basesupport": ["usr/share/xemacs21/xemacs-packages/etc/sounds/laugh.au",
                             "usr/share/xemacs21/xemacs-packages/etc/sounds/Evil_Laugh.au"],
    "trackballs-data": ["usr/share/games/trackballs/sfx/crazylaugh.wav",
                        "usr/share/games/trackballs/sfx/evillaugh.wav"],
    "btanks-data": ["usr/share/games/btanks/data/sounds/laugh01.ogg",
                    "usr/share/games/btanks/data/sounds/laugh02.ogg"],
    "ktuberling-data": [f"usr/share/ktuberling/sounds/{lang}/tux-laugh.{ext}" for lang, ext in
                        (("da", "ogg"), ("lt", "ogg"), ("nn", "opus"), ("ru", "ogg"),
                         ("uk", "ogg"))] + ["usr/share/ktuberling/sounds/ca/say-laugh.ogg"],
}
SCRATCH_HUMAN = "usr/share/scratch/Media/Sounds/Human"
MORE_VOCALISATIONS = ("BabyCry.mp3", "Cough-female.wav", "Cough-male.wav", "Scream-female.wav",
                      "Scream-male1.wav", "Scream-male2.mp3", "Sneeze-female.wav",
                      "Sneeze-male.wav")
DEV_CACHE = Path(os.environ.get("DESKCUE_DEV_CACHE", Path.home() / ".cache" / "deskcue-dev"))
CODEC2_SPEECH = {  # file under usr/share/codec2/raw (8 kHz s16le): (speaker, sex)
    "hts.raw": ("hts", ""),  # four sentences, male and female voices
    "cq_ref.raw": ("cq_ref", "male"), "g3plx.raw": ("g3plx", "male"),
    "kristoff.raw": ("kristoff", "male"), "mmt1.raw": ("mmt1", "male"),
    "vk5qi.raw": ("vk5qi", "male"), "ve9qrp.raw": ("ve9qrp", "male"),
    "forig.raw": ("forig", "female"), "morig.raw": ("morig", "male"),
    "big_dog.raw": ("big_dog", "male"),
}
HEDGEWARS_VOICES = "usr/share/games/hedgewars/Data/Sounds/voices"
HEDGEWARS_NONSPEECH = ("Laugh", "Ow", "Ooff", "Firepunch", "Jump", "Poison", "Hmm")  # grunts


class DevDataUnavailable(RuntimeError):
    """The natural development data could not be fetched (offline, or no apt lists)."""


def fetch_deb(name: str) -> Path:
    """Extract the pinned Debian package ``name`` into ``DEV_CACHE`` (once) and return the
    directory.  Uses ``apt-get download`` (needs ``apt-get update`` once) and checks the
    SHA-256 of the .deb; raises :class:`DevDataUnavailable` with the reason otherwise."""
    import hashlib
    import shutil
    import subprocess
    import tempfile

    version, sha = DEV_DEBS[name]
    dest = DEV_CACHE / f"{name}_{version}"
    if (dest / ".ok").exists():
        return dest
    DEV_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=DEV_CACHE) as tmp:
        r = subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=tmp,
                           capture_output=True, text=True)
        debs = list(Path(tmp).glob("*.deb"))
        if r.returncode or not debs:
            raise DevDataUnavailable(f"apt-get download {name}={version} failed (offline, or "
                                     f"run apt-get update first): {r.stderr.strip()[-200:]}")
        got = hashlib.sha256(debs[0].read_bytes()).hexdigest()
        if got != sha:
            raise DevDataUnavailable(f"{debs[0].name}: SHA-256 {got} is not the pinned {sha}")
        shutil.rmtree(dest, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(dest)], check=True)
    (dest / ".ok").touch()
    return dest


def _read_any(path: Path) -> np.ndarray:
    """Any soundfile-readable file (ogg here), first channel, resampled to 16 kHz."""
    import soundfile as sf

    x, rate = sf.read(path, dtype="float64", always_2d=True)
    f = Fraction(RATE_HZ, rate)
    return resample_poly(x[:, 0], f.numerator, f.denominator)


def natural_speech() -> dict[str, list[Clip]]:
    """Recorded development speech, by source: ``{"codec2": [...], "hedgewars": [...]}``
    (hedgewars: one clip per voice pack, its speech lines joined with 0.2 s pauses)."""
    c2 = fetch_deb("codec2-examples") / "usr/share/codec2/raw"
    codec2 = []
    for fn, (spk, sex) in CODEC2_SPEECH.items():
        x = np.fromfile(c2 / fn, "<i2").astype(np.float64) / 32768.0
        codec2.append(Clip(fn, "speech", spk, resample_poly(x, 2, 1), sex))
    hw = fetch_deb("hedgewars-data") / HEDGEWARS_VOICES
    pause = np.zeros(RATE_HZ // 5)
    hedgewars = []
    for pack in sorted(p for p in hw.iterdir() if p.is_dir() and p.name != "Classic"):
        lines = [_read_any(f) for f in sorted(pack.glob("*.ogg"))
                 if not f.stem.startswith(HEDGEWARS_NONSPEECH)]
        x = np.concatenate([y for line in lines for y in (line, pause)])
        hedgewars.append(Clip(pack.name, "speech", pack.name, x))
    return {"codec2": codec2, "hedgewars": hedgewars}


def natural_laughs() -> list[Clip]:
    """The 14 distinct recorded (acted) laughs of the hedgewars voice packs."""
    hw = fetch_deb("hedgewars-data") / HEDGEWARS_VOICES
    return [Clip(p.name, "laughing", p.name, _read_any(p / "Laugh.ogg"))
            for p in sorted(hw.iterdir()) if (p / "Laugh.ogg").exists() and p.name != "Classic"]


def more_laughs() -> list[Clip]:
    """19 more recorded laughs from other Debian packages (``MORE_LAUGHS``): four people
    laughing (scratch), giggles, voice actors' cartoon and "evil" laughs; 0.5-6 s each."""
    return [Clip(f"{pkg}:{'/'.join(Path(f).parts[-2:])}", "laughing", pkg,
                 _read_any(fetch_deb(pkg) / f))
            for pkg, files in MORE_LAUGHS.items() for f in files]


def more_vocalisations() -> list[Clip]:
    """Recorded non-laugh vocalisations (scratch's coughs, sneezes, screams, a baby's cry):
    development negatives for the "other vocalisations" of the evaluation set."""
    d = fetch_deb("scratch") / SCRATCH_HUMAN
    return [Clip(f, Path(f).stem.split("-")[0].lower(), "scratch", _read_any(d / f))
            for f in MORE_VOCALISATIONS]


# ----------------------------------------------------------- laughter inside speech, by recipe
# More development data for the learned verifier (``train_laughter_verifier.py``), built from
# the development laughs and speech as Omine et al. (Interspeech 2024) built laughter in
# conversation: the laugh level-matched to the speech around it and cross-faded in, or
# overlaid on the speech (a stand-in for speech-laughs), the whole stream through a random
# channel (EQ, telephone band with mu-law, noise), and always after a warm-up of the same
# speaker's speech so that the usual voice is learned before the laugh, as on a desk.


def random_eq(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Three peaking filters (log-uniform 150-6000 Hz, +-8 dB, Q 0.5-2): microphones,
    headsets and rooms colour a voice by several dB."""
    from scipy.signal import sosfilt

    for _ in range(3):
        f0 = float(np.exp(rng.uniform(np.log(150), np.log(6000))))
        g = 10 ** (rng.uniform(-8, 8) / 40)  # amplitude sqrt of the gain
        q = rng.uniform(0.5, 2.0)
        w = 2 * np.pi * f0 / RATE_HZ
        alpha = np.sin(w) / (2 * q)
        b = np.array([1 + alpha * g, -2 * np.cos(w), 1 - alpha * g])
        a = np.array([1 + alpha / g, -2 * np.cos(w), 1 - alpha / g])
        x = sosfilt(np.concatenate([b / a[0], a / a[0]])[None], x)
    return x


def random_channel(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random EQ, then one of: a phone (noise 20-40 dB down, 300-3400 Hz, mu-law; 40 %),
    wideband with a noise floor 25-45 dB down (30 %), or wideband clean (30 %)."""
    x = random_eq(x, rng)
    r = rng.random()
    if r < 0.4:
        return phone_noisy(x, rng, rng.uniform(20, 40))
    if r < 0.7:
        h = x[: x.size // 160 * 160].reshape(-1, 160)
        lev = np.percentile(np.mean(h * h, axis=1), 95)
        return x + rng.standard_normal(x.size) * np.sqrt(lev) * 10 ** (-rng.uniform(25, 45) / 20)
    return x


def _active_db(x: np.ndarray) -> float:
    h = x[: x.size // 160 * 160].reshape(-1, 160)
    return float(np.percentile(10 * np.log10(np.mean(h * h, axis=1) * 2 + 1e-12), 95))


def _xfade(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """``a`` then ``b``, the last ``n`` samples of ``a`` cross-faded (equal power) into ``b``."""
    n = min(n, a.size, b.size)
    t = np.linspace(0, np.pi / 2, n)
    mid = a[a.size - n:] * np.cos(t) + b[:n] * np.sin(t)
    return np.concatenate([a[: a.size - n], mid, b[n:]])


@dataclass(frozen=True)
class LaughStream:
    """A stream of one speaker: warm-up, speech, [laugh], speech; 16 kHz float64.

    ``onset_s``/``end_s``: the laugh's first sound and end (NaN without a laugh); ``warmup_s``:
    where the warm-up ends; ``overlay``: the laugh was overlaid on speech, not cross-faded in.
    """

    audio: np.ndarray
    onset_s: float
    end_s: float
    warmup_s: float
    overlay: bool
    speaker: str
    laugh: str


def laugh_in_speech(speech: np.ndarray, laugh: np.ndarray | None, rng: np.random.Generator, *,
                    speaker: str = "", laugh_name: str = "", warmup_s: float = 30.0,
                    overlay: bool = False, tail_overlap_s: float = 0.0) -> LaughStream:
    """Warm-up (``warmup_s`` of the speaker's looped ``speech``), 2-5 s more speech, the laugh
    (level-matched: active level -6..+3 dB re the speech's, cross-faded in over 20-50 ms, or
    overlaid on 6-12 dB quieter continuing speech, or with ``tail_overlap_s`` > 0 begun that
    long before the speech ends, the speech fading out under it: a laugh that breaks into the
    end of a phrase), 3 s of speech; the whole through :func:`random_channel`.  With
    ``laugh=None`` the same stream without it (speech goes on for as long as the laugh would
    have lasted)."""
    start = int(rng.integers(speech.size))

    def take(n: int) -> np.ndarray:
        nonlocal start
        out = np.take(speech, np.arange(start, start + n), mode="wrap")
        start += n
        return out

    n_warm = int(warmup_s * RATE_HZ)
    n_before = int(rng.uniform(2, 5) * RATE_HZ)
    fade = int(rng.uniform(0.02, 0.05) * RATE_HZ)
    sp_db = _active_db(speech)
    lx_len = laugh.size if laugh is not None else int(rng.uniform(1.0, 3.0) * RATE_HZ)
    x = take(n_warm + n_before)
    onset = end = float("nan")
    if laugh is not None:
        lx = laugh * 10 ** ((sp_db + rng.uniform(-6, 3) - _active_db(laugh)) / 20)
        h = lx[: lx.size // 160 * 160].reshape(-1, 160)
        lev = 10 * np.log10(np.mean(h * h, axis=1) * 2 + 1e-12)
        idx = np.flatnonzero(lev >= lev.max() - 30)
        first = float(idx[0] * 0.01) if idx.size else 0.0
        n_in = min(fade, lx.size)  # samples of the speech before the laugh that it overlaps
        if overlay:
            under = take(lx.size) * 10 ** (-rng.uniform(6, 12) / 20)
            x = _xfade(x, lx + under, fade)
        elif tail_overlap_s > 0:
            n_in = min(int(tail_overlap_s * RATE_HZ), lx.size, x.size)
            tail = x[x.size - n_in:] * np.cos(np.linspace(0, np.pi / 2, n_in))
            x = np.concatenate([x[: x.size - n_in], tail + lx[:n_in], lx[n_in:]])
        else:
            x = _xfade(x, lx, fade)
        onset = (n_warm + n_before - n_in) / RATE_HZ + first
        end = (x.size) / RATE_HZ
    else:
        x = _xfade(x, take(lx_len), fade)
    x = _xfade(x, take(3 * RATE_HZ), fade)
    y = random_channel(x, rng)
    y *= 0.5 / max(np.max(np.abs(y)), 1e-9) if np.max(np.abs(y)) > 0.5 else 1.0
    return LaughStream(y, onset, end, warmup_s, overlay, speaker, laugh_name)


# ----------------------------------------------------------- raised-pitch speech, by recipe
# An excited agent speaks higher without laughing.  Laugh-free speech raised in pitch with its
# tempo kept is what the laughter cue's pitch check cannot tell from laughter by pitch alone.


def pitch_shift(x: np.ndarray, st: float, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """``x`` (mono 16 kHz) raised by ``st`` semitones with its tempo kept: a phase vocoder
    stretches it by ``r = 2 ** (st / 12)`` (Hann frames of 32 ms every 8 ms, magnitudes
    interpolated between frames, phases advanced by each bin's measured frequency), then it
    is resampled by ``1 / r``.  The spectral envelope moves with the pitch (formants ``r``
    higher too, as in a smaller voice).  Same length as ``x``."""
    r = 2 ** (st / 12)
    y = _stretch(x, r, n_fft, hop)
    f = Fraction(1000, int(round(1000 * r)))
    return resample_poly(y, f.numerator, f.denominator)[: x.size]


def _stretch(x: np.ndarray, r: float, n_fft: int, hop: int) -> np.ndarray:
    """``x`` stretched ``r`` times longer by the phase vocoder :func:`pitch_shift` describes
    (pitch and formants kept), its leading padding cut."""
    win = np.hanning(n_fft)
    xp = np.concatenate([np.zeros(n_fft), x, np.zeros(n_fft)])
    S = np.fft.rfft(np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::hop] * win, axis=1)
    t_out = np.arange(0, S.shape[0] - 1, 1 / r)
    k = t_out.astype(int)
    a = (t_out - k)[:, None]
    mag = (1 - a) * np.abs(S[k]) + a * np.abs(S[k + 1])
    omega = 2 * np.pi * hop * np.arange(S.shape[1]) / n_fft
    dphi = np.angle(S[1:]) - np.angle(S[:-1]) - omega  # each bin's deviation, frame to frame
    dphi -= 2 * np.pi * np.round(dphi / (2 * np.pi))
    step = omega + dphi[k]  # phase advance of output frame i to i + 1
    phase = np.angle(S[0]) + np.concatenate([np.zeros((1, S.shape[1])),
                                             np.cumsum(step[:-1], axis=0)])
    frames = np.fft.irfft(mag * np.exp(1j * phase), n_fft, axis=1) * win
    return _overlap_add(frames, win, hop)[int(n_fft * r):]


def _overlap_add(frames: np.ndarray, win: np.ndarray, hop: int) -> np.ndarray:
    """Windowed ``frames`` (``(n, n_fft)``, every ``hop`` samples) overlap-added and divided by
    the summed squared window."""
    n, m = frames.shape[0], win.size // hop  # m frames cover each hop
    out = np.zeros((n + m - 1, hop))
    norm = np.zeros_like(out)
    for j in range(m):
        out[j:j + n] += frames[:, j * hop:(j + 1) * hop]
        norm[j:j + n] += (win[j * hop:(j + 1) * hop] ** 2)[None]
    return (out / np.maximum(norm, 1e-3)).ravel()


# ----------------------------------------------------------- laughs as other laughers, by recipe
# Laughers differ in pitch, in the size of their vocal tract and in tempo.  Perturbed copies of
# the development laughs (training positives only, in the laugh's own group) show the verifier
# laughter at pitches and rates its few recorded laughers do not cover, where the raised-pitch
# speech negatives alone taught it that a high voice is not laughter.


def time_stretch(x: np.ndarray, rate: float, n_fft: int = 512, hop: int = 128) -> np.ndarray:
    """``x`` (mono 16 kHz) played ``rate`` times as fast with its pitch and formants kept
    (the phase vocoder of :func:`pitch_shift` without the resampling); length
    ``x.size / rate``."""
    r = 1.0 / rate
    return _stretch(x, r, n_fft, hop)[: int(round(x.size * r))]


def _envelope_db(S: np.ndarray, n_fft: int, lifter: int) -> np.ndarray:
    """The spectral envelope (dB) of each STFT frame: its log magnitude smoothed by keeping
    the first ``lifter`` cepstral coefficients (below the shortest pitch period)."""
    c = np.fft.irfft(20 * np.log10(np.abs(S) + 1e-9), n_fft, axis=1)
    c[:, lifter:n_fft - lifter + 1] = 0.0
    return np.fft.rfft(c, n_fft, axis=1).real


def shift_voice(x: np.ndarray, st: float, formant_ratio: float | None = None,
                n_fft: int = 512, hop: int = 128, lifter: int = 24) -> np.ndarray:
    """``x`` (mono 16 kHz) with its pitch moved ``st`` semitones and its tempo kept, its
    formants moved by ``formant_ratio`` (None: with the pitch, as :func:`pitch_shift`; 1: kept;
    other values: a longer or shorter vocal tract, the warp of vocal-tract-length
    perturbation).  The shifted sound's spectral envelope (cepstrum liftered at ``lifter``
    coefficients, 1.5 ms: under the period of a 600 Hz voice) is replaced, frame by frame, by
    the original's warped in frequency by ``formant_ratio`` (gain limited to +-30 dB).
    Same length as ``x``."""
    r = 2 ** (st / 12)
    y = pitch_shift(x, st, n_fft, hop) if st else x
    if formant_ratio is None or abs(formant_ratio - (r if st else 1.0)) < 1e-6:
        return y
    win = np.hanning(n_fft)

    def stft(v: np.ndarray) -> np.ndarray:
        vp = np.concatenate([np.zeros(n_fft), v, np.zeros(n_fft)])
        return np.fft.rfft(np.lib.stride_tricks.sliding_window_view(vp, n_fft)[::hop] * win,
                           axis=1)

    Sx, Sy = stft(x), stft(y)
    ex, ey = _envelope_db(Sx, n_fft, lifter), _envelope_db(Sy, n_fft, lifter)
    bins = np.arange(Sx.shape[1], dtype=float)
    src = np.clip(bins / formant_ratio, 0, bins[-1])  # target envelope: the original's, warped
    i0 = np.minimum(src.astype(int), bins.size - 2)
    a = src - i0
    target = (1 - a) * ex[:, i0] + a * ex[:, i0 + 1]
    gain = 10 ** (np.clip(target - ey, -30, 30) / 20)
    out = _overlap_add(np.fft.irfft(Sy * gain, n_fft, axis=1) * win, win, hop)
    return out[n_fft: n_fft + x.size]
