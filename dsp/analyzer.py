"""The stream analyzer: per-hop features for every channel, from 16 kHz audio blocks of any size.

Pure numpy/scipy: no I/O, threads or clocks; time is the sample count. Each stage runs on whole
hops; stages with look-ahead declare ``delay_hops`` and the analyzer delays the others so every
row of `HopFeatures` describes the same 10 ms hop. Results do not depend on block cuts.

Stages and what they share (delay in hops):

- level, K-weighted loudness, voice activity (0);
- one 32 ms spectrum per hop and channel, `HopSpectrum` (2), read by the voice measures and
  the laughter detector, of the audio less the DC offset the level tracks;
- the pitch tracker (4); its periodicity before the path search (2) is the laughter
  detector's voicing;
- the laughter detector on the agent channel (2), from the spectrum and that periodicity,
  as a proposer: its windows go to the learned verifier (`dsp.laughter_verifier`: mel bands
  of the same spectrum, the periodicity, the tracker's F0), which decides the bursts;
- the voice measures (4), from the spectrum and the pitch track.

Sharing the spectrum and the periodicity is what keeps the whole analyzer, both channels,
cheaper than a reference pitch tracker alone on the appliance's 100 ms blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from dsp.hop_spectrum import HopSpectrum
from dsp.laughter import LaughterBurst, LaughterDetector
from dsp.laughter_verifier import LaughterVerifier
from dsp.loudness import KWeightedEnergy, WindowedLoudness, power_to_lufs
from dsp.pitch import PitchFrames, PitchTracker
from dsp.voice_activity import HopLevel, VoiceActivity, VoiceActivityParams
from dsp.voice_measures import VoiceMeasures

RATE = 16000
HOP = 160
HOP_S = HOP / RATE


@dataclass
class HopFeatures:
    """Features of consecutive hops; arrays are (n_channels, H) unless noted.

    - ``hop``: absolute hop index (H,); ``t``: hop centre in stream seconds (H,).
    - ``level_dbfs``: RMS level of the hop about the audio's DC offset (`HopLevel`), dBFS re
      full-scale square, floor -120.
    - ``loudness_m_lufs`` / ``loudness_s_lufs``: momentary (400 ms) / short-term (3 s)
      K-weighted loudness of the channel alone, window ending at the hop's end, LUFS.
    - ``voiced``: voice activity (bool); ``noise_floor_dbfs``: tracked noise floor.
    - ``laughter``: laughter-likeness score 0-1 (agent channel; 0 on the caller channel).
    - ``f0_hz``: fundamental frequency, Hz, 0 where unvoiced; ``voicing``: its confidence
      0-1; ``pitch_voiced``: the tracker's voicing decision (bool).
    - ``rate_sps``: syllable-like nuclei per second over the trailing 4 s.
    - ``alpha_db``: alpha ratio (spectral tilt, E 1-5 kHz re E 0.05-1 kHz, dB) averaged over
      the voiced hops of the trailing 2 s (NaN if none) - rises with vocal effort.
    - ``pitch_sd_st``: spread of F0 over the trailing 3 s of voiced hops, semitones.
    - ``rate_sps``, ``alpha_db`` and ``pitch_sd_st`` are NaN on the caller channel unless
      `AnalyzerParams.caller_measures`.
    """

    hop: np.ndarray
    t: np.ndarray
    level_dbfs: np.ndarray
    loudness_m_lufs: np.ndarray
    loudness_s_lufs: np.ndarray
    voiced: np.ndarray
    noise_floor_dbfs: np.ndarray
    laughter: np.ndarray | None = None
    f0_hz: np.ndarray | None = None
    voicing: np.ndarray | None = None
    pitch_voiced: np.ndarray | None = None
    rate_sps: np.ndarray | None = None
    alpha_db: np.ndarray | None = None
    pitch_sd_st: np.ndarray | None = None

    @property
    def n_hops(self) -> int:
        return int(self.hop.shape[0])

    @classmethod
    def concat(cls, parts: list[HopFeatures]) -> HopFeatures:
        """Join consecutive runs of hops."""
        out = {}
        for name in _FIELD_NAMES:
            arrays = [getattr(p, name) for p in parts]
            if any(a is None for a in arrays):
                continue  # a stage that was not run: leave the default
            out[name] = np.concatenate(arrays, axis=-1)
        return cls(**out)

    def slice(self, start: int, stop: int) -> HopFeatures:
        """Hops ``start:stop`` of this run (positions, not absolute hop indices)."""
        out = {}
        for name in _FIELD_NAMES:
            a = getattr(self, name)
            if a is not None:
                out[name] = a[..., start:stop]
        return HopFeatures(**out)

    def channel(self, c: int) -> dict[str, np.ndarray]:
        """The per-channel arrays of channel ``c`` as 1-D arrays keyed by field name."""
        return {
            f.name: (getattr(self, f.name) if f.name in ("hop", "t") else getattr(self, f.name)[c])
            for f in fields(self)
        }


_FIELD_NAMES = tuple(f.name for f in fields(HopFeatures))


@dataclass(frozen=True)
class AnalyzerParams:
    """Everything the analyzer needs to know; the firmware fills it from the config."""

    n_channels: int = 1
    voice_activity: VoiceActivityParams = VoiceActivityParams()
    laughter_threshold: float = 0.5
    """Verified laughter-likeness (0-1) at which a burst is decided; without the verifier,
    the pulse detector's own score."""
    laughter_verifier: bool = True
    """Two-stage laughter cue (the pulse detector proposes, the learned verifier decides);
    ``False``: the pulse detector alone (its shipped behaviour before the verifier)."""
    laughter_weights: str | None = None
    """Verifier weights (``.npz``); ``None``: the shipped ``dsp/laughter_verifier.npz``."""
    laughter_pitch_st: float | None = None
    """The policy's laughter pitch check (semitones above the usual pitch): proposals whose
    pitch is known to fall short of it are not verified (see ``LaughterVerifier``);
    ``None``: every proposal is verified."""
    fmin_hz: float = 60.0
    fmax_hz: float = 500.0
    caller_measures: bool = True
    """Speaking rate, alpha ratio and pitch spread of the caller channel too; ``False``:
    the agent's only (the caller's are NaN), sparing the caller's spectrum. The cue policy
    reads only the caller's level, voice activity and pitch."""


