"""deskcue firmware: the appliance around the `dsp` analysis (audio, policy, light, MQTT)."""

from functools import cache
from typing import Any


@cache
def build_version() -> str:
    """What the build recorded as its version (setuptools-scm: 0.1.1.dev<commits>+g<commit>,
    see pyproject.toml): `info`'s `firmware` and Home Assistant's `sw_version` tell desks on
    different builds apart by it. Read on first use: `importlib.metadata` costs ~20 ms of
    start-up that a command such as `deskcue snooze` never needs."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deskcue")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        return build_version()
    raise AttributeError(f"module 'firmware' has no attribute {name!r}")
