"""Audio sources: capture through PyAudio or a recording, as float32 blocks shaped (frames,
channels) in [-1, 1) at the source's own rate (Hz)."""
