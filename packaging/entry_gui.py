"""Frozen entry point of the bundled `libreface-gui` app (PyInstaller runs this file as __main__)."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from gui.app import main

    sys.exit(main())
