"""Whether long work shows progress bars: on a terminal, unless quieted (``--quiet``).

The ``recforge`` command turns fit-level bars on with :func:`set_enabled`; library code asks
:func:`enabled` (False by default, so a script or a test prints nothing it did not ask for).
"""

from __future__ import annotations

import sys

_state = {"enabled": False}


def set_enabled(flag: bool) -> None:
    """Show progress bars inside long fits (training epochs and batches) from now on."""
    _state["enabled"] = bool(flag)


def enabled() -> bool:
    """True when bars were turned on and stderr is a terminal (never in logs or pipes)."""
    return _state["enabled"] and sys.stderr.isatty()
