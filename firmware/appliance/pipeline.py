"""Audio blocks in, features and stamped events out: channel map, resampling, analysis, policy.

Shared by `deskcue run` (live) and `deskcue analyze` (a file, as fast as possible), so the
events `analyze` prints are exactly the ones the appliance would publish.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsp.analyzer import HOP, RATE, AnalyzerParams, HopFeatures, StreamAnalyzer
from dsp.resample import StreamResampler
from dsp.voice_activity import VoiceActivityParams
from firmware.config.audio import AudioSettings
from firmware.config.settings import Settings
from firmware.policy.cue_policy import CHUNK_HOPS, CuePolicy, PolicyEvent
from firmware.policy.usual_voice import UsualVoice

CHANNEL_NAMES = ("agent", "caller")


def channel_order(audio: AudioSettings, source_channels: int) -> list[int]:
    """Source channel indices in analysis order: [agent] or [agent, caller].

    A mono source is the agent; a stereo source follows the configured channel map.
    """
    if source_channels == 1:
        return [0]
    if source_channels != 2:
        raise ValueError(f"{source_channels} channels: need mono or stereo")
    side = {"left": 0, "right": 1}
    order = [side[audio.agent_channel]]
    if audio.caller_channel != "none":
        order.append(side[audio.caller_channel])
    return order


def make_usual_voice(settings: Settings) -> UsualVoice:
    """The agent's usual voice; learning lags by twice the longest evidence a cue can
    gather before it fires, so that evidence is dropped, not learned, when the cue starts
    (at most half the warm-up, so the usual level always rests on real speech)."""
    b = settings.baseline
    cues = (settings.cues.raised_voice, settings.cues.tense_voice)
    hold = max(c.hold_s + c.gap_s for c in cues)
    lag = min(max(3.0, 2 * hold), b.warmup_speech_s / 2)
    return UsualVoice(warmup_speech_s=b.warmup_speech_s,
                      half_life_speech_s=b.half_life_speech_s, lag_s=lag)


@dataclass
class StepResult:
    features: HopFeatures
    events: list[PolicyEvent]


class Pipeline:
    """One stream: source rate and channel count fixed at construction."""

    def __init__(self, settings: Settings, *, source_rate: int, source_channels: int,
                 usual: UsualVoice | None = None, caller_measures: bool = False):
        """``caller_measures``: also measure the caller's speaking rate, alpha ratio and
        pitch spread (the features CSV shows them; no cue reads them)."""
        self.settings = settings
        self.order = channel_order(settings.audio, source_channels)
        # the analysed channels as a slice where they are in source order (a view, not a copy)
        lo, hi = self.order[0], self.order[-1] + 1
        self._pick: slice | list[int] = (slice(lo, hi) if self.order == list(range(lo, hi))
                                         else self.order)
        self.n_channels = len(self.order)
        self.channel_names = CHANNEL_NAMES[: self.n_channels]
        # Converting, the resampler works in float32: the capture is 16-bit (float32's
        # rounding, ~-140 dB, is far below it), and its filter runs faster than in float64.
        self._dtype = np.float64 if source_rate == RATE else np.float32
        self.resampler = StreamResampler(rate_in=source_rate, rate_out=RATE,
                                         n_channels=self.n_channels, dtype=self._dtype)
        va = settings.voice_activity
        self.analyzer = StreamAnalyzer(AnalyzerParams(
            n_channels=self.n_channels,
            voice_activity=VoiceActivityParams(floor_dbfs=va.floor_dbfs, margin_db=va.margin_db,
                                               quiet_margin_db=va.quiet_margin_db),
            laughter_threshold=settings.cues.laughter.threshold,
            laughter_pitch_st=settings.cues.laughter.pitch_st,
            caller_measures=caller_measures,
        ))
        self.usual = usual if usual is not None else make_usual_voice(settings)
        self.policy = CuePolicy(settings, self.usual)
        self.samples_in = 0
        """Source frames so far, heard or lost."""
        self.lost_frames = 0
        """Source frames lost so far (`lost`)."""
        self.source_rate = source_rate
        self.source_channels = source_channels

    @property
    def stream_s(self) -> float:
        """Stream time so far, seconds: what was heard and what was lost."""
        return self.samples_in / self.source_rate

    @property
    def lost_s(self) -> float:
        """Audio lost so far, seconds."""
        return self.lost_frames / self.source_rate

    def lost(self, seconds: float) -> list[PolicyEvent]:
        """``seconds`` of audio were lost (blocks dropped) between the last block and the
        next: stream time moves on by them, and nothing on either side is joined.

        The resampler and the analyzer start over (`StreamAnalyzer.restart`; no analysis is
        run in place of the loss), the next hop on the policy's 50 ms grid at or after the
        stream time the audio resumes, and the policy is told (`CuePolicy.lost`): no cue's
        evidence, laughter train or learning spans the loss. Returns the events it caused
        (a build-up held back ending, a cue or a call found ended, laughter judged)."""
        frames = int(round(seconds * self.source_rate))
        if frames <= 0:
            return []
        self.samples_in += frames
        self.lost_frames += frames
        # the first hop after the loss: where the audio resumes, on the chunk grid
        hop = max(-(-(self.samples_in * RATE) // (self.source_rate * HOP)),
                  self.analyzer.next_hop)
        hop = -(-hop // CHUNK_HOPS) * CHUNK_HOPS
        self.resampler.reset()
        self.analyzer.restart(hop)
        return self.policy.lost(hop, self.analyzer.take_bursts())

    def process(self, block: np.ndarray) -> StepResult:
        """Feed a source block (frames, source_channels) in [-1, 1)."""
        self.samples_in += block.shape[0]
        x = np.ascontiguousarray(block[:, self._pick].T, dtype=self._dtype)
        feats = self.analyzer.process(self.resampler.process(x))
        return StepResult(feats, self.policy.process(feats, self.analyzer.take_bursts()))

    def finish(self) -> StepResult:
        """Flush the analyzer and end any active cue (end of file or shutdown)."""
        feats = self.analyzer.flush()
        events = self.policy.process(feats, self.analyzer.take_bursts()) + self.policy.finish()
        return StepResult(feats, events)
