"""Wide & Deep (Cheng et al., DLRS 2016)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..base import register
from ..neural import init_parameters
from .base import FeatureRecommender, _forward_doc, store_params
from .embedding import MLP, FeatureEmbedding


class _WideDeepNet(nn.Module):
    """Wide: first-order weights of every feature + hashed cross products of field pairs;
    deep: an MLP over the concatenated field embeddings."""

    def __init__(self, spec, dim: int, hidden, dropout: float, crosses, cross_buckets: int):
        super().__init__()
        self.emb = FeatureEmbedding(spec.n_features, dim, spec.slot_fields(),
                                    np.array([f.offset for f in spec.fields]))
        self.dnn = MLP(len(spec.fields) * dim, tuple(hidden), dropout)
        self.out = nn.Linear(self.dnn.out_dim, 1, bias=False)
        # slot and field info of each crossed pair (single-slot fields only)
        start = np.concatenate(([0], np.cumsum([f.width for f in spec.fields])))
        pos = {f.name: k for k, f in enumerate(spec.fields)}
        pairs = []
        for a, b in crosses:
            for name in (a, b):
                if name not in pos:
                    raise ValueError(f"crosses: no field {name!r}; fields: {list(pos)}")
                if spec.fields[pos[name]].width != 1:
                    raise ValueError(f"crosses: field {name!r} is multi-valued; cross single-valued fields")
            fa, fb = spec.fields[pos[a]], spec.fields[pos[b]]
            pairs.append((start[pos[a]], fa.offset, start[pos[b]], fb.offset, fb.size))
        self.register_buffer("pairs", torch.as_tensor(np.array(pairs, dtype=np.int64).reshape(-1, 5)),
                             persistent=False)
        self.cross_buckets = int(cross_buckets)
        self.cross = nn.Embedding(max(len(pairs), 1) * self.cross_buckets, 1)

    def reset_parameters(self, generator: torch.Generator, init_std: float) -> None:
        init_parameters(self, generator)
        self.emb.reset_parameters(generator, init_std)
        with torch.no_grad():
            self.cross.weight.zero_()

    def wide(self, idx: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
        logit = self.emb.first_order(idx, val)
        if self.pairs.numel():
            p = self.pairs
            a = idx[:, p[:, 0]] - p[:, 1]  # (B, n_pairs) codes within each field
            b = idx[:, p[:, 2]] - p[:, 3]
            h = (a * p[:, 4] + b) % self.cross_buckets
            h = h + torch.arange(p.shape[0], device=idx.device) * self.cross_buckets
            logit = logit + self.cross(h).squeeze(-1).sum(dim=1)
        return logit

    def forward(self, idx: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
        fields = self.emb.fields(self.emb.slots(idx, val))
        return self.wide(idx, val) + self.out(self.dnn(fields.flatten(1))).squeeze(-1)


@register("WideDeep")
@_forward_doc
class WideDeep(FeatureRecommender):
    r"""Wide & Deep learning (Cheng et al., "Wide & Deep Learning for Recommender Systems",
    DLRS 2016).

    .. math:: P(Y=1 \mid x) = \sigma\big(w_{wide}^T[x, \phi(x)]
              + w_{deep}^T a^{(l_f)} + b\big) \qquad (3)

    The wide part is a linear model over the sparse features :math:`x` and cross-product
    transformations :math:`\phi(x)` (eq. 1) of chosen field pairs (``crosses``; each pair's
    value combinations hashed into ``cross_buckets`` weights); the deep part an MLP
    :math:`a^{(l+1)} = \mathrm{ReLU}(W^{(l)}a^{(l)} + b^{(l)})` (eq. 2) over the concatenated
    field embeddings. Both train jointly on the log loss (the paper's FTRL for the wide part
    and AdaGrad for the deep part are replaced by one optimizer).

    Parameters
    ----------
    hidden : list of int, default [256, 128]
    dropout : float, default 0.0
    l2_dnn : float, default 0.0
    crosses : list of [str, str], optional
        Pairs of single-valued fields whose value combinations get a wide weight, e.g.
        ``[["user.gender", "item.year"]]``.
    cross_buckets : int, default 10000
        Weights per cross (combinations hashed modulo this).
{COMMON}
    """

    def __init__(self, embedding_dim: int = 8, hidden: list | tuple = (256, 128), dropout: float = 0.0,
                 l2_dnn: float = 0.0, crosses: list | None = None, cross_buckets: int = 10000,
                 loss: str = "logloss", threshold: float = 4.0, n_negatives: int = 0,
                 n_epochs: int = 10, batch_size: int = 256, learning_rate: float = 1e-3,
                 optimizer: str = "adam", l2_embedding: float = 1e-5, l2_linear: float = 1e-5,
                 init_std: float = 1e-4, context: list | None = None, columns: dict | None = None,
                 n_buckets: int = 10, min_count: int = 1, patience: int | None = None,
                 random_state: int | None = 0, device: str = "cpu", n_threads: int | None = None,
                 verbose: bool = False):
        store_params(self, locals())

    def _make_net(self, spec) -> nn.Module:
        if int(self.cross_buckets) < 1:
            raise ValueError(f"cross_buckets must be >= 1, got {self.cross_buckets!r}")
        crosses = [tuple(c) for c in (self.crosses or [])]
        if any(len(c) != 2 for c in crosses):
            raise ValueError("crosses must be pairs of field names")
        return _WideDeepNet(spec, int(self.embedding_dim), [int(h) for h in self.hidden],
                            float(self.dropout), crosses, int(self.cross_buckets))

    def _regularization(self) -> torch.Tensor:
        reg = super()._regularization()
        if float(self.l2_dnn) > 0:
            reg = reg + float(self.l2_dnn) * sum(w.pow(2).sum() for w in self.net_.dnn.weights())
        if float(self.l2_linear) > 0 and self.crosses:
            reg = reg + float(self.l2_linear) * self.net_.cross.weight.pow(2).sum()
        return reg
