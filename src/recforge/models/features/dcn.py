"""DCN-v2: deep & cross network with full-rank (or low-rank) cross layers (Wang et al., WWW 2021)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..base import register
from ..neural import init_parameters
from .base import FeatureRecommender, _forward_doc, store_params
from .embedding import MLP, FeatureEmbedding, xavier_normal_


class CrossLayers(nn.Module):
    r"""``n_layers`` DCN-v2 cross layers on :math:`x_0 \in \mathbb R^d`:

    .. math:: x_{l+1} = x_0 \odot (W_l x_l + b_l) + x_l \qquad (1)

    with :math:`W_l \in \mathbb R^{d\times d}`, or :math:`W_l = U_l V_l^T` of rank ``rank``
    (eq. 2, the low-rank DCN-v2 without experts)."""

    def __init__(self, dim: int, n_layers: int, rank: int | None = None):
        super().__init__()
        self.rank = rank
        if rank is None:
            self.w = nn.Parameter(torch.empty(n_layers, dim, dim))
        else:
            self.u = nn.Parameter(torch.empty(n_layers, dim, rank))
            self.v = nn.Parameter(torch.empty(n_layers, dim, rank))
        self.b = nn.Parameter(torch.zeros(n_layers, dim))
        self.n_layers = n_layers

    def reset_parameters(self, generator: torch.Generator) -> None:
        with torch.no_grad():
            for layer in range(self.n_layers):
                if self.rank is None:
                    xavier_normal_(self.w[layer], generator)
                else:
                    xavier_normal_(self.u[layer], generator)
                    xavier_normal_(self.v[layer], generator)
            self.b.zero_()

    def kernels(self) -> list[torch.Tensor]:
        return [self.w] if self.rank is None else [self.u, self.v]

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for layer in range(self.n_layers):
            if self.rank is None:
                wx = x @ self.w[layer].T
            else:
                wx = (x @ self.v[layer]) @ self.u[layer].T
            x = x0 * (wx + self.b[layer]) + x
        return x


class _DCNNet(nn.Module):
    def __init__(self, spec, dim: int, hidden, dropout: float, n_cross: int, rank, structure: str):
        super().__init__()
        self.emb = FeatureEmbedding(spec.n_features, dim, spec.slot_fields(),
                                    np.array([f.offset for f in spec.fields]))
        d = len(spec.fields) * dim
        self.structure = structure
        self.cross = CrossLayers(d, n_cross, rank)
        self.dnn = MLP(d, tuple(hidden), dropout)
        out_in = self.dnn.out_dim if structure == "stacked" else d + (self.dnn.out_dim if hidden else 0)
        self.out = nn.Linear(out_in, 1, bias=False)
        self.has_dnn = bool(hidden)

    def reset_parameters(self, generator: torch.Generator, init_std: float) -> None:
        init_parameters(self, generator)
        self.emb.reset_parameters(generator, init_std)
        self.cross.reset_parameters(generator)

    def forward(self, idx: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
        x0 = self.emb.fields(self.emb.slots(idx, val)).flatten(1)
        cross = self.cross(x0)
        if self.structure == "stacked":
            h = self.dnn(cross)
        else:
            h = torch.cat([cross, self.dnn(x0)], dim=1) if self.has_dnn else cross
        return self.emb.first_order(idx, val) + self.out(h).squeeze(-1)


@register("DCNv2")
@_forward_doc
class DCNv2(FeatureRecommender):
    r"""DCN-v2 (Wang, Shivanna, Cheng, Jain, Lin, Hong & Chi, "DCN V2: Improved Deep & Cross
    Network and Practical Lessons for Web-scale Learning to Rank Systems", WWW 2021).

    The concatenated field embeddings :math:`x_0` go through ``n_cross`` cross layers
    :math:`x_{l+1} = x_0 \odot (W_l x_l + b_l) + x_l` (eq. 1; full-rank :math:`W_l`, or
    :math:`U_l V_l^T` with ``rank``, eq. 2) and an MLP, either side by side ("parallel",
    fig. 2b: the output layer sees both) or one after the other ("stacked", fig. 2a); a
    first-order term over the sparse features is added to the logit, and the model trains on
    the log loss (eq. 5).

    Parameters
    ----------
    n_cross : int, default 2
        Cross layers.
    rank : int, optional
        Low-rank cross layers (``None``: full :math:`d \times d` matrices).
    structure : {"parallel", "stacked"}, default "parallel"
    hidden : list of int, default [256, 128]
    dropout : float, default 0.0
    l2_dnn : float, default 0.0
    l2_cross : float, default 1e-5
        L2 penalty on the cross-layer matrices.
{COMMON}
    """

    def __init__(self, embedding_dim: int = 8, n_cross: int = 2, rank: int | None = None,
                 structure: str = "parallel", hidden: list | tuple = (256, 128), dropout: float = 0.0,
                 l2_dnn: float = 0.0, l2_cross: float = 1e-5, loss: str = "logloss",
                 threshold: float = 4.0, n_negatives: int = 0, n_epochs: int = 10,
                 batch_size: int = 256, learning_rate: float = 1e-3, optimizer: str = "adam",
                 l2_embedding: float = 1e-5, l2_linear: float = 1e-5, init_std: float = 1e-4,
                 context: list | None = None, columns: dict | None = None, n_buckets: int = 10,
                 min_count: int = 1, patience: int | None = None, random_state: int | None = 0,
                 device: str = "cpu", n_threads: int | None = None, verbose: bool = False):
        store_params(self, locals())

    def _make_net(self, spec) -> nn.Module:
        if self.structure not in ("parallel", "stacked"):
            raise ValueError(f"structure must be 'parallel' or 'stacked', got {self.structure!r}")
        if int(self.n_cross) < 0:
            raise ValueError(f"n_cross must be >= 0, got {self.n_cross!r}")
        if self.rank is not None and int(self.rank) < 1:
            raise ValueError(f"rank must be >= 1 or None, got {self.rank!r}")
        if self.structure == "stacked" and not self.hidden:
            raise ValueError("structure='stacked' needs hidden layers")
        return _DCNNet(spec, int(self.embedding_dim), [int(h) for h in self.hidden], float(self.dropout),
                       int(self.n_cross), None if self.rank is None else int(self.rank), self.structure)

    def _regularization(self) -> torch.Tensor:
        reg = super()._regularization()
        if float(self.l2_dnn) > 0:
            reg = reg + float(self.l2_dnn) * sum(w.pow(2).sum() for w in self.net_.dnn.weights())
        if float(self.l2_cross) > 0:
            reg = reg + float(self.l2_cross) * sum(k.pow(2).sum() for k in self.net_.cross.kernels())
        return reg
