"""Every event type the policy really produces validates against docs/asyncapi.yaml."""

from __future__ import annotations

from asyncapi_check import validate
from test_calls import run as run_calls

from firmware.cli.analyze import analyze_blocks
from firmware.config.settings import Settings
from firmware.demo.recording import build_call, demo_script, tense_script
from firmware.link.envelope import EventStamper


def stamped(events) -> list[dict]:
    st = EventStamper()
    return [st.stamp(e.type, e.data, stream_s=e.stream_s).to_json() for e in events if e.publish]


def analyzed(lines) -> list:
    rec = build_call(lines)
    out = []
    for _, _, ev in analyze_blocks(Settings(), rec.samples, rec.rate):
        out += ev
    return out


def test_real_events_of_every_kind_match_the_api_document():
    events = analyzed(demo_script(raised=True, laugh=True)) + analyzed(tense_script(tense=True))
    policy, caller = run_calls([(12.0, None, -35.0), (4.0, None, -24.0), (30.0, None, None)])
    # a supervisor's snooze is published; the agent's own only with mqtt.publish_snooze
    events += caller + [policy.snooze(5, source="mqtt"), policy.recalibrate()]
    envelopes = stamped(events)
    types = {e["type"] for e in envelopes}
    assert {"call.started", "call.ended", "usual_voice_learned", "raised_voice.started",
            "raised_voice.ended", "tense_voice.started", "tense_voice.ended", "laughter_burst",
            "caller.started", "caller.ended", "snooze", "recalibrate"} <= types
    for e in envelopes:
        validate("events", e)
