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

    ``floor_dbfs``: hops quieter than this are never speech. ``margin_db``: a hop is speech
    when its smoothed level is this far above the noise floor, which is the minimum of the
    smoothed level over the last ``floor_window_s`` seconds. ``hangover_s``: speech is held
    this long after the level drops, so word endings and short stops stay inside speech.
    """

    floor_dbfs: float = -60.0
    margin_db: float = 10.0
    floor_window_s: float = 8.0
    smooth_hops: int = 3
    hangover_s: float = 0.15


class VoiceActivity:
    """Streaming, causal voice activity for (n_channels, H) per-hop levels (10 ms hops).

    State: the trailing window of smoothed levels and of raw decisions, carried across calls,
    so decisions do not depend on how the stream was cut. ``process`` returns a bool array
    (n_channels, H) and the tracked noise floor in dBFS (n_channels, H).
    """

    def __init__(self, params: VoiceActivityParams, *, n_channels: int, hop_s: float = 0.01):
        self.p = params
        self.floor_hops = max(1, round(params.floor_window_s / hop_s))
        self.hang_hops = max(1, round(params.hangover_s / hop_s) + 1)
        self._lvl_hist = np.full((n_channels, params.smooth_hops - 1), SILENCE_DBFS)
        # Floor history starts at the speech floor, not at silence, so a meter switched on
        # in the middle of speech does not take the first words for noise.
        self._floor_hist = np.full((n_channels, self.floor_hops - 1), params.floor_dbfs - 20.0)
        self._raw_hist = np.zeros((n_channels, self.hang_hops - 1), dtype=bool)

    def process(self, level_dbfs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.p
        lv = np.concatenate([self._lvl_hist, level_dbfs], axis=1)
        self._lvl_hist = lv[:, lv.shape[1] - (p.smooth_hops - 1):]
        # smoothed level: power mean over the last smooth_hops hops, in dB
        pw = 10 ** (lv / 10)
        smooth = 10 * np.log10(np.add.reduce(windows(pw, p.smooth_hops), axis=-1)
                               / p.smooth_hops)
        fb = np.concatenate([self._floor_hist, smooth], axis=1)
        self._floor_hist = fb[:, fb.shape[1] - (self.floor_hops - 1):]
        floor = np.minimum.reduce(windows(fb, self.floor_hops), axis=-1)
        raw = (smooth > floor + p.margin_db) & (level_dbfs > p.floor_dbfs)
        rb = np.concatenate([self._raw_hist, raw], axis=1)
        self._raw_hist = rb[:, rb.shape[1] - (self.hang_hops - 1):]
        voiced = np.logical_or.reduce(windows(rb, self.hang_hops), axis=-1)
        return voiced, floor
