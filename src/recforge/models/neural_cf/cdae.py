"""CDAE: collaborative denoising autoencoder (Wu, DuBois, Zheng & Ester, "Collaborative denoising
auto-encoders for top-N recommender systems", WSDM 2016).

A one-hidden-layer denoising autoencoder of the user's binary row with an extra *user node*: a
per-user vector :math:`V_u` added to the hidden layer. The corrupted row is read in batches of
CSR rows; a user unknown at training time (or an anonymous history) is scored with
:math:`V_u = 0`, i.e. from the history alone (``FOLD_IN``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..base import register
from ..neural import init_parameters, isolated_global_rng
from ._batches import RowBatch
from .autoencoders import RowAutoencoder

ACTIVATIONS = {"identity": lambda t: t, "sigmoid": torch.sigmoid, "relu": torch.relu, "tanh": torch.tanh}
LOSSES = ("log", "square")


class _CDAENet(nn.Module):
    """:math:`z_u = h(W^\\top \\tilde y_u + V_u + b)`, :math:`\\hat y_u = f(W'^\\top z_u + b')`
    (Wu et al. 2016, eq. 3-4); ``out`` computes the logits :math:`W'^\\top z_u + b'`."""

    def __init__(self, n_users: int, n_items: int, hidden: int, activation: str):
        super().__init__()
        self.encoder = nn.Linear(n_items, hidden)
        self.user = nn.Embedding(n_users, hidden)
        self.out = nn.Linear(hidden, n_items)
        self.activation = activation

    def reset_parameters(self, generator: torch.Generator) -> None:
        """torch's default initialisation of the linear layers; user nodes N(0, 0.01^2)."""
        init_parameters(self, generator)
        with torch.no_grad():
            nn.init.normal_(self.user.weight, std=0.01, generator=generator)

    def hidden(self, y: torch.Tensor, users: torch.Tensor | None) -> torch.Tensor:
        """Hidden layer of rows ``y`` (corrupted in training); ``users`` inner ids, ``-1``
        (unknown or anonymous) or ``None``: no user node."""
        h = self.encoder(y)
        if users is not None:
            known = users >= 0
            h = h + self.user(users.clamp(min=0)) * known[:, None].to(h.dtype)
        return ACTIVATIONS[self.activation](h)


