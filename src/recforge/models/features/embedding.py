"""The layers the feature models share: one embedding table over every field, the first-order
(linear) weights, field pooling, the factorization-machine interaction and the MLP.

An encoded row (see :mod:`recforge.data.feature_spec`) is ``idx`` (B, S) global rows of the
table and ``val`` (B, S) their values over the S slots of the user, item and context fields.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..neural import GeneratorDropout


def fm_pairwise(e: torch.Tensor) -> torch.Tensor:
    r"""Second-order factorization-machine term of each row, in O(k n).

    For the scaled latent vectors :math:`e_i = x_i v_i` of a row (shape (B, n, k)), Rendle
    (2010), eq. 5 (lemma 3.1):

    .. math:: \sum_{i<j} \langle v_i, v_j\rangle x_i x_j
              = \frac12 \sum_{f=1}^{k}\Big[\Big(\sum_i e_{i,f}\Big)^2 - \sum_i e_{i,f}^2\Big]

    Returns shape (B,).
    """
    square_of_sum = e.sum(dim=1).pow(2)
    sum_of_square = e.pow(2).sum(dim=1)
    return 0.5 * (square_of_sum - sum_of_square).sum(dim=1)


class FeatureEmbedding(nn.Module):
    """Embedding table (``n_features`` x ``dim``) + first-order weights + bias over one
    :class:`~recforge.data.feature_spec.FeatureSpec` layout.

    Parameters
    ----------
    n_features : int
        Rows of the shared table (``spec.n_features``).
    dim : int
        Latent dimension :math:`k`.
    slot_fields : ndarray of int, shape (S,)
        Field number of each slot of a full row (``spec.slot_fields()``).
    field_rows0 : ndarray of int
        Row 0 (out of vocabulary / missing) of every field; initialised at zero so an unseen
        value contributes nothing until training moves it.
    """

    def __init__(self, n_features: int, dim: int, slot_fields: np.ndarray, field_rows0: np.ndarray):
        super().__init__()
        self.dim = int(dim)
        self.n_fields = int(slot_fields.max()) + 1 if slot_fields.size else 0
        self.embedding = nn.Embedding(n_features, dim)
        self.linear = nn.Embedding(n_features, 1)
        self.bias = nn.Parameter(torch.zeros(1))
        pool = torch.zeros(self.n_fields, slot_fields.size)
        pool[torch.as_tensor(slot_fields, dtype=torch.long), torch.arange(slot_fields.size)] = 1.0
        self.register_buffer("pool", pool, persistent=False)
        self.register_buffer("rows0", torch.as_tensor(field_rows0, dtype=torch.long), persistent=False)

    def reset_parameters(self, generator: torch.Generator, init_std: float) -> None:
        with torch.no_grad():
            nn.init.normal_(self.embedding.weight, 0.0, init_std, generator=generator)
            nn.init.normal_(self.linear.weight, 0.0, init_std, generator=generator)
            self.embedding.weight[self.rows0] = 0.0
            self.linear.weight[self.rows0] = 0.0
            self.bias.zero_()

    def slots(self, idx: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
        """Scaled slot vectors :math:`x_i v_i`, shape (B, S, k)."""
        return self.embedding(idx) * val.unsqueeze(-1)

    def fields(self, slots: torch.Tensor) -> torch.Tensor:
        """Field embeddings (the sum of each field's scaled slots: the mean of a bag with mean
        pooling), shape (B, F, k)."""
        return torch.einsum("fs,bsk->bfk", self.pool, slots)

    def first_order(self, idx: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
        r""":math:`w_0 + \sum_i w_i x_i`, shape (B,)."""
        return (self.linear(idx).squeeze(-1) * val).sum(dim=1) + self.bias

    def l2(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Squared norms of the whole table and of the first-order weights."""
        return self.embedding.weight.pow(2).sum(), self.linear.weight.pow(2).sum()


class _FieldSums(torch.autograd.Function):
    """``embedding_bag`` sums forward; the table's gradient by one ``index_add_`` (no sort of
    the indices, which the CPU kernel of ``embedding_bag``'s backward spends most time on)."""

    @staticmethod
    def forward(ctx, weight, idx, val, offsets, bags):
        ctx.save_for_backward(idx, val, bags)
        ctx.n_rows = weight.shape[0]
        return nn.functional.embedding_bag(idx, weight, offsets, mode="sum", per_sample_weights=val)

    @staticmethod
    def backward(ctx, grad):
        if ctx.needs_input_grad[2]:
            raise NotImplementedError("field_sums: no gradient with respect to the values")
        idx, val, bags = ctx.saved_tensors
        rows = grad.index_select(0, bags) * val.unsqueeze(1)
        grad_weight = torch.zeros(ctx.n_rows, grad.shape[1], dtype=grad.dtype, device=grad.device)
        return grad_weight.index_add_(0, idx, rows), None, None, None, None


def field_sums(weight: torch.Tensor, idx: torch.Tensor, val: torch.Tensor,
               slot_field: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    r"""Field embeddings of encoded rows whose slots are grouped by field: for row :math:`b` and
    field :math:`f`, :math:`\sum_{s \in f} x_{b,s} v_{idx_{b,s}}` — the same as
    :meth:`FeatureEmbedding.fields` of :meth:`FeatureEmbedding.slots` (a mean-pooled bag's
    values are already :math:`1/n`). Shape (B, F, k).

    Parameters
    ----------
    weight : (n_features, k) table
    idx, val : (B, S) rows of the table and their values
    slot_field : (S,) field (0..F-1) of each slot, non-decreasing
    starts : (F,) first slot of each field
    """
    b, s = idx.shape
    n_fields = starts.numel()
    row = torch.arange(b, device=idx.device).unsqueeze(1)
    offsets = (row * s + starts.unsqueeze(0)).reshape(-1)
    bags = (row * n_fields + slot_field.unsqueeze(0)).reshape(-1)
    out = _FieldSums.apply(weight, idx.reshape(-1), val.reshape(-1), offsets, bags)
    return out.reshape(b, n_fields, -1)


class MLP(nn.Module):
    """``Linear -> ReLU -> dropout`` per hidden layer (no output layer)."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, int(h)), nn.ReLU(), GeneratorDropout(dropout)]
            d = int(h)
        self.net = nn.Sequential(*layers)
        self.out_dim = d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def weights(self) -> list[torch.Tensor]:
        return [m.weight for m in self.net if isinstance(m, nn.Linear)]


def xavier_normal_(t: torch.Tensor, generator: torch.Generator) -> None:
    """Glorot & Bengio (2010) normal initialisation from ``generator``."""
    fan_out, fan_in = t.shape[0], t.shape[1]
    std = math.sqrt(2.0 / (fan_in + fan_out))
    with torch.no_grad():
        nn.init.normal_(t, 0.0, std, generator=generator)
