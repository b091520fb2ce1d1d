"""Streaming voice measures per hop: speaking rate, alpha ratio (spectral tilt), pitch spread.

All three are measurements of sound, stated in physical units; none of them names a feeling.

Definitions
-----------
Band energies come from a 32 ms Hann-windowed frame (512 samples at 16 kHz) centred on each
hop centre, power spectrum summed over bands (:class:`dsp.hop_spectrum.HopSpectrum`, which the
analyzer shares with the laughter detector):

- **Speaking rate** (``speaking_rate_hz``, syllable-like nuclei per second): nuclei are peaks
  of the 300-2500 Hz energy envelope (dB; smoothed over 3 hops) found by a hysteresis peak
  picker (a peak counts once the envelope has risen ``dip_db`` above the previous valley and
  then fallen ``dip_db`` below the peak, after de Jong & Wempe 2009), that are voiced (the
  pitch tracker's decision at the peak hop) and within ``relative_floor_db`` of the channel's
  running peak and above ``floor_dbfs``. The rate at hop ``k`` is the number of nuclei whose
  peak lies in the trailing ``rate_window_s`` ending at hop ``k`` and that have been confirmed
  by then, divided by the window length (by the elapsed time while the stream is shorter);
  pauses count, so this is a speaking rate, not an articulation rate.
  ``nucleus`` marks the hop at which a nucleus was confirmed (a few hops after its peak).
- **Alpha ratio** (``alpha_ratio_db``, dB): ``10 log10(E(1-5 kHz) / E(50-1000 Hz))`` of the
  hop, on voiced hops only (NaN elsewhere); the eGeMAPS spectral-balance measure of vocal
  effort: it rises (towards 0 dB) as a voice gets louder and more pressed, because the glottal
  source spectrum flattens; it does not change with the recording level.
  ``alpha_ratio_avg_db`` is its mean over the voiced hops of the trailing ``tilt_window_s``
  (as eGeMAPS' mean over voiced frames; NaN when there are none).
- **Pitch spread** (``pitch_sd_st``, semitones): standard deviation of ``12 log2(F0)`` over
  the voiced hops of the trailing ``pitch_window_s`` (NaN with fewer than ``min_voiced_hops``
  voiced hops in the window).

Frame convention and delay
--------------------------
The stage is fed the same blocks as the :class:`~dsp.pitch.PitchTracker` together with the
tracker's result for that block (``process``), or the block's band energies from a shared
:class:`~dsp.hop_spectrum.HopSpectrum` instead of the audio (``process_bands``). It aligns its
own analysis with the tracker's delayed hops, so its ``delay_hops`` equals the tracker's:
result ``j`` of a call belongs to absolute hop ``hops_seen_before_call + j - delay_hops``
(hop ``k`` centred at ``(k + 0.5) * hop / rate`` s). The band-energy frames use part of that
delay as look-ahead (2 hops for the frame, 1 for the envelope smoothing), so the look-ahead
stays within the tracker's. Trailing windows end at the hop itself. Results do not depend on
how the stream is cut into blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp.hop_spectrum import HopSpectrum, band_matrix
from dsp.pitch import PitchFrames

__all__ = ["VOICE_BANDS_HZ", "VoiceMeasureFrames", "VoiceMeasures"]

VOICE_BANDS_HZ = [(50.0, 1000.0), (1000.0, 5000.0), (300.0, 2500.0)]
"""The bands this stage reads, Hz: the two of the alpha ratio, then the speaking-rate
envelope's."""

_Q = float(1 << 16)
"""Fixed-point scale of the trailing sums (resolution 2^-16 of a semitone or dB)."""


@dataclass(frozen=True)
class VoiceMeasureFrames:
    """Per-hop voice measures, each array shaped ``(n_channels, n_hops)``."""

    speaking_rate_hz: np.ndarray
    """Syllable-like nuclei per second over the trailing rate window (float64)."""
    nucleus: np.ndarray
    """True at the hop where a nucleus was confirmed (bool)."""
    alpha_ratio_db: np.ndarray
    """Alpha ratio of the hop, dB (E 1-5 kHz re E 50-1000 Hz); NaN where unvoiced."""
    alpha_ratio_avg_db: np.ndarray
    """Mean alpha ratio over the voiced hops of the trailing tilt window, dB; NaN if none."""
    pitch_sd_st: np.ndarray
    """Standard deviation of F0 in semitones over the voiced hops of the trailing pitch
    window; NaN with too few voiced hops."""


