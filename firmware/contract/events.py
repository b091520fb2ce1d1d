"""Events: the envelope every event shares and the ``data`` of each event type.

Time fields ending in ``_s`` are *stream seconds*: seconds of audio since the appliance's
stream started (the Pi may have no real-time clock; the envelope's ``ts`` is wall time).
Every cue is a measurement against the speaker's own usual voice, never a feeling.

Adding an event type: a data model here, an entry in `EVENT_DATA` and in `EventType`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import (
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from firmware.contract.base import Absent, Payload

# -- shared field types (one description each) ---------------------------------------------------

OnsetS = Annotated[float, Field(description="Stream time the evidence began, s.")]
AtS = Annotated[float, Field(description="Stream time the cue fired, s.")]
EndS = Annotated[float, Field(description="Stream time the evidence last held, s.")]
SoFarS = Annotated[float, Field(ge=0, description="Evidence so far (at_s - onset_s), s.")]
WholeS = Annotated[float, Field(ge=0, description="The whole passage (end_s - onset_s), s.")]
DbAbove = Annotated[float, Field(description="Mean momentary loudness above the usual level "
                                             "over the evidence, dB.")]
PeakDbAbove = Annotated[float, Field(description="Largest loudness above the usual level, dB.")]
LoudLufs = Annotated[float, Field(description="Mean momentary loudness over the evidence, LUFS.")]
PeakLufs = Annotated[float, Field(description="Largest momentary loudness, LUFS.")]
StAbove = Annotated[float, Field(description="Mean pitch above the usual pitch over the evidence, "
                                             "semitones (0 where pitch was not measured).")]
PeakStAbove = Annotated[float, Field(description="Largest pitch above the usual pitch, "
                                                 "semitones.")]
Summary = Annotated[str, Field(description="The measurement in plain words, e.g. "
                                           "\"+9.0 dB above your usual for 1.2 s\".")]
UsualLufs = Annotated[float | Absent, Field(
    description="The speaker's usual loudness, LUFS; left out when not known (e.g. the usual "
                "voice was forgotten by recalibrate while the cue was active).")]


# -- cues -----------------------------------------------------------------------------------------


class RaisedVoiceStarted(Payload):
    """``raised_voice.started``: the agent's voiced loudness held above their usual level."""

    onset_s: OnsetS
    at_s: AtS
    duration_s: SoFarS
    db_above_usual: DbAbove
    loudness_lufs: LoudLufs
    cue: Literal["raised_voice"] = Field(description="The cue: raised voice.")
    usual_lufs: UsualLufs = None
    summary: Summary


class RaisedVoiceEnded(Payload):
    """``raised_voice.ended``: the voice came back down; means and peaks over the passage."""

    onset_s: OnsetS
    at_s: AtS
    end_s: EndS
    duration_s: WholeS
    db_above_usual: DbAbove
    peak_db_above_usual: PeakDbAbove
    loudness_lufs: LoudLufs
    peak_loudness_lufs: PeakLufs
    cue: Literal["raised_voice"] = Field(description="The cue: raised voice.")
    usual_lufs: UsualLufs = None
    summary: Summary


AlphaAbove = Annotated[float, Field(description="Mean alpha ratio (spectral tilt, a vocal-effort "
                                                "measure) above usual, dB (0 if unknown).")]
PeakAlphaAbove = Annotated[float, Field(description="Largest alpha ratio above usual, dB.")]
RateSps = Annotated[float, Field(ge=0, description="Mean speaking rate, syllable-like nuclei "
                                                   "per second (0 if unknown).")]
PeakRateSps = Annotated[float, Field(ge=0, description="Highest speaking rate, syllable-like "
                                                       "nuclei per second.")]


