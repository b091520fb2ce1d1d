"""firmware/contract: one typed model per payload, built by producers, parsed by consumers."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest

from firmware.cli.analyze import analyze_blocks
from firmware.config.settings import Settings
from firmware.contract.base import Payload
from firmware.contract.commands import ALL_ARG_MODELS, RESULT_DATA, CommandResult
from firmware.contract.desk import ApplianceStatus, Info, SelftestPing, Telemetry
from firmware.contract.events import EVENT_DATA, EventEnvelope
from firmware.contract.examples import EVENT_EXAMPLES, event_example
from firmware.demo.recording import build_call, demo_script
from firmware.link.envelope import EventStamper
from firmware.report.plot import cue_spans


def all_models() -> set[type[pydantic.BaseModel]]:
    """Every model reachable from the published and accepted payloads."""
    todo: list[Any] = [EventEnvelope, Info, Telemetry, ApplianceStatus, CommandResult, SelftestPing,
                       *EVENT_DATA.values(), *RESULT_DATA.values(), *ALL_ARG_MODELS.values()]
    seen: set[type[pydantic.BaseModel]] = set()
    while todo:
        t = todo.pop()
        if isinstance(t, type) and issubclass(t, pydantic.BaseModel):
            if t in seen:
                continue
            seen.add(t)
            for f in t.model_fields.values():
                todo.append(f.annotation)
        for arg in getattr(t, "__args__", ()) or ():
            todo.append(arg)
    return seen


def test_every_field_has_a_description_and_models_are_frozen_and_closed() -> None:
    models = all_models()
    assert len(models) > 25
    for m in models:
        assert m.model_config.get("frozen") and m.model_config.get("extra") == "forbid", m
        assert m.__doc__, m
        for name, f in m.model_fields.items():
            assert f.description, f"{m.__name__}.{name} has no description"


def test_a_payload_cannot_be_changed_or_grow() -> None:
    data = EVENT_EXAMPLES["raised_voice.started"]
    with pytest.raises(pydantic.ValidationError):
        data.db_above_usual = 1.0  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        type(data).model_validate({**data.to_json(), "semitones_above_usual": 1.0})


@pytest.fixture(scope="module")
def demo_events() -> list[EventEnvelope]:
    """What the appliance publishes for the demo call (raised voice, laughter, the call)."""
    rec = build_call(demo_script(raised=True, laugh=True))
    stamper = EventStamper(boot_id="d" * 32, wall_clock=lambda: 1_767_225_600.0)
    out = []
    for _, _, events in analyze_blocks(Settings(), rec.samples, rec.rate):
        out += [stamper.stamp(e.type, e.data, stream_s=e.stream_s) for e in events if e.publish]
    return out


def test_published_json_round_trips_through_the_contract(demo_events) -> None:
    assert {"raised_voice.started", "raised_voice.ended", "laughter_burst",
            "call.ended"} <= {e.type for e in demo_events}
    for env in demo_events:
        raw = json.dumps(env.to_json(), separators=(",", ":"))
        assert EventEnvelope.model_validate_json(raw) == env
        assert json.dumps(EventEnvelope.model_validate_json(raw).to_json(),
                          separators=(",", ":")) == raw


def test_published_json_keeps_the_key_order_consumers_saw_before(demo_events) -> None:
    """Producers build models now; the JSON keeps the order the dicts had."""
    started = next(e for e in demo_events if e.type == "raised_voice.started").to_json()
    assert list(started) == ["schema", "id", "boot_id", "seq", "ts", "ts_iso", "clock_synced",
                             "stream_s", "type", "data"]
    assert list(started["data"]) == ["onset_s", "at_s", "duration_s", "db_above_usual",
                                     "loudness_lufs", "cue", "usual_lufs", "summary"]
    ended = next(e for e in demo_events if e.type == "call.ended").to_json()["data"]
    assert ended["max_pitch_above_usual_st"] is None or "max_pitch_above_usual_st" in ended


def test_plot_bands_run_from_onset_to_end() -> None:
    """The plot once read start_s (which no event has): a 1.2 s laugh at 43.4 s became a band
    from 0 s to 44.6 s."""
    laugh = event_example("laughter_burst")
    raised = event_example("raised_voice.ended")
    spans = cue_spans([event_example("raised_voice.started"), raised, laugh])
    assert spans == [("raised_voice", raised.data.onset_s, raised.data.end_s),
                     ("laughter", 43.4, 44.6)]


def test_plot_bands_of_a_real_call_last_as_long_as_the_cues(demo_events) -> None:
    spans = cue_spans(demo_events)
    ends = [e.data for e in demo_events if e.type != "call.ended"
            and (e.type.endswith(".ended") or e.type == "laughter_burst")]
    assert len(spans) == len(ends) >= 2
    for (_, a, b), d in zip(spans, ends, strict=True):
        assert (a, b) == (d.onset_s, d.end_s)  # type: ignore[union-attr]
        assert b - a == pytest.approx(d.duration_s, abs=0.002)  # type: ignore[union-attr]


def test_an_event_off_the_contract_fails_where_it_is_made() -> None:
    stamper = EventStamper(boot_id="e" * 32)
    with pytest.raises(pydantic.ValidationError):
        stamper.stamp("raised_voice.started", {"onset_s": 1.0}, stream_s=1.0)
    with pytest.raises(pydantic.ValidationError):  # the data of another type
        stamper.stamp("raised_voice.ended", EVENT_EXAMPLES["raised_voice.started"], stream_s=1.0)
    assert stamper.seq == 0, "a refused event leaves no gap in seq"


def test_examples_are_payloads() -> None:
    assert all(isinstance(m, Payload) for m in EVENT_EXAMPLES.values())


@pytest.mark.parametrize("now", [1_796_419_257.6139, 1_796_419_265.6109, 1_796_419_259.9996,
                                 1_796_419_200.0, 1_796_419_200.0004])
def test_ts_iso_is_ts_in_words(now: float) -> None:
    """`ts_iso` is `ts` written as UTC ISO 8601: a consumer reading either gets the same
    millisecond (rounding one and cutting the other disagreed in about half the events)."""
    import datetime

    env = EventStamper(boot_id="f" * 32, wall_clock=lambda: now).stamp(
        "recalibrate", {"warmup_speech_s": 20.0}, stream_s=1.0)
    iso = datetime.datetime.strptime(env.ts_iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.UTC)
    assert round(iso.timestamp(), 3) == env.ts
    assert env.ts == pytest.approx(now, abs=0.0005)