def cdae_loss(logits: torch.Tensor, y: torch.Tensor, loss: str = "log",
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """The reconstruction loss of a batch of rows, summed over a row's items and averaged over
    rows (Wu et al. 2016, eq. 5): ``"log"`` :math:`-y \\log \\sigma(s) - (1 - y) \\log(1 -
    \\sigma(s))` (sigmoid output), ``"square"`` :math:`(y - s)^2` (identity output), on the logits
    :math:`s`; with ``mask`` only the masked entries count (negative sampling)."""
    if loss == "log":
        per = nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    elif loss == "square":
        per = (y - logits) ** 2
    else:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if mask is not None:
        per = per * mask
    return per.sum(dim=1).mean()


@register("CDAE")
class CDAE(RowAutoencoder):
    """Collaborative denoising autoencoder (Wu et al. 2016).

    Each observed row :math:`y_u \\in \\{0,1\\}^I` is corrupted by dropout (each entry zeroed with
    probability ``corruption``, the rest scaled by :math:`1/(1-q)`, eq. 1-2), encoded with the
    user node, :math:`z_u = h(W^\\top \\tilde y_u + V_u + b)` (eq. 3), and decoded,
    :math:`\\hat y_{ui} = f(W_i'^\\top z_u + b'_i)` (eq. 4). A batch :math:`B` minimises

    .. math:: \\frac{1}{|B|} \\sum_{u \\in B} \\sum_{i \\in O_u \\cup S_u} \\ell(y_{ui}, \\hat y_{ui})
              + \\frac{\\lambda}{2} \\Big( \\lVert W \\rVert^2 + \\lVert W' \\rVert^2
              + \\lVert b \\rVert^2 + \\lVert b' \\rVert^2
              + \\frac{1}{|B|} \\sum_{u \\in B} \\lVert V_u \\rVert^2 \\Big)

    — the paper's objective (eq. 5-6) divided by the number of users, per batch — with the log
    loss (``loss="log"``, sigmoid :math:`f`) or the square loss (``"square"``, identity
    :math:`f`). :math:`S_u` is all unobserved items (``negatives=None``, the full objective), or
    the paper's negative sampling (§4.2): each unobserved item is kept with probability
    :math:`\\min(1, \\text{negatives} \\cdot |O_u| / (I - |O_u|))`, so about ``negatives``
    negatives per positive. Adam. Scores are the logits :math:`W_i'^\\top z_u + b'_i` of the
    uncorrupted row (:math:`f` is monotone).

    Parameters
    ----------
    hidden : int, default 50
        Hidden units :math:`K` (50 in the paper).
    corruption : float, default 0.5
        Dropout probability :math:`q` of the input entries.
    activation : {"relu", "sigmoid", "tanh", "identity"}, default "relu"
        Hidden activation :math:`h`.
    loss : {"log", "square"}, default "log"
    negatives : int, optional
        Negatives per positive (about); ``None``: every unobserved item.
    l2 : float, default 1e-4
        :math:`\\lambda`.
    epochs, batch_size, learning_rate, patience, val_k, random_state, device, n_threads,
    restore_best, on_nonfinite, max_grad_norm, verbose
        As in :class:`~recforge.models.neural_cf.autoencoders.MultDAE`.
    """

    uses_user_ids = True

    def __init__(self, hidden: int = 50, corruption: float = 0.5, activation: str = "relu",
                 loss: str = "log", negatives: int | None = None, l2: float = 1e-4, epochs: int = 100,
                 batch_size: int = 256, learning_rate: float = 1e-3, patience: int | None = None,
                 val_k: int = 10, random_state: int | None = 0, device: str = "cpu",
                 n_threads: int | None = None, restore_best: bool = True, on_nonfinite: str = "raise",
                 max_grad_norm: float | None = None, verbose: bool = False):
        self.hidden = hidden
        self.corruption = corruption
        self.activation = activation
        self.loss = loss
        self.negatives = negatives
        self.l2 = l2
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.val_k = val_k
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads
        self.restore_best = restore_best
        self.on_nonfinite = on_nonfinite
        self.max_grad_norm = max_grad_norm
        self.verbose = verbose

    def _check_params(self) -> None:
        self._check_common()
        if int(self.hidden) < 1:
            raise ValueError(f"hidden must be >= 1, got {self.hidden!r}")
        if not 0.0 <= float(self.corruption) < 1.0:
            raise ValueError(f"corruption must be in [0, 1), got {self.corruption!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.negatives is not None and not float(self.negatives) > 0:
            raise ValueError(f"negatives must be > 0 or None, got {self.negatives!r}")

    def _new_net(self, generator: torch.Generator) -> _CDAENet:
        with isolated_global_rng():
            net = _CDAENet(self.n_users_, self.n_items_, int(self.hidden), self.activation)
        net.reset_parameters(generator)
        return net.to(self._device())

    def negative_mask(self, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor | None:
        """The entries a batch's loss counts: every positive and each unobserved item with
        probability :math:`\\min(1, \\text{negatives}\\,|O_u| / (I - |O_u|))`; ``None`` (all
        entries) without negative sampling."""
        if self.negatives is None:
            return None
        n_pos = y.sum(dim=1, keepdim=True)
        p = (float(self.negatives) * n_pos / (y.shape[1] - n_pos).clamp(min=1.0)).clamp(max=1.0)
        draw = torch.rand(y.shape, generator=generator, device=y.device, dtype=y.dtype) < p
        return torch.maximum(y, draw.to(y.dtype))

    def _param_groups(self) -> list[dict]:
        """:math:`W, b, W', b'` decayed by :math:`\\lambda` (the gradient of
        :math:`\\tfrac{\\lambda}{2}\\lVert\\cdot\\rVert^2`); the user nodes are penalised in
        the loss, for the batch's users only."""
        net = self.net_
        return [{"params": [*net.encoder.parameters(), *net.out.parameters()],
                 "weight_decay": float(self.l2)},
                {"params": list(net.user.parameters()), "weight_decay": 0.0}]

    def _batch_loss(self, batch: RowBatch, step_state: dict) -> torch.Tensor:
        net = self.net_
        gen = step_state["generator"]
        y_in = batch.corrupted(float(self.corruption), gen)
        logits = net.out(net.hidden(y_in, batch.users))
        loss = cdae_loss(logits, batch.x, self.loss, self.negative_mask(batch.x, gen))
        if float(self.l2) > 0:
            loss = loss + 0.5 * float(self.l2) * (net.user(batch.users) ** 2).sum(dim=1).mean()
        return loss


__all__ = ["CDAE", "cdae_loss"]
