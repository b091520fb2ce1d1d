"""Per-hop level (dBFS) and a streaming voice-activity decision against a tracked noise floor.

Level is the RMS of each 10 ms hop in dBFS re a full-scale square wave, floored at -120 dBFS;
the analyzer takes it about the audio's DC offset (`HopLevel`: an offset is no sound).
The decision is causal (no look-ahead, so no ``delay_hops``), one bool per hop, taken on the level
smoothed over the last few hops; every window is in seconds of stream (hops x 0.01 s), and
results do not depend on how the stream is cut into blocks.

Per block, the costs are the 8 s floor window's minimum and maximum (one reduction each) and,
every 0.5 s of stream, its lower quartile: a partition of the two order statistics numpy's
``nanquantile`` would interpolate (`lower_quartile`), the same numbers at a sixth of its cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp._fast import lfilter_zi, windows

SILENCE_DBFS = -120.0
UNKNOWN_SWING_DB = 100.0  # the noise's swing before any was measured: the full margin applies


def hop_level_dbfs(x: np.ndarray, hop: int) -> np.ndarray:
    """RMS level of each hop in dBFS re a full-scale square wave, floored at -120 dBFS.

    ``x`` is (n_channels, n) with n a multiple of ``hop``; returns (n_channels, n // hop).
    """
    c, n = x.shape
    frames = x[:, : n - n % hop].reshape(c, -1, hop)
    ms = np.einsum("chs,chs->ch", frames, frames) / hop
    with np.errstate(divide="ignore"):
        return np.maximum(10.0 * np.log10(ms), SILENCE_DBFS)


class HopLevel:
    """Streaming `hop_level_dbfs` of the audio less its DC offset (dBFS, floor -120 dBFS).

    DC is no sound, but in an RMS it stands as a floor under everything: a tap whose converter
    is offset by 1 % of full scale reads -40 dBFS in every pause, above a quiet voice, and
    voice activity hears nothing. The offset is tracked as the hops' means low-passed over
    hops (``dc_time_s``, 0.5 s; the stream is preceded by silence, so a steady offset settles
    within ~1.5 s), and each hop's level is its RMS about it: a voice keeps its whole level,
    its own within-hop mean included, and infrasound (a cough's thump) is still heard, while
    the cost is one more reduction per block rather than a filter over every sample.
    ``process`` takes ``(n_channels, n)`` with ``n`` a multiple of ``hop`` and returns the
    levels ``(n_channels, n // hop)``; `remove` then takes the offset out of that block's audio
    (for a spectrum). The state is carried across calls: results do not depend on the cuts.
    """

    def __init__(self, *, n_channels: int, hop: int = 160, rate: int = 16000,
                 dc_time_s: float = 0.5):
        self.hop, self.n_channels = hop, n_channels
        a = 1.0 - float(np.exp(-hop / rate / dc_time_s))
        # the low-pass runs on hop sums (hop x mean): the offset comes out x hop
        self._b, self._a = np.array([a]), np.array([1.0, a - 1.0])
        self._zi = np.zeros((n_channels, 1))  # the filter's state: silence before the stream
        self._ones = np.ones(hop)
        # `remove`: the offset across a hop as [start, end - start] @ this (2, hop), / hop
        self._basis = np.vstack([np.ones(hop), np.arange(1, hop + 1) / hop]) / hop
        # the offset (x hop) at the end of the last hop, and at the start and end of each hop
        # of the last block
        self._end = np.zeros((n_channels, 1))
        self._ends = np.zeros((n_channels, 0, 2))

    def process(self, x: np.ndarray) -> np.ndarray:
        """Level of each hop about the tracked offset, dBFS (n_channels, n // hop)."""
        c, n = x.shape
        h = n // self.hop
        frames = x[:, : h * self.hop].reshape(c, h, self.hop)
        if h == 0:
            self._ends = np.zeros((c, 0, 2))
            return np.zeros((c, 0))
        s2 = np.einsum("chs,chs->ch", frames, frames)
        s1 = frames @ self._ones
        dc, self._zi = lfilter_zi(self._b, self._a, s1, self._zi)  # x hop
        ends = self._ends = np.empty((c, h, 2))
        ends[:, 0, 0] = self._end[:, 0]
        ends[:, 1:, 0] = dc[:, :-1]
        np.subtract(dc, ends[:, :, 0], out=ends[:, :, 1])
        self._end = dc[:, -1:]
        # hop x mean((x - dc)^2) = s2 - dc (2 s1 - hop dc) / hop^2 (dc x hop here), >= 0 up
        # to rounding
        s1 *= 2.0
        s1 -= dc
        s1 *= dc
        s1 /= self.hop
        s2 -= s1
        s2 /= self.hop
        np.maximum(s2, 0.0, out=s2)
        with np.errstate(divide="ignore"):
            return np.maximum(10.0 * np.log10(s2), SILENCE_DBFS)

    def remove(self, x: np.ndarray) -> np.ndarray:
        """The first ``k`` channels ``x`` (k, h * hop) of the block `process` was given last,
        less their offset: across each hop it ramps from the previous hop's to its own (a step
        at every hop boundary would be a click in the spectrum)."""
        k = x.shape[0]
        h = self._ends.shape[1]
        out = x[:, : h * self.hop].reshape(k, h, self.hop) - self._ends[:k] @ self._basis
        return out.reshape(k, h * self.hop)


def lower_quartile(x: np.ndarray) -> np.ndarray:
    """``np.nanquantile(x, 0.25, axis=-1)`` (linear interpolation), the same numbers: windows
    without NaN (all but the stream's first seconds) take numpy's own formula on a partition
    of the two neighbouring order statistics, ~6x cheaper than ``nanquantile``."""
    if np.isnan(x).any():  # a window not heard in full yet
        # A window with nothing heard has no quartile (NaN). nanquantile would warn about it,
        # and silencing that is process-wide state no analysis thread should touch.
        heard = ~np.isnan(x).all(axis=-1)
        q = np.full(heard.shape, np.nan)
        if heard.any():
            q[heard] = np.nanquantile(x[heard], 0.25, axis=-1)
        return q
    k = x.shape[-1]
    v = (k - 1) * 0.25  # numpy's virtual index and interpolation weight
    lo = int(v)
    hi = min(lo + 1, k - 1)
    g = v - lo
    part = np.partition(x, (lo, hi), axis=-1)
    a, b = part[..., lo], part[..., hi]
    d = b - a
    return a + d * g if g < 0.5 else b - d * (1 - g)


@dataclass(frozen=True)
class VoiceActivityParams:
    """Parameters of the voice-activity decision.

    ``floor_dbfs``: hops quieter than this are never speech. A hop is speech when its smoothed
    level clears the noise floor (the minimum of the smoothed level over the last
    ``floor_window_s`` seconds) by the margin: ``margin_ratio`` of the room the peak has above
    the floor, kept between the least margin and ``margin_db`` (dB; ``margin_db`` wins should it
    be the smaller). The peak is the loudest level the smoothed level held for ``peak_hold_s``
    over the last ``peak_window_s``: a syllable's nucleus holds its level that long, a click on
    the headset does not, and a knock that does makes a quiet voice inaudible for
    ``peak_window_s`` at most. A voice well above the floor gets the full margin; a voice near
    it a smaller one, so its quieter syllables still count. The least margin is
    ``quiet_margin_db``, or ``swing_factor`` times the noise's own swing (the window's lower
    quartile above its minimum, measured every ``swing_every_s``) if that is more: steady hiss
    swings well under 1 dB, a fan or a vent several dB, and the noise's highest hops lie about
    five such swings above the floor. A hop more than ``range_db`` below the peak is not speech
    either: a voice's own syllables span less than that, while a loud agent's room tone, lifted
    by the same gain, can sit far above the tap's floor.
    ``hangover_s``: speech is held this long after the level drops, so word endings and short
    stops stay inside speech; ``quiet_hangover_s`` where the margin is below full, since near
    the floor only syllable nuclei clear it and the hold must reach the next one.
    """

    floor_dbfs: float = -70.0
    margin_db: float = 10.0
    quiet_margin_db: float = 5.0
    margin_ratio: float = 0.25
    floor_window_s: float = 8.0
    smooth_hops: int = 3
    hangover_s: float = 0.15
    quiet_hangover_s: float = 0.3
    range_db: float = 40.0
    swing_factor: float = 5.0
    swing_every_s: float = 0.5
    peak_hold_s: float = 0.05
    peak_window_s: float = 3.0


class VoiceActivity:
    """Streaming, causal voice activity for (n_channels, H) per-hop levels (10 ms hops).

    State: the trailing windows of smoothed levels, of held levels (for the peak) and of raw
    decisions, carried across calls, so decisions do not depend on how the stream was cut.
    ``process`` returns a bool array (n_channels, H) and the tracked noise floor in dBFS
    (n_channels, H).
    """

    def __init__(self, params: VoiceActivityParams, *, n_channels: int, hop_s: float = 0.01):
        self.p = params
        self.floor_hops = max(1, round(params.floor_window_s / hop_s))
        self.hang_hops = max(1, round(params.hangover_s / hop_s) + 1)
        self.quiet_hang_hops = max(self.hang_hops, round(params.quiet_hangover_s / hop_s) + 1)
        self._lvl_hist = np.full((n_channels, params.smooth_hops - 1), SILENCE_DBFS)
        # Smoothed levels of the floor window, NaN where none was heard yet: until a whole
        # window has been heard, the floor is the quietest level heard so far and the peak
        # the loudest. Nothing is assumed about a tap not yet heard (a floor assumed below
        # the tap's own noise would take that noise for speech).
        self._win_hist = np.full((n_channels, self.floor_hops - 1), np.nan)
        self.peak_hops = min(self.floor_hops, max(1, round(params.peak_hold_s / hop_s)))
        self.peak_window_hops = max(1, round(params.peak_window_s / hop_s))
        # per hop, the least smoothed level of its last peak_hops hops, over the peak window
        self._held_hist = np.full((n_channels, self.peak_window_hops - 1), np.nan)
        self._hops_seen = 0
        self.swing_hops = max(1, round(params.swing_every_s / hop_s))
        self._swing = np.full(n_channels, UNKNOWN_SWING_DB)  # until measured: the full margin
        self._raw_hist = np.zeros((n_channels, self.quiet_hang_hops - 1), dtype=bool)

    def restart(self) -> None:
        """Audio was lost: the next hop follows none heard. The noise floor, the loudest
        recent level and the noise's swing are kept (slow: how the tap and the room sound);
        the smoothing and hangover windows start over, as at the stream's start, so no hop's
        decision reads a level from before the loss."""
        self._lvl_hist[...] = SILENCE_DBFS
        self._raw_hist[...] = False
        self._hops_seen = 0

    def process(self, level_dbfs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Voice activity (bool) and the noise floor (dBFS) per hop, each (n_channels, H), for
        per-hop levels ``level_dbfs`` (dBFS, 10 ms hops)."""
        p = self.p
        lv = np.concatenate([self._lvl_hist, level_dbfs], axis=1)
        self._lvl_hist = lv[:, lv.shape[1] - (p.smooth_hops - 1):]
        # smoothed level: power mean over the last smooth_hops hops, in dB
        pw = 10 ** (lv / 10)
        smooth = 10 * np.log10(np.add.reduce(windows(pw, p.smooth_hops), axis=-1)
                               / p.smooth_hops)
        # The stream's first hops have no full smoothing window: kept out of the floor window
        # (a mean over hops not heard would sit below the noise) and never speech.
        start, n = self._hops_seen, smooth.shape[1]
        partial = max(0, min(p.smooth_hops - 1 - start, n))
        self._hops_seen += n
        if partial:
            smooth[:, :partial] = np.nan
        wb = np.concatenate([self._win_hist, smooth], axis=1)
        self._win_hist = wb[:, wb.shape[1] - (self.floor_hops - 1):]
        win = windows(wb, self.floor_hops)
        floor = np.fmin.reduce(win, axis=-1)
        # each hop's level held over its last peak_hops hops, then the loudest of those
        held_win = windows(wb, self.peak_hops)
        held = np.fmin.reduce(held_win[:, held_win.shape[1] - n:], axis=-1)
        hb = np.concatenate([self._held_hist, held], axis=1)
        self._held_hist = hb[:, hb.shape[1] - (self.peak_window_hops - 1):]
        peak = np.fmax.reduce(windows(hb, self.peak_window_hops), axis=-1)
        if partial:  # no floor heard yet: report the hop's own level
            floor[:, :partial] = level_dbfs[:, :partial]
        least = np.maximum(p.quiet_margin_db, p.swing_factor * self._noise_swing(win, floor, start))
        margin = np.minimum(np.maximum(p.margin_ratio * (peak - floor), least), p.margin_db)
        thr = np.maximum(floor + margin, peak - p.range_db)
        raw = (smooth > thr) & (level_dbfs > p.floor_dbfs)
        rb = np.concatenate([self._raw_hist, raw], axis=1)
        qh, h = self.quiet_hang_hops, self.hang_hops
        self._raw_hist = rb[:, rb.shape[1] - (qh - 1):]
        voiced = np.logical_or.reduce(windows(rb, h)[:, qh - h:], axis=-1)
        if qh > h:
            # Near the floor only syllable nuclei clear the margin (onsets and codas sit
            # under the noise): hold speech across the gap to the next nucleus.
            quiet = margin < p.margin_db
            if quiet.any():
                voiced |= quiet & np.logical_or.reduce(windows(rb, qh), axis=-1)
        return voiced, floor

    def _noise_swing(self, win: np.ndarray, floor: np.ndarray, start: int) -> np.ndarray:
        """How far the noise swings above the floor, per hop (dB): the window's lower quartile
        above its minimum, measured every ``swing_every_s`` at absolute hops and held between
        (the lower quartile is noise while speech fills less than three quarters of the
        window). ``win`` are the floor windows of the block's hops, which begin at ``start``."""
        n = win.shape[1]
        at = np.arange((-start) % self.swing_hops, n, self.swing_hops)
        vals = self._swing[:, None]
        if at.size:
            q = lower_quartile(win[:, at]) - floor[:, at]
            vals = np.concatenate([vals, np.where(np.isnan(q), UNKNOWN_SWING_DB, q)], axis=1)
            self._swing = vals[:, -1].copy()
        return vals[:, np.searchsorted(at, np.arange(n), side="right")]
