"""Audio sources: capture through PyAudio or a recording, as blocks of int16 per channel."""
