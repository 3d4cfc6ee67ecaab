"""DeepFM (Guo, Tang, Ye, Li & He, IJCAI 2017)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..base import register
from ..neural import init_parameters
from .base import FeatureRecommender, _forward_doc, store_params
from .embedding import MLP, FeatureEmbedding, fm_pairwise


class _DeepFMNet(nn.Module):
    """FM component on the field embeddings + DNN on their concatenation, one shared table."""

    def __init__(self, spec, dim: int, hidden, dropout: float, use_fm: bool = True):
        super().__init__()
        self.emb = FeatureEmbedding(spec.n_features, dim, spec.slot_fields(),
                                    np.array([f.offset for f in spec.fields]))
        self.use_fm = use_fm
        self.dnn = MLP(len(spec.fields) * dim, tuple(hidden), dropout)
        self.out = nn.Linear(self.dnn.out_dim, 1, bias=False) if hidden else None

    def reset_parameters(self, generator: torch.Generator, init_std: float) -> None:
        init_parameters(self, generator)
        self.emb.reset_parameters(generator, init_std)

    def forward(self, idx: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
        fields = self.emb.fields(self.emb.slots(idx, val))  # (B, F, k)
        logit = self.emb.first_order(idx, val)
        if self.use_fm:
            logit = logit + fm_pairwise(fields)
        if self.out is not None:
            logit = logit + self.out(self.dnn(fields.flatten(1))).squeeze(-1)
        return logit


@register("DeepFM")
@_forward_doc
class DeepFM(FeatureRecommender):
    r"""DeepFM: a factorization machine and a deep network sharing one embedding layer
    (Guo et al., "DeepFM: A Factorization-Machine based Neural Network for CTR Prediction",
    IJCAI 2017).

    .. math:: \hat y = \sigma(y_{FM} + y_{DNN}) \qquad (1)

    with :math:`y_{FM} = \langle w, x\rangle + \sum_{i<j}\langle V_i, V_j\rangle x_i x_j`
    (eq. 2) over the field embeddings :math:`e_f` (a multi-valued field is the mean of its
    values' vectors) and :math:`y_{DNN} = W^{|H|+1} a^{|H|}` an MLP over
    :math:`[e_1, \dots, e_m]` (eqs. 3–5). No pre-training; the FM and DNN parts learn jointly.

    Parameters
    ----------
    hidden : list of int, default [256, 128]
        DNN layer sizes (ReLU).
    dropout : float, default 0.0
        Dropout after every DNN layer.
    l2_dnn : float, default 0.0
        L2 penalty on the DNN weights.
{COMMON}
    """

    def __init__(self, embedding_dim: int = 8, hidden: list | tuple = (256, 128), dropout: float = 0.0,
                 l2_dnn: float = 0.0, loss: str = "logloss", threshold: float = 4.0,
                 n_negatives: int = 0, n_epochs: int = 10, batch_size: int = 256,
                 learning_rate: float = 1e-3, optimizer: str = "adam", l2_embedding: float = 1e-5,
                 l2_linear: float = 1e-5, init_std: float = 1e-4, context: list | None = None,
                 columns: dict | None = None, n_buckets: int = 10, min_count: int = 1,
                 patience: int | None = None, random_state: int | None = 0, device: str = "cpu",
                 n_threads: int | None = None, verbose: bool = False):
        store_params(self, locals())

    def _make_net(self, spec) -> nn.Module:
        return _DeepFMNet(spec, int(self.embedding_dim), [int(h) for h in self.hidden], float(self.dropout))

    def _regularization(self) -> torch.Tensor:
        reg = super()._regularization()
        if float(self.l2_dnn) > 0:
            reg = reg + float(self.l2_dnn) * sum(w.pow(2).sum() for w in self.net_.dnn.weights())
        return reg
