"""deskcue firmware: the appliance around the `dsp` analysis (audio, policy, light, MQTT)."""

__version__ = "0.1.0"