class TenseVoiceStarted(Payload):
    """``tense_voice.started`` ("calm the tone"): pitch held above the agent's usual pitch with
    raised effort (loudness or alpha ratio) or a speaking rate well above usual."""

    onset_s: OnsetS
    at_s: AtS
    duration_s: SoFarS
    st_above_usual: StAbove
    db_above_usual: DbAbove
    alpha_above_usual_db: AlphaAbove
    rate_sps: RateSps
    cue: Literal["tense_voice"] = Field(description="The cue: tense voice.")
    usual_lufs: UsualLufs = None
    summary: Summary


class TenseVoiceEnded(Payload):
    """``tense_voice.ended``: pitch back near usual; means and peaks over the passage."""

    onset_s: OnsetS
    at_s: AtS
    end_s: EndS
    duration_s: WholeS
    st_above_usual: StAbove
    peak_st_above_usual: PeakStAbove
    db_above_usual: DbAbove
    peak_db_above_usual: PeakDbAbove
    alpha_above_usual_db: AlphaAbove
    peak_alpha_above_usual_db: PeakAlphaAbove
    rate_sps: RateSps
    peak_rate_sps: PeakRateSps
    cue: Literal["tense_voice"] = Field(description="The cue: tense voice.")
    usual_lufs: UsualLufs = None
    summary: Summary


CallerDb = Annotated[float, Field(description="Mean loudness above the caller's start-of-call "
                                              "level, dB.")]
CallerSt = Annotated[float, Field(description="Mean pitch above the caller's start-of-call "
                                              "pitch, semitones (0 if unknown).")]
CallerUsual = Annotated[float | Absent, Field(
    description="The caller's start-of-call level, LUFS; left out when the call ended the cue.")]
CallerChannel = Annotated[Literal["caller"], Field(description="Whose voice: the caller's.")]


class CallerStarted(Payload):
    """``caller.started`` ("stay steady"): the caller louder than at the start of the call, or
    higher in pitch and somewhat louder."""

    onset_s: OnsetS
    at_s: AtS
    duration_s: SoFarS
    db_above_usual: CallerDb
    loudness_lufs: LoudLufs
    st_above_usual: CallerSt
    cue: Literal["caller"] = Field(description="The cue: caller escalation.")
    usual_lufs: CallerUsual = None
    channel: CallerChannel
    summary: Summary


class CallerEnded(Payload):
    """``caller.ended``: the caller back near their start-of-call level."""

    onset_s: OnsetS
    at_s: AtS
    end_s: EndS
    duration_s: WholeS
    db_above_usual: CallerDb
    peak_db_above_usual: Annotated[float, Field(
        description="Largest loudness above the caller's start-of-call level, dB.")]
    loudness_lufs: LoudLufs
    peak_loudness_lufs: PeakLufs
    st_above_usual: CallerSt
    peak_st_above_usual: Annotated[float, Field(
        description="Largest pitch above the caller's start-of-call pitch, semitones.")]
    cue: Literal["caller"] = Field(description="The cue: caller escalation.")
    usual_lufs: CallerUsual = None
    channel: CallerChannel
    summary: Summary


class LaughterBurst(Payload):
    """``laughter_burst``: laughter-like bursts in the agent's voice that cued the agent, sent
    when the train of bursts ends (only if ``mqtt.publish_laughter``)."""

    cue: Literal["laughter"] = Field(description="The cue: laughter-like bursts.")
    onset_s: Annotated[float, Field(description="Stream time the first burst began, s.")]
    at_s: Annotated[float, Field(description="Stream time the bursts were judged "
                                             "laughter-like (the cue), s.")]
    end_s: Annotated[float, Field(description="Stream time the last burst ended, s.")]
    duration_s: Annotated[float, Field(ge=0, description="From the first burst's onset to the "
                                                         "end (end_s - onset_s), s.")]
    burst_count: Annotated[int, Field(ge=0, description="Short energy bursts (\"ha\"s), count.")]
    rhythm_hz: Annotated[float, Field(ge=0, description="Bursts per second, Hz.")]
    score: Annotated[float, Field(ge=0, le=1, description="Laughter-likeness, 0-1.")]
    summary: Summary


# -- calls ----------------------------------------------------------------------------------------

