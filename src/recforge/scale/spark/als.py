r"""Spark MLlib ALS behind recforge's interface: trained on the cluster, served as a recforge
factor model.

``SparkALS(...).fit(frame)`` maps the frame's raw ids on the cluster
(:func:`~recforge.scale.spark.data.index_interactions`), trains
:class:`pyspark.ml.recommendation.ALS` on the inner indices, and returns an ordinary recforge
model holding the factors and the id maps:

* implicit feedback (``implicit=True``): a :class:`~recforge.models.factorization.als.ALS` —
  the model of Hu, Koren & Volinsky (2008), which MLlib implements with the same preference
  :math:`p_{ui} = [r_{ui} > 0]` and confidence :math:`c_{ui} = 1 + \alpha |r_{ui}|`;
* explicit ratings: a :class:`~recforge.models.factorization.svd.PMF`
  (:math:`\hat r_{ui} = x_u^\top y_i`, no biases), which is what MLlib's explicit ALS fits.

Either is scored by the evaluator, written by ``save`` and served by ``recforge serve`` as if
it had been fitted by recforge. Differences to keep in mind:

* MLlib scales the ridge penalty of each row by its number of ratings (ALS-WR, Zhou et al.
  2008, *Large-scale parallel collaborative filtering for the Netflix Prize*, eq. 5):
  :math:`\lambda n_u \lVert x_u \rVert^2`. The returned model's ``regularization`` /
  ``reg_all`` is MLlib's ``regParam``; recforge's fold-in of an unknown user uses it without
  that scaling, so a folded-in row is close to, not equal to, the row MLlib would solve.
* The training matrix is not collected to the driver unless ``keep_feedback=True``; without
  it the returned ALS has an empty ``feedback_`` and :meth:`ALS.partial_fit` would start from
  no kept interactions (refit on the cluster instead, or keep the feedback when it fits).
* ``iteration_seconds_`` is empty (MLlib does not report per-iteration times); the wall-clock
  time of the MLlib fit is ``SparkALS.fit_seconds_``.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp

from .data import ITEM_IDX, USER_IDX, VALUE, IndexedInteractions, index_interactions, set_base_state

logger = logging.getLogger(__name__)


def _factor_matrix(frame, n_rows: int, rank: int) -> np.ndarray:
    """MLlib's ``(id, features)`` factor DataFrame as a dense (n_rows, rank) float32 array
    (rows MLlib has no factors for stay zero)."""
    table = frame.select("id", "features").toArrow()
    ids = table.column("id").to_numpy()
    feats = table.column("features").combine_chunks()
    flat = feats.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    out = np.zeros((n_rows, rank), dtype=np.float32)
    if ids.size:
        out[ids] = flat.reshape(ids.size, rank)
    return out


class SparkALS:
    """MLlib ALS (explicit or implicit) whose ``fit`` returns a recforge factor model.

    Parameters
    ----------
    factors : int, default 10
        Rank :math:`k`.
    regularization : float, default 0.1
        MLlib's ``regParam`` (scaled per row by its number of ratings, see the module
        docstring).
    alpha : float, default 1.0
        Confidence slope of implicit feedback.
    iterations : int, default 10
        ALS iterations (``maxIter``).
    implicit : bool, default True
        Implicit feedback (returns :class:`~recforge.models.factorization.als.ALS`) or
        explicit ratings (returns :class:`~recforge.models.factorization.svd.PMF`).
    nonnegative : bool, default False
        Non-negative factors (MLlib's NNLS solver).
    random_state : int, default 0
        MLlib's ``seed``.
    blocks : int, optional
        ``numUserBlocks`` and ``numItemBlocks`` (MLlib's default 10).
    keep_feedback : bool, default False
        Collect the implicit feedback matrix into the model (for ``partial_fit``).
    user, item, value, timestamp : str
        Column names of the input frame (raw ids).

    Attributes
    ----------
    model_ : pyspark.ml.recommendation.ALSModel
    data_ : IndexedInteractions
        The mapped training frame.
    fit_seconds_ : float
        Wall-clock seconds of the MLlib fit (the id mapping excluded).

    Examples
    --------
    >>> model = SparkALS(factors=64, iterations=15).fit(spark.read.parquet("events"))  # doctest: +SKIP
    >>> model.save("models/als-spark")  # doctest: +SKIP
    """

    def __init__(self, factors: int = 10, regularization: float = 0.1, alpha: float = 1.0,
                 iterations: int = 10, implicit: bool = True, nonnegative: bool = False,
                 random_state: int = 0, blocks: int | None = None, keep_feedback: bool = False,
                 user: str = "user", item: str = "item", value: str | None = "value",
                 timestamp: str | None = "timestamp"):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.implicit = implicit
        self.nonnegative = nonnegative
        self.random_state = random_state
        self.blocks = blocks
        self.keep_feedback = keep_feedback
        self.user = user
        self.item = item
        self.value = value
        self.timestamp = timestamp

    def _check(self) -> None:
        name = type(self).__name__
        for param, minimum in (("factors", 1), ("iterations", 1)):
            v = getattr(self, param)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
                raise ValueError(f"{name}: {param} must be an integer >= {minimum}, got {v!r}")
        if self.blocks is not None and (not isinstance(self.blocks, (int, np.integer))
                                        or self.blocks < 1):
            raise ValueError(f"{name}: blocks must be an integer >= 1, got {self.blocks!r}")
        for param in ("regularization", "alpha"):
            v = getattr(self, param)
            if isinstance(v, bool) or not np.isfinite(float(v)) or float(v) < 0:
                raise ValueError(f"{name}: {param} must be a finite number >= 0, got {v!r}")
        if not isinstance(self.random_state, (int, np.integer)):
            raise ValueError(f"{name}: random_state must be an integer (MLlib's seed), "
                             f"got {self.random_state!r}")

    def fit(self, data):
        """Train on ``data`` (a Spark DataFrame of raw-id interactions, or an
        :class:`IndexedInteractions`) and return the recforge model (module docstring).

        A plain frame gets id maps of its own (the ids it holds). To train in a given index
        space — a split's, whose train and test parts share the full data's maps — pass
        ``index_interactions(frame, user_map=..., item_map=...)``; ids with no training row
        then get zero factors."""
        from pyspark.ml.recommendation import ALS as MLlibALS
        from pyspark.sql import functions as F

        self._check()
        if not isinstance(data, IndexedInteractions):
            data = index_interactions(data, user=self.user, item=self.item, value=self.value,
                                      timestamp=self.timestamp,
                                      kind="implicit" if self.implicit else None)
        self.data_ = data
        frame = data.frame.where(F.col(USER_IDX) >= 0).where(F.col(ITEM_IDX) >= 0)
        kw = {}
        if self.blocks is not None:
            kw = {"numUserBlocks": int(self.blocks), "numItemBlocks": int(self.blocks)}
        als = MLlibALS(rank=int(self.factors), maxIter=int(self.iterations),
                       regParam=float(self.regularization), alpha=float(self.alpha),
                       implicitPrefs=bool(self.implicit), nonnegative=bool(self.nonnegative),
                       seed=int(self.random_state), userCol=USER_IDX, itemCol=ITEM_IDX,
                       ratingCol=VALUE, coldStartStrategy="nan", **kw)
        t0 = time.perf_counter()
        self.model_ = als.fit(frame)
        n_users, n_items, k = data.n_users, data.n_items, int(self.factors)
        user_factors = _factor_matrix(self.model_.userFactors, n_users, k)
        item_factors = _factor_matrix(self.model_.itemFactors, n_items, k)
        self.fit_seconds_ = time.perf_counter() - t0
        model = self._new_model()
        user_counts, item_counts, stats = set_base_state(model, data)
        if self.implicit:
            model.rating_scale_ = None
        model.mu_ = 0.0
        model.user_bias_ = np.zeros(n_users)
        model.item_bias_ = np.zeros(n_items)
        if self.implicit:
            model.user_factors_, model.item_factors_ = user_factors, item_factors
            self._implicit_state(model, frame, user_counts, item_counts, int(stats["nonpositive"]))
        else:
            model.user_factors_ = user_factors.astype(np.float64)
            model.item_factors_ = item_factors.astype(np.float64)
        logger.info("SparkALS: %d users x %d items, rank %d, %.1f s", n_users, n_items, k,
                    self.fit_seconds_)
        return model

    def _new_model(self):
        if self.implicit:
            from ...models.factorization.als import ALS

            return ALS(factors=int(self.factors), regularization=float(self.regularization),
                       alpha=float(self.alpha), iterations=int(self.iterations),
                       solver="cholesky", random_state=int(self.random_state))
        from ...models.factorization.svd import PMF

        return PMF(n_factors=int(self.factors), n_epochs=int(self.iterations),
                   reg_all=float(self.regularization), random_state=int(self.random_state))

    def _implicit_state(self, model, frame, user_counts: np.ndarray, item_counts: np.ndarray,
                        nonpositive: int) -> None:
        """The ALS state beyond the factors: the kept feedback (empty unless
        ``keep_feedback``), its weighting statistics (from the counts, as
        :func:`~recforge.models.feedback.weighting_stats` computes them) and the drop count."""
        n_users, n_items = user_counts.size, item_counts.size
        if self.keep_feedback:
            from pyspark.sql import functions as F

            table = frame.where(F.col(VALUE) > 0).select(USER_IDX, ITEM_IDX, VALUE).toArrow()
            fb = sp.csr_matrix((table.column(VALUE).to_numpy().astype(np.float64),
                                (table.column(USER_IDX).to_numpy(), table.column(ITEM_IDX).to_numpy())),
                               shape=(n_users, n_items))
            fb.sum_duplicates()
        else:
            fb = sp.csr_matrix((n_users, n_items), dtype=np.float64)
        model.feedback_ = fb
        model.item_idf_ = np.log(max(n_users, 1) / np.maximum(item_counts, 1))
        mean = float(user_counts.mean()) if n_users else 0.0
        model.mean_row_length_ = mean if mean > 0 else 1.0
        model.feedback_dropped_ = int(nonpositive)
        model.iteration_seconds_ = np.zeros(0, dtype=np.float64)


__all__ = ["SparkALS"]
