"""A SIGINT during a model's compiled (Numba) fit raises :class:`Interrupted` — not a
``SystemError`` from the kernel's result boxing — and the process carries on (in-process)."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

from recforge import interrupt
from recforge.data import Interactions
from recforge.models.factorization import ALS, SVD, fold_in_svdpp
from recforge.models.item2vec import Item2Vec

DELAY = 0.3  # seconds from the start of the fit to the signal
TARGET = 1.5  # seconds an uninterrupted single-kernel fit should take


def _data(explicit: bool, n_users: int = 600, n_items: int = 300, nnz: int = 30_000,
          seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, nnz)
    items = rng.integers(0, n_items, nnz)
    users, items = np.unique(np.stack([users, items]), axis=1)
    values = rng.integers(1, 6, users.size).astype(np.float64) if explicit else None
    return Interactions.from_arrays(users, items, values, timestamps=np.arange(users.size))


def _interrupted_fit(model, data) -> tuple[interrupt.Interrupted, float]:
    """Fit ``model`` with recforge's handlers installed while a timer sends SIGINT to the main
    thread ``DELAY`` s in; returns the raised stop and the seconds the fit ran."""
    previous = interrupt.install()
    interrupt.reset()
    timer = threading.Timer(DELAY, signal.pthread_kill,
                            (threading.main_thread().ident, signal.SIGINT))
    try:
        start = time.monotonic()
        timer.start()
        with pytest.raises(interrupt.Interrupted) as info:
            model.fit(data)
        elapsed = time.monotonic() - start
    finally:
        try:  # a signal that came after an (unexpectedly) finished fit must not escape
            timer.join()
            time.sleep(0.05)
        except interrupt.Interrupted:
            pass
        interrupt.restore(previous)
        interrupt.reset()
    return info.value, elapsed


def _calibrated(make, data, short: int) -> object:
    """``make(n)`` with ``n`` scaled from a timed fit of ``short`` epochs (after a warm-up that
    compiles the kernel) so that one uninterrupted fit takes about ``TARGET`` seconds."""
    make(1).fit(data)
    start = time.perf_counter()
    make(short).fit(data)
    per = max((time.perf_counter() - start) / short, 1e-6)
    return make(int(np.clip(TARGET / per, short, 10**7)))


def test_als_stops_within_an_iteration():
    data = _data(explicit=False)
    ALS(factors=8, iterations=1).fit(data)  # compile outside the timed fit
    stop, elapsed = _interrupted_fit(ALS(factors=8, iterations=10**7), data)
    assert stop.signum == signal.SIGINT and stop.exit_code == 130
    assert DELAY <= elapsed < DELAY + 3.0
    again = ALS(factors=8, iterations=2).fit(data)  # the process and the library carry on
    assert np.isfinite(again.user_factors_).all()


def test_svd_single_kernel_raises_interrupted_after_it():
    data = _data(explicit=True)
    model = _calibrated(lambda n: SVD(n_factors=10, n_epochs=n), data, short=20)
    stop, elapsed = _interrupted_fit(model, data)
    assert stop.signum == signal.SIGINT
    assert DELAY <= elapsed < 4 * TARGET + 2.0
    assert np.isfinite(SVD(n_factors=10, n_epochs=2).fit(data).predict([0], [0])).all()


def test_item2vec_single_kernel_raises_interrupted_after_it():
    data = _data(explicit=False, nnz=20_000)
    model = _calibrated(lambda n: Item2Vec(vector_size=16, epochs=n), data, short=5)
    stop, elapsed = _interrupted_fit(model, data)
    assert stop.signum == signal.SIGINT
    assert DELAY <= elapsed < 4 * TARGET + 2.0
    assert np.isfinite(Item2Vec(vector_size=16, epochs=1).fit(data).item_vectors()).all()


def test_svdpp_fold_in_kernel_returning_arrays_raises_interrupted_not_system_error():
    """``_fold_in_sgd`` returns arrays: a stop landing in their boxing used to surface as
    ``SystemError: ... returned a result with an exception set``."""
    rng = np.random.default_rng(0)
    h = sp.random(300, 200, density=0.2, format="csr", random_state=0)
    h.data[:] = 3.0
    q, y, bi = rng.normal(size=(200, 10)), rng.normal(size=(200, 10)) * 0.01, np.zeros(200)
    kw = dict(lr_bu=0.001, lr_pu=0.001, reg_bu=0.02, reg_pu=0.02)
    fold_in_svdpp(h, q, y, bi, 3.0, n_epochs=1, **kw)  # compile
    start = time.perf_counter()
    fold_in_svdpp(h, q, y, bi, 3.0, n_epochs=20, **kw)
    epochs = int(np.clip(TARGET * 20 / max(time.perf_counter() - start, 1e-6), 20, 10**7))

    class FoldIn:
        def fit(self, _):
            fold_in_svdpp(h, q, y, bi, 3.0, n_epochs=epochs, **kw)

    stop, elapsed = _interrupted_fit(FoldIn(), None)
    assert stop.signum == signal.SIGINT
    assert DELAY <= elapsed < 4 * TARGET + 2.0
