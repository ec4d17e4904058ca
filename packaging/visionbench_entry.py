"""Entry script of the frozen application (PyInstaller needs a file, not a console-script name)."""
import sys

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
