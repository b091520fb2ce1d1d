"""Per-hop level (dBFS) and a streaming voice-activity decision against a tracked noise floor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp._fast import windows

SILENCE_DBFS = -120.0


def hop_level_dbfs(x: np.ndarray, hop: int) -> np.ndarray:
    """RMS level of each hop in dBFS re a full-scale square wave, floored at -120 dBFS.

    ``x`` is (n_channels, n) with n a multiple of ``hop``; returns (n_channels, n // hop).
    """
    c, n = x.shape
    frames = x[:, : n - n % hop].reshape(c, -1, hop)
    ms = np.einsum("chs,chs->ch", frames, frames) / hop
    with np.errstate(divide="ignore"):
        return np.maximum(10.0 * np.log10(ms), SILENCE_DBFS)


@dataclass(frozen=True)
class VoiceActivityParams:
    """Parameters of the voice-activity decision.

    ``floor_dbfs``: hops quieter than this are never speech. A hop is speech when its
    smoothed level clears the noise floor (the minimum of the smoothed level over the last
    ``floor_window_s`` seconds) by the margin: ``margin_ratio`` of the room the loudest
    smoothed level of that window (the peak) has above the floor, kept between
    ``quiet_margin_db`` and ``margin_db`` (dB; ``margin_db`` wins should it be the smaller).
    A voice well above the floor gets the full margin; a voice near it a smaller one, so its
    quieter syllables still count. ``quiet_margin_db`` stays above the swing of steady noise
    (a 30 ms power mean of a tap's hiss moves about 1 dB). A hop more than ``range_db`` below
    the peak is not speech either: a voice's own syllables span less than that, while a loud
    agent's room tone, lifted by the same gain, can sit far above the tap's floor.
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


class VoiceActivity:
    """Streaming, causal voice activity for (n_channels, H) per-hop levels (10 ms hops).

    State: the trailing windows of smoothed levels and of raw decisions, carried across calls,
    so decisions do not depend on how the stream was cut. ``process`` returns a bool array
    (n_channels, H) and the tracked noise floor in dBFS (n_channels, H).
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
        self._hops_seen = 0
        self._raw_hist = np.zeros((n_channels, self.quiet_hang_hops - 1), dtype=bool)

    def process(self, level_dbfs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.p
        lv = np.concatenate([self._lvl_hist, level_dbfs], axis=1)
        self._lvl_hist = lv[:, lv.shape[1] - (p.smooth_hops - 1):]
        # smoothed level: power mean over the last smooth_hops hops, in dB
        pw = 10 ** (lv / 10)
        smooth = 10 * np.log10(np.add.reduce(windows(pw, p.smooth_hops), axis=-1)
                               / p.smooth_hops)
        # The stream's first hops have no full smoothing window: kept out of the floor window
        # (a mean over hops not heard would sit below the noise) and never speech.
        partial = max(0, min(p.smooth_hops - 1 - self._hops_seen, smooth.shape[1]))
        self._hops_seen += smooth.shape[1]
        if partial:
            smooth[:, :partial] = np.nan
        wb = np.concatenate([self._win_hist, smooth], axis=1)
        self._win_hist = wb[:, wb.shape[1] - (self.floor_hops - 1):]
        win = windows(wb, self.floor_hops)
        floor = np.fmin.reduce(win, axis=-1)
        peak = np.fmax.reduce(win, axis=-1)
        if partial:  # no floor heard yet: report the hop's own level
            floor[:, :partial] = level_dbfs[:, :partial]
        margin = np.clip(p.margin_ratio * (peak - floor), p.quiet_margin_db, p.margin_db)
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
