"""`python -m distill`: the training command line (`distill.cli.main`)."""

import sys

from .cli import main

sys.exit(main())
