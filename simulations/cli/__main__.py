"""``python -m simulations.cli``: the fedbank command, as the tests and scripts invoke it."""

import sys

from simulations.cli.main import main

sys.exit(main())
