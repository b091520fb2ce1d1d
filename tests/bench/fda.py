"""Loader, channel simulation and scores for the FDA pitch benchmark.

The FDA database (Bagshaw, Hiller & Jack 1993) lives outside the repository, in
``../shared/data/pitch/fda`` relative to the repository root: never copy it in here.
Each utterance ``<name>.wav`` (20 kHz, int16, mono) has ``<name>.f0ref``: one F0 value in Hz per
line, 0 for unvoiced, reference frame ``k`` centred at ``k * 0.015`` s (laryngograph-derived).

Scores follow Chu & Alwan (2009), evaluated at the reference frame times:

- GPE: among frames voiced in both reference and estimate, the share off by more than 20 %;
- VDE: share of all frames whose voiced/unvoiced decision differs;
- FFE: share of all frames with either error (the one number to quote);
- fine error: RMS in cents over frames voiced in both and without gross error.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io.wavfile
import scipy.signal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: synth_voice
import synth_voice  # noqa: E402

REF_STEP_S = 0.015
"""Reference frame step, seconds: reference frame ``k`` is centred at ``k * REF_STEP_S``."""


def repo_root() -> Path:
    """The repository root: the nearest parent of this file holding ``pyproject.toml``."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    raise FileNotFoundError(f"no pyproject.toml above {here}")


def fda_dir() -> Path:
    """Folder of the FDA files: ``<repo root>/../shared/data/pitch/fda``."""
    return (repo_root() / ".." / "shared" / "data" / "pitch" / "fda").resolve()


@dataclass(frozen=True)
class Utterance:
    """One FDA utterance: audio in [-1, 1) at ``rate`` Hz and its reference F0 track."""

    name: str
    speaker: str
    rate: int
    audio: np.ndarray
    """Mono samples, float64 in [-1, 1) (int16 / 32768)."""
    f0_ref_hz: np.ndarray
    """Reference F0 in Hz per reference frame, 0.0 where unvoiced."""

    @property
    def ref_times_s(self) -> np.ndarray:
        """Centre time of each reference frame, seconds."""
        return np.arange(self.f0_ref_hz.size) * REF_STEP_S


def load_fda(folder: Path | None = None, *, every: int = 1) -> list[Utterance]:
    """Load the FDA utterances (sorted by name); ``every=n`` keeps every n-th per speaker."""
    folder = fda_dir() if folder is None else folder
    wavs = sorted(folder.glob("*.wav"))
    if not wavs:
        raise FileNotFoundError(f"no FDA wav files in {folder}")
    out: list[Utterance] = []
    count: dict[str, int] = {}
    for wav in wavs:
        speaker = wav.stem.rstrip("0123456789")
        i = count.get(speaker, 0)
        count[speaker] = i + 1
        if i % every:
            continue
        rate, data = scipy.io.wavfile.read(wav)
        if data.ndim > 1:
            data = data[:, 0]
        audio = data.astype(np.float64) / 32768.0
        f0 = np.loadtxt(wav.with_suffix(".f0ref"), ndmin=1).astype(np.float64)
        out.append(Utterance(wav.stem, speaker, int(rate), audio, f0))
    return out


resample = synth_voice.resample


def telephone(x: np.ndarray, rate: int) -> np.ndarray:
    """Telephone-band simulation at 8 kHz (see ``synth_voice.telephone``)."""
    return synth_voice.telephone(x, rate=rate, rate_out=8000)


# --- scoring -----------------------------------------------------------------------------------


def sample_track(
    times_s: np.ndarray, f0_hz: np.ndarray, voiced: np.ndarray, at_s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sample a tracker's output at other frame times, the same way for every tracker.

    Voicing is taken from the nearest frame. F0 is interpolated linearly in log frequency
    between the two frames that bracket the time when both are voiced, otherwise it is the
    nearest voiced of the two. Returns ``(f0_hz, voiced)`` at ``at_s`` (f0 0.0 where unvoiced).
    """
    times_s = np.asarray(times_s, dtype=np.float64)
    f0 = np.asarray(f0_hz, dtype=np.float64)
    v = np.asarray(voiced, dtype=bool) & (f0 > 0)
    n = times_s.size
    i1 = np.clip(np.searchsorted(times_s, at_s), 1, n - 1)
    i0 = i1 - 1
    t0, t1 = times_s[i0], times_s[i1]
    w = np.clip((at_s - t0) / np.maximum(t1 - t0, 1e-12), 0.0, 1.0)
    nearest = np.where(w < 0.5, i0, i1)
    out_v = v[nearest]
    lf = np.log(np.where(v, f0, 1.0))
    both = v[i0] & v[i1]
    interp = np.exp((1 - w) * lf[i0] + w * lf[i1])
    other = np.where(v[nearest], f0[nearest], np.where(v[i0], f0[i0], f0[i1]))
    out_f0 = np.where(both, interp, other)
    outside = (at_s < times_s[0] - 0.5 * (times_s[1] - times_s[0])) | (
        at_s > times_s[-1] + 0.5 * (times_s[-1] - times_s[-2])
    )
    out_v = out_v & ~outside
    return np.where(out_v, out_f0, 0.0), out_v


@dataclass
class Counts:
    """Frame counts accumulated over utterances, from which the scores are computed."""

    frames: int = 0
    both_voiced: int = 0
    gross: int = 0
    voicing_errors: int = 0
    fine_sq_cents: float = 0.0

    def add(self, f0_ref: np.ndarray, f0_est: np.ndarray, voiced_est: np.ndarray) -> None:
        """Add one utterance (arrays at the reference frame times)."""
        vr = f0_ref > 0
        ve = np.asarray(voiced_est, dtype=bool) & (f0_est > 0)
        both = vr & ve
        ratio = np.where(both, f0_est, 1.0) / np.where(both, f0_ref, 1.0)
        gross = both & (np.abs(ratio - 1.0) > 0.2)
        fine = both & ~gross
        self.frames += f0_ref.size
        self.both_voiced += int(both.sum())
        self.gross += int(gross.sum())
        self.voicing_errors += int((vr != ve).sum())
        self.fine_sq_cents += float(np.sum((1200.0 * np.log2(ratio[fine])) ** 2))

    def __iadd__(self, other: Counts) -> Counts:
        self.frames += other.frames
        self.both_voiced += other.both_voiced
        self.gross += other.gross
        self.voicing_errors += other.voicing_errors
        self.fine_sq_cents += other.fine_sq_cents
        return self

    @property
    def gpe(self) -> float:
        return self.gross / max(self.both_voiced, 1)

    @property
    def vde(self) -> float:
        return self.voicing_errors / max(self.frames, 1)

    @property
    def ffe(self) -> float:
        return (self.voicing_errors + self.gross) / max(self.frames, 1)

    @property
    def fine_cents(self) -> float:
        n = self.both_voiced - self.gross
        return float(np.sqrt(self.fine_sq_cents / n)) if n > 0 else float("nan")
