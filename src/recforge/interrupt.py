"""Clean stops on SIGINT and SIGTERM, also while compiled (Numba) kernels run.

Python runs a signal handler in the main thread at the next bytecode boundary. While a Numba
kernel runs there is none, so a Ctrl-C lands when the kernel returns — and there it lands in
the middle of Numba boxing the kernel's result (``numba.core.serialize._numba_unpickle`` is a
Python function called from the dispatcher's C code). An exception raised at that point
surfaces as ``SystemError: ... returned a result with an exception set``, or crashes the
process (seen with ``knn_predict``). So recforge:

* runs every long compiled call inside :func:`compiled`: while it runs, SIGINT and SIGTERM are
  only recorded, and the stop is raised right after the call returns;
* cuts long kernels into pieces (:func:`chunks`), so that the stop comes within one piece (a
  fraction of a second) even in one huge scoring call;
* installs (:func:`install`; the ``recforge`` command does) a handler that turns SIGTERM, like
  SIGINT, into :class:`Interrupted`, and lets loops outside the main thread poll
  :func:`stop_requested`.

:class:`Interrupted` is a ``KeyboardInterrupt``: ``except Exception`` blocks (a bake-off
recording one model's failure) never swallow it. Its ``exit_code`` is ``128 + signal``
(130 for SIGINT, 143 for SIGTERM), the shells' convention.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["Interrupted", "check", "chunks", "compiled", "install", "reset", "stop_requested"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_state: dict = {"signum": None}
_depth = [0]


class Interrupted(KeyboardInterrupt):
    """A stop was requested by SIGINT or SIGTERM (``signum``); ``exit_code`` = 128 + signum."""

    def __init__(self, signum: int = signal.SIGINT):
        self.signum = int(signum)
        super().__init__(f"interrupted by {signal.Signals(self.signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _handler(signum, frame) -> None:
    if _state["signum"] is None:
        _state["signum"] = int(signum)
    raise Interrupted(_state["signum"])


def _deferred(signum, frame) -> None:
    if _state["signum"] is None:
        _state["signum"] = int(signum)


@contextlib.contextmanager
def compiled():
    """Run a compiled (Numba) call with SIGINT / SIGTERM only recorded, and raise
    :class:`Interrupted` right after it when one arrived. Works with recforge's handler
    (:func:`install`) and with Python's default Ctrl-C handler; elsewhere (not the main
    thread, a handler of the application's own) it changes nothing."""
    saved = {}
    if _depth[0] == 0 and threading.current_thread() is threading.main_thread():
        for sig in _SIGNALS:
            old = signal.getsignal(sig)
            if old is _handler or (sig == signal.SIGINT and old is signal.default_int_handler):
                saved[sig] = old
                signal.signal(sig, _deferred)
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1
        for sig, old in saved.items():
            signal.signal(sig, old)
    signum = _state["signum"]
    if signum is not None and saved:
        if saved.get(signal.SIGINT) is signal.default_int_handler and signum == signal.SIGINT:
            _state["signum"] = None  # library use: the next call starts afresh, as after Ctrl-C
        raise Interrupted(signum)


def install() -> dict:
    """Handle SIGINT and SIGTERM as described in the module docstring (main thread only).

    A SIGINT that the parent process set to be ignored (a background job of a script) stays
    ignored. Returns the previous handlers, for :func:`restore`."""
    previous = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for sig in _SIGNALS:
        old = signal.getsignal(sig)
        if sig == signal.SIGINT and old is signal.SIG_IGN:
            continue
        previous[sig] = old
        signal.signal(sig, _handler)
    return previous


def restore(previous: dict) -> None:
    """Put back handlers returned by :func:`install`."""
    for sig, old in previous.items():
        signal.signal(sig, old)


def reset() -> None:
    """Forget a recorded stop request (after it was handled)."""
    _state["signum"] = None


def stop_requested() -> bool:
    """Whether SIGINT or SIGTERM arrived since the last :func:`reset`."""
    return _state["signum"] is not None


def check() -> None:
    """Raise :class:`Interrupted` when a stop was requested (call it between chunks of work)."""
    if _state["signum"] is not None:
        raise Interrupted(_state["signum"])


def chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` bounds covering ``range(n)`` in pieces of ``size``, with :func:`check`
    before each piece: a long kernel called once per piece stops within one piece."""
    size = max(int(size), 1)
    for start in range(0, int(n), size):
        check()
        yield start, min(start + size, int(n))
    check()
