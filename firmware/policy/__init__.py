"""Cue policy: the agent's usual voice, sustained cues, calls - from features to events."""
