"""Laughter-likeness detector: a causal, streaming measure of laughter-like bursts.

The detector describes *sound*, not feelings: it reports when the agent's voice contains a
train of short, regularly spaced energy bursts ("ha-ha-ha", "heh-heh", a giggle) of the kind
laughter produces.  It never infers an emotional state.

Input and frame conventions (see ``docs/conventions.md``)
--------------------------------------------------------
* Agent channel only, 16 000 Hz, 10 ms hops.  Two ways in:

  - ``process_hops(mean_square, periodicity, bands)``: per-hop measures the analyzer already
    has - the band energies of the shared 32 ms spectrum (:class:`dsp.hop_spectrum.HopSpectrum`
    with :attr:`LaughterDetector.band_weights`) and the pitch tracker's periodicity before its
    path search (:attr:`dsp.pitch.PitchFrames.periodicity`).  Both arrive 2 hops late (their
    32 / 40 ms frames are centred on the hop and reach 1.1 / 1.5 hops past its end: 2 whole
    hops of look-ahead), and rows are given in hop order, one per hop.  This is how the
    appliance runs it: the detector then costs little more than its pulse logic.
  - ``process(x)``: mono ``float64`` samples in [-1, 1), shape ``(n_samples,)`` with
    ``n_samples`` a multiple of the 160-sample hop; the detector computes the same measures
    itself (its own spectrum and pitch tracker: the same numbers, at the cost of both).

* One result per hop, ``delay_hops == 2``: result ``j`` of a ``process`` call belongs to
  absolute hop ``hops_seen_before_call + j - 2``; its time stamp is the hop centre
  ``(k + 0.5) * 0.01`` s.  Results for the two hops before the stream (silence) are included
  at the start.  Each measurement at hop ``k`` comes from frames centred on hop ``k``, so a
  decision at hop ``k`` is known once hop ``k + 2`` has been heard: ``decided_at_s`` is that
  moment, the stamp of hop ``k + 2``.
* State (per-hop feature history, the current pulse train, the open event) is carried across
  calls explicitly; results do not depend on how the stream is cut into blocks.

How the score is built (every measure explains itself)
-----------------------------------------------------
Per hop:

* **level** ``e`` in dBFS re a full-scale square wave, from the Hann-windowed 32 ms frame
  centred on the hop, of the audio less its DC offset (as `dsp.voice_activity.HopLevel`
  tracks it: the window leaks DC into the lowest bins, and an offset is no sound);
* **voicing** ``v`` in [0, 1]: the periodicity of the hop, the highest normalised
  autocorrelation ``R`` of a 40 ms frame centred on it at lags of F0 60-500 Hz, signal
  low-passed to 3.3 kHz (Boersma's measure, computed by the pitch tracker; a giggle above
  500 Hz still peaks at twice its period).  Vowels read above 0.9, breathy voice 0.6-0.8,
  white noise about 0.2-0.3; noise with a falling spectrum or narrow resonances (a cough
  through the vocal tract) up to about 0.5; below -90 dBFS it counts as 0;
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
   bar, whose low frequencies outlast the high ones (its ramp was chosen on recorded
   development speech: ``tests/bench/bench_laughter.py``).

The score is the weakest of the five (all five properties must hold; 0.5 means each holds at
least half-way).  It is set at each pulse and held until the next pulse or until the train
ends, then it returns to 0.

Burst events: a train whose score reaches ``threshold`` starts an event, whose start is the
onset of the first pulse evaluated.  It is *decided* at that hop, i.e. about two intervals plus
the 30 ms peak confirmation and the measures' 20 ms look-ahead after the onset of the first
burst: within 0.6 s at 4 bursts/s only if the first call peaks within ~50 ms of its onset (a
long or double-humped first call, common in real laughs, makes it later;
``tests/bench/bench_laughter.py`` measures it).  The event goes on while each new pulse keeps
the score at or above ``release`` (hysteresis) and ends when the train ends or a pulse breaks
the pattern.  Cooldown, caps and snooze are firmware policy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dsp.hop_spectrum import HopSpectrum, band_matrix, mean_square_column
from dsp.laughter_verifier import LaughterVerifier
from dsp.pitch import PitchTracker
from dsp.voice_activity import HopLevel

__all__ = ["LaughterBurst", "LaughterDetector", "LaughterFrames"]

RATE_HZ = 16_000
HOP = 160
HOP_S = HOP / RATE_HZ

# --- Per-hop measures ----------------------------------------------------------------------
FLOOR_DBFS = -120.0  # silence floor of the level (conventions).
SHAPE_EDGES_HZ = (250, 500, 750, 1000, 1300, 1650, 2050, 2500, 3000, 3600, 4300)
#   bands >= 250 Hz wide over F1-F3, so single harmonics of a high voice do not dominate.
VOICING_FLOOR_DBFS = -90.0  # quieter hops count as unvoiced: nothing audible to be periodic.

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
VOICED_RAMP = (0.35, 0.6)  # periodicity: noise (white noise 0.28, 90th percentile; noise
#   with a falling spectrum reads higher, 0.5) -> breathy voice (>= 0.6).
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
        index: event number since the detector was created or reset (0, 1, ...); the
            *decided* and the *completed* record of one event share it.
        start_s: onset of the first burst of the event (s).
        decided_at_s: the moment the event was decided (s): the time stamp of the newest hop
            heard then, ``delay_hops`` after the hop whose measures completed the decision;
            the decision latency is ``decided_at_s - start_s``.
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
    """Results of one :meth:`LaughterDetector.process` / ``process_hops`` call.

    Attributes:
        score: laughter-likeness per hop, shape ``(n_hops,)``, in [0, 1]; for ``process``
            delayed by ``delay_hops`` (result ``j`` is hop ``hops_seen_before_call + j - 2``).
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
        threshold: score (0-1) at which a pulse train becomes a burst event.  Alone, the pulse
            score: 0.5 means each of the five measures holds at least half-way.  With a
            ``verifier``, the verified score: the pulse score then only has to reach the
            verifier's ``propose_threshold`` for the window to be proposed to it.
        release: pulse score under which a later pulse ends the event (hysteresis; the
            lower of this and the proposal threshold).
        verifier: the learned second stage (:class:`dsp.laughter_verifier.LaughterVerifier`),
            or ``None`` for the pulse detector alone.  Its rows must be pushed for each call
            before :meth:`process_hops` (``process`` does it itself).

    Attributes:
        delay_hops: 2 - result ``j`` of a call is for hop ``hops_seen_before_call + j - 2``.
        band_weights: ``(257, 11)`` weights for a :class:`~dsp.hop_spectrum.HopSpectrum` whose
            result feeds :meth:`process_hops`: the frame's mean square, then the 10 shape bands.
    """

    delay_hops: int = HopSpectrum.delay_hops
    band_weights = np.hstack([
        mean_square_column(),
        band_matrix(list(zip(SHAPE_EDGES_HZ[:-1], SHAPE_EDGES_HZ[1:], strict=True))),
    ])

    def __init__(
        self,
        *,
        rate: int = RATE_HZ,
        hop: int = HOP,
        threshold: float = 0.5,
        release: float = 0.35,
        verifier: LaughterVerifier | None = None,
    ) -> None:
        if rate != RATE_HZ or hop != HOP:
            raise ValueError(f"LaughterDetector runs at {RATE_HZ} Hz with a {HOP}-sample hop")
        self.verifier = verifier
        self.propose = verifier.propose_threshold if verifier is not None else float(threshold)
        if not 0.0 < release <= threshold <= 1.0:
            raise ValueError("need 0 < release <= threshold <= 1")
        release = min(release, self.propose)  # a proposal may score under the release
        self.threshold = float(threshold)
        self.release = float(release)
        nb = len(SHAPE_EDGES_HZ) - 1
        idx = np.arange(nb) - (nb - 1) / 2
        basis = np.stack([np.ones(nb) / np.sqrt(nb), idx / np.linalg.norm(idx)])
        self._detrend = np.eye(nb) - basis.T @ basis  # removes mean and linear tilt
        self._peak_offsets = np.arange(-RISE_WINDOW_HOPS, PEAK_AHEAD_HOPS + 1)
        # Own front end for `process` (audio in), made on first use: the analyzer shares
        # its spectrum and pitch tracker instead (`process_hops`).
        self._spectrum: HopSpectrum | None = None
        self._pitch: PitchTracker | None = None
        self._dc: HopLevel | None = None  # the spectrum reads the audio less its DC, as there
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self, *, keep_usual: bool = False) -> None:
        """Forget all history (start of a new stream; the verifier's too). ``keep_usual``:
        the verifier keeps the usual pitch it learned (after audio was lost mid-stream; an
        event in progress is taken first with `close`)."""
        if self._spectrum is not None and self._pitch is not None:
            self._spectrum.reset()
            self._pitch.reset()
        self._dc = HopLevel(n_channels=1)
        if self.verifier is not None:
            self.verifier.reset(keep_usual=keep_usual)
        self._k0 = -self.delay_hops  # absolute hop of the next measures row
        self._e = np.full(HISTORY_HOPS, FLOOR_DBFS)
        self._v = np.zeros(HISTORY_HOPS)
        self._b = np.zeros((HISTORY_HOPS, len(SHAPE_EDGES_HZ) - 1))
        self._train: list[_Pulse] = []
        self._score = 0.0  # pulse score held since the last pulse
        self._measures = np.zeros(12)  # the pulse measures of the last scored window
        self._vscore = 0.0  # verified score of the train's last proposal (held; 0 without)
        self._event: LaughterBurst | None = None
        self._event_peaks: list[int] = []  # absolute peak hops of the open event's bursts
        self._n_events = 0

    def close(self) -> LaughterBurst | None:
        """End the event in progress with its last burst heard (audio was lost: no later
        burst can join it); its completed record, or None if none is open."""
        return self._close_event() if self._event is not None else None

    @property
    def hops_seen(self) -> int:
        """Number of hops of audio heard since creation or :meth:`reset`."""
        return self._k0 + self.delay_hops

    # ------------------------------------------------------------------ pulses and score
    @staticmethod
    def _window_measures(tr: list[_Pulse]) -> np.ndarray:
        """The pulse measures of consecutive pulses ``tr`` (at least MIN_PULSES), in
        :data:`dsp.laughter_verifier.PULSE_NAMES` order: the five ramps (0-1), their minimum
        (the laughter-likeness score), the pulse count, the mean interval (s), the interval
        spread (max - min) / mean, the mean dip (dB), the mean gap voicing and the mean peak
        voicing (0-1)."""
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
        return np.array([
            rhythm, voiced, alt, rep, asp, min(rhythm, voiced, alt, rep, asp), len(tr),
            sum(iv) / len(iv), spread, sum(p.dip_db for p in tr[1:]) / (len(tr) - 1),
            sum(p.gap_voicing for p in tr[1:]) / (len(tr) - 1),
            sum(p.voicing for p in tr) / len(tr)])

    @classmethod
    def _window_score(cls, tr: list[_Pulse]) -> float:
        """Laughter-likeness (0-1) of consecutive pulses ``tr`` (at least MIN_PULSES)."""
        return float(cls._window_measures(tr)[5])

    def _add_pulse(
        self, q: int, base: int, e: np.ndarray, v: np.ndarray, b: np.ndarray,
        completed: list[LaughterBurst],
    ) -> int:
        """Add the pulse peaking at position ``q`` of the history arrays to the train.

        Returns ``_APPENDED``, ``_REPLACED`` (a higher peak of the previous burst) or
        ``_IGNORED`` (a lower peak of the previous burst: nothing changed).
        """
        rw = e[q - RISE_WINDOW_HOPS : q + 1]
        low = np.flatnonzero(rw <= rw.min() + ONSET_DB)
        near = v[q - VOICING_NEAR_PEAK_HOPS : q + VOICING_NEAR_PEAK_HOPS + 1]
        nb = b[q - NUCLEUS_HOPS : q + NUCLEUS_HOPS + 1]
        # (floor 120 dB below the hop's shape-band energy: no log of 0)
        shape = np.log(nb + (1e-12 * nb.sum(axis=1, keepdims=True) + 1e-30)).mean(axis=0)
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
                self._vscore = 0.0
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
        if len(tr) >= MIN_PULSES:
            self._measures = self._window_measures(tr)
            self._score = float(self._measures[5])
        else:
            self._score = 0.0

    def _end_time(self) -> float:
        """End of the event's last burst: its peak plus half the mean interval (s)."""
        pk = self._event_peaks
        half = 0.5 * (pk[-1] - pk[0]) / (len(pk) - 1)
        return (pk[-1] + 0.5 + half) * HOP_S

    def _event_record(self, **changes: Any) -> LaughterBurst:
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

    def _update_event(self, k: int, appended: bool, decided: list[LaughterBurst],
                      completed: list[LaughterBurst]) -> None:
        """Event logic after the train changed at absolute hop ``k``."""
        sc = self._score
        tr = self._train
        if self._event is None:
            if self.verifier is not None:
                # A scored window (>= 3 pulses) at the proposal threshold is proposed: the
                # verifier reads the proposed train (within the last second) and decides.
                if len(tr) >= MIN_PULSES and sc >= self.propose:
                    sc = self._vscore = self.verifier.verify(k, self._measures, tr[0].onset)
                else:
                    sc = 0.0
            if sc >= self.threshold:
                win = tr
                self._event_peaks = [p.peak for p in win]
                self._event = LaughterBurst(
                    index=self._n_events,
                    start_s=(win[0].onset + 0.5) * HOP_S,
                    decided_at_s=(k + self.delay_hops + 0.5) * HOP_S,
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

    def _held(self) -> float:
        """The score column: the pulse score, or with a verifier the verified score of the
        train's last proposal (0 until one is made)."""
        return self._score if self.verifier is None else self._vscore

    # ------------------------------------------------------------------ main
    def process(self, x: np.ndarray) -> LaughterFrames:
        """Analyse a block of agent audio with the detector's own front end.

        Args:
            x: mono 16 kHz float64 samples in [-1, 1), shape ``(n_samples,)`` with
                ``n_samples % 160 == 0``.

        Returns:
            :class:`LaughterFrames`: one score per input hop, delayed by ``delay_hops`` (2),
            and the burst events decided or completed during this call.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 1:
            raise ValueError("LaughterDetector takes the agent channel only: shape (n_samples,)")
        if x.size % HOP:
            raise ValueError(f"n_samples must be a multiple of the {HOP}-sample hop")
        nb = self.band_weights.shape[1]
        if self._spectrum is None or self._pitch is None:
            bw = self.band_weights if self.verifier is None \
                else np.hstack([self.band_weights, self.verifier.band_weights])
            self._spectrum = HopSpectrum(bands=bw, n_channels=1)
            self._pitch = PitchTracker(n_channels=1)
            assert self._pitch.frame_lookahead_hops == self.delay_hops
        x = x[None, :]
        assert self._dc is not None
        self._dc.process(x)
        bands = self._spectrum.process(self._dc.remove(x))[0]
        pitch = self._pitch.process(x)
        periodicity = pitch.periodicity
        assert periodicity is not None
        if self.verifier is not None:
            self.verifier.push(bands[:, nb:], periodicity[0], pitch.f0_hz[0], pitch.voiced[0])
        return self.process_hops(bands[:, 0], periodicity[0], bands[:, 1:nb])

    def process_hops(self, mean_square: np.ndarray, periodicity: np.ndarray,
                     bands: np.ndarray) -> LaughterFrames:
        """Analyse the next hops given as measures (see the module docstring).

        Args:
            mean_square: window-compensated mean square of each hop's frame, shape
                ``(n_hops,)`` (column 0 of a :class:`~dsp.hop_spectrum.HopSpectrum` result
                with :attr:`band_weights`).
            periodicity: the pitch tracker's periodicity of the same hops, ``(n_hops,)``.
            bands: the 10 shape-band energies of the same hops, ``(n_hops, 10)`` (columns
                1-10 of that result).

        Returns:
            :class:`LaughterFrames` for these hops.
        """
        n = mean_square.shape[0]
        if periodicity.shape != (n,) or bands.shape != (n, self._b.shape[1]):
            raise ValueError(f"need ({n},) periodicity and ({n}, {self._b.shape[1]}) bands")
        score = np.zeros(n)
        in_burst = np.zeros(n, dtype=bool)
        if n == 0:
            return LaughterFrames(score, in_burst, (), ())

        e_new = np.log10(np.maximum(mean_square, 1e-12))
        e_new *= 10.0
        # (the periodicity is in [0, 1] by construction)
        v_new = np.where(e_new < VOICING_FLOOR_DBFS, 0.0, periodicity)
        e = np.concatenate([self._e, e_new])
        v = np.concatenate([self._v, v_new])
        b = np.concatenate([self._b, bands])
        k0 = self._k0  # absolute hop of the first new row
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
                    score[j_prev:j_exp] = self._held()
                    in_burst[j_prev:j_exp] = self._event is not None
                    if self._event is not None:
                        completed.append(self._close_event())
                    self._train = []
                    self._score = self._vscore = 0.0
                    j_prev = j_exp
            score[j_prev:j] = self._held()
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
        self._k0 += n
        return LaughterFrames(score, in_burst, tuple(decided), tuple(completed))