CallNumber = Annotated[int, Field(ge=1, description="Call number since the appliance started.")]
CallStartS = Annotated[float, Field(description="Stream time of the first voiced hop on either "
                                                "channel, s.")]


class CallStarted(Payload):
    """``call.started``: voice on either channel after a silence."""

    call: CallNumber
    start_s: CallStartS


class CallEnded(Payload):
    """``call.ended``: the per-call summary, sent once both channels have been silent for
    ``calls.silence_gap_s``. Talk is voiced time per channel; shares are of the duration."""

    call: CallNumber
    start_s: CallStartS
    end_s: Annotated[float, Field(description="Stream time of the last voiced hop, s.")]
    duration_s: Annotated[float, Field(ge=0, description="end_s - start_s, s.")]
    agent_talk_s: Annotated[float, Field(ge=0, description="Agent's voiced time, s.")]
    caller_talk_s: Annotated[float, Field(ge=0, description="Caller's voiced time, s.")]
    agent_talk_share: Annotated[float, Field(ge=0, le=1, description="agent_talk_s / "
                                                                     "duration_s, 0-1.")]
    caller_talk_share: Annotated[float, Field(ge=0, le=1, description="caller_talk_s / "
                                                                      "duration_s, 0-1.")]
    overlap_s: Annotated[float, Field(ge=0, description="Both talking at once, s.")]
    cues: Annotated[dict[str, Annotated[int, Field(ge=0)]], Field(
        description="Cues that started during the call: cue name -> count.")]
    max_level_above_usual_db: Annotated[float | None, Field(
        description="Largest agent loudness above usual, dB; null if not known.")]
    max_pitch_above_usual_st: Annotated[float | None, Field(
        description="Largest agent pitch above usual, semitones; null if not known.")]
    short: Annotated[bool, Field(description="Shorter than calls.min_call_s.")]
    lost_s: Annotated[float, Field(
        ge=0, description="Audio lost during the call (blocks dropped: the desk fell "
                          "behind), s; inside duration_s, and in no talk time.")] = 0.0


# -- the desk -------------------------------------------------------------------------------------


class Snooze(Payload):
    """``snooze``: the agent's cues silenced (or a snooze cancelled: ``minutes`` 0).

    Published for a snooze sent over MQTT cmd/snooze; one from the desk button or `deskcue
    snooze` (the agent's own) only when ``mqtt.publish_snooze`` is on."""

    minutes: Annotated[float, Field(ge=0, description="Snooze length, minutes (0 = cancelled).")]
    until_s: Annotated[float, Field(description="Stream time the snooze ends, s.")]
    source: Annotated[Literal["button", "cli", "mqtt", "local"], Field(
        description="Who snoozed: the desk button, `deskcue snooze`, MQTT cmd/snooze, or "
                    "another local caller.")]


class Recalibrate(Payload):
    """``recalibrate``: the usual voice forgotten; learned again from the next speech."""

    warmup_speech_s: Annotated[float, Field(ge=0, description="Speech needed before cues fire "
                                                              "again, s.")]


class UsualVoiceLearned(Payload):
    """``usual_voice_learned``: enough speech heard; cues can fire from now on."""

    usual_lufs: Annotated[float, Field(description="Median momentary loudness of usual speech, "
                                                   "LUFS.")]
    spread_db: Annotated[float, Field(ge=0, description="Half the inter-quartile range of the "
                                                        "usual loudness, dB.")]
    speech_s: Annotated[float, Field(ge=0, description=(
        "Speech learned into the usual voice, s. The warm-up (baseline.warmup_speech_s) "
        "counts speech heard: this plus the learning lag, speech heard but not learned yet "
        "(twice the longest hold plus gap of the raised- and tense-voice cues, at most half "
        "the warm-up: 5.2 s by default, so a warm-up of 20 s ends with 14.8-15.3 s learned)."))]
    usual_f0_hz: Annotated[float | Absent, Field(
        description="Median pitch of usual speech, Hz; left out if no pitch was heard.")] = None
    usual_rate_sps: Annotated[float | Absent, Field(
        description="Median speaking rate, syllable-like nuclei per second; left out if not "
                    "known.")] = None