class VoiceMeasures:
    """Speaking rate, alpha ratio and pitch spread per hop (see the module docstring).

    Parameters (keyword-only)
    -------------------------
    rate, hop:
        Sample rate (Hz) and hop (samples): the analysis rate's 16000 and 160 only (the shared
        spectrum is built for them); anything else is refused.
    n_channels:
        Number of channels.
    pitch_delay_hops:
        ``delay_hops`` of the pitch tracker whose results are passed to :meth:`process`
        (at least 3, the look-ahead this stage needs itself).
    rate_window_s, tilt_window_s, pitch_window_s:
        Trailing windows of the speaking rate, the mean alpha ratio and the pitch spread,
        seconds (each ends at the hop itself).
    dip_db:
        Hysteresis of the nucleus peak picker, dB.
    relative_floor_db:
        Nuclei must be within this many dB of the channel's running envelope peak (which
        decays by 1 dB/s).
    floor_dbfs:
        Nuclei must be above this envelope level (dB re full scale).
    min_voiced_hops:
        Voiced hops needed in the pitch window for a pitch spread.
    """

    _LOOKAHEAD = HopSpectrum.delay_hops + 1  # the frame (2 hops) + envelope smoothing (1)
    band_weights = band_matrix(VOICE_BANDS_HZ)
    """Weights (257, 3) of :data:`VOICE_BANDS_HZ` for a :class:`HopSpectrum`."""

    def __init__(
        self,
        *,
        rate: int = 16000,
        hop: int = 160,
        n_channels: int = 1,
        pitch_delay_hops: int = 4,
        rate_window_s: float = 4.0,
        tilt_window_s: float = 2.0,
        pitch_window_s: float = 3.0,
        dip_db: float = 2.0,
        relative_floor_db: float = -25.0,
        floor_dbfs: float = -60.0,
        min_voiced_hops: int = 20,
    ) -> None:
        if pitch_delay_hops < self._LOOKAHEAD:
            raise ValueError(f"pitch_delay_hops must be >= {self._LOOKAHEAD}")
        if rate != 16000 or hop != 160:
            raise ValueError("VoiceMeasures runs at the analysis rate: rate=16000, hop=160")
        if n_channels < 1:
            raise ValueError("need n_channels >= 1")
        self.rate = int(rate)
        self.hop = int(hop)
        self.n_channels = int(n_channels)
        self.delay_hops = int(pitch_delay_hops)
        """Result ``j`` of a call is for absolute hop ``hops_seen_before_call + j -
        delay_hops`` (the pitch tracker's delay)."""
        hop_s = hop / rate
        self._w_rate = max(1, int(round(rate_window_s / hop_s)))
        self._w_tilt = max(1, int(round(tilt_window_s / hop_s)))
        self._w_pitch = max(1, int(round(pitch_window_s / hop_s)))
        self._w_max = max(self._w_tilt, self._w_pitch)
        self.dip_db = float(dip_db)
        self.relative_floor_db = float(relative_floor_db)
        self.floor_dbfs = float(floor_dbfs)
        self.min_voiced_hops = int(min_voiced_hops)
        self._decay_db_per_hop = 1.0 * hop_s

        # Per block length (a few lengths in practice): the running-peak decay at each hop
        # of the block re its start (dB).
        self._per_h: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # Own spectrum for `process` (audio in), made on first use; the analyzer shares one.
        self._spectrum: HopSpectrum | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the stream."""
        c = self.n_channels
        d = self.delay_hops
        if self._spectrum is not None:
            self._spectrum.reset()
        self._hops_out = -d  # absolute hop of the next result
        # Band mean squares (c, d - 1, 3) of hops (next result - 1) .. (seen - 3): the bands
        # arrive with the spectrum's delay (2), the results go out with the pitch delay d.
        self._e_hist = np.zeros((c, d - 1, 3))
        # Integer prefix sums of the trailing statistics over the last w_max hops.
        self._cs = np.zeros((4, c, self._w_max), dtype=np.int64)
        # Peak picker state per channel.
        self._seek_peak = [True] * c
        self._ext_val = [-np.inf] * c  # running max (seeking a peak) or min (seeking a valley)
        self._ext_hop = [0] * c
        self._ext_ok = [False] * c
        self._env_peak = np.full(c, -np.inf)
        self._nuclei: list[list[int]] = [[] for _ in range(c)]  # peak hops in the window

    # ------------------------------------------------------------------------------------
    def process(self, x: np.ndarray, pitch: PitchFrames) -> VoiceMeasureFrames:
        """One block: ``x`` is ``(n_channels, n_samples)`` audio (``n_samples % hop == 0``),
        ``pitch`` the pitch tracker's result for the same block."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1 and self.n_channels == 1:
            x = x[None, :]
        c = self.n_channels
        if x.ndim != 2 or x.shape[0] != c or x.shape[1] % self.hop:
            raise ValueError(f"expected ({c}, k * {self.hop}) samples, got {x.shape}")
        if self._spectrum is None:
            self._spectrum = HopSpectrum(bands=self.band_weights, n_channels=c)
        return self.process_bands(self._spectrum.process(x), pitch)

    def process_bands(self, bands: np.ndarray, pitch: PitchFrames) -> VoiceMeasureFrames:
        """One block given as its band energies instead of its audio: ``bands`` is the
        ``(n_channels, n_hops, 3)`` result of a :class:`HopSpectrum` with
        :attr:`band_weights` fed the block (it may hold more columns: the first three are
        read), ``pitch`` the pitch tracker's result for the same block."""
        c = self.n_channels
        h = bands.shape[1]
        if bands.shape[0] != c or pitch.f0_hz.shape != (c, h):
            raise ValueError(f"bands ({c}, h, 3) and pitch results ({c}, h) must match, got "
                             f"{bands.shape} and {pitch.f0_hz.shape}")
        first = self._hops_out
        self._hops_out += h
        if h == 0:
            z = np.zeros((c, 0))
            return VoiceMeasureFrames(z, np.zeros((c, 0), bool), z, z, z)

        # Band mean squares of hops first-1 .. first+h: the hops of the results and one on
        # either side for the 3-hop smoothing of the envelope.
        jdec, jdec1 = self._block_arrays(h)
        e = np.concatenate([self._e_hist, bands[:, :, :3]], axis=1)
        self._e_hist = e[:, h:]
        e = e[:, : h + 2]
        env = e[:, :, 2]
        env_db = 10.0 * np.log10(0.25 * env[:, :-2] + 0.5 * env[:, 1:-1] + 0.25 * env[:, 2:]
                                 + 1e-20)

        f0 = pitch.f0_hz
        voiced = pitch.voiced & (f0 > 0)
        lo_hi = e[:, 1:-1, :2] + 1e-20  # E 50-1000 Hz, E 1-5 kHz
        alpha_all = 10.0 * np.log10(lo_hi[:, :, 1] / lo_hi[:, :, 0])
        alpha = np.where(voiced, alpha_all, np.nan)

        # Trailing sums over voiced hops, as exact integer prefix sums (fixed point, 2^-16),
        # so they cannot depend on where blocks were cut: count, semitones re 100 Hz,
        # squared semitones, alpha ratio.
        semi = 12.0 * np.log2(np.where(voiced, f0, 100.0) / 100.0)
        q = np.empty((4, c, h))
        q[0] = voiced
        q[1] = semi
        np.multiply(semi, semi, out=q[2])
        np.minimum(np.maximum(alpha_all, -100.0), 100.0, out=q[3])
        q *= voiced
        q *= _Q
        np.rint(q, out=q)
        wm, wp, wt = self._w_max, self._w_pitch, self._w_tilt
        cs = np.empty((4, c, wm + h), dtype=np.int64)
        cs[:, :, :wm] = self._cs
        now = cs[:, :, wm:]
        np.add.accumulate(q.astype(np.int64), axis=2, out=now)
        now += self._cs[:, :, -1:]
        self._cs = cs[:, :, h:]
        sum_p = (now[:3] - cs[:3, :, wm - wp : wm - wp + h]) / _Q
        sum_t = (now[::3] - cs[::3, :, wm - wt : wm - wt + h]) / _Q
        n_t = np.maximum(sum_t[0], 0.5)
        alpha_avg = np.where(n_t > 0.5, sum_t[1] / n_t, np.nan)
        n = np.maximum(sum_p[0], 0.5)
        mean = sum_p[1] / n
        var = np.maximum(sum_p[2] / n - mean * mean, 0.0)
        pitch_sd = np.where(n >= self.min_voiced_hops, np.sqrt(var), np.nan)

        rate_hz, nucleus = self._speaking_rate(env_db, voiced, first, jdec, jdec1)
        return VoiceMeasureFrames(rate_hz, nucleus, alpha, alpha_avg, pitch_sd)

    def _block_arrays(self, h: int) -> tuple[np.ndarray, np.ndarray]:
        """Per block length ``h`` (cached; a few lengths): the envelope-peak decay at hops
        0 .. h-1 of the block re its first hop and re the hop before it (h,), dB."""
        got = self._per_h.get(h)
        if got is None:
            if len(self._per_h) >= 8:
                self._per_h.clear()
            j = np.arange(h, dtype=np.float64) * self._decay_db_per_hop
            got = self._per_h[h] = (j, j + self._decay_db_per_hop)
        return got

    # ------------------------------------------------------------------------------------
    def _speaking_rate(
        self, env_db: np.ndarray, voiced: np.ndarray, first: int, j: np.ndarray,
        j1: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Hysteresis peak picking per hop (scalar Python: a few operations per hop), then
        the trailing count of confirmed nuclei per hop. ``j`` / ``j1`` (h,): envelope-peak
        decay at each hop re the block's first hop / re the hop before it, dB."""
        c, h = env_db.shape
        # Running envelope peak (decaying), the reference of the relative floor.
        run = env_db + j
        np.maximum.accumulate(run, axis=1, out=run)
        run -= j
        np.maximum(run, self._env_peak[:, None] - j1, out=run)
        self._env_peak = run[:, -1].copy()
        # the nucleus floor, in place: max(run + relative_floor_db, floor_dbfs)
        run += self.relative_floor_db
        np.maximum(run, self.floor_dbfs, out=run)
        ok = env_db >= run
        ok &= voiced
        env_rows, ok_rows = env_db.tolist(), ok.tolist()
        nucleus = np.zeros((c, h), dtype=bool)
        dip = self.dip_db
        w = self._w_rate
        counts = []
        for ch in range(c):
            seek, val, at, good = (
                self._seek_peak[ch], self._ext_val[ch], self._ext_hop[ch], self._ext_ok[ch]
            )
            peaks = self._nuclei[ch]  # peak hops of counted nuclei, oldest first
            gone = 0  # nuclei whose peak has left the window
            cnt = []
            k = first
            for e, g in zip(env_rows[ch], ok_rows[ch], strict=True):
                if seek:
                    if e > val:
                        val, at, good = e, k, g
                    elif e < val - dip:
                        if good:
                            peaks.append(at)
                            nucleus[ch, k - first] = True
                        seek, val = False, e
                elif e < val:
                    val = e
                elif e > val + dip:
                    seek, val, at, good = True, e, k, g
                while gone < len(peaks) and peaks[gone] <= k - w:
                    gone += 1
                cnt.append(len(peaks) - gone)
                k += 1
            del peaks[:gone]
            self._seek_peak[ch], self._ext_val[ch] = seek, val
            self._ext_hop[ch], self._ext_ok[ch] = at, good
            counts.append(cnt)
        elapsed_s: float | np.ndarray
        if first + 1 >= w:  # the window is full: the same length at every hop
            elapsed_s = w * (self.hop / self.rate)
        else:
            hops = np.arange(first + 1, first + h + 1)
            elapsed_s = np.minimum(np.maximum(hops, 1), w) * (self.hop / self.rate)
        rate_hz = np.array(counts, dtype=np.float64) / elapsed_s
        return rate_hz, nucleus
