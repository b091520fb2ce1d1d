"""`python -m firmware.cli`: the same as the `deskcue` command."""

import sys

from firmware.cli.main import main

sys.exit(main())