class Fault(Payload):
    """``fault``: a part of the desk stopped working (``active`` true) or recovered (false)."""

    kind: Annotated[Literal["audio", "config", "mqtt", "identity", "storage"], Field(
        description="Which part (the capture, the config, the link to the broker, the desk's "
                    "identity: another device uses its site/desk id or client id, the state "
                    "directory holding the outbox of events); each kind is raised and cleared "
                    "on its own. A storage fault leaves cueing and publishing going: events are "
                    "kept in memory while the card cannot be written, and unreadable ones are "
                    "set aside for a tech.")]
    fault: Annotated[str, Field(description="What is wrong, in words.")]
    active: Annotated[bool, Field(description="True when it starts, false when it clears.")]


class DroppedRange(Payload):
    """Dropped events of one boot id: a run of sequence numbers."""

    boot_id: Annotated[str, Field(description="The boot id of the dropped events.")]
    first_seq: Annotated[int, Field(ge=1, description="First dropped sequence number.")]
    last_seq: Annotated[int, Field(ge=1, description="Last dropped sequence number.")]
    count: Annotated[int, Field(ge=1, description="Events dropped in this range, count.")]


Count = Annotated[int, Field(ge=1)]


class DropReasons(Payload):
    """How many events each outbox bound dropped."""

    max_events: Annotated[Count | Absent, Field(
        description="Outbox full (mqtt.outbox_max_events), count.")] = None
    max_age: Annotated[Count | Absent, Field(
        description="Older than mqtt.outbox_max_age_h, count.")] = None
    storage_error: Annotated[Count | Absent, Field(
        description="Could not be stored, count.")] = None


class OutboxDropped(Payload):
    """``outbox_dropped``: events the bounded outbox had to drop; they will never arrive."""

    count: Annotated[int, Field(ge=1, description="Events dropped since the last report, count.")]
    reasons: Annotated[DropReasons, Field(description="The same count split by why.")]
    total: Annotated[int, Field(ge=0, description="Events dropped since the outbox was made, "
                                                  "count.")]
    ranges: Annotated[list[DroppedRange], Field(description="Which events, per boot id.")]


class CueSuppressed(Payload):
    """``<cue>.suppressed``: a passage that would have been cued was held back;
    ``<cue>.suppressed_ended``: its evidence stopped (then with ``end_s``). Never published
    (the agent was not cued); for the desk's own record and a reviewer's report."""

    cue: Annotated[Literal["raised_voice", "tense_voice", "caller"], Field(
        description="The cue that was held back.")]
    onset_s: Annotated[float, Field(description="Stream time the passage began, s.")]
    at_s: Annotated[float, Field(description="Stream time the cue was due, s.")]
    reason: Annotated[Literal["snoozed", "cooldown", "hourly cap"], Field(
        description="What held it back.")]
    end_s: Annotated[float | Absent, Field(
        description="Stream time its evidence stopped, s (``suppressed_ended`` only).")] = None
    duration_s: Annotated[float | Absent, Field(
        description="From onset to end, s (``suppressed_ended`` only).")] = None


EVENT_DATA: dict[str, type[Payload]] = {
    "raised_voice.started": RaisedVoiceStarted,
    "raised_voice.ended": RaisedVoiceEnded,
    "tense_voice.started": TenseVoiceStarted,
    "tense_voice.ended": TenseVoiceEnded,
    "caller.started": CallerStarted,
    "caller.ended": CallerEnded,
    "laughter_burst": LaughterBurst,
    "call.started": CallStarted,
    "call.ended": CallEnded,
    "snooze": Snooze,
    "recalibrate": Recalibrate,
    "usual_voice_learned": UsualVoiceLearned,
    "fault": Fault,
    "outbox_dropped": OutboxDropped,
}
"""Event type -> the model of its ``data``: the one list of published event types."""

