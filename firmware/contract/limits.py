"""Plain numbers of the contract, in a module without pydantic: `deskcue snooze` (what an agent
presses) checks its minutes against them without building a model."""

from __future__ import annotations

SNOOZE_MAX_MIN = 480.0
"""Longest snooze a command may ask for, minutes (the desk caps it at ``snooze.max_min``)."""
