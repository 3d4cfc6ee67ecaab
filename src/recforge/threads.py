"""One thread count for everything that computes in parallel: Numba kernels, torch, BLAS.

``recforge --threads N`` calls :func:`set_threads`; library users may call it too.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_limits: list = []  # keeps the threadpoolctl limit alive for the process


def set_threads(n: int) -> int:
    """Use ``n`` threads (an integer >= 1) in Numba's parallel kernels, torch and BLAS.

    Numba cannot start more threads than it started with (``NUMBA_NUM_THREADS``, by default
    the number of cores); a larger ``n`` is capped there with a warning. Libraries loaded later
    read the ``OMP_NUM_THREADS`` family of variables, which are set too. Returns ``n``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of threads must be an integer >= 1, got {n!r}")
    for var in _ENV:
        os.environ[var] = str(n)
    import numba

    limit = numba.config.NUMBA_NUM_THREADS
    if n > limit:
        log.warning("Numba started %d threads; using %d, not %d", limit, limit, n)
    numba.set_num_threads(min(n, limit))
    if "torch" in sys.modules:  # otherwise torch reads OMP_NUM_THREADS when it is imported
        sys.modules["torch"].set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional: the environment variables still apply
        pass
    else:
        _limits.append(threadpool_limits(limits=n))
    return n


def numba_default_threads() -> int:
    """The Numba thread count kernels use when a model sets none: the current setting."""
    import numba

    return numba.get_num_threads()
