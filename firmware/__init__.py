"""deskcue firmware: the appliance around the `dsp` analysis (audio, policy, light, MQTT)."""

from importlib.metadata import PackageNotFoundError, version

try:
    # What the build recorded (setuptools-scm: 0.1.1.dev<commits>+g<commit>, see
    # pyproject.toml): `info`'s `firmware` and Home Assistant's `sw_version` tell desks on
    # different builds apart by it.
    __version__ = version("deskcue")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
