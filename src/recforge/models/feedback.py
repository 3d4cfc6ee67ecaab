r"""The implicit-feedback matrix the implicit models train on, and the weightings of its entries.

Implicit models (ALS, BPR, LMF, EASE, SLIM, item2vec) learn from a user x item matrix
:math:`R` whose non-zero entries say "the user interacted with the item" and, for ALS, how
strongly. Every such model accepts the same three hyperparameters, so that explicit ratings and
play counts turn into implicit feedback the same way everywhere, and the result's config says
how (the hyperparameters are part of every saved config and bake-off record):

* ``threshold`` — keep only interactions whose value is at least this (e.g. ratings >= 4 as
  "liked"); ``None`` keeps all. What is dropped is counted (:attr:`FeedbackMatrix.dropped`),
  never lost silently;
* ``binarize`` — every kept entry becomes 1 (presence), else the value is kept (a rating, a
  play count, a weight); models that only use presence (BPR, EASE's Gram matrix on binary
  data, item2vec) state it in their docstring;
* the weighting of the kept values, for models that use magnitudes (ALS): :func:`bm25_weight`,
  :func:`tfidf_weight`, and the confidence :func:`confidence` of Hu, Koren & Volinsky (2008).

Only numpy / scipy: a lower layer of the models package, imported by the families.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..data import Interactions

WEIGHTINGS = ("none", "bm25", "tfidf")
SCALINGS = ("linear", "log")


@dataclass(frozen=True)
class FeedbackMatrix:
    """What :func:`implicit_feedback` returns.

    Attributes
    ----------
    matrix : csr_matrix (n_users, n_items), float64
        Kept interactions, canonical (sorted indices, no duplicates, no explicit zeros).
    dropped : int
        Interactions below ``threshold`` (or with a non-positive value), left out.
    kept : int
        ``matrix.nnz``.
    """

    matrix: sp.csr_matrix
    dropped: int
    kept: int


def implicit_feedback(train: Interactions, threshold: float | None = None,
                      binarize: bool = False) -> FeedbackMatrix:
    """The users x items implicit-feedback matrix of ``train`` (see the module docstring).

    Entries with a value below ``threshold`` are dropped, as are entries whose value is not
    positive (a zero or negative weight says nothing about a preference; ALS's confidence and
    the weightings need positive values); both are counted in ``dropped``. ``binarize`` sets
    every kept value to 1.
    """
    if not isinstance(train, Interactions):
        raise TypeError(f"implicit_feedback expects Interactions, got {type(train).__name__}")
    values = np.asarray(train.values, dtype=np.float64)
    keep = values > 0
    if threshold is not None:
        t = float(threshold)
        if not np.isfinite(t):
            raise ValueError(f"threshold must be a finite number or None, got {threshold!r}")
        keep &= values >= t
    kept_values = np.ones(int(keep.sum())) if binarize else values[keep]
    matrix = sp.csr_matrix((kept_values, (train.users[keep], train.items[keep])),
                           shape=(train.n_users, train.n_items), dtype=np.float64)
    matrix.sum_duplicates()
    matrix.sort_indices()
    matrix.eliminate_zeros()
    return FeedbackMatrix(matrix=matrix, dropped=int(values.size - keep.sum()), kept=int(matrix.nnz))


def check_feedback_params(threshold, binarize, owner: str) -> None:
    """A ``ValueError`` naming ``owner``'s parameter unless ``threshold`` is None or a finite
    number and ``binarize`` a bool."""
    if threshold is not None and (isinstance(threshold, bool) or not np.isfinite(float(threshold))):
        raise ValueError(f"{owner}: threshold must be a finite number or None, got {threshold!r}")
    if not isinstance(binarize, (bool, np.bool_)):
        raise ValueError(f"{owner}: binarize must be True or False, got {binarize!r}")


def weighting_stats(matrix: sp.spmatrix) -> tuple[np.ndarray, float]:
    """(item idf :math:`\\log(N / n_i)`, mean row length) of a users x items matrix: the
    statistics :func:`bm25_weight` and :func:`tfidf_weight` weight by. A model that weights
    rows folded in later keeps its training statistics and passes them as ``stats``, so that a
    new row is weighted as it would have been in training."""
    x = sp.csr_matrix(matrix)
    item_df = np.bincount(x.indices, minlength=x.shape[1])
    idf = np.log(max(x.shape[0], 1) / np.maximum(item_df, 1))
    row_len = np.diff(x.indptr).astype(np.float64)
    mean = float(row_len.mean()) if row_len.size and row_len.mean() > 0 else 1.0
    return idf, mean


def bm25_weight(matrix: sp.spmatrix, k1: float = 100.0, b: float = 0.8,
                stats: tuple[np.ndarray, float] | None = None) -> sp.csr_matrix:
    r"""Okapi BM25 weighting of a users x items matrix, items playing the role of terms and
    users of documents (as ``implicit``'s ``bm25_weight`` does for ALS input):

    .. math:: w_{ui} = r_{ui} \frac{(k_1 + 1)}{k_1 \bigl(1 - b + b\, |u| / \overline{|u|}\bigr)
              + r_{ui}} \cdot \log \frac{N}{n_i}

    with :math:`|u|` the user's number of entries, :math:`\overline{|u|}` its mean, :math:`N`
    the number of users and :math:`n_i` the item's (from ``stats`` when given, see
    :func:`weighting_stats`). Robertson & Zaragoza (2009), *The probabilistic relevance
    framework: BM25 and beyond*, Found. Trends IR 3(4), eq. 3.
    """
    x = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    idf, avg = weighting_stats(x) if stats is None else stats
    row_len = np.diff(x.indptr).astype(np.float64)
    norm = k1 * (1.0 - b + b * row_len / avg)
    norm_per_entry = np.repeat(norm, np.diff(x.indptr))
    x.data = x.data * (k1 + 1.0) / (norm_per_entry + x.data) * idf[x.indices]
    return x


def tfidf_weight(matrix: sp.spmatrix,
                 stats: tuple[np.ndarray, float] | None = None) -> sp.csr_matrix:
    r"""TF-IDF weighting of a users x items matrix (items as terms):
    :math:`w_{ui} = \sqrt{r_{ui}} \, \log (N / n_i)`, the form ``implicit`` offers for ALS input
    (Salton & Buckley 1988, *Term-weighting approaches in automatic text retrieval*); the idf
    from ``stats`` when given (:func:`weighting_stats`)."""
    x = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    idf = (weighting_stats(x) if stats is None else stats)[0]
    x.data = np.sqrt(x.data) * idf[x.indices]
    return x


def weight(matrix: sp.spmatrix, weighting: str, owner: str = "weighting",
           stats: tuple[np.ndarray, float] | None = None) -> sp.csr_matrix:
    """Apply one of :data:`WEIGHTINGS` by name (``"none"`` returns a float64 CSR copy), with
    the given training ``stats`` (:func:`weighting_stats`) or the matrix's own."""
    if weighting == "none":
        return sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    if weighting == "bm25":
        return bm25_weight(matrix, stats=stats)
    if weighting == "tfidf":
        return tfidf_weight(matrix, stats=stats)
    raise ValueError(f"{owner}: weighting must be one of {WEIGHTINGS}, got {weighting!r}")


def confidence(matrix: sp.spmatrix, alpha: float, scaling: str = "linear",
               epsilon: float = 1.0) -> sp.csr_matrix:
    r"""Hu, Koren & Volinsky (2008), *Collaborative filtering for implicit feedback datasets*,
    ICDM, section 4: the confidence of an observed entry,

    .. math:: c_{ui} = 1 + \alpha r_{ui} \quad\text{(linear)}, \qquad
              c_{ui} = 1 + \alpha \log(1 + r_{ui} / \epsilon) \quad\text{(log)},

    returned as a CSR matrix of :math:`c_{ui}` on the non-zero pattern of ``matrix``
    (unobserved entries have confidence 1 and preference 0 implicitly)."""
    if scaling not in SCALINGS:
        raise ValueError(f"scaling must be one of {SCALINGS}, got {scaling!r}")
    alpha = float(alpha)
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    x = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    if scaling == "linear":
        x.data = 1.0 + alpha * x.data
    else:
        eps = float(epsilon)
        if not eps > 0:
            raise ValueError(f"epsilon must be positive, got {epsilon!r}")
        x.data = 1.0 + alpha * np.log1p(x.data / eps)
    return x
