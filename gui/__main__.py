"""`python -m gui`: the libreface desktop app."""

import sys

from .entry import main

sys.exit(main())
