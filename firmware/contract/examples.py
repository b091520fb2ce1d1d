"""One example of every payload, built from the models (so an example cannot drift from them).

The AsyncAPI document shows these; tests check that each validates and round-trips.
"""

from __future__ import annotations

from firmware.contract.base import Payload
from firmware.contract.commands import (
    CommandError,
    CommandResult,
    ConfigCommandArgs,
    ConfigProblemItem,
    ConfigResult,
    IdentifyArgs,
    IdentifyResult,
    RecalibrateArgs,
    SnoozeArgs,
    StatusArgs,
)
from firmware.contract.desk import (
    ApplianceStatus,
    ChannelMap,
    CommandCounts,
    ConfigApply,
    DeskStatus,
    Info,
    OutboxDepth,
    SelftestPing,
    Telemetry,
)
from firmware.contract.events import (
    CallEnded,
    CallerEnded,
    CallerStarted,
    CallStarted,
    DroppedRange,
    DropReasons,
    EventEnvelope,
    Fault,
    LaughterBurst,
    OutboxDropped,
    RaisedVoiceEnded,
    RaisedVoiceStarted,
    Recalibrate,
    Snooze,
    TenseVoiceEnded,
    TenseVoiceStarted,
    UsualVoiceLearned,
)
from firmware.contract.states import CueState

BOOT_ID = "83d8c2f0a1b94e6f9d2c7b5a4e3f2a10"
TS = 1_795_393_805.117

EVENT_EXAMPLES: dict[str, Payload] = {
    "raised_voice.started": RaisedVoiceStarted(
        onset_s=55.78, at_s=56.78, duration_s=1.0, db_above_usual=11.17, loudness_lufs=-14.73,
        cue="raised_voice", usual_lufs=-25.9, summary="+11.2 dB above your usual for 1.0 s"),
    "raised_voice.ended": RaisedVoiceEnded(
        onset_s=55.78, at_s=56.78, end_s=61.9, duration_s=6.12, db_above_usual=10.4,
        peak_db_above_usual=13.1, loudness_lufs=-15.5, peak_loudness_lufs=-12.8,
        cue="raised_voice", usual_lufs=-25.9,
        summary="voice back near your usual after 6.1 s (peak +13.1 dB)"),
    "tense_voice.started": TenseVoiceStarted(
        onset_s=38.6, at_s=40.6, duration_s=2.0, st_above_usual=4.2, db_above_usual=6.0,
        alpha_above_usual_db=1.2, rate_sps=5.1, cue="tense_voice", usual_lufs=-26.0,
        summary="+4.2 semitones, +6 dB, 5.1 syllables/s for 2.0 s"),
    "tense_voice.ended": TenseVoiceEnded(
        onset_s=38.6, at_s=40.6, end_s=45.6, duration_s=7.0, st_above_usual=4.4,
        peak_st_above_usual=5.9, db_above_usual=5.0, peak_db_above_usual=7.0,
        alpha_above_usual_db=1.0, peak_alpha_above_usual_db=3.0, rate_sps=4.7,
        peak_rate_sps=5.2, cue="tense_voice", usual_lufs=-26.0,
        summary="pitch back near your usual after 7.0 s (peak +5.9 semitones)"),
    "caller.started": CallerStarted(
        onset_s=12.0, at_s=14.0, duration_s=2.0, db_above_usual=7.5, loudness_lufs=-27.5,
        st_above_usual=1.2, cue="caller", usual_lufs=-35.0, channel="caller",
        summary="caller +7.5 dB above the caller's start-of-call level for 2.0 s: stay steady"),
    "caller.ended": CallerEnded(
        onset_s=12.0, at_s=14.0, end_s=19.0, duration_s=7.0, db_above_usual=7.1,
        peak_db_above_usual=9.8, loudness_lufs=-27.9, peak_loudness_lufs=-25.2,
        st_above_usual=1.0, peak_st_above_usual=2.5, cue="caller", usual_lufs=-35.0,
        channel="caller", summary="caller back near their start-of-call level after 7.0 s"),
    "laughter_burst": LaughterBurst(
        cue="laughter", onset_s=43.4, at_s=43.9, end_s=44.6, duration_s=1.2, burst_count=6,
        rhythm_hz=5.0, score=0.91, summary="laughter-like bursts: 6 at 5.0/s for 1.2 s"),
    "call.started": CallStarted(call=3, start_s=100.0),
    "call.ended": CallEnded(
        call=3, start_s=100.0, end_s=410.0, duration_s=310.0, agent_talk_s=130.2,
        caller_talk_s=158.1, agent_talk_share=0.42, caller_talk_share=0.51, overlap_s=7.5,
        cues={"raised_voice": 1}, max_level_above_usual_db=11.0, max_pitch_above_usual_st=None,
        short=False),
    "snooze": Snooze(minutes=15.0, until_s=960.0, source="mqtt"),
    "recalibrate": Recalibrate(warmup_speech_s=20.0),
    "usual_voice_learned": UsualVoiceLearned(usual_lufs=-27.0, spread_db=3.1, speech_s=15.1,
                                             usual_f0_hz=118.5, usual_rate_sps=4.1),
    "fault": Fault(kind="audio", fault="audio: nothing from tap for 3 s", active=True),
    "outbox_dropped": OutboxDropped(
        count=2, reasons=DropReasons(max_events=2), total=2,
        ranges=[DroppedRange(boot_id=BOOT_ID, first_seq=1, last_seq=2, count=2)]),
}


