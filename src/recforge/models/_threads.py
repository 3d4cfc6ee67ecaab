"""The thread count of Numba's parallel kernels, set per call and restored after."""

from __future__ import annotations

import contextlib

import numba


@contextlib.contextmanager
def numba_threads(num_threads, owner: str):
    """Run the block with ``num_threads`` Numba threads (None: the current setting — all
    cores unless :func:`recforge.threads.set_threads` / ``--threads`` lowered it), restoring the previous
    number after; yields the number requested (kernels that cut their work into one chunk per
    thread use it). A ``ValueError`` names ``owner``'s ``num_threads`` unless it is None or an
    integer >= 1; more threads than Numba started are capped."""
    limit = numba.config.NUMBA_NUM_THREADS
    if num_threads is None:
        n = numba.get_num_threads()
    else:
        if isinstance(num_threads, bool) or int(num_threads) != num_threads or num_threads < 1:
            raise ValueError(f"{owner}: num_threads must be None or an integer >= 1, "
                             f"got {num_threads!r}")
        n = int(num_threads)
    previous = numba.get_num_threads()
    numba.set_num_threads(min(n, limit))
    try:
        yield n
    finally:
        numba.set_num_threads(previous)