class StreamAnalyzer:
    """Turns (n_channels, n) float64 blocks at 16 kHz into `HopFeatures`.

    Any block length is accepted; a partial hop is kept until the next call. ``delay_hops`` is
    the look-ahead of the slowest stage: the features of hop k come out once hop
    k + delay_hops has been fed. ``flush()`` pushes out the delayed tail with silence.
    """

    def __init__(self, params: AnalyzerParams):
        self.params = params
        c = params.n_channels
        self.n_channels = c
        self._pending = np.zeros((c, 0))
        self._hops_in = 0
        self._level = HopLevel(n_channels=c, hop=HOP, rate=RATE)
        self._kw = KWeightedEnergy(rate=RATE, hop=HOP, n_channels=c)
        self._mom = WindowedLoudness(window_hops=40, hop=HOP, n_channels=c)
        self._short = WindowedLoudness(window_hops=300, hop=HOP, n_channels=c)
        self._vad = VoiceActivity(params.voice_activity, n_channels=c, hop_s=HOP_S)
        self._verifier = (LaughterVerifier(weights=params.laughter_weights,
                                           min_st_above_usual=params.laughter_pitch_st)
                          if params.laughter_verifier else None)
        self._laugh = LaughterDetector(threshold=params.laughter_threshold,
                                       release=min(0.35, params.laughter_threshold),
                                       verifier=self._verifier)
        # Laughter-like bursts decided / completed so far and not yet taken (`take_bursts`).
        self._bursts: list[tuple[str, LaughterBurst]] = []
        self._pitch = PitchTracker(rate=RATE, hop=HOP, n_channels=c, fmin_hz=params.fmin_hz,
                                   fmax_hz=params.fmax_hz)
        # Channels with a spectrum and voice measures: all, or the agent's alone.
        self._n_spec = c if params.caller_measures else 1
        self._measures = VoiceMeasures(rate=RATE, hop=HOP, n_channels=self._n_spec,
                                       pitch_delay_hops=self._pitch.delay_hops)
        # One spectrum for all readers: columns [0, 3) voice measures, [3, 14) laughter,
        # [14, 30) the verifier's mel bands.
        self._nvm = VoiceMeasures.band_weights.shape[1]
        self._nlb = self._nvm + LaughterDetector.band_weights.shape[1]
        self._spectrum = HopSpectrum(
            bands=np.hstack([VoiceMeasures.band_weights, LaughterDetector.band_weights,
                             *([LaughterVerifier.band_weights] if self._verifier else [])]),
            n_channels=self._n_spec)
        if not (self._laugh.delay_hops == self._spectrum.delay_hops
                == self._pitch.frame_lookahead_hops):
            raise ValueError("laughter measures must share the spectrum's and pitch's delay")
        # The pitch stage looks ahead furthest; the others are delayed to match.
        self.delay_hops = self._pitch.delay_hops
        self._base_rows = _Held(0)  # packed `_BASE` rows (delay 0) not yet output
        self._laugh_rows = _Held(self._laugh.delay_hops)  # agent's laughter score (delay 2)
        self._hops_out = 0  # absolute hop of the next output row
        self._t0_s = 0.0  # stream time of the stages' hop 0, s (moves on at each `restart`)

    @property
    def next_hop(self) -> int:
        """Absolute index of the next hop to come out."""
        return self._hops_out

    def restart(self, first_hop: int) -> None:
        """Audio was lost: the next block follows none fed so far, and its first hop is
        absolute hop ``first_hop`` (stream time ``first_hop * HOP_S``: the lost time counts).

        Nothing from before the loss reaches a feature after it: every stage that reads a
        window of past audio starts over as at the stream's start (loudness windows, spectrum,
        pitch path, voice measures, laughter train, the smoothing and hangover of voice
        activity). Kept are the slow estimates of the tap and the voice, not of what was
        said: the DC offset, voice activity's noise floor, the pitch tracker's speaker range
        and the laughter verifier's usual pitch. The hops not yet output (the partial hop and
        the ``delay_hops`` look-ahead, up to 50 ms before the loss) are lost with it; a
        laughter-like event in progress ends with its last burst heard (a ``completed``
        record for `take_bursts`). Costs no analysis: nothing is fed in place of the loss.
        """
        if first_hop < self._hops_out:
            raise ValueError(f"hop {first_hop} is before the next hop out ({self._hops_out})")
        c = self.n_channels
        closed = self._laugh.close()
        if closed is not None:
            self._bursts.append(("completed", self._shift(closed)))
        self._pending = np.zeros((c, 0))
        self._hops_in = 0
        self._kw = KWeightedEnergy(rate=RATE, hop=HOP, n_channels=c)
        self._mom = WindowedLoudness(window_hops=40, hop=HOP, n_channels=c)
        self._short = WindowedLoudness(window_hops=300, hop=HOP, n_channels=c)
        self._vad.restart()
        self._spectrum.reset()
        self._pitch.reset(keep_range=True)
        self._measures.reset()
        self._laugh.reset(keep_usual=True)
        self._base_rows = _Held(0)
        self._laugh_rows = _Held(self._laugh.delay_hops)
        self._hops_out = first_hop
        self._t0_s = first_hop * HOP_S

    def _shift(self, b: LaughterBurst) -> LaughterBurst:
        """A burst record of the stages (times from their hop 0) in stream time."""
        t0 = self._t0_s
        if not t0:
            return b
        return replace(b, start_s=b.start_s + t0, decided_at_s=b.decided_at_s + t0,
                       end_s=None if b.end_s is None else b.end_s + t0)

    def process(self, x: np.ndarray) -> HopFeatures:
        """Feed samples (n_channels, n) in [-1, 1); return features of every completed hop."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape[0] != self.n_channels:
            raise ValueError(f"expected {self.n_channels} channels, got {x.shape[0]}")
        buf = np.concatenate([self._pending, x], axis=1) if self._pending.size else x
        n_hops = buf.shape[1] // HOP
        whole, self._pending = buf[:, : n_hops * HOP], buf[:, n_hops * HOP:].copy()
        return self._run(whole)

    def take_bursts(self) -> list[tuple[str, LaughterBurst]]:
        """("decided" | "completed", burst) records since the last call, in stream order."""
        out, self._bursts = self._bursts, []
        return out

    def flush(self) -> HopFeatures:
        """Complete the last partial hop and the delayed hops with silence."""
        pad = (-self._pending.shape[1]) % HOP + self.delay_hops * HOP
        return self.process(np.zeros((self.n_channels, pad)))

    def _empty(self) -> HopFeatures:
        c = self.n_channels
        e = np.zeros((c, 0))
        return HopFeatures(hop=np.zeros(0, dtype=np.int64), t=np.zeros(0), level_dbfs=e,
                           loudness_m_lufs=e, loudness_s_lufs=e,
                           voiced=np.zeros((c, 0), dtype=bool), noise_floor_dbfs=e,
                           laughter=e, f0_hz=e, voicing=e,
                           pitch_voiced=np.zeros((c, 0), dtype=bool), rate_sps=e, alpha_db=e,
                           pitch_sd_st=e)

    # Rows of the packed per-hop array of the stages without look-ahead (held back by
    # ``delay_hops`` to line up with the pitch stage): (len(_BASE), n_channels, H) float64.
    _BASE = ("level_dbfs", "loudness_m_lufs", "loudness_s_lufs", "voiced", "noise_floor_dbfs")

    def _run(self, x: np.ndarray) -> HopFeatures:
        """All stages on whole hops, aligned: the output ends ``delay_hops`` before the input."""
        n_hops = x.shape[1] // HOP
        if n_hops == 0:
            return self._empty()
        seen = self._hops_in
        self._base_rows.push(self._run_no_delay(x))
        ns = self._n_spec
        # (the window leaks a DC offset into the lowest bins, which the laughter level reads)
        bands = self._spectrum.process(self._level.remove(x[:ns]))  # (ns, h, bands), delay 2
        pitch = self._pitch.process(x)  # delay 4; periodicity delay 2
        assert pitch.periodicity is not None
        vm = self._measures.process_bands(bands, pitch if ns == self.n_channels else PitchFrames(
            pitch.f0_hz[:ns], pitch.voicing[:ns], pitch.voiced[:ns], pitch.periodicity[:ns]))
        n3, n4 = self._nvm, self._nlb
        if self._verifier is not None:  # its rows first: the detector may consult it
            self._verifier.push(bands[0, :, n4:], pitch.periodicity[0], pitch.f0_hz[0],
                                pitch.voiced[0])
        lf = self._laugh.process_hops(bands[0, :, n3], pitch.periodicity[0],
                                      bands[0, :, n3 + 1:n4])
        self._laugh_rows.push(lf.score)
        if lf.decided or lf.completed:
            # decided and completed records of one call, ordered by the time they happened
            recs = [("decided", b.decided_at_s, b) for b in lf.decided]
            recs += [("completed", b.end_s or b.decided_at_s, b) for b in lf.completed]
            self._bursts += [(kind, self._shift(b))
                             for kind, _, b in sorted(recs, key=lambda r: r[1])]
        # pitch results j belong to hops seen - delay + j; negative hops are dropped
        n_out = min(n_hops, max(0, seen + n_hops - self.delay_hops))
        skip = n_hops - n_out
        out = self._base_rows.take(n_out)
        first = self._hops_out
        self._hops_out = first + n_out
        hop = np.arange(first, first + n_out)
        laughter = np.zeros((self.n_channels, n_out))  # 0 on the caller channel
        laughter[0] = self._laugh_rows.take(n_out)
        ns = self._n_spec
        measured = np.full((3, self.n_channels, n_out), np.nan)  # NaN where not measured
        measured[0, :ns] = vm.speaking_rate_hz[:, skip:]
        measured[1, :ns] = vm.alpha_ratio_avg_db[:, skip:]
        measured[2, :ns] = vm.pitch_sd_st[:, skip:]
        return HopFeatures(
            hop=hop,
            t=(hop + 0.5) * HOP_S,
            level_dbfs=out[0],
            loudness_m_lufs=out[1],
            loudness_s_lufs=out[2],
            voiced=out[3] > 0.5,
            noise_floor_dbfs=out[4],
            laughter=laughter,
            f0_hz=pitch.f0_hz[:, skip:],
            voicing=pitch.voicing[:, skip:],
            pitch_voiced=pitch.voiced[:, skip:],
            rate_sps=measured[0],
            alpha_db=measured[1],
            pitch_sd_st=measured[2],
        )

    def _run_no_delay(self, x: np.ndarray) -> np.ndarray:
        """The stages without look-ahead for the hops of ``x``, packed as rows ``_BASE``."""
        c = self.n_channels
        n_hops = x.shape[1] // HOP
        self._hops_in += n_hops
        out = np.empty((len(self._BASE), c, n_hops))
        level = out[0]
        level[...] = self._level.process(x)
        energy = self._kw.process(x)
        ms = out[1:3]
        ms[0] = self._mom.mean_square(energy)
        ms[1] = self._short.mean_square(energy)
        ms[...] = power_to_lufs(ms)
        voiced, out[4] = self._vad.process(level)
        out[3] = voiced
        return out


class _Held:
    """Per-hop results ``(..., H)`` of a stage with ``delay`` hops of look-ahead, held
    until the slowest stage has caught up: ``push`` the stage's results in stream order (the
    first ``delay`` rows of the stream, for hops before it, are dropped), ``take`` the oldest
    rows as they go out."""

    def __init__(self, delay: int) -> None:
        self._skip = delay
        self._rows: np.ndarray | None = None

    def push(self, rows: np.ndarray) -> None:
        if self._skip:
            drop = min(self._skip, rows.shape[-1])
            self._skip -= drop
            rows = rows[..., drop:]
        self._rows = rows if self._rows is None else np.concatenate([self._rows, rows], axis=-1)

    def take(self, n: int) -> np.ndarray:
        assert self._rows is not None and self._rows.shape[-1] >= n
        out, self._rows = self._rows[..., :n], self._rows[..., n:]
        return out
