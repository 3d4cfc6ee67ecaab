"""``python -m recforge.cli`` runs the ``recforge`` command."""

import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main())
