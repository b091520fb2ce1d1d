"""The base of every config section, and the name rule shared by site, desk and topics."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

TOPIC_SAFE = r"^[A-Za-z0-9_-]{1,64}$"


class Section(BaseModel):
    """Base of every config section: immutable, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
