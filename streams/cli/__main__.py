"""`python -m streams.cli ...` (how the demo and tests start workers)."""

import sys

from streams.cli.main import main

sys.exit(main())
