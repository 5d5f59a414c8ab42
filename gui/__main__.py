"""`python -m gui`: the libreface desktop app."""

import sys

from .app import main

sys.exit(main())
