"""Frozen entry point of the bundled `libreface` command (PyInstaller runs this file as __main__)."""

import multiprocessing
import sys

if __name__ == "__main__":
    # `libreface batch --jobs N` and `--jobs` use spawned worker processes: in a frozen program each
    # worker re-runs this executable, and freeze_support() turns that run into the worker.
    multiprocessing.freeze_support()
    from libreface.cli import main

    sys.exit(main())
