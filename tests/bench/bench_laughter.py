"""Laughter-likeness benchmark on real recordings (run: ``python tests/bench/bench_laughter.py``;
``--dev`` runs the synthetic development set instead, see ``dev_section``; ``--natural`` the
recorded development set, see ``natural_section``; ``--two-stage`` the old detector, the
two-stage cue with its learned verifier and YAMNet side by side on held-out development
speakers, see ``two_stage_section``, ending with false cues on laugh-free speech raised in
pitch, see ``raised_section``; ``--raised`` that section alone; ``--restart`` laughs inside
speech right after the appliance restarted, see ``restart_only``).

Data (read in place from ``../shared/data``, resampled to 16 kHz, never copied):

* ``laughter/deeply``: 14 laughing clips and the other vocalisations (coughing, crying,
  screaming, sighing), one class per clip;
* ordinary speech: all FDA read sentences (``pitch/fda``, 20 kHz) and the RAVDESS neutral
  statements (``voice-level/ravdess``, 48 kHz).

Figures printed:

1. clip-level ROC AUC (clip score = highest hop score; AUC by Mann-Whitney, ties count 1/2)
   for laughing vs speech, vs each other class and vs all other vocalisations, with the
   clip-level equal error rate;
2. detection and false-alarm rates at the shipped threshold (a clip "fires" when the
   detector decides at least one burst event in it);
3. event F1 on joined streams built here in memory: speech, one laughing clip, speech, ...
   (levels matched, see ``build_streams``), onset tolerance +-0.5 s;
4. false burst events per hour over all the speech concatenated (a proxy for false cues/hour;
   the firmware adds cooldown and a cap on top);
5. CPU seconds per second of audio of the detector's own work, fed in 100 ms blocks (the
   spectrum and pitch periodicity it shares with the analyzer are timed by
   ``bench_analyzer.py``), and published anchors.

6. through the whole cue policy: false cues per hour of speech and event F1 (the usual
   voice learned beforehand; laughs inside speech of the laugher's sex), with and without
   the pitch gate.

Nothing here tunes the detector: it runs with its shipped defaults.

How the shipped design met this data (kept honest, 14 laughing clips is a small sample):

* v0, parameters from reasoning and synthetic signals only (rate 3-8/s at full credit,
  mean over gaps and shape pairs): AUC 0.964 vs speech, 0.979 vs other vocalisations,
  13/14 laughs fire, but 15 false events in 6.4 min of speech (140/h), event F1 0.47.
* The false events were syllable trains at 6-9 peaks/s with deep stop-closure dips.  Changes
  made, each for a stated acoustic reason and checked first on an espeak-ng development set
  (13.7 min, not evaluation data): full credit only for the typical laughter rhythm 4-6.7/s;
  every gap must break voicing and every burst repeat the previous (min, not mean); level
  steadiness; shapes averaged over +-20 ms.  -> AUC 0.833, 0 false events, F1 0.60.
* Double peaks within one call merged (a peak needs a 6 dB dip since the previous one) and a
  10 dB level jump restarts the train -> the shipped figures printed below.
* Tried and dropped: scoring the best of the last 3 or 4 pulses (speech false events x6 on
  the development set); an unvoiced-time share >= 35 % (helped on the development set, lost
  real laughs here: F1 0.33).

Section 6 (through the policy), second engineer, 2026-11-23:

* The first construction put each laugh after 25 s of one speaker's speech, round-robin over
  all six speakers: F1 0.091 (2 hits of 42).  Traced (instrumenting ``_burst_pitch_up``, all
  streams, no per-file fitting): the usual voice was ready at only 8 of the 44 decided
  bursts.  A RAVDESS actor has ~14 s of neutral speech (~6 s voiced), FDA's 25 s give ~21 s of
  learned speech after the 3 s lag, against a 20 s warm-up; and male laughs were judged
  against female usual pitch and vice versa.  The pitch tracker did give enough voiced hops
  (typically 20-40 of ~60 hops in the decision window; 1-3 bursts had < 3).  Fixed in the
  bench, not the policy: the usual voice is learned first from the speaker's (looped)
  speech, and each laugh sits in speech of each speaker of the laugher's sex -> F1 0.353
  (9 hits, 0 false).
  Remaining misses: the detector's own strict recall (section 3: 18/42) and, for 12 vs 9 hits
  (the "without the pitch gate" line), laughers whose laugh F0 is not 3 semitones above
  another person's usual pitch - a limit of pairing different speakers, since the Deeply
  laughers have no speech of their own here.  Of the 18 detector hits, 6 are still lost
  with pitch_st 0 (median merely above usual): 2 to the cooldown after a cued false event in
  the speech before the laugh, 1 to a median below the usual pitch, and 3 to one male
  laugher whose breathy first calls the tracker finds voiced in only 2-3 of ~45 hops (the
  median needs 3).  A fallback "cue without pitch when too little is voiced" was not made:
  one of the two detector false events in the speech has only 6 voiced hops of 40 and would
  then be cued.
* Detector changes tried on a development set (``laughter_data.dev_speech`` and
  ``dev_laughs``: 7.1 min of espeak-ng, 12 voices, random pitch and speed; 64 synthetic
  laughs - ha, giggles at 7 and 8/s, chuckles, breathy heh, slow, irregular, low male, each
  also through a phone band + mu-law - each inside espeak speech; plus 8 laughing-while-
  talking stretches, espeak speech pulsed at 4-6/s with /h/ noise in the dips, not in the
  builders), then on the real data.  Baseline on the development set: 54/72 found within
  +-0.5 s, 5 false events in the espeak speech, clip AUC 0.868, latency median 0.53 s.
  None was kept:
  - rhythm credit up to 10 bursts/s (full to 7/s) for fast giggles: development set 57/72,
    AUC 0.916, no extra false; real data: AUC vs speech 0.900 -> 0.890, false events 2 -> 4,
    strict hits 18 -> 19.
  - geometric mean of the four measures instead of the minimum: development set 59/72 but
    false events 5 -> 18.  Not run on the real data.
  - event start moved back to the first pulse of the run of in-rhythm intervals before the
    scored window (the strict/lenient gap of section 3): no change on either set (the late
    events belong to new trains after a pause or a level jump, not to late scoring).
  - peaks closer than 100 ms merged into one call (real laughs show 8 % of intervals under
    0.1 s, an aggregate look at section-1 windows): development set unchanged (54/72, AUC
    0.855); real data: strict 18 -> 18, false events in the joined streams 3 -> 9.
  - alternation from the level dip alone (the gap voicing, measured over 33 ms, hardly
    separates real laughs from speech: median 0.32 vs 0.27): development set false events
    5 -> 10.  Not run on the real data.
  - rhythm from the periodicity of the level envelope (the brief's "modulation spectrum
    peak at 4-6 Hz": highest normalised autocorrelation of the dB envelope, 30 dB range, at
    lags 140-330 ms over the last 0.5 s, ramp 0.6 -> 0.9; ramp and window chosen on the
    development set as the most hits with latency and false events no worse): development
    set 64/72, AUC 0.932, 5 false; real data: AUC vs speech 0.862, strict F1 0.588,
    latency share <= 0.6 s 61 % -> 40 %.  With a 0.72 s window and ramp 0.5 -> 0.8 the real
    data gave no false events at all (sections 2-4) and strict F1 0.600, but latency median
    0.68 s (0 % <= 0.6 s).  Then with the window from the first scored pulse's onset to the
    confirmation hop (no sound from before the train): development set 64/72, latency
    share 74 %, false events 5 -> 3, in the joined streams 13 -> 8, AUC 0.940 - the best
    variant there; real data: no false event anywhere (speech, other vocalisations, joined
    streams: precision 1.000) but only 8/14 laughs fire, strict F1 0.500, AUC vs speech
    0.844, latency share 36 %.  Real laughs are far less periodic than the synthetic ones;
    dropped for the recall.
  The synthetic laughs are much cleaner than the real ones (gap voicing 0 vs a median of
  0.32 on the phone-recorded laughs; no sub-call double peaks): what they accept transfers
  poorly.  A more realistic laugh synthesiser is the first thing to build next.
  Laughing while talking is found 0/8 on the development set: the repetition measure rejects
  changing vowels.  Still open.
* Policy, development set (each espeak voice's usual voice learned first; laughs at F0 4-14
  semitones above it, half through the phone band, in 10 s + 5 s of that voice): median gate
  (shipped) 46/72 cued, 0 false cues in 7.1 min; gate on the 75th / 90th percentile of the
  bursts' F0: 50 / 51 of 72 but 1 / 3 false cues; detector threshold 0.35 behind the median
  gate (two weaker tests combined): 51/72, 1 false cue.  Kept the shipped gate and threshold.
  On 19 of 21 such bursts the measured median sat 1.5-3.5 semitones below the calls' start F0,
  as expected (each synthetic call falls 15 %, 2.8 semitones), and 7.5 and 12.6 below in two
  (octave-down errors?): the misses are the laughs synthesised only 4-5 semitones above the
  voice, whose median lands under +3.  A question for the pitch tracker, not fixed here.

Third round, 2026-11-23: a realistic development set, two detector designs; neither kept.

* ``laughter_data.realistic_laugh`` / ``dev_laughs_realistic`` (run: ``--dev``): 60 laughs,
  six kinds (ha, giggle, chuckle, breathy heh, irregular, low male), each clean and through a
  phone with a noise floor 25-40 dB down; interval jitter 18 % (25 % irregular), voiced share
  40-65 % of each call, a breathy voiced murmur in half the gaps, 40 % of calls with a second
  level hump (dip 4-12 dB), level -1.2 dB and F0 -4 % per call with +-2 dB / +-5 % scatter,
  formants +-8 % per call.  The espeak speech now has every second voice through the same
  phone + noise channel, so the channel tells nothing.  Realism check, medians over the
  scored pulses (aggregate only): gap voicing 0.28 (real laughs 0.31, old synthetic 0), dip
  25 dB (31, old 97), intervals under 0.1 s 2.5 % (8.3 %, old 0), voicing at the peak 0.98
  (0.90); the quantiles of the four measures per scored window are now close to the real
  laughs'.  Shipped detector on it: AUC 0.873, strict 35/60, 13 false events in the joined
  streams, 11 in the 7.1 min of speech, latency median 0.53 s: as hard as the real data,
  unlike the old set.  Which measure alone fails a window (the other three >= 0.5):
  realistic laughs rhythm 66, alternation 30, repetition 20; espeak speech repetition 92,
  alternation 12, rhythm 10; (aggregate look, real) laughs 25 / 13 / 19, speech 33 / 2 / 77.
* Development set only: mean of the two weakest measures 48/60 hits but 46 false (a speech
  window then needs only two properties); ``max(min, min(P, mean of two weakest))``,
  ``min(P, second weakest)`` and kin: more hits, 2-4 times the false events; alternation
  over the second-worst or the mean gap instead of the worst: +2 / +5 hits, +5 / +7 false.
  (P: the envelope periodicity of the second round, the highest normalised autocorrelation
  of the dB level, 30 dB range, lags 140-330 ms, over the scored pulses' window.)
* H, P as a second, independent measurement of the rhythm: ``min(voiced, alternation,
  repetition, max(peak rhythm, P))``, P ramp 0.4 -> 0.7 (chosen on the development set: most
  hits with no more false events; 0.3 / 0.2 add false events).  Development set: 48/60,
  false 13, AUC 0.917.  Real data: AUC vs speech 0.872 (was 0.900), vs other vocalisations
  0.880, 11/14 fire, strict 20 hits / 19 false events (F1 0.494; lenient hits 33), 12 false
  events in the speech (was 2), policy 2 false cues in 6.4 min (was 0), F1 0.400.  Dropped.
* J, the rhythm from two softer tests that must both hold: ``min(voiced, alternation,
  repetition, rate of the median interval, P)``, P ramp 0.35 -> 0.65 (development set: most
  hits with no more false events).  The median interval does not fall on one double peak or
  skipped call; P checks the regularity without relying on each picked peak.  Development
  set: 47/60, false 8 (was 13), speech 8 (was 11), AUC 0.916: better on every figure.
  Real data: AUC vs speech 0.846, vs other vocalisations 0.850, 9/14 fire, strict 18 hits /
  10 false (F1 0.514; lenient 27), 6 false events in the speech, policy 2 false cues, F1
  0.308; CPU 1.72 ms/s (2.13 on the speech stream, over budget).  Dropped.
* Why the development set misled this time: its laughs now resemble the real ones, but the
  espeak speech does not resemble natural read speech.  Scored windows whose voicing,
  alternation and repetition all hold: 3.9 % of real speech windows, 2.1 % of espeak's.  Where
  in them only the peak rhythm fails, real speech has fast peaks (shortest interval median
  90 ms, like the real laughs' 80 ms) and its P is hardly lower than the real laughs' (median
  0.44 vs 0.57): whatever lets an irregular laugh through there lets these speech windows
  through too, and espeak has few of them (10 windows against 33).  A random level wobble on
  the espeak speech (3-5 dB, changing at 8-15 Hz) did not create them.  Next: natural
  development speech (recorded speakers outside the evaluation set) before more detector
  designs; then a measure that separates those fast-peak speech windows from laughs
  (breathiness at the peaks: voicing 0.90 in the real laughs against 0.97, but the real
  laughs are phone recordings and the real speech studio, so it must first be checked
  against phone speech on the development set).

Front end shared with the analyzer, 2026-11-23 (for issue 3's CPU budget, not tuned here):
the detector's own 32 ms spectrum (frame ending at the hop) and 4 kHz NCCF voicing gave way
to the analyzer's shared spectrum (frame centred on the hop) and the pitch tracker's
periodicity before its path search (40 ms, 3.3 kHz); 20 ms more look-ahead.  No threshold or
ramp was changed.  Real data, run once: AUC vs speech 0.900 -> 0.948, vs other vocalisations
0.891 -> 0.946 (coughing 0.866 -> 0.932), 11/14 fire (was 10), strict 18 hits / 6 false
(F1 0.571 -> 0.545), lenient 30 -> 33 hits, latency share <= 0.6 s 61 -> 67 %, speech false
events 2 -> 3, policy F1 0.353 -> 0.320 (0 false cues both); development set (``--dev``)
about the same (AUC 0.873 -> 0.859, strict 35 -> 34 hits).  The synthetic coughs of
``tests/test_laughter.py`` read periodicity 0.35-0.5 at their peaks (narrow formant noise)
against < 0.35 before: still below the threshold, no longer below 0.3.

Fourth round, 2026-11-23: recorded development speech; a fifth measure (aspiration) kept.

* Recorded speech outside the evaluation set, from what this machine can reach (PyPI and
  Debian): ``laughter_data.natural_speech`` / ``natural_laughs``, run ``--natural``.  Two
  Debian packages, fetched by ``apt-get download`` at bench time, pinned by version and
  SHA-256, extracted into ``~/.cache/deskcue-dev`` (``DESKCUE_DEV_CACHE``), never committed;
  the section skips with a message when they cannot be fetched:
  - codec2-examples 1.0.5-1 (LGPL-2.1): 3.0 min of natural read and conversational speech in
    10 recordings, 8 kHz (so telephone band), some amateur-radio with its noise; mostly male,
    two female voices.  The shipped detector makes 9 false events in it (180/h; espeak: 11 in
    7.1 min): the fast-peak syllable trains round 3 missed in espeak are here.
  - hedgewars-data 1.0.2-6 (GFDL-1.3): 13.7 min of short acted game lines of 14 voice packs
    (one actor each, some processed), 3 false events; and 14 distinct acted laughs, of which 5
    score >= threshold (cartoonish, often slow "mwahaha"s: a weak stand-in for real laughs).
  - Not used: PyPI sdists with speech test files (pocketsphinx, SpeechRecognition, pysptk,
    ...) hold seconds, not minutes, and ``pip download`` of an sdist builds its metadata,
    which failed for each here; the remaining codec2 files are modem signals, codec outputs
    or duplicates.  No recorded laughter at all in either registry beyond the game's.
  Baseline, ``--natural``: codec2 9 false, hedgewars 3; acted laughs 5/14, inside codec2
  speech strict 3 hits / 37 false; realistic synthetic laughs 37/60, inside codec2 speech 43
  hits / 132 false (the joined streams reuse the same 3 min, so its false events repeat).
* Aggregate look, every scored window of the development set (laughs: acted + realistic
  synthetic; speech: codec2 + hedgewars), per candidate gap and peak feature, AUC laughs vs
  speech among windows whose voicing, alternation and repetition already hold: balance of
  2-4.3 kHz over 250-1000 Hz at the gap's quietest hop minus that at the peaks 0.83 (acted
  alone 0.66); the same balance at the gap alone 0.40; 2-4.3 kHz level at the gap re the
  peaks 0.50-0.53 (laughs' gaps are *deeper* in that band than speech's, against the idea
  that /h/ keeps it up); voicing at the peaks (breathy calls) 0.77 (acted 0.58); the level
  dip (worst gap) 0.81 (acted 0.91).
* Kept: **aspiration**, a fifth measure (``dsp.laughter`` docstring): the first of these,
  minimum over the gaps, ramp -10 -> 0 dB.  Development: codec2 false 9 -> 3, hedgewars
  3 -> 2, espeak 11 -> 10, joined espeak streams false 13 -> 9; laughs: synthetic 37 -> 36,
  acted 5 -> 5.  Ramp (-15, -5): codec2 4 false, nothing else changed; (-5, 5): codec2 3,
  espeak 6, but acted 5 -> 3 and synthetic 37 -> 35; (-10, 0) is the middle with no acted
  laugh lost.  Real data (run once): AUC vs speech 0.900 -> 0.903, vs other vocalisations
  0.891 -> 0.889 (coughing 0.866 -> 0.861, crying 0.875 -> 0.869), 10/14 fire, strict
  18 hits / 24 misses / 3 false (F1 0.571, unchanged), lenient 30, latency median 0.58 s,
  61 % <= 0.6 s (unchanged), speech false events 2 (18.6/h, unchanged: the two left are not
  separated by it), policy 0 false cues, F1 0.353 (unchanged); without the pitch gate 14 hits,
  0 false (was 12, 2: the false cues it removes in the speech before a laugh freed the
  cooldown).  CPU 1.38-1.45 ms/s in two runs (baseline run the same day 1.53): the
  measure costs three band sums per pulse, nothing per hop.  A small step that holds on
  natural speech; it does not reach any open target by itself here.
* The same commits cherry-picked onto main's new front end (cdd68cd: one shared spectrum,
  laughter voicing from the pitch tracker's periodicity; applied cleanly in a scratch clone),
  aspiration off -> on.  Recorded development data: codec2 false 9 -> 3, hedgewars 4 -> 3,
  acted laughs 6/14 both, synthetic laughs inside codec2 speech strict hits 36 -> 35.  Real
  data: AUC vs speech 0.948 -> 0.953 (target met), vs other vocalisations 0.946 -> 0.947,
  11/14 fire both, speech clips firing 3 -> 1, strict 18 hits both with false events 6 -> 3
  (F1 0.545 -> 0.571), lenient 33 hits, false events in the speech 3 -> 1 (28 -> 9.3/h),
  latency median 0.58 -> 0.60 s, share <= 0.6 s 67 -> 61 % (same hit count, max 0.82 s
  both), policy F1 0.320 both, without the pitch gate 12 hits / 2 false -> 14 / 0.  Those
  are the figures to expect once both are merged.
* Dropped: a deeper dip for full alternation credit (``DIP_DB_RAMP`` 9 -> 18 dB instead of
  3 -> 9: a breath pause between calls against the shallower syllable dips of connected
  speech).  Development: codec2 false 9 -> 4 alone, 9 -> 1 with aspiration, no laugh lost.
  Real data with aspiration: AUC vs speech 0.866, vs other 0.862, 9/14 fire, lenient 30 -> 27,
  speech false events 2 -> 1, strict unchanged.  The phone laughs' worst gaps are shallower
  than development suggested; dropped for the recall.
* Dropped: peak confirmation after 20 ms instead of 30 (``PEAK_AHEAD_HOPS`` 2) for latency.
  Development: espeak false 10 -> 4, latency share 71 -> 75 %; codec2 joined hits 42 -> 39.
  Real data: AUC vs speech 0.908, latency median 0.57 s but share <= 0.6 s still 61 % (max
  0.75 s), policy F1 0.353 -> 0.320.
* Dropped without a real-data run (mixed on development): two peaks under 130 / 150 ms apart
  with voicing unbroken between them (gap voicing >= 0.6) merged into one call although the
  level dips 6 dB or more (a double-humped vowel, the fast intervals that fail the rhythm of
  real and acted laughs: 23 % and 32 % of the intervals in the windows of their first 1.1 s,
  against 8 % of the realistic synthetic laughs'): espeak strict hits 34 -> 36, but false
  events in the espeak speech 10 -> 12 and hedgewars 2 -> 3, AUC 0.895 -> 0.894.
* Where the strict misses are (aggregate over the 42 real joined streams, the best window
  from 0.2 s before to 1.2 s after the laugh's first sound): 24 misses, of them 12 windows
  whose weakest measure is the rhythm (intervals outside 125-333 ms, at 0 credit), 6 the
  repetition's shape, 6 with no window at all (2 clips: the train restarted by call levels
  jumping 10 dB or more).  Aspiration is the weakest in none of them.  The
  acted laughs fail mostly on the rhythm (fast "mwahaha" at 7-10 calls/s).
  The short intervals (< 125 ms) are not double-humped *voiced* vowels (hence the merge above
  did little): in the real laughs' first 1.1 s they are 31 % of the intervals, with a shallow
  dip (median 10 dB, quartiles 7.5-15) and broken voicing (median 0.31; >= 0.6 in 21 %),
  against 32 dB and 0.32 for their 150-250 ms intervals; real speech's short intervals (35 %
  of all) look the same (12 dB, 0.29).  Whatever counts these humps as one call will count
  speech syllables the same way; the next round needs a property of the hump itself.
* Latency, why a 3-pulse decision misses 0.6 s here (aggregate over the 18 strict hits of
  section 3): latency = rise of the first burst (onset -> its highest peak) + two intervals
  + 30 ms confirmation.  Two intervals: median 0.365 s (10-90 %: 0.34-0.41 s, i.e. 5-6
  bursts/s, not the slow rhythms); rise: median 0.18 s, 0.24-0.32 s in all 7 late decisions
  (0.65-0.69 s).  The late ones start with a long first call: a double-humped call merged into
  one burst keeps the onset of its first hump (``_add_pulse``).  So at 4 bursts/s a 3-pulse
  decision meets 0.6 s only if the first call rises within ~70 ms; deciding at the peak
  rather than 30 ms later cannot be done causally (the peak is known only once the level has
  fallen), and 20 ms confirmation did not move the share (above).  Moving the event start
  to the highest hump would shorten the figure without deciding any earlier: not done.

Fifth round, 2026-11-23: hump and level-jump variants, onset intervals, faster calls; none kept.

Each variant was a small change to ``dsp/laughter.py``, run with ``--dev`` and ``--natural``
first, then once on the real data (``python tests/bench/bench_laughter.py``).  Baseline, run
again this round: ``--dev`` AUC 0.883, strict 33 hits / 27 misses / 11 false (F1 0.635),
lenient 37, latency share <= 0.6 s 67 %, 9 false events in the espeak speech; ``--natural``
codec2 3 false, hedgewars 3, acted laughs 6/14 (inside codec2 speech 4 / 10 / 19, lenient 7),
synthetic laughs inside codec2 speech 35 / 25 / 74 (lenient 38); real data as at the end of
round 4 (AUC 0.953 / 0.947, strict 18 / 24 / 3, F1 0.571, lenient 33, latency median 0.60 s,
61 % <= 0.6 s, 1 false event in the speech, policy 0 false cues, F1 0.320, 0.500 without the
pitch gate).

* Aggregate look, consecutive pulse pairs less than 125 ms apart (the real laughs' first
  1.1 s against all the real speech; the development laughs against codec2 + hedgewars):
  cosine of the tilt-free band shapes, median 0.76 real laughs vs 0.41 real speech (AUC 0.78),
  0.89 acted vs 0.51 (0.79), 0.96 synthetic (0.94).  Dip, gap voicing, level step, peak
  voicing and gap balance separate them hardly at all (AUC 0.42-0.58 on the real pairs).  So
  shape continuity is the property of the hump that differs.
* Dropped, shape-continuous humps merged into one call (idea: a laugh's double-humped call
  repeats one vowel, a syllable pair changes it): a pulse under 125 ms after the previous one
  with shape cosine >= c is the same burst (the higher peak kept, as for a hump without a
  6 dB dip).  Development, c = 0.7 / 0.85 / 0.93: strict hits 34 / 34 / 33, espeak false
  10 / 10 / 10 (was 9), codec2 false 5 / 4 / 3, hedgewars 4 / 3 / 3, acted laughs firing
  5 / 5 / 6 of 14.  Real data (c = 0.85): AUC vs speech 0.952, vs other vocalisations 0.928
  (coughing 0.930 -> 0.892, under target), strict 18 / 24 / 4, lenient 33, latency
  unchanged, policy F1 0.353 (9 hits, 0 false).  Why it cannot help (aggregate over the real
  strict misses, the best window whose first onset lies within +-0.5 s of the laugh's first
  sound, and its weakest measure): rhythm 10, shape 5, alternation 3, no window 6, the same
  with and without the merge.  The intervals that fail the rhythm in those best windows are
  not sub-call humps but fast, separate calls: median 120 ms (quartiles 110-120), dip 22 dB
  (18-33), gap voicing 0.26, shape cosine 0.83, level step -0.8 dB, voicing 0.98 at both
  peaks.  Round 4's "shallow humps" describe all short intervals of the first 1.1 s, not the
  ones that decide the misses.
* Dropped without a real-data run, relative dip: a pulse under 125 ms after the previous one
  whose dip is >= 10 dB shallower than the dip before the previous pulse merged into it (a
  hump stays well above the breath level between calls).  Development: strict hits 34, but
  joined-stream false events 11 -> 18, codec2 3 -> 4, hedgewars 3 -> 4.
* Dropped, a falling level jump keeps the train (idea 2; a rising one still restarts it).
  Aggregate first: of the level-jump restarts in the real laughs' first 1.1 s, 10 of 13 are
  rising (a quiet start, then a loud call), 3 falling; in the acted laughs 8 of 11 falling;
  in speech both kinds are common (real 180 falling / 136 rising).  And by construction,
  with the repetition still judging the step, a kept train finds its first clean window one
  pulse later than a restarted one (the windows holding the step score 0).  Development: AUC
  0.903, strict 33 / 27 / 8, espeak false 9 -> 10, latency share 64 %; natural: false
  events in codec2 and hedgewars unchanged, joined false acted 19 -> 18, synthetic
  74 -> 71.  Real data: AUC vs speech 0.921 (target missed), vs other 0.910, strict 18 / 24 /
  0 (F1 0.600), lenient 33, no false event in the speech, latency unchanged, policy F1 0.320
  (0.500 without the gate), 0 false cues.
* Dropped, a weak pulse set aside: a pulse >= 10 dB below the last call is held back; if the
  next pulse returns to within 10 dB of that call (with a 6 dB dip) the weak one was a sound
  in the gap (a breath, a click) and is dropped, else the train restarts at it as before.
  Development: strict 32 / 28 / 9, espeak false 9 -> 11, codec2 and hedgewars unchanged;
  held to unvoiced weak pulses only (voicing < 0.6): espeak still 11.  Real data (all weak
  pulses): AUC vs speech 0.990, vs other 0.979 (lowest laughing clip score 0 -> 0.19), strict
  18 / 24 / 1 (F1 0.590), lenient 33 / 9 / 1, latency median 0.61 s, 50 % <= 0.6 s, 1 false
  event in the speech, policy F1 0.320 but without the gate 14 hits / 1 false, 1 false cue in
  the speech without the gate.  Set-aside-and-returned weak pulses: 2 in the real laughs'
  first 1.5 s, 80 in the real speech, 148 in espeak: it changes speech trains, not the laughs'
  onsets, so it cannot move the strict recall; the clip-level gain is a lead for later.
* Dropped, intervals between onsets instead of peaks (the beat of a rhythm is heard near the
  call onsets, and a call's peak may fall on either hump).  Development: the best figures of
  the round (AUC 0.920, strict 46 / 14 / 4, espeak false 8; acted laughs inside codec2
  speech 5 / 9 / 12; synthetic 43 / 17 / 66) but codec2 false 3 -> 5.  Real data: AUC vs
  speech 0.867, vs other 0.842, 8/14 fire, strict 18 / 24 / 1, lenient 24, latency share
  28 %, 2 false events in the speech, policy F1 0.286.  The synthetic laughs are built on
  regular call onsets (the hump moves the peak, not the onset); the onset estimate on the
  phone laughs (lowest + 3 dB within 150 ms) is noisier than their peaks: the best windows'
  intervals spread to a median of 235 ms, quartiles 175-368.  A second warning that the
  synthetic laughs reward what they were built with.
* Not kept, the best lever found, faster calls: rhythm credit full down to 125 ms (8 bursts/s,
  the fast end of the issue's "roughly 3-8 per second", now at zero credit) and zero at
  100 ms (10/s), for the fast separate calls above.  Development: AUC 0.914, strict 39 / 21 /
  11 (F1 0.709), lenient 43, latency share 69 %, espeak false 9 (unchanged), codec2 3
  (unchanged), hedgewars 3 -> 4 (a fast, steady, same-vowel 4-pulse train in the processed
  "Robot" voice pack's "Bugger"), acted laughs 6 -> 10 of 14 (inside codec2 speech 4 -> 7
  hits, false 19 -> 21), synthetic 35 -> 43 hits (false 74 -> 76).  Real data: AUC vs speech
  0.951, vs other 0.943, 11/14 fire, strict 21 / 21 / 5 (F1 0.618), lenient 33 / 9 / 5,
  latency median 0.60 s, 57 % <= 0.6 s, false events in the speech 1 -> 2 (18.6/h), policy
  11 hits / 0 false (F1 0.415), without the gate 17 / 0 (F1 0.576) but 1 false cue in the
  speech.  Strict misses by weakest measure: rhythm 10 -> 7.  Not committed: it adds a false
  event on development speech and two in the real joined streams.  Tried with it, both worse
  on development speech: the weak pulse set aside (espeak 11, hedgewars 4) and "a window
  with an interval under 125 ms needs three intervals" (hedgewars still 4: the Robot train
  has four pulses).  The Robot voice's envelope shows no tremolo (6-9 Hz share of the 2-20 Hz
  envelope spectrum 0.20 against 0.13-0.20 for the other packs), so it was not excluded.
  Through the full cue policy on the natural development speech (each codec2 recording and
  hedgewars pack its own speaker, usual voice learned first with ``learned_usual``, then
  ``policy_events``; 16.7 min): 3 false cues with and without this change (5 and 5 without
  the pitch gate), so the added Robot event is not cued.  The baseline's 3 false cues there
  (two codec2 radio recordings, the acted Pirate pack: 11/h) are a finding of their own: the
  real speech's 0/h does not carry over to these recordings.
* The 6 misses with no window (2 clips, 3 streams each; aggregate): each has 3 pulses within
  0.8 s of the laugh's first sound, but its trains there hold 1-2 pulses; the first scored
  window starts 1.0 and 2.2 s after that sound.  Neither the falling-jump nor the weak-pulse
  variant gave them a window: the strict misses by weakest measure are the same under both
  (rhythm 10, shape 5, alternation 3, no window 6).
* Not tried: F0 continuity across humps (``process_hops`` has the periodicity, not the
  tracker's F0, which comes after the path search and later); a decision at the third call's
  rise instead of its peak (for latency: every measure of that pulse would be provisional).
* Next: the fast (8-10/s) call trains are what the real strict misses need, and what a few
  speech trains share on all five measures; a sixth property that separates a steady fast
  speech train from a giggle is the open question (F0 height and its fall across calls are
  candidates, once the detector can read the tracker's F0).

Sixth round (recall), 2026-11-23: more recorded development laughs; the measures' frontier.

* More development data (``--natural``): every laugh or giggle recording Debian bookworm ships
  (found in ``Contents-all``) but five (three packages), from eight more pinned packages
  (``laughter_data.MORE_LAUGHS``): 19 laughs, four of them people laughing (scratch's sound
  library), the others giggles and voice actors' cartoon or "evil" laughs, 0.5-6 s; and
  scratch's coughs, sneezes, screams and a baby's cry as negatives.  Shipped detector: 6/19
  fire (inside codec2 speech strict 4 / 15 / 26, lenient 6, latency share 50 %); 0/8 of the
  other vocalisations fire.  Most are short (2-5 calls): a 3-pulse decision cannot take a
  two-call "heh-heh".
* Dropped, fast calls credited only when well separated: rhythm credit down to 100 ms
  intervals (10/s) for an interval whose dip is deep (ramp 15 -> 25 dB; the fast separate
  calls of round 5 dip 18-33 dB, speech's short intervals about 12).  Development: strict
  37 / 23 / 11 (was 33 / 27 / 11), espeak false 9 (unchanged), hedgewars 3 -> 4 (the same
  Robot train as variant F of round 5: its dips are deep), acted laughs 6 -> 10 / 14.  Ramps
  12 -> 20 and 18 -> 30 dB: the same picture.  Real data (15 -> 25 dB, run once): every
  figure identical to the baseline - the fast windows of the real laughs fail on something
  else as well (spread, shape), so the dip condition removes exactly what variant F gained.
* Where real laughs fail (aggregate over all 198 scored windows of the 14 laughing clips,
  against the 889 of the real speech): share of windows at >= 0.5 per measure, laughs /
  speech: interval rate 0.55 / 0.21, spread 0.60 / 0.32, voiced 0.98 / 0.99, alternation
  0.79 / 0.58, shape 0.75 / 0.10, level step 0.77 / 0.58, aspiration 0.78 / 0.54.  Each
  measure fails about a quarter of real laugh windows, mostly not the same ones: 55 of the
  198 pass all (speech: 1 of 889).  The strong separators are the shape repetition and the
  rhythm; voicing separates nothing here, alternation, step and aspiration little.
* Other ways to combine the same measures, screened on scored windows (development
  negatives: espeak, codec2, hedgewars; the threshold set so that they pass no more windows
  than today's 18, or the shipped 0.5 with their false windows counted): mean of the
  measures, geometric mean, the rhythm and shape as hard conditions with the mean of the
  rest, the median of alternation, step and aspiration, shape or step
  or aspiration relaxed when the dips are deep (>= 20-35 dB), each measure's worst pair
  replaced by its second worst, a wider spread ramp, and each of step and aspiration left
  out.  None fires on more recorded development laughs at the same false windows (acted 6-10
  of 14, the new 19: 4-7); those that gain laughs gain false windows in proportion (a deep
  dip is common in speech: stop closures and word ends).  The first screen also printed the
  real data's clip counts (an aggregate look): none fired on more real laughs than today's
  11/14 at the same development false windows.
* The frontier of these window measures, not of their ramps: a logistic regression on the
  raw window features (interval min/max and spread, dips, gap voicing, peak voicing, shape
  cosines, level steps, gap balance; 15 weights), fitted *and* scored on the development
  windows themselves (in-sample, an optimistic bound), at the same false windows fires on
  7-10 / 14 acted and 4-6 / 19 of the new laughs: no better than the hand-set minimum.
  Whatever separates these laughs from speech at a few false events per hour is not in the
  pulse-window measures; the shape repetition is most of what they have.  Adding per-call
  measures (call duration and its spread, voiced share and F0 slope within the call, the
  spectral balance at its onset) did not move it either.
* Nor in frame-level measures without pulses: over 0.5 s windows every 0.1 s, the share of
  the dB envelope's modulation at 3-8 Hz, its depth, the voiced share and voicing
  transitions, the mean shape similarity of the loud hops, their voicing and the gaps'
  balance.  A linear model fitted in-sample fires on 1 / 14 acted and 7 / 19 of the new
  laughs at 0.7 % false windows; gradient-boosted trees, scored by 5-fold
  cross-validation grouped by recording (the honest figure for a model fitted to 33 laughs),
  on 7 / 33 (18 / 33 at 2 %).  (scikit-learn, already in the bench environment, for these
  checks only; the scripts were not kept.)
* F0 (the tracker's, aggregate): consecutive calls' shape similarity does not fall for high
  voices (real laughs: share of pairs with cosine >= 0.5 is 0.94 at F0 200-300 Hz, 0.87 at
  300-450), so the shape bands are not misled by sparse harmonics; F0 changes between
  consecutive calls by a median 1.5 semitones in real laughs and 1.6-2.3 in real speech: no
  separation.  F0 height does separate (real laughs mostly 200-450 Hz, the speech mostly
  under 200) but only against the speaker's own voice - which the policy's pitch gate does.
* Conclusion of six rounds: the event F1 (+-0.5 s) target and the 0.6 s decision needs
  laughs to be taken from their first three calls, whose windows fail one of the measures
  about three times in four; relaxing any measure lets speech through in proportion, on the
  development and the evaluation speech alike.  A different representation is needed (a
  frame-level classifier of the sort the anchors use, trained on recorded laughter in
  conversation), and this machine reaches no such recordings: PyPI and Debian only, and the
  33 of the 38 laugh recordings those ship are now in the development set, mostly acted.

Sixth round (latency), 2026-11-23: a decision at the third call's rise; none kept.

The issue asks for a decision within 0.6 s of a burst's onset; the shipped detector decides at
the third pulse's peak plus 30 ms confirmation (round 4: the first call's rise, two intervals,
30 ms and the 20 ms look-ahead).  Tried: decide at the *rise* of the next call, with that call's
measures provisional.  At each hop after the last pulse of a train of >= 2 pulses, with no event
open, once the level is >= 6 dB above the gap's lowest hop (and that gap >= 6 dB below the
previous peak, the level within 10 dB of it, above -60 dBFS), the window is scored with a
provisional pulse: level = the hop's level, voicing = highest of the last 30 ms, shape from the
last three hops, dip / gap voicing / aspiration from the gap so far; its peak time either the
rising hop itself (A: a lower bound of the interval) or that hop plus the time the previous call
took from the same level to its peak (B: "the call rises like the last one").  The decided
record carries the provisional burst; the call's real peak, when confirmed, replaces it and,
scoring under ``release``, ends the event.  ``start_s`` stays the onset of the first call;
``decided_at_s`` is the newest hop heard.  Baselines as in round 5 (``--dev``: AUC 0.883, strict
33 / 27 / 11, lenient 37, latency median 0.55 s, 67 % <= 0.6 s, espeak false 9; ``--natural``:
codec2 3, hedgewars 3, acted 6/14, inside codec2 speech 4 / 10 / 19 (lenient 7), 0.49 s, 75 %;
synthetic 40/60, 35 / 25 / 74 (lenient 38), 0.52 s, 74 %; real data: AUC 0.953 / 0.947, strict
18 / 24 / 3, lenient 33, 0.60 s, 61 %, 1 false event in the speech).

* Any rising hop, threshold 0.5 (the provisional score also in the score column): A, dev AUC
  0.916, strict 45 / 15 / 17, 0.49 s, 78 %, espeak false 11; B, 45 / 15 / 17, 0.46 s, 89 %,
  espeak 11; natural (B) codec2 3 -> 4, hedgewars 3 -> 7.  More hits *and* more false events:
  the extra hits are windows whose real third peak fails (dev aggregate: 12 of 53 early
  decisions in the synthetic laughs, all 12 on the rhythm - the synthetic calls have regular
  onsets and humps that move the peak, round 5's warning again), the extra false ones mostly
  speech syllables whose rising edge still looks like the previous vowel (shape credit 0.6-1.0
  at the rise, 0-0.5 at the peak: co-articulation?) or that pass within 4 dB of the previous
  peak on their way to a larger step.  Evaluated once per rise only (at the first rising hop, or
  where the level reaches the previous peak - 6 / - 3 dB): espeak false 10-11, joined 13-14 (was
  11).  Dropped.
* B with a margin: the window (provisional score written only when it decides) must reach 0.6 /
  0.7 / 0.8 / 0.9 to decide early, else the decision waits for the peak as before: dev joined
  false 16 / 13 / 13 / 11, espeak 11 / 10 / 10 / 9; at 0.9 dev AUC 0.886, strict 34 / 26 / 11,
  lenient 38, 0.48 s, 76 %; natural codec2 3, hedgewars 3, acted unchanged (0.43 s, 75 %),
  synthetic 36 / 24 / 74 (0.48 s, 83 %); A at 0.9: dev 35 / 25 / 11, 74 %; natural at 0.7:
  hedgewars 3 -> 5.  Real data (B, 0.9), run once: every figure as the baseline except latency
  median 0.56 s, share <= 0.6 s still 61 %.  The margin only on the provisional measures
  (rhythm, the rising call's voicing, the new gap's and pair's measures >= 0.9; window >= 0.5):
  dev unchanged false, 79 %, but hedgewars 3 -> 4.  Dropped.
* B only where it buys the requirement: an early decision only when waiting for a peak could no
  longer meet 0.6 s and the decision itself does (0.57 s < decided_at_s - start_s <= 0.60 s;
  with the lower bound alone, margin 0.7, hedgewars went 3 -> 4 by an event decided at 0.61 s
  whose real third peak then broke the pattern).  Threshold 0.5: dev AUC 0.883, strict 35 / 25 /
  11, lenient 39, 0.55 s, 86 %, espeak 9; natural codec2 3, hedgewars 3, acted 100 % <= 0.6 s,
  synthetic 83 %, hits and false otherwise unchanged (A: dev 82 %).  Real data, run once: AUC vs
  speech 0.952, vs other vocalisations 0.945 (coughing 0.932 -> 0.923), speech clips firing 1 ->
  2 of 116, coughing 2 -> 3 of 28, strict 18 / 24 / 4 (F1 0.562), lenient 33, latency median
  0.57 s, 67 % <= 0.6 s, false events in the speech 1 -> 2, policy unchanged (0 false cues, F1
  0.320; 0.500 without the gate), CPU 0.76 ms/s.  With a 0.7 margin on the provisional measures
  (dev 79 %, natural as the baseline): real data, run once, the same except coughing back to
  2/28 (AUC 0.932): still 1 -> 2 false events in the speech, 3 -> 4 in the joined streams, 67 %.
  Dropped: one more timely hit of 18 for one more false event.
* Not run on the real data: a decision on two calls at the deadline (the last hop meeting 0.6 s,
  the second call over and its gap open, every measure of the pair, the single interval's rate
  and the open gap's alternation >= 0.9): dev AUC 0.833, joined false 11 -> 21, espeak 9 -> 16,
  no timely hit gained.
* Why it cannot work here (aggregate over the 18 real strict hits, baseline decisions, the first
  hop a rise decision could be made - level >= 6 dB above the gap - stamped with its 20 ms
  look-ahead): the third call's 6 dB rise comes only 50-90 ms before the peak decision
  (0.40-0.58 s for the hits decided at 0.45-0.63 s).  For the six decided at 0.70-0.82 s the
  third call's rise itself is heard only at 0.66-0.79 s: with a long first call (round 4) plus
  two intervals the third call *begins* after 0.6 s.  So no decision that waits for a third call
  can get past 12 of 18 (67 %) on this data, which the deadline variant reached; the rest need a
  decision on two calls, which on development speech nearly doubles the false events.  Meeting
  0.6 s for laughs whose first call is long needs either evidence from inside the first two
  calls that speech lacks (the fast-train question of round 5) or a reading of the requirement
  from a later reference point (the highest hump of the first call, which round 4 refused as
  shortening the figure without deciding earlier).
* Commands: ``DESKCUE_EARLY``-style switches in a scratch patch of ``dsp/laughter.py`` (not
  committed), ``python tests/bench/bench_laughter.py --dev``, ``--natural``, then the real-data
  bench once per surviving variant (three runs: B 0.9, the deadline window at 0.5 and 0.7).

Seventh round (issue 14), 2026-12-04: a two-stage cue - the pulse detector proposes, a learned
verifier decides (``dsp/laughter_verifier.py``, ``tests/bench/train_laughter_verifier.py``,
``--two-stage``).  Every figure of the two-stage cue is from a model that did not see the
speaker (four folds of speaker groups, operating point from inner grouped cross-validation);
laughs are the 47 recorded ones (Deeply, hedgewars, eight Debian packages), so the old
detector's clip AUC vs speech reads 0.794 here, not the 0.953 of the Deeply laughs alone.

* Result (``python tests/bench/bench_laughter.py --two-stage``, shipped weights): clip AUC vs
  speech old 0.794 / two-stage 0.878 / YAMNet 0.893; vs coughing 0.793 / 0.876 / 0.718,
  crying 0.827 / 0.809 / 0.653, screaming 0.851 / 0.960 / 0.741, sighing 0.787 / 0.901 /
  0.797, sneezing (2 clips) 0.851 / 0.979 / 0.872.  Laughs inside speech (94 streams and their
  94 laugh-free twins, through the policy): recall 17 % / 26 % / 31 %, false cues 3 / 0 / 2,
  decision a median 1.92 / 0.89 / 0.93 s after onset, 50 % / 62 % / 79 % within 1.2 s.
  Recorded development speech through the policy (23.2 min): false cues 3 / 0 / 1.  Verifier
  CPU 0.46 ms per audio second (budget 0.3).  Better than the pulse detector on every figure
  but crying; far from the recall, latency and AUC-vs-speech targets.  YAMNet itself reaches
  only 0.893 against speech on these laughs (many acted or cartoon): the recorded development
  laughs are a hard, odd set, and the held-out figure is the honest one.
* Proposal threshold: at any positive pulse score a third of the recorded laughs' windows in
  speech are never proposed (recall ceiling ~65 %), so every scored window is proposed.
  Threshold 0.01 instead (model retrained): CPU 0.25 ms/s, but AUC vs speech 0.812, recall
  20 %, 2 false cues in the streams.  Not kept.
* Tried on the same folds before the final code (pooled out-of-fold threshold at 3 accepted
  windows per hour of speech): 16 / 32 hidden units, the log-mel patch itself as 160 more
  inputs, gradient-boosted trees (scikit-learn, for the check only), decisions needing two or
  three accepted windows within 0.6-1 s, YAMNet's score mixed into the targets (0.25: recall
  28 -> 5 of 94).  None better on held-out speakers; the 93-input, 8-unit network is kept.
  Window-level AUC on held-out speakers is 0.89-0.95, but a cue needs a false-accept rate
  near 1e-4 per window: what separates laughs at that rate is not in these summaries.
* Eighth round (2026-12-04): the network no longer reads the pitch (the policy's check
  decides on it; in training a laugh sits in a stranger's speech, so its learned pitch
  response was the recipe's).  Same command, previous -> new weights on the same main: clip
  AUC vs speech 0.882 -> 0.889, coughing 0.879 -> 0.906, crying 0.853 -> 0.877, sighing
  0.874 -> 0.875; recall inside speech 41 -> 40 % (Deeply 17 -> 14 of 28), median decision
  0.73 -> 0.66 s, within 1.2 s 79 -> 84 %, false cues in the streams 1 -> 0, on recorded
  speech 0 -> 0.  Chosen in nested grouped CV with the teacher, more mixtures, seed
  averages and operating points, none of which helped (docs/decisions.md).
"""

