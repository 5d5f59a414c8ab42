"""`python -m libreface`: the command line (`libreface.cli.main`)."""

import sys

from .cli import main

sys.exit(main())