EventType = Literal[
    "raised_voice.started", "raised_voice.ended", "tense_voice.started", "tense_voice.ended",
    "caller.started", "caller.ended", "laughter_burst", "call.started", "call.ended", "snooze",
    "recalibrate", "usual_voice_learned", "fault", "outbox_dropped",
]

EventData = (RaisedVoiceStarted | RaisedVoiceEnded | TenseVoiceStarted | TenseVoiceEnded
             | CallerStarted | CallerEnded | LaughterBurst | CallStarted | CallEnded | Snooze
             | Recalibrate | UsualVoiceLearned | Fault | OutboxDropped)

CueData = (RaisedVoiceStarted | RaisedVoiceEnded | TenseVoiceStarted | TenseVoiceEnded
           | CallerStarted | CallerEnded | LaughterBurst)
"""The data of every cue event (they all have ``cue``, ``onset_s``, ``at_s`` and ``summary``)."""


if get_args(EventData) != tuple(EVENT_DATA.values()):  # the schema pairs them by position
    raise TypeError("EventData must list the models of EVENT_DATA, in the same order")


def data_for_type(event_type: str, value: Any) -> Payload:
    """``value`` (a model or parsed JSON) as the data model of ``event_type``."""
    model = EVENT_DATA.get(event_type)
    if model is None:
        raise ValueError(f"unknown event type {event_type!r}")
    if isinstance(value, Payload):
        if type(value) is not model:
            raise ValueError(f"{type(value).__name__} is not the data of a {event_type} event")
        return value
    return model.model_validate(value)


def _event_schema(schema: dict[str, Any], _cls: Any = None) -> None:
    """JSON Schema: ``data`` must match the model of the envelope's ``type`` (if/then)."""
    data = schema["properties"]["data"]
    refs = [r["$ref"] for r in data.pop("anyOf")]
    data["type"] = "object"
    schema["allOf"] = [
        {"if": {"properties": {"type": {"const": t}}},
         "then": {"properties": {"data": {"$ref": ref}}}}
        for t, ref in zip(EVENT_DATA, refs, strict=True)  # EventData lists them in this order
    ]


class EventEnvelope(Payload):
    """One event as published on ``events``: a unique id, the boot id and sequence number, the
    time, and the event's ``type`` and ``data`` (whose model `EVENT_DATA` names).

    Consumers drop duplicates by ``id`` and spot gaps by (``boot_id``, ``seq``).
    """

    model_config = ConfigDict(json_schema_extra=_event_schema)

    schema_version: Literal[1] = Field(alias="schema", description="Envelope schema version.")
    id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$",
                             description="Unique event id (hex); drop duplicates by it.")]
    boot_id: Annotated[str, Field(min_length=1, description="One per run of the appliance.")]
    seq: Annotated[int, Field(ge=1, description="1, 2, 3 ... within a boot id; a gap is a "
                                                "missing event.")]
    ts: Annotated[float, Field(description="Unix time the event was stamped, s (see "
                                           "clock_synced).")]
    ts_iso: Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$",
                                 description="ts as UTC ISO 8601 with milliseconds.")]
    clock_synced: Annotated[bool, Field(description="False while the Pi's clock is not synced "
                                                    "(ts may then be wrong).")]
    stream_s: Annotated[float, Field(description="Stream time of the event, s.")]
    type: Annotated[EventType, Field(description="What happened; selects the model of data.")]
    data: Annotated[EventData, Field(description="The event's measurements; the model depends "
                                                 "on type.")]
    replayed: Annotated[Literal[True] | Absent, Field(
        description="Present (true) when the event did not go out live: stored while the "
                    "broker was away, or by an earlier run.")] = None

    @field_validator("data", mode="wrap")
    @classmethod
    def _data_matches_type(cls, value: Any, _handler: ValidatorFunctionWrapHandler,
                           info: ValidationInfo) -> Payload:
        return data_for_type(info.data.get("type", "?"), value)
