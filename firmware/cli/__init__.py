"""The `deskcue` command: one module per verb; the only place argparse is used."""
