"""Pure signal processing at 16 kHz in 10 ms hops: no I/O, threads or clocks (see
docs/conventions.md for units and frame conventions)."""