def event_example(event_type: str, seq: int = 2) -> EventEnvelope:
    """The example envelope of ``event_type``."""
    return EventEnvelope(
        schema_version=1, id=f"{seq:032x}", boot_id=BOOT_ID, seq=seq, ts=TS,
        ts_iso="2026-11-23T00:30:05.117Z", clock_synced=True, stream_s=56.78,
        type=event_type,  # type: ignore[arg-type]  # one of EVENT_EXAMPLES' keys
        data=EVENT_EXAMPLES[event_type])  # type: ignore[arg-type]


STATUS = ApplianceStatus(
    display="ready", fault=None, stream_s=312.4, usual_lufs=-25.9, learned_speech_s=96.3,
    cues={"raised_voice": 1}, input_overflows=0,
    level_lufs={"agent": -24.1, "caller": -31.0}, uptime_s=330.2, soc_temp_c=48.2,
    commands=CommandCounts(checked=12, refused=1, ignored=0, rate_limited=0, dropped=0))

EXAMPLES: dict[str, Payload | DeskStatus | CueState] = {
    "status": DeskStatus("online"),
    "state": CueState("ON"),
    "info": Info(
        firmware="0.1.1.dev680+g1a2b3c4d5", config_hash="3f2a9c1b", boot_id=BOOT_ID,
        audio_device="USB Audio",
        channel_map=ChannelMap(agent="left", caller="right"),
        config_apply=ConfigApply(hash="3f2a9c1b", sha256="ab" * 32, source="card",
                                 at="2026-11-22T08:55:00Z", clock_synced=True,
                                 boot_id="5b0d9f0e-7d4c-4a7e-9b9e-0c1d2e3f4a5b",
                                 file="deskcue.toml")),
    "telemetry": Telemetry(
        level_lufs={"agent": -24.1, "caller": -31.0}, cues={"raised_voice": 1},
        input_overflows=0, cpu_load=0.021, soc_temp_c=48.2, uptime_s=330.2, display="ready",
        stream_s=312.4, ts=TS, outbox=OutboxDepth(depth=0, dropped=0)),
    "selftest": SelftestPing(nonce="9c41d7b3c85f0c2a9e41d7b3c85f0c2a", ts=TS),
    "snooze": SnoozeArgs(txid="a1", ts=TS, minutes=10),
    "identify": IdentifyArgs(seconds=15),  # no txid: the desk makes one
    "recalibrate": RecalibrateArgs(txid="r1"),
    "status_command": StatusArgs(txid="q1"),
    "config": ConfigCommandArgs(txid="c1", issued=1_795_393_000, config="[device]\nsite = "
                                "\"site1\"\ndesk = \"desk1\"\n", signature="MEUCIQ...",
                                key_id="floor-2"),
}

RESULT_EXAMPLES: dict[str, CommandResult] = {
    "snooze": CommandResult(txid="a1", cmd="snooze", ok=True, ts=TS + 0.2,
                            data=Snooze(minutes=10.0, until_s=912.4, source="mqtt")),
    "identify": CommandResult(txid="desk:5f0c2a9e41d7b3c8", cmd="identify", ok=True,
                              ts=TS + 0.2,
                              data=IdentifyResult(seconds=15.0)),
    "recalibrate": CommandResult(txid="r1", cmd="recalibrate", ok=True, ts=TS + 0.2,
                                 data=Recalibrate(warmup_speech_s=20.0)),
    "status": CommandResult(txid="q1", cmd="status", ok=True, ts=TS + 0.2, data=STATUS),
    "config": CommandResult(
        txid="c1", cmd="config", ok=False, ts=TS + 0.2,
        data=ConfigResult(problems=[ConfigProblemItem(
            key="cues.raised_voice.threshold_db", line=12,
            message="Input should be greater than or equal to 3")]),
        error=CommandError(code="invalid", message="1 problem(s) in the config")),
    "rejected": CommandResult(txid="x1", cmd="reboot", ok=False, ts=TS + 0.2,
                              error=CommandError(code="unknown_command", message="allowed "
                                                 "commands: identify, recalibrate, snooze, "
                                                 "status")),
}
