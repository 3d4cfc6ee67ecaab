"""Factorization machines (Rendle 2010, ICDM) over the feature spec's sparse rows."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..base import CLICK, EMBEDDINGS, RANKING, register
from .base import FeatureRecommender, _forward_doc, store_params
from .embedding import FeatureEmbedding, fm_pairwise


class _FMNet(nn.Module):
    r""":math:`\hat y(x) = w_0 + \sum_i w_i x_i + \sum_{i<j} \langle v_i, v_j\rangle x_i x_j`
    (Rendle 2010, eq. 1) over every non-zero slot of the row, the pairwise sum in O(kn)
    (:func:`~recforge.models.features.embedding.fm_pairwise`)."""

    def __init__(self, spec, dim: int):
        super().__init__()
        self.emb = FeatureEmbedding(spec.n_features, dim, spec.slot_fields(),
                                    np.array([f.offset for f in spec.fields]))

    def reset_parameters(self, generator: torch.Generator, init_std: float) -> None:
        self.emb.reset_parameters(generator, init_std)

    def forward(self, idx: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
        return self.emb.first_order(idx, val) + fm_pairwise(self.emb.slots(idx, val))


@register("FM")
@_forward_doc
class FM(FeatureRecommender):
    r"""Second-order factorization machine (Rendle, "Factorization Machines", ICDM 2010).

    .. math:: \hat y(x) = w_0 + \sum_{i=1}^n w_i x_i
              + \sum_{i=1}^{n}\sum_{j=i+1}^{n} \langle v_i, v_j \rangle x_i x_j \qquad (1)

    over the sparse feature vector :math:`x` of a (user, item, context) row — one-hot ids and
    categories, mean-pooled multi-hot values, standardised numbers — every pair of features
    interacting through their :math:`k`-dimensional factors. The pairwise sum is computed in
    :math:`O(kn)` with lemma 3.1 (eq. 5):
    :math:`\tfrac12\sum_f[(\sum_i v_{i,f}x_i)^2 - \sum_i v_{i,f}^2x_i^2]`.

    Because the row splits into a query part (user + context) and an item part, the score is a
    dot product of a query vector and an item vector
    (:math:`[\sum_{Q} x_iv_i,\ 1,\ b_Q]\cdot[\sum_{I} x_jv_j,\ b_I,\ 1]` with :math:`b` the
    first-order and within-part pairwise terms), so FM has ``item_vectors`` /
    ``query_vectors`` for the service's ANN index; an item never seen in training gets its
    vector from its features.

    Parameters
    ----------
{COMMON}
    """

    capabilities = frozenset({RANKING, CLICK, EMBEDDINGS})

    def __init__(self, embedding_dim: int = 8, loss: str = "logloss", threshold: float = 4.0,
                 n_negatives: int = 0, n_epochs: int = 10, batch_size: int = 256,
                 learning_rate: float = 1e-3, optimizer: str = "adam", l2_embedding: float = 1e-5,
                 l2_linear: float = 1e-5, init_std: float = 1e-4, context: list | None = None,
                 columns: dict | None = None, n_buckets: int = 10, min_count: int = 1,
                 patience: int | None = None, random_state: int | None = 0, device: str = "cpu",
                 n_threads: int | None = None, verbose: bool = False):
        store_params(self, locals())

    def _make_net(self, spec) -> nn.Module:
        return _FMNet(spec, int(self.embedding_dim))

    # ---------------------------------------------------------------- vectors
    def _part_terms(self, idx: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sum of scaled factors (n, k), first-order + within-part pairwise term (n,))."""
        with torch.no_grad(), self._threads():
            i = torch.from_numpy(np.ascontiguousarray(idx)).to(self._device())
            v = torch.from_numpy(np.ascontiguousarray(val)).to(self._device())
            e = self.net_.emb.slots(i, v)
            lin = (self.net_.emb.linear(i).squeeze(-1) * v).sum(dim=1)
            return e.sum(dim=1).cpu().numpy(), (lin + fm_pairwise(e)).cpu().numpy()

    def item_vectors(self) -> np.ndarray:
        s, b = self._part_terms(self.item_idx_, self.item_val_)
        return np.hstack([s, b[:, None], np.ones((s.shape[0], 1), np.float32)]).astype(np.float32)

    def query_vectors(self, users: np.ndarray, history=None) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        ctx = self.feature_spec_.encode_context(None, users.size)
        idx = np.concatenate([self.user_idx_[users], ctx.idx], axis=1)
        val = np.concatenate([self.user_val_[users], ctx.val], axis=1)
        s, b = self._part_terms(idx, val)
        bias = float(self.net_.emb.bias.detach().cpu())
        return np.hstack([s, np.ones((s.shape[0], 1), np.float32), (b + bias)[:, None]]).astype(np.float32)
