"""The running desk: the pipeline (channel map, resampler, analyzer, policy), the worker thread
that runs it, and the composition root (`assemble`) that builds the desk from its settings."""
