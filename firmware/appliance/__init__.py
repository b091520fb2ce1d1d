"""The composition root: wires audio, analysis, policy, indicator and link into the running desk."""
