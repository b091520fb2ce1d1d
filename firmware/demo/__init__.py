"""The built-in default: a scripted call recording, a voice synthesiser, a private broker."""
