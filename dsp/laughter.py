"""Laughter-likeness detector: a causal, streaming measure of laughter-like bursts.

The detector describes *sound*, not feelings: it reports when the agent's voice contains a
train of short, regularly spaced energy bursts ("ha-ha-ha", "heh-heh", a giggle) of the kind
laughter produces.  It never infers an emotional state.

Input and frame conventions (see ``docs/conventions.md``)
--------------------------------------------------------
* Agent channel only: mono, 16 000 Hz, ``float64`` in [-1, 1), shape ``(n_samples,)``
  (the analyzer passes ``x[0]`` of its ``(n_channels, n_samples)`` block).  ``n_samples`` must
  be a multiple of the 160-sample (10 ms) hop.
* One result per input hop.  ``delay_hops == 0``: result ``j`` of a call belongs to absolute
  hop ``hops_seen_before_call + j``; its time stamp is the hop centre ``(k + 0.5) * 0.01`` s.
  Every per-hop measurement at hop ``k`` is computed from audio that ends at the end of hop
  ``k`` (a 32 ms frame for level and spectrum, 33 ms for voicing); nothing later is used.
* State (sample tails, per-hop feature history, the current pulse train, the open event) is
  carried across calls explicitly; results do not depend on how the stream is cut into blocks.

How the score is built (every measure explains itself)
-----------------------------------------------------
Per hop:

* **level** ``e`` in dBFS re a full-scale square wave, from a Hann-windowed 32 ms frame;
* **voicing** ``v`` in [0, 1]: the highest normalised cross-correlation (as in RAPT, Talkin
  1995) between the last 20 ms and the same length one lag earlier, for lags of F0 from 75 to
  600 Hz, on the signal low-passed to 1.8 kHz and decimated to 4 kHz.  Vowels read above 0.9,
  breathy voice 0.6-0.8, aspiration, fricatives and room noise mostly below 0.35;
* **spectral shape**: band energies 250-4300 Hz (10 bands covering F1-F3), kept per hop; at a
  pulse their logarithm, with mean and linear tilt removed, is the formant pattern of the sound.

A **pulse** (one "ha"; a *burst* in the event fields) is a local maximum of ``e``, highest
within 50 ms before and 30 ms after it, at least 6 dB above the lowest level of the preceding
150 ms and louder than -60 dBFS.  A peak without a 6 dB dip since the previous pulse belongs to
that same burst (the higher of the two is kept).  Pulses follow each other in a **train**; a
pause of more than 0.4 s or a level jump of 10 dB or more between consecutive pulses (a breath
or a click before a laugh, a stressed word) starts a new train.  The last three or four pulses
of the train (two or three intervals) are measured five ways, each mapped to [0, 1] by a
linear ramp:

1. *rhythm*: every interval within 150-250 ms (4-6.7 bursts/s, the typical laughter rhythm:
   Provine 1996, Bachorowski et al. 2001, Trouvain 2003) gets full credit, falling to zero at
   125 and 333 ms (8 and 3 bursts/s); the intervals must be nearly equal: spread
   (max - min) / mean 0.25 -> full credit, 0.6 -> none.
2. *voiced nuclei*: the pulses are voiced (mean credit of voicing 0.35 -> 0.6 within 30 ms of
   each peak); a cough or a sniff is a noise burst without a periodic nucleus.
3. *alternation*: between *every* two consecutive pulses the voicing breaks (its minimum
   falls 0.6 -> 0.35) and the level dips (3 -> 9 dB below the weaker neighbour): the breathy
   /h/ or the pause between calls.  Running speech often keeps voicing on across syllables.
4. *repetition*: every burst repeats the previous one - the same spectral shape (cosine
   similarity 0.3 -> 0.7 of the shapes averaged over peak +-20 ms) and about the same level
   (step 10 -> 4 dB).  Laughter repeats one vowel at a slowly falling level; speech changes
   vowel and stress from syllable to syllable.
5. *aspiration* (breathiness of the gaps): at the quietest hop of *every* gap, the balance of
   high (2-4.3 kHz) over low (250-1000 Hz) band energy, relative to its mean at the two peaks
   around it, is at least that of the calls (-10 -> 0 dB).  Between laugh calls there is
   aspiration (/h/, breath: turbulence noise, brighter than a vowel) or a silent pause;
   between syllables of speech there is often a nasal, a liquid or a stop closure's voice
   bar, whose low frequencies outlast the high ones.  Added in round 4, chosen on recorded
   development speech (see ``tests/bench/bench_laughter.py``).

The score is the weakest of the five (all five properties must hold; 0.5 means each holds at
least half-way).  It is set at each pulse and held until the next pulse or until the train
ends, then it returns to 0.

Burst events: a train whose score reaches ``threshold`` starts an event, whose start is the
onset of the first pulse evaluated.  It is *decided* at that hop, i.e. about two intervals plus
the 30 ms peak confirmation after the onset of the first burst: within 0.6 s at 4 bursts/s
only if the first call peaks within ~70 ms of its onset (a long or double-humped first call,
common in real laughs, makes it later; see the bench history).  The event goes on while
each new pulse keeps the score at or above ``release`` (hysteresis) and ends when the train
ends or a pulse breaks the pattern.  Cooldown, caps and snooze are firmware policy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.signal import firwin

__all__ = ["LaughterBurst", "LaughterDetector", "LaughterFrames"]

RATE_HZ = 16_000
HOP = 160
HOP_S = HOP / RATE_HZ

# --- Per-hop measures ----------------------------------------------------------------------
FRAME = 512  # 32 ms Hann frame for level and shape: short enough for 100 ms laugh calls.
FLOOR_DBFS = -120.0  # silence floor of the level (conventions).
SHAPE_EDGES_HZ = (250, 500, 750, 1000, 1300, 1650, 2050, 2500, 3000, 3600, 4300)
#   bands >= 250 Hz wide over F1-F3, so single harmonics of a high voice do not dominate.
DECIM = 4  # voicing on the signal decimated to 4 kHz ...
DECIM_CUTOFF_HZ = 1800.0  # ... low-passed to F0 and its first harmonics; above ~2 kHz breathy
#   voice is mostly noise and fricatives would only add unvoiced energy.
DECIM_TAPS = 63  # FIR length at 16 kHz: ~0.8 kHz transition, DC removed (see __init__).
HOP_DEC = HOP // DECIM
NCCF_REF = 80  # 20 ms reference segment at 4 kHz: > 1.5 periods at 75 Hz.
F0_RANGE_HZ = (75.0, 600.0)  # low male speech to high giggles (octave errors do not matter:
#   only the strength of the periodicity is used).

# --- Pulses and trains ---------------------------------------------------------------------
PEAK_BACK_HOPS = 5  # a pulse is the highest level of the previous 50 ms ...
PEAK_AHEAD_HOPS = 3  # ... and of the next 30 ms (bursts at <= 8/s are >= 125 ms apart).
RISE_WINDOW_HOPS = 15  # the rise into a pulse is looked for in the preceding 150 ms ...
RISE_DB = 6.0  # ... and must be at least 6 dB (amplitude doubles): a burst, not a wobble.
ONSET_DB = 3.0  # onset: where the level leaves (lowest + 3 dB) on its way up to the peak.
GATE_DBFS = -60.0  # quieter peaks are not the agent's close-talk voice.
TRAIN_GAP_HOPS = 40  # 0.4 s without a pulse ends a train (2.5 bursts/s is no laughter rhythm).
VOICING_NEAR_PEAK_HOPS = 3  # the voiced nucleus is looked for within +-30 ms of the peak.
MAX_PULSES = 4  # score over the last three intervals at most: recent sound only.
MIN_PULSES = 3  # two intervals are the least that show a rhythm.

# --- Ramps: (value giving 0, value giving 1) -----------------------------------------------
INTERVAL_FULL_S = (0.150, 0.250)  # 4-6.7 bursts/s, the typical laughter rhythm: full credit
INTERVAL_EDGE_S = (0.125, 0.333)  # credit falls linearly to zero at 8 and 3 bursts/s
SPREAD_RAMP = (0.6, 0.25)  # interval spread (max-min)/mean: laugh calls are near-isochronous
#   (spread of a few tens of percent), syllable durations in speech vary about twice as much.
VOICED_RAMP = (0.35, 0.6)  # voicing strength: noise (<= 0.35 for white noise, 90th pct) ->
#   breathy voice (>= 0.6).
DIP_DB_RAMP = (3.0, 9.0)  # level dip between pulses (dB below the weaker pulse): a 9 dB dip
#   is a clear separation (amplitude below 1/3), 3 dB a mere wobble.
SHAPE_SIM_RAMP = (0.3, 0.7)  # cosine similarity of consecutive tilt-free pulse shapes: the
#   same vowel repeated scores >= 0.9 on synthetic laughs, different vowels mostly < 0.5.
LEVEL_STEP_RAMP = (10.0, 4.0)  # level step between consecutive pulses (dB): laugh calls
#   fall slowly (~1 dB per call), stressed and unstressed syllables differ by 5-10 dB.
NUCLEUS_HOPS = 2  # the pulse shape is the mean log spectrum of the peak +-20 ms (one frame
#   alone is dominated by where the harmonics of the moment fall).

ASPIRATION_RAMP = (-10.0, 0.0)  # spectral balance of the gap minus that of the calls (dB):
#   aspiration (/h/, breath) is turbulence noise, at least as bright as the vowels around it
#   (>= 0 dB: full credit); the voiced consonants and stop-closure voice bars that separate
#   syllables keep their low frequencies and lose the high ones first (<= -10 dB: none).
HI_BANDS = slice(6, 10)  # shape bands 2050-4300 Hz: where aspiration noise outweighs voice
LO_BANDS = slice(0, 3)  # shape bands 250-1000 Hz: F1 and the voice bar

_APPENDED, _REPLACED, _IGNORED = 0, 1, 2  # what a new peak did to the train

HISTORY_HOPS = 64  # per-hop history kept: >= TRAIN_GAP_HOPS + PEAK_AHEAD_HOPS + 2, and
#   >= RISE_WINDOW_HOPS + PEAK_AHEAD_HOPS for the peak test.


def _balance_db(bands: np.ndarray) -> float:
    """High (2-4.3 kHz) over low (250-1000 Hz) band energy of one hop (dB)."""
    hi, lo = bands[HI_BANDS].sum(), bands[LO_BANDS].sum()
    return 10.0 * float(np.log10((hi + 1e-14) / (lo + 1e-14)))


def _ramp(x: float, lo: float, hi: float) -> float:
    """Linear ramp: 0 at ``lo``, 1 at ``hi`` (either order), clipped to [0, 1]."""
    t = (x - lo) / (hi - lo)
    return 0.0 if t <= 0.0 else 1.0 if t >= 1.0 else t


@dataclass(frozen=True)
class LaughterBurst:
    """One laughter-like burst event: a train of short, regular energy bursts.

    Times are stream seconds (sample count / 16 000) at hop centres, ``(k + 0.5) * 0.01``.

    Attributes:
        index: event number since the detector was created (0, 1, ...); the *decided* and the
            *completed* record of one event share it.
        start_s: onset of the first burst of the event (s).
        decided_at_s: time stamp of the hop at which the event was decided (s); the decision
            latency is ``decided_at_s - start_s``.
        end_s: end of the last burst, taken as its peak plus half the mean interval (s);
            ``None`` in the *decided* record (event still in progress).
        burst_count: number of short energy bursts ("ha"s) in the event so far.
        rhythm_hz: bursts per second, the inverse of the mean peak-to-peak interval (Hz).
        duration_s: ``end_s - start_s`` (s); ``None`` while in progress.
        score: highest laughter-likeness score (0-1) reached in the event so far.
    """

    index: int
    start_s: float
    decided_at_s: float
    end_s: float | None
    burst_count: int
    rhythm_hz: float
    duration_s: float | None
    score: float


@dataclass(frozen=True)
class LaughterFrames:
    """Results of one :meth:`LaughterDetector.process` call (``delay_hops == 0``).

    Attributes:
        score: laughter-likeness per input hop, shape ``(n_hops,)``, in [0, 1].
        in_burst: ``True`` at hops where an event has been decided and has not ended yet,
            shape ``(n_hops,)``.
        decided: events decided during this call (``end_s is None``): cue on these.
        completed: events that ended during this call, with their final measurements.
    """

    score: np.ndarray
    in_burst: np.ndarray
    decided: tuple[LaughterBurst, ...]
    completed: tuple[LaughterBurst, ...]


@dataclass
class _Pulse:
    peak: int  # absolute hop of the level peak
    onset: int  # absolute hop where the rise into the pulse begins
    level: float  # dBFS at the peak
    voicing: float  # highest voicing within +-30 ms of the peak
    shape: np.ndarray  # unit-norm, tilt-free log band spectrum at the peak
    dip_db: float = 0.0  # level dip since the previous pulse of the train (dB)
    gap_tilt_db: float = 0.0  # high/low band balance at the gap's quietest hop minus the
    #   mean balance at the two peaks around it (dB): >= 0 for aspiration between calls
    gap_voicing: float = 1.0  # lowest voicing since the previous pulse of the train


class LaughterDetector:
    """Streaming laughter-likeness detector for the agent channel (16 kHz mono).

    Args:
        rate: sample rate in Hz; must be 16 000 (the analysis rate).
        hop: hop in samples; must be 160 (10 ms).
        threshold: score (0-1) at which a pulse train becomes a burst event.  0.5: each of the
            five measures holds at least half-way.
        release: score under which a later pulse ends the event (hysteresis; <= threshold).

    Attributes:
        delay_hops: 0 - result ``j`` of a call is for hop ``hops_seen_before_call + j``.
    """

    delay_hops: int = 0

    def __init__(
        self,
        *,
        rate: int = RATE_HZ,
        hop: int = HOP,
        threshold: float = 0.5,
        release: float = 0.35,
    ) -> None:
        if rate != RATE_HZ or hop != HOP:
            raise ValueError(f"LaughterDetector runs at {RATE_HZ} Hz with a {HOP}-sample hop")
        if not 0.0 < release <= threshold <= 1.0:
            raise ValueError("need 0 < release <= threshold <= 1")
        self.threshold = float(threshold)
        self.release = float(release)

        self._window = np.hanning(FRAME + 2)[1:-1]  # strictly positive Hann, 512 taps
        freqs = np.fft.rfftfreq(FRAME, 1.0 / RATE_HZ)
        edges = np.asarray(SHAPE_EDGES_HZ, dtype=float)
        bands = ((freqs[:, None] >= edges[:-1]) & (freqs[:, None] < edges[1:])).astype(float)
        # Last column: Parseval weights giving the window-compensated mean square (a
        # full-scale square wave reads 1, i.e. 0 dBFS).
        parseval = np.full(freqs.size, 2.0)
        parseval[[0, -1]] = 1.0
        parseval /= FRAME * float(np.sum(self._window**2))
        self._bands = np.column_stack([bands, parseval])
        nb = edges.size - 1
        idx = np.arange(nb) - (nb - 1) / 2
        basis = np.stack([np.ones(nb) / np.sqrt(nb), idx / np.linalg.norm(idx)])
        self._detrend = np.eye(nb) - basis.T @ basis  # removes mean and linear tilt

        # Decimation FIR with its DC gain removed: periodicity survives any linear filter, so
        # the notch at 0 Hz costs nothing while DC offsets and hum cannot read as "voiced".
        h = firwin(DECIM_TAPS, DECIM_CUTOFF_HZ, fs=RATE_HZ)
        w = np.hanning(DECIM_TAPS + 2)[1:-1]
        self._fir = h - w * (h.sum() / w.sum())
        rate4 = RATE_HZ / DECIM
        self._lag_lo = int(np.floor(rate4 / F0_RANGE_HZ[1]))
        self._lag_hi = int(np.ceil(rate4 / F0_RANGE_HZ[0]))
        self._n_lags = self._lag_hi - self._lag_lo + 1
        self._span = NCCF_REF + self._lag_hi + 1  # decimated samples looked at per hop
        self._peak_offsets = np.arange(-RISE_WINDOW_HOPS, PEAK_AHEAD_HOPS + 1)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget all history (start of a new stream)."""
        self._tail = np.zeros(FRAME - HOP)
        self._dec_tail = np.zeros(self._span - HOP_DEC)
        self._hops_seen = 0
        self._e = np.full(HISTORY_HOPS, FLOOR_DBFS)
        self._v = np.zeros(HISTORY_HOPS)
        self._b = np.zeros((HISTORY_HOPS, self._bands.shape[1] - 1))
        self._train: list[_Pulse] = []
        self._score = 0.0  # score held since the last pulse
        self._event: LaughterBurst | None = None
        self._event_peaks: list[int] = []  # absolute peak hops of the open event's bursts
        self._n_events = 0

    @property
    def hops_seen(self) -> int:
        """Number of hops processed since creation or :meth:`reset`."""
        return self._hops_seen

    # ------------------------------------------------------------------ per-hop measures
    def _measures(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Level (dBFS), voicing (0-1) and band energies, shape ``(n,)``, ``(n,)``, ``(n, 10)``."""
        n = x.size // HOP
        f8 = x.itemsize
        buf = np.concatenate([self._tail, x])
        self._tail = buf[x.size :]
        # (np.ndarray views instead of as_strided: same strided views, far less overhead)
        frames = np.ndarray((n, FRAME), np.float64, buf, 0, (HOP * f8, f8))
        spec = np.fft.rfft(frames * self._window)
        pb = (spec.real**2 + spec.imag**2) @ self._bands  # (n, 10 bands + mean square)
        e = 10.0 * np.log10(np.maximum(pb[:, -1], 1e-12))
        bands = pb[:, :-1]

        # Voicing: low-pass + decimate (the FIR looks DECIM_TAPS-1 samples back into buf).
        off = (FRAME - HOP - (DECIM_TAPS - 1)) * f8
        ys = np.ndarray((x.size // DECIM, DECIM_TAPS), np.float64, buf, off, (DECIM * f8, f8))
        y4 = np.concatenate([self._dec_tail, ys @ self._fir])
        self._dec_tail = y4[y4.size - (self._span - HOP_DEC) :]
        # For hop j the span is y4[40 j : 40 j + span]; the reference is its last NCCF_REF
        # samples, the candidate for lag L starts L samples earlier (lags descending).
        cands = np.ndarray(
            (n, self._n_lags, NCCF_REF), np.float64, y4, f8, (HOP_DEC * f8, f8, f8)
        )
        ref = np.ndarray(
            (n, NCCF_REF), np.float64, y4, (self._span - NCCF_REF) * f8, (HOP_DEC * f8, f8)
        )
        num = np.einsum("ijk,ik->ij", cands, ref)
        cs = np.cumsum(y4 * y4)
        seg = cs[NCCF_REF:] - cs[:-NCCF_REF]  # seg[a] = energy of y4[a + 1 : a + 1 + REF]
        e_cand = np.ndarray((n, self._n_lags), np.float64, seg, 0, (HOP_DEC * f8, f8))
        e_ref = seg[self._span - NCCF_REF - 1 :: HOP_DEC]
        nccf = num / np.sqrt(e_cand * e_ref[:, None] + 1e-20)
        # Below -90 dBFS voicing is not measured (counts as unvoiced): there the running sums
        # are no longer accurate and nothing audible is left to be periodic.
        v = np.where(e_ref > NCCF_REF * 1e-9, np.clip(nccf.max(axis=1), 0.0, 1.0), 0.0)
        return e, v, bands

    # ------------------------------------------------------------------ pulses and score
    @staticmethod
    def _window_score(tr: list[_Pulse]) -> float:
        """Laughter-likeness (0-1) of consecutive pulses ``tr`` (at least MIN_PULSES)."""
        iv = [(b.peak - a.peak) * HOP_S for a, b in zip(tr, tr[1:], strict=False)]
        rate = min(
            min(_ramp(i, INTERVAL_EDGE_S[0], INTERVAL_FULL_S[0]) for i in iv),
            min(_ramp(i, INTERVAL_EDGE_S[1], INTERVAL_FULL_S[1]) for i in iv),
        )
        spread = (max(iv) - min(iv)) / (sum(iv) / len(iv))
        rhythm = rate * _ramp(spread, *SPREAD_RAMP)
        voiced = sum(_ramp(p.voicing, *VOICED_RAMP) for p in tr) / len(tr)
        alt = min(
            _ramp(p.dip_db, *DIP_DB_RAMP) * (1.0 - _ramp(p.gap_voicing, *VOICED_RAMP))
            for p in tr[1:]
        )
        cos = min(float(a.shape @ b.shape) for a, b in zip(tr, tr[1:], strict=False))
        step = max(abs(b.level - a.level) for a, b in zip(tr, tr[1:], strict=False))
        rep = min(_ramp(cos, *SHAPE_SIM_RAMP), _ramp(step, *LEVEL_STEP_RAMP))
        asp = min(_ramp(p.gap_tilt_db, *ASPIRATION_RAMP) for p in tr[1:])
        return min(rhythm, voiced, alt, rep, asp)

    def _add_pulse(
        self, q: int, base: int, e: np.ndarray, v: np.ndarray, b: np.ndarray, completed: list
    ) -> int:
        """Add the pulse peaking at position ``q`` of the history arrays to the train.

        Returns ``_APPENDED``, ``_REPLACED`` (a higher peak of the previous burst) or
        ``_IGNORED`` (a lower peak of the previous burst: nothing changed).
        """
        rw = e[q - RISE_WINDOW_HOPS : q + 1]
        low = np.flatnonzero(rw <= rw.min() + ONSET_DB)
        near = v[q - VOICING_NEAR_PEAK_HOPS : q + VOICING_NEAR_PEAK_HOPS + 1]
        nb = b[q - NUCLEUS_HOPS : q + NUCLEUS_HOPS + 1]
        shape = np.log(nb + 1e-12 * (1.0 + nb.sum(axis=1, keepdims=True))).mean(axis=0)
        shape = shape @ self._detrend
        shape /= np.sqrt(float(shape @ shape)) + 1e-12
        pulse = _Pulse(
            peak=base + q,
            onset=base + q - RISE_WINDOW_HOPS + int(low[-1]),
            level=float(e[q]),
            voicing=float(near.max()),
            shape=shape,
        )
        if self._train:
            prev = self._train[-1]
            pq = prev.peak - base
            gap_min = float(e[pq + 1 : q].min())
            if min(prev.level, pulse.level) - gap_min < RISE_DB:
                # No 6 dB dip since the previous pulse: the same burst.  Keep its higher peak;
                # the onset and the gap before it stay those of the previous pulse.
                if pulse.level <= prev.level:
                    return _IGNORED
                pulse.onset = prev.onset
                pulse.voicing = max(pulse.voicing, prev.voicing)
                pulse.dip_db, pulse.gap_voicing = prev.dip_db, prev.gap_voicing
                pulse.gap_tilt_db = prev.gap_tilt_db
                self._train[-1] = pulse
                if self._event is not None:
                    self._event_peaks[-1] = pulse.peak
                return _REPLACED
            pulse.dip_db = min(prev.level, pulse.level) - gap_min
            pulse.gap_voicing = float(v[pq + 1 : q].min())
            m = pq + 1 + int(np.argmin(e[pq + 1 : q]))
            calls = 0.5 * (_balance_db(b[pq]) + _balance_db(b[q]))
            pulse.gap_tilt_db = _balance_db(b[m]) - calls
            if abs(pulse.level - prev.level) >= LEVEL_STEP_RAMP[0]:
                # A level jump no laugh call makes (a breath or click before a laugh, a
                # stressed word): the train starts again here, as after a pause.
                if self._event is not None:
                    completed.append(self._close_event())
                self._train = []
        self._train.append(pulse)
        if len(self._train) > MAX_PULSES:
            del self._train[0]
        return _APPENDED

    def _score_train(self) -> None:
        """Score the last MAX_PULSES pulses of the train into ``self._score`` (0 if too few).

        Only the most recent window counts: evaluating shorter windows as well would give
        speech more chances to look rhythmic than it costs laughter.
        """
        tr = self._train
        self._score = self._window_score(tr) if len(tr) >= MIN_PULSES else 0.0

    def _end_time(self) -> float:
        """End of the event's last burst: its peak plus half the mean interval (s)."""
        pk = self._event_peaks
        half = 0.5 * (pk[-1] - pk[0]) / (len(pk) - 1)
        return (pk[-1] + 0.5 + half) * HOP_S

    def _event_record(self, **changes: object) -> LaughterBurst:
        pk = self._event_peaks
        ev = self._event
        assert ev is not None
        rhythm = (len(pk) - 1) / ((pk[-1] - pk[0]) * HOP_S)
        return replace(ev, burst_count=len(pk), rhythm_hz=rhythm, **changes)

    def _close_event(self) -> LaughterBurst:
        end_s = self._end_time()
        ev = self._event
        assert ev is not None
        done = self._event_record(end_s=end_s, duration_s=end_s - ev.start_s)
        self._event = None
        self._event_peaks = []
        return done

    def _update_event(self, k: int, appended: bool, decided: list, completed: list) -> None:
        """Event logic after the train changed at absolute hop ``k``."""
        sc = self._score
        tr = self._train
        if self._event is None:
            if sc >= self.threshold:
                win = tr
                self._event_peaks = [p.peak for p in win]
                self._event = LaughterBurst(
                    index=self._n_events,
                    start_s=(win[0].onset + 0.5) * HOP_S,
                    decided_at_s=(k + 0.5) * HOP_S,
                    end_s=None,
                    burst_count=0,
                    rhythm_hz=0.0,
                    duration_s=None,
                    score=sc,
                )
                self._event = self._event_record()
                self._n_events += 1
                decided.append(self._event)
        elif not appended:  # the last burst got a higher peak: update, keep the event
            self._event = self._event_record()
        elif sc >= self.release:
            self._event_peaks.append(tr[-1].peak)
            self._event = self._event_record(score=max(self._event.score, sc))
        else:  # the new pulse breaks the pattern: the event ends with the previous burst
            completed.append(self._close_event())

    # ------------------------------------------------------------------ main
    def process(self, x: np.ndarray) -> LaughterFrames:
        """Analyse a block of agent audio.

        Args:
            x: mono 16 kHz float64 samples in [-1, 1), shape ``(n_samples,)`` with
                ``n_samples % 160 == 0``.

        Returns:
            :class:`LaughterFrames`: one score per input hop (``delay_hops == 0``) and the
            burst events decided or completed during this call.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError("LaughterDetector takes the agent channel only: shape (n_samples,)")
        if x.size % HOP:
            raise ValueError(f"n_samples must be a multiple of the {HOP}-sample hop")
        n = x.size // HOP
        score = np.zeros(n)
        in_burst = np.zeros(n, dtype=bool)
        if n == 0:
            return LaughterFrames(score, in_burst, (), ())

        e_new, v_new, b_new = self._measures(x)
        e = np.concatenate([self._e, e_new])
        v = np.concatenate([self._v, v_new])
        b = np.concatenate([self._b, b_new])
        k0 = self._hops_seen  # absolute hop of the first new hop
        base = k0 - HISTORY_HOPS  # absolute hop of e[0]

        # Peak candidates p = k - PEAK_AHEAD_HOPS, confirmed at each new hop k.
        peaks: list[int] = []  # positions in e, ascending
        pos = np.arange(HISTORY_HOPS - PEAK_AHEAD_HOPS, HISTORY_HOPS + n - PEAK_AHEAD_HOPS)
        sel = pos[e[pos] >= GATE_DBFS]
        if sel.size:
            w = e[sel[:, None] + self._peak_offsets]  # (m, RISE + 1 + AHEAD)
            c = RISE_WINDOW_HOPS
            ok = (
                (w[:, c] > w[:, c - PEAK_BACK_HOPS : c].max(axis=1))
                & (w[:, c] >= w[:, c + 1 :].max(axis=1))
                & (w[:, c] - w[:, : c + 1].min(axis=1) >= RISE_DB)
            )
            peaks = sel[ok].tolist()

        decided: list[LaughterBurst] = []
        completed: list[LaughterBurst] = []
        j_prev = 0
        for q in [*peaks, None]:
            j = n if q is None else q + PEAK_AHEAD_HOPS - HISTORY_HOPS  # confirmation hop
            if self._train:  # the train ends if no pulse came within TRAIN_GAP_HOPS
                j_exp = self._train[-1].peak + TRAIN_GAP_HOPS + PEAK_AHEAD_HOPS - k0
                if j_exp < j:
                    j_exp = max(j_exp, j_prev)
                    score[j_prev:j_exp] = self._score
                    in_burst[j_prev:j_exp] = self._event is not None
                    if self._event is not None:
                        completed.append(self._close_event())
                    self._train = []
                    self._score = 0.0
                    j_prev = j_exp
            score[j_prev:j] = self._score
            in_burst[j_prev:j] = self._event is not None
            j_prev = j
            if q is None:
                break
            change = self._add_pulse(q, base, e, v, b, completed)
            if change == _IGNORED:
                continue
            self._score_train()
            self._update_event(k0 + j, change == _APPENDED, decided, completed)

        self._e = e[n:]
        self._v = v[n:]
        self._b = b[n:]
        self._hops_seen += n
        return LaughterFrames(score, in_burst, tuple(decided), tuple(completed))