from __future__ import annotations

import copy
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from laughter_data import (  # noqa: E402
    RATE_HZ,
    Clip,
    dev_laughs_realistic,
    dev_speech,
    load_deeply,
    load_fda,
    load_ravdess_neutral,
    phone_noisy,
)

from dsp.hop_spectrum import HopSpectrum  # noqa: E402
from dsp.laughter import LaughterBurst, LaughterDetector  # noqa: E402
from dsp.pitch import PitchTracker  # noqa: E402
from dsp.voice_activity import HopLevel  # noqa: E402

BLOCK = 1600  # 100 ms blocks, as the firmware feeds the analyzer
TAIL_S = 0.6  # silence appended to every clip so that trains at its end are completed
ONSET_TOL_S = 0.5
SEED = 20240611
_cpu = {"s": 0.0, "audio_s": 0.0}


def run(x: np.ndarray) -> tuple[np.ndarray, list[LaughterBurst], list[LaughterBurst]]:
    """Stream ``x`` through a fresh detector in 100 ms blocks; return scores and events."""
    x = np.concatenate([x, np.zeros(int(TAIL_S * RATE_HZ))])
    x = np.concatenate([x, np.zeros((-x.size) % BLOCK)])
    det = LaughterDetector()
    # The front end the analyzer shares (spectrum, pitch periodicity) is run here as the
    # analyzer runs it; only the detector's own work is timed (bench_analyzer times the rest).
    spectrum = HopSpectrum(bands=LaughterDetector.band_weights)
    level = HopLevel(n_channels=1)
    pitch = PitchTracker()
    scores, decided, completed = [], [], []
    for i in range(0, x.size, BLOCK):
        b = x[None, i : i + BLOCK]
        level.process(b)
        bands = spectrum.process(level.remove(b))[0]
        periodicity = pitch.process(b).periodicity[0]
        t0 = time.process_time()
        r = det.process_hops(bands[:, 0], periodicity, bands[:, 1:])
        _cpu["s"] += time.process_time() - t0
        scores.append(r.score)
        decided += r.decided
        completed += r.completed
    _cpu["audio_s"] += x.size / RATE_HZ
    return np.concatenate(scores), decided, completed


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """ROC AUC by the Mann-Whitney U statistic: P(pos > neg) + P(pos == neg) / 2."""
    pos = np.asarray(pos, float)[:, None]
    neg = np.asarray(neg, float)[None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def eer(pos: np.ndarray, neg: np.ndarray) -> float:
    """Equal error rate over all thresholds (miss rate = false-alarm rate)."""
    best = 1.0
    for th in np.unique(np.concatenate([pos, neg, [np.inf]])):
        miss = np.mean(pos < th)
        fa = np.mean(neg >= th)
        best = min(best, max(miss, fa))
    return float(best)


def active_level_db(x: np.ndarray) -> float:
    """95th percentile of the 10 ms hop level (dBFS): the loud part of a clip."""
    h = x[: x.size // 160 * 160].reshape(-1, 160)
    lev = 10 * np.log10(np.mean(h * h, axis=1) * 2 + 1e-12)
    return float(np.percentile(lev, 95))


def first_sound_s(x: np.ndarray, below_db: float = 30.0) -> float:
    """First 10 ms hop within ``below_db`` of the clip's active level: the reference onset."""
    h = x[: x.size // 160 * 160].reshape(-1, 160)
    lev = 10 * np.log10(np.mean(h * h, axis=1) * 2 + 1e-12)
    idx = np.flatnonzero(lev >= active_level_db(x) - below_db)
    return float(idx[0] * 0.01) if idx.size else 0.0


def build_streams(
    laughs: list[Clip], speech: list[Clip], rng: np.random.Generator, reps: int = 3
) -> list[tuple[np.ndarray, list[tuple[float, float]]]]:
    """Joined test streams: speech (>= 4 s), laughing clip, speech (>= 4 s), per laugh clip.

    Every part is scaled to the same active level (-20 dBFS, 95th percentile of the hop
    level) so that the join does not add level jumps one speaker's voice would not have.
    Each laughing clip is used ``reps`` times with different speech around it.
    Returns (audio, [(reference onset s, end s) of the laughing part]).
    """

    def norm(x: np.ndarray) -> np.ndarray:
        return x * 10 ** ((-20.0 - active_level_db(x)) / 20)

    def speech_run(min_s: float) -> list[np.ndarray]:
        parts, total = [], 0.0
        while total < min_s:
            c = speech[int(rng.integers(len(speech)))]
            parts.append(norm(c.audio))
            total += c.seconds
        return parts

    streams = []
    for _ in range(reps):
        for lc in laughs:
            before = speech_run(4.0)
            t0 = sum(p.size for p in before) / RATE_HZ
            lx = norm(lc.audio)
            after = speech_run(4.0)
            x = np.concatenate([*before, lx, *after])
            streams.append((x, [(t0 + first_sound_s(lx), t0 + lx.size / RATE_HZ)]))
    return streams


def event_scores(
    streams: list[tuple[np.ndarray, list[tuple[float, float]]]],
) -> tuple[tuple[int, int, int], tuple[int, int, int], list[float]]:
    """Strict and lenient (hits, misses, false events), and decision latencies of strict hits.

    Strict (the target): a laughing part is hit by the first event starting within +-0.5 s of
    its reference onset.  Lenient: hit by any event starting between onset - 0.5 s and the end
    of the part.  In both, further events starting inside the laughing part (a clip may hold
    several bouts) are neither hits nor false; any other event is a false event.
    """
    strict = [0, 0, 0]
    lenient = [0, 0, 0]
    lat = []
    for x, refs in streams:
        _, decided, _ = run(x)
        inside: set[int] = set()
        for on, end in refs:
            mine = [ev for ev in decided if on - ONSET_TOL_S <= ev.start_s <= end]
            inside.update(id(ev) for ev in mine)
            near = [ev for ev in mine if abs(ev.start_s - on) <= ONSET_TOL_S]
            strict[0 if near else 1] += 1
            lenient[0 if mine else 1] += 1
            if near:
                lat.append(near[0].decided_at_s - near[0].start_s)
        n_false = sum(1 for ev in decided if id(ev) not in inside)
        strict[2] += n_false
        lenient[2] += n_false
    return (strict[0], strict[1], strict[2]), (lenient[0], lenient[1], lenient[2]), lat


def policy_events(x: np.ndarray, usual: object | None = None, pitch_st: float | None = None
                  ) -> list:
    """Laughter cue events the appliance would publish for a mono 16 kHz agent stream;
    ``usual``: a learned usual voice to start from (copied), as a desk keeps it across calls;
    ``pitch_st``: overrides ``cues.laughter.pitch_st`` (None: shipped config)."""
    from firmware.appliance.pipeline import Pipeline
    from firmware.config.settings import Settings

    settings = Settings()
    if pitch_st is not None:
        laugh = settings.cues.laughter.model_copy(update={"pitch_st": pitch_st})
        cues = settings.cues.model_copy(update={"laughter": laugh})
        settings = settings.model_copy(update={"cues": cues})
    pipe = Pipeline(settings, source_rate=RATE_HZ, source_channels=1,
                    usual=copy.deepcopy(usual) if usual is not None else None)
    events = []
    for i in range(0, x.size, BLOCK):
        events += pipe.process(x[i:i + BLOCK, None]).events
    events += pipe.finish().events
    return [e for e in events if e.type == "laughter_burst"]


def learned_usual(x: np.ndarray) -> object:
    """The usual voice the policy learns from one speaker's speech ``x``, fed again and again
    until it is ready (the RAVDESS actors have only ~14 s of neutral speech each, less than
    the 20 s warm-up of voiced speech)."""
    from firmware.appliance.pipeline import Pipeline
    from firmware.config.settings import Settings

    pipe = Pipeline(Settings(), source_rate=RATE_HZ, source_channels=1)
    for _ in range(20):
        for i in range(0, x.size, BLOCK):
            pipe.process(x[i:i + BLOCK, None])
        if pipe.usual.ready:
            break
    pipe.finish()
    assert pipe.usual.ready, "speech too short to learn a usual voice"
    return pipe.usual


def loop_take(x: np.ndarray, start: int, n: int) -> np.ndarray:
    """``n`` samples of ``x`` from ``start``, wrapping around (a speaker's speech, looped)."""
    return np.take(x, np.arange(start, start + n), mode="wrap")


def policy_section(deeply: list[Clip], speech: list[Clip]) -> None:
    """False laughter cues per hour of ordinary speech, and event F1, through the whole cue
    policy (the bursts' pitch against the usual pitch, cooldown, cap).

    Each speaker's usual voice is learned first from all of that speaker's speech (as a desk
    keeps it across calls and restarts), so every second of the test streams is exposed to
    the cue.  False cues: each speaker's speech as one continuous stream.  F1: every laughing
    clip placed inside 15 s of speech (10 s before it, 5 s after, from a random point of the
    speaker's looped speech) of each of the three speakers of the laugher's sex (female: sb,
    actors 2 and 4; male: rl, actors 1 and 3): the pitch gate compares the bursts with the
    usual pitch of the voice around them, and a laugh is the speaker's own voice; pairing
    across sexes would test the sex difference in F0, not laughter."""
    by_speaker: dict[str, list[np.ndarray]] = defaultdict(list)
    sex: dict[str, str] = {}
    for c in speech:
        by_speaker[c.speaker].append(c.audio)
        sex[c.speaker] = c.sex
    streams = {k: np.concatenate(v) for k, v in by_speaker.items()}
    usual = {k: learned_usual(x) for k, x in streams.items()}
    hours = sum(x.size for x in streams.values()) / RATE_HZ / 3600
    false = sum(len(policy_events(x, usual[k])) for k, x in streams.items())
    print("\n6. through the full cue policy (shipped config; usual voice learned beforehand)")
    print(f"   false laughter cues in {hours * 60:.1f} min of ordinary speech "
          f"({len(streams)} speakers, one stream each): {false} = {false / hours:.1f}/h   "
          f"target <= 1/h {'ok' if false / hours <= 1 else 'MISSED'}")
    laughs = [c for c in deeply if c.label == "laughing"]
    rng = np.random.default_rng(SEED + 6)
    rate = RATE_HZ
    cases = []  # (stream, usual voice, onset s, end s)
    for lc in laughs:
        for spk in sorted(k for k in streams if sex[k] == lc.sex):
            sp = streams[spk]
            lvl = active_level_db(sp)
            lx = lc.audio * 10 ** ((lvl - active_level_db(lc.audio)) / 20)
            start = int(rng.integers(sp.size))
            before = loop_take(sp, start, 10 * rate)
            after = loop_take(sp, start + before.size, 5 * rate)
            x = np.concatenate([before, lx, after])
            on = before.size / rate + first_sound_s(lx)
            cases.append((x, usual[spk], on, (before.size + lx.size) / rate))
    for pitch_st in (None, 0.0):
        tp = fn = fp = 0
        for x, u, on, end in cases:
            evs = policy_events(x, u, pitch_st)
            hits = [e for e in evs if abs(e.data.onset_s - on) <= ONSET_TOL_S]
            inside = [e for e in evs if on - ONSET_TOL_S <= e.data.onset_s <= end]
            tp += bool(hits)
            fn += not hits
            fp += len(evs) - len(inside)
        p, r, f1 = prf(tp, fn, fp)
        if pitch_st is None:
            print(f"   event F1 with the laugh inside speech of the laugher's sex ({len(cases)} "
                  f"streams, strict +-{ONSET_TOL_S} s): hits {tp}, misses {fn}, false {fp}: "
                  f"P {p:.3f} R {r:.3f} F1 {f1:.3f}   target >= 0.8 "
                  f"{'ok' if f1 >= 0.8 else 'MISSED'}")
        else:
            print(f"   the same without the pitch gate (pitch_st 0; its cost across speakers):"
                  f" hits {tp}, misses {fn}, false {fp}: P {p:.3f} R {r:.3f} F1 {f1:.3f}")
    false0 = sum(len(policy_events(x, usual[k], 0.0)) for k, x in streams.items())
    print(f"   false cues on the speech without the pitch gate: {false0} = "
          f"{false0 / hours:.1f}/h")


def prf(tp: int, fn: int, fp: int) -> tuple[float, float, float]:
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return prec, rec, (2 * prec * rec / (prec + rec) if prec + rec else 0.0)


def dev_section() -> None:
    """The development set (not evaluation data; run with ``--dev``, ~30 s): the realistic
    synthetic laughs (``laughter_data.dev_laughs_realistic``) against the espeak-ng speech
    (``dev_speech``, every second voice through a phone with a 25-40 dB noise floor, like the
    phone half of the laughs, so that the channel itself tells nothing).  Choose a design
    and its parameters here, then run the real-data bench once to report."""
    import tempfile

    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as tmp:
        voices = dev_speech(Path(tmp))
    speech = [
        Clip(f"dev{i}_{j}", "speech", f"voice{i}",
             phone_noisy(x, rng, rng.uniform(25, 40)) if i % 2 else x)
        for i, clips in enumerate(voices) for j, x in enumerate(clips)
    ]
    laughs = [Clip(k, "laughing", "", x) for k, x in dev_laughs_realistic()]
    pos = np.array([run(c.audio)[0].max() for c in laughs])
    neg = np.array([run(c.audio)[0].max() for c in speech])
    kinds: dict[str, list[bool]] = defaultdict(list)
    for c, sc in zip(laughs, pos, strict=True):
        kinds[c.name.split("_")[0]].append(bool(sc >= LaughterDetector().threshold))
    streams = build_streams(laughs, speech, np.random.default_rng(5), reps=1)
    strict, lenient, lat = event_scores(streams)
    allsp = np.concatenate([c.audio for c in speech])
    n_fa = len(run(allsp)[1])
    p, r, f1 = prf(*strict)
    print(f"development set: {len(laughs)} realistic synthetic laughs, "
          f"{allsp.size / RATE_HZ / 60:.1f} min of espeak-ng speech (half phone + noise)")
    print(f"   clip AUC vs speech {auc(pos, neg):.3f}; laughs scoring >= threshold: "
          + ", ".join(f"{k} {sum(v)}/{len(v)}" for k, v in kinds.items()))
    print(f"   joined streams, strict: hits {strict[0]}, misses {strict[1]}, false "
          f"{strict[2]}: F1 {f1:.3f}; lenient hits {lenient[0]}")
    if lat:
        print(f"   latency median {np.median(lat):.2f} s, share <= 0.6 s "
              f"{np.mean(np.array(lat) <= 0.6):.0%}")
    print(f"   false events in the speech, concatenated: {n_fa}")


def natural_section() -> None:
    """Natural development data (not evaluation data; run with ``--natural``, ~1 min):
    recorded speech and acted laughs from two Debian packages (``laughter_data.natural_speech``
    and ``natural_laughs``), more recorded laughs and other vocalisations from eight more
    (``more_laughs``, ``more_vocalisations``; all fetched once into a cache outside the
    repository, ~470 MB extracted), beside the realistic synthetic laughs.  Skips with a
    message when the packages cannot be fetched."""
    from laughter_data import (
        DevDataUnavailable,
        more_laughs,
        more_vocalisations,
        natural_laughs,
        natural_speech,
    )

    try:
        speech = natural_speech()
        acted = natural_laughs()
        more = more_laughs()
        vocal = more_vocalisations()
    except DevDataUnavailable as exc:
        print(f"natural development data unavailable, section skipped: {exc}")
        return
    synth = [Clip(k, "laughing", "", x) for k, x in dev_laughs_realistic()]
    thr = LaughterDetector().threshold
    print("natural development set (recorded, not evaluation data)")
    for name, clips in speech.items():
        allsp = np.concatenate([c.audio for c in clips])
        minutes = allsp.size / RATE_HZ / 60
        n_fa = len(run(allsp)[1])
        # Through the whole cue policy, each recording as one agent's stream with its usual
        # voice learned from itself first (as in section 6 of the real-data run).
        cues = sum(len(policy_events(c.audio, learned_usual(c.audio))) for c in clips)
        print(f"   {name}: {minutes:.1f} min of speech, {len(clips)} recordings: {n_fa} false "
              f"events = {n_fa / minutes * 60:.0f}/h; through the cue policy {cues} false "
              f"cues = {cues / minutes * 60:.0f}/h (target <= 1/h)")
    fired = [bool(run(c.audio)[1]) for c in vocal]
    print(f"   other recorded vocalisations (scratch: coughs, sneezes, screams, a baby's cry): "
          f"{sum(fired)}/{len(fired)} fire")
    for name, laughs in (("acted laughs (hedgewars)", acted),
                         ("more recorded laughs (8 packages)", more),
                         ("realistic synthetic laughs", synth)):
        pos = np.array([run(c.audio)[0].max() for c in laughs])
        streams = build_streams(laughs, speech["codec2"], np.random.default_rng(5), reps=1)
        strict, lenient, lat = event_scores(streams)
        p, r, f1 = prf(*strict)
        la = np.array(lat) if lat else np.array([np.nan])
        print(f"   {name}: {int(np.sum(pos >= thr))}/{pos.size} score >= threshold; inside "
              f"codec2 speech, strict hits {strict[0]}, misses {strict[1]}, false {strict[2]} "
              f"(F1 {f1:.3f}; lenient hits {lenient[0]}); latency median "
              f"{np.median(la):.2f} s, share <= 0.6 s {np.mean(la <= 0.6):.0%}")


# ------------------------------------------------------------------ two-stage cue (issue 14)
YAMNET_THRESHOLD = 0.3  # the reference's decision threshold for streams (laughter classes)
COOLDOWN_S = 30.0  # the shipped laughter cue's cooldown, applied to YAMNet's decisions too
OTHER_CLASS = {"cough": "coughing", "scream": "screaming", "babycry": "crying",
               "sneeze": "sneezing"}


def _pipeline_cues(x: np.ndarray, usual: object | None, weights: str | None,
                   two_stage: bool, block: int = 16000, trace: dict | None = None) -> list:
    """``laughter_burst`` events through the whole appliance path (analyzer + cue policy,
    shipped config) for a mono 16 kHz stream; ``usual``: a learned usual voice (copied) or
    None to learn it from the stream; ``weights``: verifier weights for the two-stage cue.
    Blocks of 1 s (results do not depend on the cut; CPU is measured separately).
    ``trace``: if given, filled with the analyzer's decided bursts (``"decided"``), every
    proposal the verifier was asked about (``"verified"``: ``(decision time s, score)``, 0
    for one skipped for its pitch) and, per burst index, what the policy's pitch check said
    (``"gate"``: a dict of ``ok`` (the pitch check passed), ``ready`` (usual voice learned),
    ``median``, ``ref``, ``usual`` (semitones re 100 Hz), ``n`` (pitched hops) and ``held``
    (cooldown, cap or snooze)), for the breakdowns of losses and of decision times."""
    from dataclasses import replace

    from dsp.analyzer import StreamAnalyzer
    from firmware.appliance.pipeline import Pipeline
    from firmware.config.settings import Settings

    pipe = Pipeline(Settings(), source_rate=RATE_HZ, source_channels=1,
                    usual=copy.deepcopy(usual) if usual is not None else None)
    pipe.analyzer = StreamAnalyzer(replace(pipe.analyzer.params, laughter_verifier=two_stage,
                                           laughter_weights=weights))
    if trace is not None:  # observe the two stages the bench cannot see from the events
        trace["decided"], trace["gate"], trace["verified"] = [], {}, []
        take, pol = pipe.analyzer.take_bursts, pipe.policy
        gate = pol._burst_pitch_up
        ver = pipe.analyzer._verifier

        def taken() -> list:
            out = take()
            trace["decided"] += [b for kind, b in out if kind == "decided"]
            return out

        def gated(b: LaughterBurst, st: float, since: float) -> bool:
            ok = gate(b, st, since)
            median, ref, n = pol._burst_pitch(b, since)
            at = b.decided_at_s
            held = (at < pol._laugh_cooldown_until or at < pol.snoozed_until_s
                    or len(pol._laugh_fired) >= pol.settings.cues.laughter.max_per_hour)
            trace["gate"][b.index] = {
                "ok": ok, "ready": bool(pol.usual.ready), "median": median, "ref": ref,
                "usual": pol.usual.usual_st if pol.usual.ready else np.nan, "n": n,
                "held": held}
            return ok

        pipe.analyzer.take_bursts = taken  # type: ignore[method-assign]
        pol._burst_pitch_up = gated  # type: ignore[method-assign]
        if ver is not None:
            verify = ver.verify

            def verified(k: int, pulse: np.ndarray, start: int) -> float:
                sc = verify(k, pulse, start)
                trace["verified"].append(((k + 2.5) * 0.01, sc))
                return sc

            ver.verify = verified  # type: ignore[method-assign]
    events = []
    for i in range(0, x.size, block):
        events += pipe.process(x[i:i + block, None]).events
    events += pipe.finish().events
    return [e for e in events if e.type == "laughter_burst"]


def _yamnet_track(teacher: object, x: np.ndarray, t_from: float, step: float = 0.1
                  ) -> tuple[np.ndarray, np.ndarray]:
    """YAMNet's laughter score over the 0.975 s ending at each ``step`` from ``t_from``."""
    t = np.arange(max(t_from, 0.975), x.size / RATE_HZ + 1e-9, step)
    return t, teacher(x, t)


def _yamnet_decisions(t: np.ndarray, sc: np.ndarray, thr: float = YAMNET_THRESHOLD
                      ) -> list[float]:
    """Decision times: the score reaches ``thr``; then nothing for the cooldown."""
    out: list[float] = []
    for ti, si in zip(t, sc, strict=True):
        if si >= thr and (not out or ti >= out[-1] + COOLDOWN_S):
            out.append(float(ti))
    return out


LAUGH_SOURCES = ("Deeply (phone, people)", "hedgewars (acted, own voice)",
                 "packages (effects, cartoon)")
LOSS_STAGES = ("cued (hit)", "proposer: no scored window",
               "verifier: pitch too low, not verified", "verifier: every window rejected",
               "policy: usual voice not learned yet", "policy: pitch under the check (pitch_st)",
               "policy: cooldown, cap or snooze", "policy: decided, never judged")


def _laugh_source(name: str) -> str:
    """The recorded laugh's source, as a row of the breakdown."""
    if name.startswith("laughing/"):
        return LAUGH_SOURCES[0]
    return LAUGH_SOURCES[1] if name.startswith("hw-laugh:") else LAUGH_SOURCES[2]


def _loss_stage(s: object, rec: dict, trace: dict, hit: bool) -> str:
    """Where the two-stage cue lost the laugh of stream ``s`` (a ``LaughStream``): ``rec``
    its scored windows (every window the proposer could propose), ``trace`` what the
    analyzer decided and what the policy's pitch check said (``_pipeline_cues``)."""
    if hit:
        return LOSS_STAGES[0]
    lo, hi = s.onset_s - 0.5, s.end_s + 1.0  # type: ignore[attr-defined]
    t = rec["t"]
    if not ((t >= lo) & (t <= hi)).any():
        return LOSS_STAGES[1]
    dec = [b for b in trace["decided"] if lo <= b.decided_at_s <= hi
           and b.start_s <= s.end_s]  # type: ignore[attr-defined]
    if not dec:
        # the verifier scores 0 without verifying a proposal whose pitch sits well below the
        # policy's check (``SKIP_MARGIN_ST``): a pitch loss, not the verifier's judgement
        import train_laughter_verifier as T

        from dsp.laughter_verifier import SKIP_MARGIN_ST
        from firmware.config.policy import LaughterCue

        X = rec["X"][(t >= lo) & (t <= hi)]
        skipped = (X[:, T._pulse_col("usual_known")] == 1.0) & (
            X[:, T._pulse_col("st_median_above_usual")] < LaughterCue().pitch_st - SKIP_MARGIN_ST)
        return LOSS_STAGES[2] if skipped.all() else LOSS_STAGES[3]
    gates = [trace["gate"][b.index] for b in dec if b.index in trace["gate"]]
    if gates and not any(g["ready"] for g in gates):
        return LOSS_STAGES[4]
    if gates and not any(g["ok"] for g in gates):
        return LOSS_STAGES[5]
    return LOSS_STAGES[6] if gates else LOSS_STAGES[7]


LATE_S = 1.2  # the decision-time target: a cue within this after the laugh's onset
TIME_STEPS = ("first scored window (proposal)", "first window the verifier accepts",
              "first burst decided (analyzer)", "cue (policy)")


def _decision_times(s: object, rec: dict, trace: dict, w: object, cue_s: float
                    ) -> tuple[list[float], str]:
    """Where the time of a hit went: seconds after the laugh's onset of ``TIME_STEPS`` (the
    first scored window in the scoring window - every scored window is a proposal -, the
    first one the fold model ``w`` accepts, asked or not, with the verifier's pitch skip, the
    first burst the analyzer decided, the cue at ``cue_s``) and, if the cue came later than
    ``LATE_S``, the step that made it late with what held it."""
    import train_laughter_verifier as T

    from dsp.laughter_verifier import SKIP_MARGIN_ST
    from firmware.config.policy import LaughterCue

    cfg = LaughterCue()
    on = s.onset_s  # type: ignore[attr-defined]
    lo, hi = on - 0.5, s.end_s + 1.0  # type: ignore[attr-defined]
    t = rec["t"]
    span = (t >= lo) & (t <= hi)
    tw, X = t[span], rec["X"][span]
    p = w.predict(X) if X.size else np.zeros(0)  # type: ignore[attr-defined]
    skip = (X[:, T._pulse_col("usual_known")] == 1.0) & (
        X[:, T._pulse_col("st_median_above_usual")] < cfg.pitch_st - SKIP_MARGIN_ST)
    acc = tw[(p >= cfg.threshold) & ~skip]
    dec = [b for b in trace["decided"] if lo <= b.decided_at_s <= hi
           and b.start_s <= s.end_s]  # type: ignore[attr-defined]
    steps = [tw[0] if tw.size else cue_s, acc[0] if acc.size else cue_s,
             dec[0].decided_at_s if dec else cue_s, cue_s]
    steps = [min(x, cue_s) - on for x in steps]
    if steps[3] <= LATE_S:
        return steps, ""
    if steps[0] > LATE_S:
        return steps, "proposer: first scored window late"
    if steps[1] > LATE_S:
        by = (tw - on <= LATE_S) & ~skip
        best = f"{p[by].max():.2f}" if by.any() else "none verified, pitch too low"
        return steps, f"verifier: rejected the windows until then (best by {LATE_S} s: {best})"
    if steps[2] > LATE_S:
        return steps, "detector: an open event, the windows not asked"
    refused = [trace["gate"].get(b.index) for b in dec if b.decided_at_s < cue_s]
    refused = [g for g in refused if g is not None]
    why: Counter[str] = Counter()
    for g in refused:
        if not g["ready"]:
            why["usual voice not learned"] += 1
        elif g["n"] < 3:
            why["< 3 pitched hops"] += 1
        elif not g["ok"]:
            ref = "recent pitch" if g["ref"] > g["usual"] + 1e-9 else "usual pitch"
            why[f"pitch under the {ref} + pitch_st"] += 1
        elif g["held"]:
            why["cooldown, cap or snooze"] += 1
    return steps, "policy: " + (", ".join(f"{k} x{v}" for k, v in why.items()) or "?")


def _print_decision_times(timing: list[tuple[list[float], str, Any]]) -> None:
    """Section B's breakdown of the two-stage cue's decision times (`_decision_times`)."""
    if not timing:
        return
    st = np.array([x[0] for x in timing])
    late = st[:, 3] > LATE_S
    print(f"   where the two-stage cue's decision time goes ({len(timing)} hits, {late.sum()} "
          f"decided later than {LATE_S} s; s after the laugh's onset, median / 90th "
          "percentile; each step at or before the next):")
    print(f"     {'':<40}{'all hits':>14}{'late hits':>14}")
    for i, name in enumerate(TIME_STEPS):
        cols = "".join(f"{np.median(v):>7.2f} /{np.percentile(v, 90):>5.2f}" if v.size
                       else f"{'-':>14}" for v in (st[:, i], st[late, i]))
        print(f"     {name:<40}{cols}")
    if late.any():
        print("   each late hit: source, proposal / accepted / decided / cue (s), what held it")
        for steps, why, s in sorted((x for x in timing if x[0][3] > LATE_S),
                                    key=lambda x: x[0][3]):
            src = _laugh_source(s.laugh).split()[0]
            print(f"     {src:<10}{'overlaid' if s.overlay else 'faded':<9}"
                  + " / ".join(f"{v:.2f}" for v in steps) + f"   {why}")


def two_stage_section() -> None:
    """Old pulse detector, the two-stage cue (pulse proposer + learned verifier) and YAMNet
    side by side, on development speakers held out from the verifier's training (run with
    ``--two-stage``; ~15 min; needs the natural development data, ``../shared/data``, the
    YAMNet model and ``ai-edge-litert``).

    Held out: every speaker is one group (``train_laughter_verifier.fold_of``: Deeply speaker,
    FDA speaker, RAVDESS actor, codec2 recording, hedgewars voice pack with its own laugh,
    espeak voice, a package's laughs, a tenth of the synthetic laughs), dealt to four folds;
    for each fold a verifier is trained on the other three (operating point from inner grouped
    cross-validation on those three), and every figure of a clip, stream or speaker comes from
    the model that did not see its group.  Laughs are the recorded ones (Deeply, hedgewars,
    Debian packages); the synthetic laughs are training data only.
    """

    import train_laughter_verifier as T

    t_start = time.time()
    ds, recs = T.dataset()
    wpath = _fold_models(ds)
    weights = {f: T.VerifierWeights.load(p) for f, p in wpath.items()}
    teacher = T.Teacher()
    sc_col = T._pulse_col("pulse_score")
    print("two-stage laughter cue: pulse proposer (score >= "
          f"{T.PROPOSE}) + learned verifier ({weights[0].n_params} parameters), against the "
          "pulse detector alone (threshold 0.5) and YAMNet (reference)")
    print(f"speakers held out by group: {T.N_FOLDS}-fold grouped cross-validation, "
          f"{ds.X.shape[0]} training windows in all")

    # ---- clip-level AUC, recorded clips, each scored by the model that did not see it
    by: dict[str, dict[str, list[float]]] = {m: defaultdict(list) for m in
                                            ("old", "two", "yam")}
    items, by_speaker = T.load_items()
    audio = {it.name: it.audio for it in items}
    laugh_src: list[str] = []
    for r in recs:
        if r["kind"] != "clip" or r["name"].startswith(("synth", "espeak")):
            continue
        label = OTHER_CLASS.get(r["label"], r["label"])
        X = r["X"]
        prop = X[:, sc_col] >= T.PROPOSE if X.size else np.zeros(0, bool)
        by["old"][label].append(float(X[:, sc_col].max()) if X.size else 0.0)
        by["two"][label].append(float(weights[r["fold"]].predict(X[prop]).max())
                                if prop.any() else 0.0)
        x = audio[r["name"]]
        _, ys = _yamnet_track(teacher, np.concatenate([x, np.zeros(RATE_HZ // 2)]), 0.0,
                              step=0.24)
        by["yam"][label].append(float(ys.max()) if ys.size else 0.0)
        if label == "laughing":
            laugh_src.append(_laugh_source(r["name"]))
    classes = ["speech"] + sorted(k for k in by["old"] if k not in ("laughing", "speech"))
    print(f"\nA. clip-level ROC AUC, recorded laughs (n={len(by['old']['laughing'])}) vs ... "
          "(held-out speakers; clip score: old = highest pulse score, two-stage = highest "
          "verified score of its proposals, YAMNet = highest laughter-class score)")
    print(f"   {'class':<12}{'n':>5}{'old':>8}{'2-stage':>9}{'YAMNet':>8}   target")
    for k in classes:
        tgt = 0.97 if k == "speech" else 0.90
        a = [auc(np.array(by[m]["laughing"]), np.array(by[m][k])) for m in ("old", "two",
                                                                             "yam")]
        print(f"   {k:<12}{len(by['old'][k]):>5}{a[0]:>8.3f}{a[1]:>9.3f}{a[2]:>8.3f}   "
              f">= {tgt} {'ok' if a[1] >= tgt else 'MISSED'}")
    print("   by laugh source, the two-stage cue (information: the targets are for all laughs)")
    src = np.array(laugh_src)
    print(f"     {'':<32}{'n':>3}" + "".join(f"{k:>11}" for k in classes))
    for name in LAUGH_SOURCES:
        pos = np.array(by["two"]["laughing"])[src == name]
        print(f"     {name:<32}{pos.size:>3}" + "".join(
            f"{auc(pos, np.array(by['two'][k])):>11.3f}" for k in classes))

    # ---- laughs inside speech (recorded laughs; same-speaker warm-up), through the policy
    streams = T.build_streams(items, by_speaker)
    srecs = [r for r in recs if r["kind"] == "stream"]
    assert len(srecs) == len(streams), "the cached windows are not of these streams"
    res: dict[str, dict[str, list]] = {m: defaultdict(list) for m in ("old", "two", "yam")}
    lost: dict[str, Counter] = defaultdict(Counter)  # source -> stage -> laughs (2-stage)
    timing: list[tuple[list[float], str, Any]] = []  # per 2-stage hit: steps, why late, stream
    hours = 0.0
    n_pos = 0
    for (s, g), rec in zip(streams, srecs, strict=True):
        if s.laugh.startswith("synth"):
            continue
        f = T.fold_of(g)
        region = s.audio.size / RATE_HZ - s.warmup_s
        hours += region / 3600
        trace: dict = {}
        cues = {
            "old": [(e.data.onset_s, e.data.at_s) for e in
                    _pipeline_cues(s.audio, None, None, False)],
            "two": [(e.data.onset_s, e.data.at_s) for e in
                    _pipeline_cues(s.audio, None, wpath[f], True, trace=trace)],
        }
        ty, sy = _yamnet_track(teacher, s.audio, s.warmup_s)
        cues["yam"] = [(t - 0.975, t) for t in _yamnet_decisions(ty, sy)]
        has = not np.isnan(s.onset_s)
        n_pos += has
        for m, cs in cues.items():
            cs = [c for c in cs if c[1] >= s.warmup_s]
            if has:
                hit = [c for c in cs if s.onset_s - 0.5 <= c[1] and c[0] <= s.end_s
                       and c[1] <= s.end_s + 1.0]
                res[m]["hit"].append(bool(hit))
                res[m]["source"].append(_laugh_source(s.laugh))
                if hit:
                    res[m]["lat"].append(hit[0][1] - s.onset_s)
                res[m]["false"].append(len(cs) - len(hit))
            else:
                res[m]["false"].append(len(cs))
        if has:
            lost[_laugh_source(s.laugh)][_loss_stage(s, rec, trace, res["two"]["hit"][-1])] += 1
            if res["two"]["hit"][-1]:
                steps, why = _decision_times(s, rec, trace, weights[f],
                                             s.onset_s + res["two"]["lat"][-1])
                timing.append((steps, why, s))
    print(f"\nB. laughs inside speech: {n_pos} streams with a recorded laugh (cross-faded or "
          "overlaid; same-speaker warm-up of 24 s of active speech (30-75 s), speech, laugh, "
          f"speech; random EQ, phone band + mu-law, noise) and the same {n_pos} without it; "
          f"{hours * 60:.0f} min after the warm-ups; through the full cue policy (YAMNet: score >= "
          f"{YAMNET_THRESHOLD} on the last 0.975 s every 0.1 s, {COOLDOWN_S:.0f} s cooldown)")
    print(f"   {'':<34}{'old':>8}{'2-stage':>9}{'YAMNet':>8}   target")
    rows = []
    for m in ("old", "two", "yam"):
        h, la = np.array(res[m]["hit"]), np.array(res[m]["lat"] or [np.nan])
        rows.append((h.mean(), int(sum(res[m]["false"])), np.median(la), np.mean(la <= 1.0),
                     np.mean(la <= 1.2)))
    spec = [("cue recall", 0, "{:.0%}", ">= 85 %", lambda v: v >= 0.85),
            ("false cues", 1, "{}", "", None),
            ("decision after onset, median (s)", 2, "{:.2f}", "<= 0.8", lambda v: v <= 0.8),
            ("share decided within 1.0 s", 3, "{:.0%}", "", None),
            ("share decided within 1.2 s", 4, "{:.0%}", ">= 90 %", lambda v: v >= 0.9)]
    for name, i, fmt, tgt, ok in spec:
        vals = "".join(f"{fmt.format(r[i]):>{8 if j != 1 else 9}}" for j, r in enumerate(rows))
        mark = ("ok" if ok(rows[1][i]) else "MISSED") if ok else ""
        print(f"   {name:<34}{vals}   {tgt} {mark}")
    print("   cue recall by laugh source:")
    for src in LAUGH_SOURCES:
        vals = ""
        for j, m in enumerate(("old", "two", "yam")):
            h = np.array(res[m]["hit"])[np.array(res[m]["source"]) == src]
            vals += f"{f'{h.sum()}/{h.size}':>{8 if j != 1 else 9}}"
        print(f"     {src:<32}{vals}")
    print("   where the two-stage cue loses the laughs (streams per stage; a laugh counts at "
          "the first stage that lost it, within the scoring window: decided from 0.5 s "
          "before its onset to 1 s after its end):")
    stages = [st for st in LOSS_STAGES if any(lost[src][st] for src in LAUGH_SOURCES)]
    print(f"     {'':<40}" + "".join(f"{src.split()[0]:>10}" for src in LAUGH_SOURCES)
          + f"{'all':>6}")
    for st in stages:
        print(f"     {st:<40}" + "".join(f"{lost[src][st]:>10}" for src in LAUGH_SOURCES)
              + f"{sum(lost[src][st] for src in LAUGH_SOURCES):>6}")
    _print_decision_times(timing)

    # ---- false cues per hour on all recorded development speech, through the policy
    spk_audio = _recorded_speech(by_speaker)
    usuals = {g: learned_usual(x) for g, x in spk_audio.items()}
    n = {"old": 0, "two": 0, "yam": 0}
    total_h = 0.0
    for g, x in spk_audio.items():
        usual = usuals[g]
        total_h += x.size / RATE_HZ / 3600
        n["old"] += len(_pipeline_cues(x, usual, None, False))
        n["two"] += len(_pipeline_cues(x, usual, wpath[T.fold_of(g)], True))
        ty, sy = _yamnet_track(teacher, x, 0.0)
        n["yam"] += len(_yamnet_decisions(ty, sy))
    print(f"\nC. false laughter cues through the full policy on all recorded development "
          f"speech ({total_h * 60:.1f} min: codec2, hedgewars, FDA, RAVDESS neutral; each "
          "speaker its own stream, usual voice learned first; two-stage: the fold model that "
          "did not see the speaker)")
    print(f"   {'':<34}{'old':>8}{'2-stage':>9}{'YAMNet':>8}   target")
    print(f"   {'false cues':<34}{n['old']:>8}{n['two']:>9}{n['yam']:>8}")
    per_h = {m: v / total_h for m, v in n.items()}
    print(f"   {'per hour':<34}{per_h['old']:>8.1f}{per_h['two']:>9.1f}{per_h['yam']:>8.1f}"
          f"   <= 1 {'ok' if per_h['two'] <= 1 else 'MISSED'}")

    # ---- CPU of the verifier at the appliance's block size
    # (the machine is shared: the least of three runs is the verifier's own cost)
    speech = np.concatenate(list(spk_audio.values()))
    cpu = min((verifier_cpu(speech) for _ in range(3)), key=lambda c: c["total"])
    print(f"\nD. verifier CPU per second of audio, 100 ms blocks, on that speech (least of 3 "
          f"runs): {cpu['total'] * 1000:.3f} ms/s (history and usual pitch "
          f"{cpu['push'] * 1000:.3f}, {cpu['n_verify']} proposals, "
          f"{cpu['n_verify'] - cpu['n_skip']} verified, {cpu['verify'] * 1000:.3f}; its 16 mel "
          f"columns in the shared spectrum {cpu['bands'] * 1000:.3f})   target <= 0.3 "
          f"{'ok' if cpu['total'] <= 3e-4 else 'MISSED'}")
    raised_section(spk_audio, usuals, wpath, teacher)
    print(f"   (wall time {time.time() - t_start:.0f} s)")


def _fold_models(ds: object) -> dict[int, str]:
    """One verifier per fold, trained on the other folds (operating point from inner grouped
    cross-validation on them), saved to a temporary directory: fold -> weights path."""
    import tempfile

    import train_laughter_verifier as T

    folds = list(range(T.N_FOLDS))
    tmp = Path(tempfile.mkdtemp())
    wpath = {}
    for f in folds:
        w = T.train(ds, [g for g in folds if g != f])  # type: ignore[arg-type]
        w.save(tmp / f"fold{f}.npz")
        wpath[f] = str(tmp / f"fold{f}.npz")
    return wpath


def _recorded_speech(by_speaker: dict[str, list[Any]]) -> dict[str, np.ndarray]:
    """All recorded development speech, one stream per speaker group: codec2 recordings,
    hedgewars voice packs, FDA speakers, RAVDESS actors (neutral)."""
    from laughter_data import natural_speech

    spk_audio: dict[str, np.ndarray] = {}
    for src, clips in natural_speech().items():
        for c in clips:
            spk_audio[f"{src}:{c.speaker}" if src == "codec2" else f"hw:{c.speaker}"] = c.audio
    for g, its in by_speaker.items():
        if not g.startswith(("codec2", "hw", "espeak")):  # FDA speakers, RAVDESS actors
            spk_audio[g] = np.concatenate([it.audio for it in its])
    return spk_audio


RAISED_ST = 3.0  # semitones the laugh-free speech is raised by, tempo kept
RAISED_WARMUP_S = 40.0  # the speaker's own unraised speech before it


def _median_f0_hz(x: np.ndarray) -> float:
    """Median F0 (Hz) of the voiced hops of ``x`` (mono 16 kHz), NaN if none."""
    p = PitchTracker().process(x[None, : x.size // 160 * 160])
    f = p.f0_hz[0][p.voiced[0]]
    return float(np.median(f)) if f.size else float("nan")


def raised_section(spk_audio: dict[str, np.ndarray], usuals: dict[str, object],
                   wpath: dict[int, str], teacher: object | None) -> None:
    """False laughter cues on laugh-free speech raised in pitch (an excited agent): each
    speaker's recorded development speech raised ``RAISED_ST`` semitones with its tempo kept
    (``laughter_data.pitch_shift``), after ``RAISED_WARMUP_S`` of the same speaker's unraised
    speech, the usual voice learned from the unraised speech first (as in section C); the
    two-stage cue with the fold model that did not see the speaker.  Only cues after the
    warm-up count.  A second row raises it by plain resampling (tempo 19 % faster, formants
    moved the same): the verifier trains on raised speech by both recipes, never the
    held-out speaker's (until 2026-12-04 on the vocoder's only, when this row told a
    response to raised pitch from one to the vocoder's sound).  A third row raises the pitch
    and keeps the formants (``laughter_data.shift_voice``; a raised voice from the same vocal
    tract), a recipe the verifier never trains on: it tells a response to raised pitch from
    one to the training recipes' sound.  (Part of ``--two-stage``; alone with ``--raised``.)"""
    from fractions import Fraction

    import train_laughter_verifier as T
    from laughter_data import pitch_shift, shift_voice
    from scipy.signal import resample_poly

    r = Fraction(int(round(1000 * 2 ** (RAISED_ST / 12))), 1000)
    recipes = {"tempo kept (phase vocoder)": lambda x: pitch_shift(x, RAISED_ST),
               "resampled (tempo 19 % faster)": lambda x: resample_poly(x, r.denominator,
                                                                        r.numerator),
               "formants kept (never trained on)": lambda x: shift_voice(x, RAISED_ST, 1.0)}
    print(f"\nE. false laughter cues on that speech raised {RAISED_ST:g} semitones, after "
          f"{RAISED_WARMUP_S:.0f} s of the speaker's unraised speech (usual voice learned "
          "unraised first; two-stage: the fold model that did not see the speaker)")
    print(f"   {'':<34}{'old':>8}{'2-stage':>9}{'YAMNet':>8}   target")
    for name, shifted in recipes.items():
        n = {"old": 0, "two": 0, "yam": 0}
        shift, where = [], []
        total_h = 0.0
        for g, x in spk_audio.items():
            warm = loop_take(x, 0, int(RAISED_WARMUP_S * RATE_HZ))
            y = shifted(x)
            shift.append(12 * np.log2(_median_f0_hz(y) / _median_f0_hz(x)))
            total_h += y.size / RATE_HZ / 3600
            after = warm.size / RATE_HZ
            s = np.concatenate([warm, y])
            n["old"] += sum(e.data.at_s >= after
                            for e in _pipeline_cues(s, usuals[g], None, False))
            two = [e.data.at_s - after for e in _pipeline_cues(
                s, usuals[g], wpath[T.fold_of(g)], True) if e.data.at_s >= after]
            n["two"] += len(two)
            if two:
                where.append(f"{g} at {', '.join(f'{t:.1f}' for t in two)} s")
            if teacher is not None:
                ty, sy = _yamnet_track(teacher, s, after)
                n["yam"] += len(_yamnet_decisions(ty, sy))
        print(f"   {name}: {total_h * 60:.1f} min, measured median F0 shift "
              f"{np.median(shift):.1f} st ({min(shift):.1f} to {max(shift):.1f} over "
              f"{len(shift)} speakers)")
        yam = f"{n['yam']:>8}" if teacher is not None else f"{'-':>8}"
        print(f"   {'  false cues':<34}{n['old']:>8}{n['two']:>9}{yam}")
        per_h = {m: v / total_h for m, v in n.items()}
        yam = f"{per_h['yam']:>8.1f}" if teacher is not None else f"{'-':>8}"
        print(f"   {'  per hour':<34}{per_h['old']:>8.1f}{per_h['two']:>9.1f}{yam}"
              f"   <= 1 {'ok' if per_h['two'] <= 1 else 'MISSED'}")
        if where:
            print(f"     two-stage cues (s after the warm-up): {'; '.join(where)}")


def raised_only() -> None:
    """Section E alone (``--raised``; ~5 min): the fold models, then the raised speech."""
    import train_laughter_verifier as T

    t_start = time.time()
    ds, _ = T.dataset()
    wpath = _fold_models(ds)
    _, by_speaker = T.load_items()
    spk_audio = _recorded_speech(by_speaker)
    usuals = {g: learned_usual(x) for g, x in spk_audio.items()}
    teacher = T.Teacher() if "--no-yamnet" not in sys.argv[1:] else None
    raised_section(spk_audio, usuals, wpath, teacher)
    print(f"   (wall time {time.time() - t_start:.0f} s)")


RESTART_BEFORE_S = (30.0, 10.0, 3.0)  # the appliance restarted this long before a laugh


def restart_only() -> None:
    """Laughs inside speech right after a restart (``--restart``; ~8 min): the policy's usual
    voice restored from the desk's state (learned from the stream's warm-up), the analyzer -
    the verifier's own usual pitch, which its skip rule reads, and the policy's recent pitch -
    starting afresh ``RESTART_BEFORE_S`` before the laugh.  The same streams as section B
    (recorded laughs), the fold model that did not see the speaker.  Recall and the
    verifier's losses against the same streams without a restart."""
    import train_laughter_verifier as T

    t_start = time.time()
    ds, recs = T.dataset()
    wpath = _fold_models(ds)
    items, by_speaker = T.load_items()
    streams = T.build_streams(items, by_speaker)
    srecs = [r for r in recs if r["kind"] == "stream"]
    assert len(srecs) == len(streams), "the cached windows are not of these streams"
    print("laughs inside speech after a restart (the usual voice restored, the analyzer "
          "afresh; held-out speakers, the streams of --two-stage section B)")
    usuals: dict[int, object] = {}
    print(f"   {'restart before the laugh':<26}{'streams':>8}{'cued':>12}"
          f"{'none verified':>16}")
    for before in RESTART_BEFORE_S:
        n = 0
        cued, unverified = [0, 0], [0, 0]  # restarted, not restarted
        for (s, g), _rec in zip(streams, srecs, strict=True):
            if s.laugh.startswith("synth") or np.isnan(s.onset_s):
                continue
            cut = int(max(s.onset_s - before, 0.0) * RATE_HZ)
            usual = usuals.setdefault(id(s), learned_usual(s.audio[:int(s.warmup_s * RATE_HZ)]))
            n += 1
            lo, hi = s.onset_s - 0.5, s.end_s + 1.0
            for k, (audio, t0) in enumerate(((s.audio[cut:], cut / RATE_HZ), (s.audio, 0.0))):
                trace: dict = {}
                cs = [(e.data.onset_s + t0, e.data.at_s + t0) for e in _pipeline_cues(
                    audio, usual if k == 0 else None, wpath[T.fold_of(g)], True, trace=trace)]
                cued[k] += any(lo <= a <= hi and o <= s.end_s for o, a in cs)
                unverified[k] += not any(lo <= b.decided_at_s + t0 <= hi
                                         and b.start_s + t0 <= s.end_s
                                         for b in trace["decided"])
        print(f"   {f'{before:.0f} s':<26}{n:>8}{f'{cued[0]} / {cued[1]}':>12}"
              f"{f'{unverified[0]} / {unverified[1]}':>16}")
    print("   (restarted / the same streams not restarted; none verified: laughs with no burst "
          "the verifier passed - rejected, or skipped for a pitch below its own usual)")
    print(f"   (wall time {time.time() - t_start:.0f} s)")


def verifier_cpu(x: np.ndarray) -> dict[str, float]:
    """The verifier's own CPU seconds per second of audio, fed as the analyzer feeds it in
    100 ms blocks: its history and usual-pitch updates, its verifications, and the extra
    mel columns of the shared spectrum (timed as the product the spectrum adds for them)."""
    from dsp.laughter_verifier import LaughterVerifier

    acc = {"push": 0.0, "verify": 0.0, "bands": 0.0, "n_verify": 0, "n_skip": 0}

    class Timed(LaughterVerifier):
        def push(self, *a: np.ndarray) -> None:
            t0 = time.process_time()
            super().push(*a)
            acc["push"] += time.process_time() - t0

        def verify(self, k: int, pulse: np.ndarray, start: int) -> float:
            t0 = time.process_time()
            r = super().verify(k, pulse, start)
            acc["verify"] += time.process_time() - t0
            acc["n_verify"] += 1
            acc["n_skip"] += r == 0.0  # (a verified score is never exactly 0)
            return r

    from firmware.config.policy import LaughterCue

    v = Timed(min_st_above_usual=LaughterCue().pitch_st)  # as the appliance runs it
    det = LaughterDetector(verifier=v)
    spectrum = HopSpectrum(bands=np.hstack([LaughterDetector.band_weights, v.band_weights]))
    level = HopLevel(n_channels=1)
    pitch = PitchTracker()
    nb = LaughterDetector.band_weights.shape[1]
    x = np.concatenate([x, np.zeros((-x.size) % BLOCK)])
    power = np.zeros((BLOCK // 160, 257))
    for i in range(0, x.size, BLOCK):
        b = x[None, i:i + BLOCK]
        level.process(b)
        bands = spectrum.process(level.remove(b))[0]
        p = pitch.process(b)
        v.push(bands[:, nb:], p.periodicity[0], p.f0_hz[0], p.voiced[0])
        det.process_hops(bands[:, 0], p.periodicity[0], bands[:, 1:nb])
        t0 = time.process_time()  # the mel columns' share of the band product
        power @ v.band_weights
        acc["bands"] += time.process_time() - t0
    secs = x.size / RATE_HZ
    out = {k: (v_ / secs if not k.startswith("n_") else v_) for k, v_ in acc.items()}
    out["total"] = out["push"] + out["verify"] + out["bands"]
    return out


def main() -> None:
    if "--dev" in sys.argv[1:]:
        dev_section()
        return
    if "--natural" in sys.argv[1:]:
        natural_section()
        return
    if "--raised" in sys.argv[1:]:
        raised_only()
        return
    if "--restart" in sys.argv[1:]:
        restart_only()
        return
    if "--two-stage" in sys.argv[1:]:
        two_stage_section()
        return
    t_start = time.time()
    deeply = load_deeply()
    speech = load_fda() + load_ravdess_neutral()
    thr = LaughterDetector().threshold
    print("deskcue laughter-likeness benchmark (dsp/laughter.py, shipped defaults)")
    print(f"threshold {thr}; data: {len(deeply)} Deeply clips, {len(speech)} speech clips")

    # ---- 1/2: clip scores
    by_class: dict[str, list[float]] = defaultdict(list)
    fired: dict[str, list[bool]] = defaultdict(list)
    for c in deeply + speech:
        sc, decided, _ = run(c.audio)
        by_class[c.label].append(float(sc.max()))
        fired[c.label].append(bool(decided))
    pos = np.array(by_class["laughing"])
    print(f"\n1. clip-level ROC AUC, laughing (n={pos.size}) vs ...")
    print(f"   {'class':<18}{'n':>4}{'AUC':>8}{'EER':>8}   target")
    others = [k for k in sorted(by_class) if k not in ("laughing", "speech")]
    rows = [("speech", np.array(by_class["speech"]), 0.95)]
    rows += [(k, np.array(by_class[k]), 0.90) for k in others]
    rows.append(("all other vocal.", np.concatenate([by_class[k] for k in others]), 0.90))
    for k, neg, target in rows:
        a = auc(pos, neg)
        mark = "ok" if a >= target else "MISSED"
        print(f"   {k:<18}{neg.size:>4}{a:>8.3f}{eer(pos, neg):>8.3f}   >= {target} {mark}")

    print(f"\n2. clips firing at the shipped threshold ({thr}): at least one burst event")
    for k in ["laughing", "speech", *others]:
        f = np.array(fired[k])
        what = "detection" if k == "laughing" else "false alarm"
        print(f"   {k:<12} {what:<12} {f.mean():6.1%}  ({f.sum()}/{f.size})")
    hi = np.round(np.percentile(pos, [0, 50, 100]), 2)
    print(f"   laughing clip scores min/median/max: {hi.tolist()}")

    # ---- 3: event F1 on joined streams
    rng = np.random.default_rng(SEED)
    laughs = [c for c in deeply if c.label == "laughing"]
    streams = build_streams(laughs, speech, rng)
    strict, lenient, lat = event_scores(streams)
    hours = sum(x.size for x, _ in streams) / RATE_HZ / 3600
    print(f"\n3. event F1, {len(streams)} joined streams ({hours * 60:.1f} min; speech | laugh |")
    print(f"   speech, levels matched), onset tolerance +-{ONSET_TOL_S} s")
    for name, (tp, fn, fp) in (("strict", strict), ("lenient", lenient)):
        p, r, f1 = prf(tp, fn, fp)
        tgt = f"   target >= 0.8 {'ok' if f1 >= 0.8 else 'MISSED'}" if name == "strict" else ""
        print(f"   {name:<8} hits {tp}, misses {fn}, false events {fp}: precision {p:.3f}, "
              f"recall {r:.3f}, F1 {f1:.3f}{tgt}")
    print("   (strict: event start within +-0.5 s of the laugh's first sound; lenient: any "
          "event starting in the laugh)")
    if lat:
        la = np.array(lat)
        print(f"   decision latency of strict hits (decided_at - start): median "
              f"{np.median(la):.2f} s, max {la.max():.2f} s, "
              f"share <= 0.6 s {np.mean(la <= 0.6):.0%}")

    # ---- 4: false bursts per hour of ordinary speech
    allspeech = np.concatenate([c.audio for c in speech])
    cpu0, audio0 = _cpu["s"], _cpu["audio_s"]
    _, decided, _ = run(allspeech)
    speech_cpu = (_cpu["s"] - cpu0) / (_cpu["audio_s"] - audio0)
    h = allspeech.size / RATE_HZ / 3600
    n_fa = len(decided)
    # 95 % one-sided Poisson upper bound on the rate (exact for 0 events: -ln 0.05 = 3.0)
    from scipy.stats import chi2

    ub = chi2.ppf(0.95, 2 * (n_fa + 1)) / 2 / h
    print(f"\n4. false burst events in {h * 60:.1f} min of ordinary speech (FDA + RAVDESS "
          "neutral, concatenated)")
    print(f"   {n_fa} events = {n_fa / h:.1f} per hour (95 % upper bound {ub:.0f}/h)   "
          f"target <= 1/h {'ok' if n_fa / h <= 1 else 'MISSED'}")
    if decided:
        print("   at s:", ", ".join(f"{ev.start_s:.2f}" for ev in decided[:20]))

    # ---- 6: through the appliance's full cue policy
    policy_section(deeply, speech)

    # ---- 5: CPU and anchors
    print("\n5. CPU (time.process_time) of the detector's own work, given the analyzer's "
          "shared spectrum and pitch periodicity: "
          f"{_cpu['s'] / _cpu['audio_s'] * 1000:.2f} ms per s of "
          f"audio over all {_cpu['audio_s'] / 60:.1f} min fed in 100 ms blocks; "
          f"{speech_cpu * 1000:.2f} ms/s on the continuous speech stream (budget 2.0 ms/s)")
    print("   published anchors (other data, other protocols; for orientation only):")
    print("   - Knox, Morgan & Mirghafori 2008, ICSI meetings, frame-level MLP: 5.4 % EER")
    print("   - Salamin, Polychroniou & Vinciarelli 2013, mobile-phone calls, HMM: F1 0.64")
    print(f"   - this detector, clip level vs speech: {eer(pos, rows[0][1]):.1%} EER")
    print(f"   (wall time {time.time() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
