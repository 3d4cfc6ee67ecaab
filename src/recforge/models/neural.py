"""The shared base of recforge's torch models: device, seeding, persistence, the epoch loop.

A torch model is a :class:`NeuralModel` mixed into a model family's base class::

    @register("MyModel")
    class MyModel(NeuralModel, SessionRecommender):
        ...

and supplies only its mathematics: the network, one epoch of training (returning the epoch's
mean loss), and scoring. What every torch model needs is written once here:

* :func:`resolve_device` — ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``,
  ``"cuda:N"``;
* :class:`SeedStreams` — one :class:`numpy.random.SeedSequence` from ``random_state``, spawned
  into independent NumPy and ``torch.Generator`` streams; no global generator is seeded or
  advanced (layer constructors that draw from torch's global generator run under
  :func:`isolated_global_rng`, and their draws are replaced by :func:`init_parameters`);
* :class:`GeneratorDropout` — dropout drawing its masks from a given ``torch.Generator``;
* :class:`TrainingLoop` — the epoch loop: a model-supplied epoch step, a validation callback,
  early stopping on one validation metric with optional restoration of the best weights, a
  guard against non-finite losses, gradient clipping for torch optimizers (or a model-supplied
  optimizer step, e.g. GRU4Rec's row-sparse Adagrad), a tqdm progress bar and one ``history_``
  layout for all models;
* safetensors persistence of the torch tensors through the base class's ``_save_extra`` /
  ``_load_extra`` hooks (file ``weights.safetensors``; the base class writes ``config.json``
  and ``arrays.npz`` atomically around it);
* data-parallel training (:class:`DistributedContext`): when a ``torch.distributed`` process
  group exists (``torchrun``, ``recforge train --nproc N``, :mod:`recforge.scale.distributed`),
  a model that declares ``supports_distributed = True`` trains each process on its shard of
  every global mini-batch (:meth:`TrainingLoop.shard`), :meth:`TrainingLoop.step` sums the
  shares of the gradient across processes before the optimizer step, the initial weights are
  broadcast from rank 0, and rank 0 decides validation and early stopping; any other model
  refuses to train in a group of more than one process.

This is the only module under ``recforge.models`` besides the torch models themselves that
imports torch; ``models/base.py`` does not, so loading a non-torch model never imports it.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from .. import progress as _progress
from ..interrupt import check as _check_interrupt

WEIGHTS_FILE = "weights.safetensors"

NONFINITE_ACTIONS = ("raise", "stop")


# ---------------------------------------------------------------------- device
def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device for ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or
    ``"cuda:N"``; an unknown name or an unavailable CUDA device raises ``ValueError``."""
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r}: CUDA is not available (use 'cpu' or 'auto')")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s)")
        return torch.device(name)
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")


# ---------------------------------------------------------------------- random streams
class SeedStreams:
    """Independent random streams spawned from one :class:`numpy.random.SeedSequence`.

    ``random_state`` may be ``None`` (fresh entropy), an int, a ``SeedSequence`` or a NumPy
    ``Generator`` (one draw of it seeds the sequence). Each call of :meth:`numpy` or
    :meth:`torch` spawns the next child of the sequence, so the streams a model asks for, in a
    fixed order, are reproducible from ``random_state`` alone and never touch the global NumPy
    or torch generators.
    """

    def __init__(self, random_state=None):
        if isinstance(random_state, np.random.SeedSequence):
            self.sequence = random_state
        elif isinstance(random_state, np.random.Generator):
            self.sequence = np.random.SeedSequence(int(random_state.integers(2**63 - 1)))
        elif random_state is None or isinstance(random_state, (int, np.integer)):
            self.sequence = np.random.SeedSequence(None if random_state is None else int(random_state))
        else:
            raise TypeError(f"random_state must be None, an int, a SeedSequence or a Generator, "
                            f"got {type(random_state).__name__}")

    def _child(self) -> np.random.SeedSequence:
        return self.sequence.spawn(1)[0]

    def numpy(self) -> np.random.Generator:
        """A NumPy Generator on the next spawned child."""
        return np.random.default_rng(self._child())

    def torch(self, device: str | torch.device = "cpu") -> torch.Generator:
        """A ``torch.Generator`` on ``device`` seeded from the next spawned child (63 bits)."""
        return _torch_generator(self._child(), device)

    def torch_per_rank(self, device: str | torch.device = "cpu",
                       context: DistributedContext | None = None) -> torch.Generator:
        """Like :meth:`torch` (and the same generator in a single process), but in a group of
        ``world_size`` processes each rank gets its own child of the next spawned child: for
        draws over a process's shard of a batch (dropout masks), which must not repeat on every
        rank. The streams a model spawns after this one are the same on every rank."""
        child = self._child()
        if context is not None and context.world_size > 1:
            child = child.spawn(context.world_size)[context.rank]
        return _torch_generator(child, device)


def _torch_generator(sequence: np.random.SeedSequence, device) -> torch.Generator:
    seed = int(sequence.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    return torch.Generator(device=torch.device(device)).manual_seed(seed)


@contextlib.contextmanager
def isolated_global_rng():
    """Run the block with torch's global CPU generator saved and restored afterwards.

    ``torch.nn`` layer constructors initialise their weights from the global generator; building
    a network inside this block and then calling :func:`init_parameters` with a model's own
    generator leaves the global state exactly as it was (nothing is seeded)."""
    with torch.random.fork_rng(devices=[]):
        yield


def init_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """(Re-)initialise the standard layers of ``module`` from ``generator``, with torch's default
    schemes: ``Linear`` weights Kaiming-uniform with :math:`a=\\sqrt 5` and biases uniform in
    :math:`\\pm 1/\\sqrt{\\mathrm{fan\\_in}}`; ``Embedding`` N(0, 1) (padding row zero);
    ``LayerNorm`` ones and zeros; ``MultiheadAttention`` Xavier-uniform input projection, zero
    biases. Models re-initialise specific tensors afterwards where their paper says otherwise."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                if m.bias is not None:
                    bound = 1.0 / math.sqrt(m.weight.shape[1]) if m.weight.shape[1] > 0 else 0.0
                    nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, generator=generator)
                if m.padding_idx is not None:
                    m.weight[m.padding_idx].zero_()
            elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
                nn.init.ones_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.MultiheadAttention) and m.in_proj_weight is not None:
                nn.init.xavier_uniform_(m.in_proj_weight, generator=generator)
                if m.in_proj_bias is not None:
                    nn.init.zeros_(m.in_proj_bias)
                    nn.init.zeros_(m.out_proj.bias)


class GeneratorDropout(nn.Module):
    """Inverted dropout (Srivastava et al. 2014) whose masks come from ``self.generator``
    (set by :func:`attach_generator`); without a generator it falls back to ``nn.functional``'s
    global one. Identity in eval mode or with ``p == 0``."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.generator is None:
            return nn.functional.dropout(x, self.p, training=True)
        keep = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=self.generator)
        return x * keep / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def attach_generator(module: nn.Module, generator: torch.Generator | None) -> None:
    """Make every :class:`GeneratorDropout` inside ``module`` draw from ``generator``."""
    for m in module.modules():
        if isinstance(m, GeneratorDropout):
            m.generator = generator


def clip_and_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer,
                  parameters: Iterable[torch.Tensor], max_grad_norm: float | None = None) -> float | None:
    """One torch-optimizer update: zero the gradients, back-propagate ``loss``, clip the global
    gradient norm to ``max_grad_norm`` (Pascanu et al. 2013) when given, step. Returns the
    gradient norm before clipping (``None`` without clipping)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = None
    if max_grad_norm is not None:
        params = [p for p in parameters if p.grad is not None]
        norm = float(nn.utils.clip_grad_norm_(params, float(max_grad_norm)))
    optimizer.step()
    return norm


# ---------------------------------------------------------------------- data parallelism
@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a data-parallel group: ``rank`` of ``world_size`` processes,
    ``local_rank`` on its machine (the CUDA device it uses). The default is one process alone.

    Data parallelism as in PyTorch's DistributedDataParallel (Li et al. 2020, "PyTorch
    Distributed: experiences on accelerating data parallel training", VLDB): every process holds
    the same weights, computes the gradient of its shard of each global mini-batch, and the
    gradients are reduced across processes before every process takes the same optimizer step.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """More than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates, logs, shows progress and saves."""
        return self.rank == 0


def distributed_context() -> DistributedContext:
    """The :class:`DistributedContext` of the current ``torch.distributed`` process group, or a
    single process when none is initialised. ``LOCAL_RANK`` comes from the environment (set by
    ``torchrun`` and by :func:`recforge.scale.distributed.launch`)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return DistributedContext()
    rank = dist.get_rank()
    return DistributedContext(rank=rank, world_size=dist.get_world_size(),
                              local_rank=int(os.environ.get("LOCAL_RANK", rank)))


def shard_bounds(n: int, context: DistributedContext) -> slice:
    """The contiguous part ``[n r / w, n (r + 1) / w)`` of ``n`` rows that rank ``r`` of ``w``
    processes takes (sizes differ by at most one; a rank may get none when ``n < w``)."""
    return slice(n * context.rank // context.world_size, n * (context.rank + 1) // context.world_size)


def broadcast_object(value, context: DistributedContext):
    """``value`` of rank 0 on every rank (a picklable object; identity in one process)."""
    if not context.active:
        return value
    import torch.distributed as dist

    box = [value if context.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# ---------------------------------------------------------------------- the epoch loop
class NonFiniteLoss(FloatingPointError):
    """A training loss became NaN or infinite (raised by :meth:`TrainingLoop.check_finite`)."""


class TrainingLoop:
    """The epoch loop shared by recforge's torch models.

    Parameters
    ----------
    n_epochs : int
        Most epochs to train.
    name : str
        Model name used in messages and on the progress bar.
    validate : callable, optional
        ``validate(epoch) -> {metric: value}`` after each epoch (e.g. ``{"mrr@20": 0.31}``);
        recorded as ``history["val_<metric>"]``.
    patience : int, optional
        With ``validate``: stop after this many epochs without an improvement of ``monitor``.
    monitor : str
        The validation metric early stopping watches (a key of ``validate``'s result, with or
        without the ``val_`` prefix); larger is better unless ``mode="min"``.
    mode : {"max", "min"}
    restore_best : bool
        After early stopping or at the end, put back the weights of the best monitored epoch
        (needs ``get_state`` / ``set_state`` in :meth:`run`).
    on_nonfinite : {"raise", "stop"}
        A NaN or infinite loss raises ``FloatingPointError`` naming the epoch, or stops training
        (keeping the weights of the last finite epoch when ``get_state`` is given).
    max_grad_norm : float, optional
        Clip the gradient norm in :meth:`step` (torch optimizers only).
    verbose : bool
        Show a tqdm progress bar over the epochs (on rank 0 only).
    distributed : DistributedContext, optional
        Train data-parallel in this process group (see :meth:`shard` and :meth:`step`); the
        default, or a context of one process, is plain single-process training. Only a model that
        shards its batches may pass one (:meth:`NeuralModel._training_loop` does this for models
        with ``supports_distributed = True``).

    Attributes
    ----------
    history : dict of lists
        ``epoch``, ``train_loss``, ``seconds`` (training time of the epoch, validation
        excluded), ``val_<metric>`` for each validation metric, and any extra per-epoch values
        an epoch step returns.
    best_epoch : int or None
    stopped_early : bool
    stop_reason : str or None
    """

    def __init__(self, n_epochs: int, *, name: str = "model",
                 validate: Callable[[int], dict] | None = None, patience: int | None = None,
                 monitor: str = "mrr@20", mode: str = "max", restore_best: bool = True,
                 on_nonfinite: str = "raise", max_grad_norm: float | None = None,
                 verbose: bool = False, distributed: DistributedContext | None = None):
        if int(n_epochs) < 0:
            raise ValueError(f"n_epochs must be >= 0, got {n_epochs!r}")
        if patience is not None and int(patience) < 1:
            raise ValueError(f"patience must be >= 1 or None, got {patience!r}")
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if on_nonfinite not in NONFINITE_ACTIONS:
            raise ValueError(f"on_nonfinite must be one of {NONFINITE_ACTIONS}, got {on_nonfinite!r}")
        if max_grad_norm is not None and not float(max_grad_norm) > 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {max_grad_norm!r}")
        self.n_epochs = int(n_epochs)
        self.name = name
        self.validate = validate
        self.patience = None if patience is None else int(patience)
        self.monitor = "val_" + monitor.removeprefix("val_")
        self.mode = mode
        self.restore_best = bool(restore_best)
        self.on_nonfinite = on_nonfinite
        self.max_grad_norm = None if max_grad_norm is None else float(max_grad_norm)
        self.verbose = bool(verbose)
        self.distributed = distributed if distributed is not None else DistributedContext()
        self.history: dict[str, list] = {"epoch": [], "train_loss": [], "seconds": []}
        self.best_epoch: int | None = None
        self.stopped_early = False
        self.stop_reason: str | None = None
        self.epoch = 0
        self.last_grad_norm: float | None = None
        self._bar = None

    # ---------------------------------------------------------------- inside an epoch
    def check_finite(self, value: float, where: str = "") -> float:
        """Return ``value`` or raise :class:`NonFiniteLoss` naming the epoch (and ``where``)."""
        if not math.isfinite(value):
            at = f", {where}" if where else ""
            raise NonFiniteLoss(f"{self.name}: loss is {value} at epoch {self.epoch}{at}; "
                                "lower the learning rate or clip the gradients")
        return value

    def shard(self, n: int, weights: np.ndarray | None = None) -> tuple[slice, float]:
        """This process's part of a global mini-batch of ``n`` rows, and its share of the loss.

        Returns ``(part, share)``: the rows ``part`` (a contiguous slice of ``range(n)``) to
        compute here, and ``share = weights[part].sum() / weights.sum()``, where ``weights[i]``
        is how many terms row ``i`` adds to the batch's mean loss (1 per row by default; e.g.
        the number of target positions of a sequence). Pass ``share`` to :meth:`step`: the sum
        over processes of ``share`` times each process's mean loss is the mean loss of the whole
        batch, so the summed gradients equal single-process training on the same global batch.
        In a single process: ``(slice(0, n), 1.0)``.

        Every process must draw the global batch (and any randomness indexed by its rows) from
        the same stream, so that all agree on it and only the shards differ.
        """
        if not self.distributed.active:
            return slice(0, n), 1.0
        part = shard_bounds(n, self.distributed)
        if weights is None:
            return part, (part.stop - part.start) / n if n else 0.0
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (n,):
            raise ValueError(f"weights must have shape ({n},), got {w.shape}")
        total = float(w.sum())
        return part, float(w[part].sum()) / total if total > 0 else 0.0

    def step(self, loss: torch.Tensor | None, optimizer: torch.optim.Optimizer,
             parameters: Iterable[torch.Tensor], share: float = 1.0) -> float:
        """Check ``loss``, back-propagate it and take a (clipped) optimizer step; returns the
        loss value. Models with their own update (GRU4Rec) call :meth:`check_finite` instead.

        Data-parallel (see :meth:`shard`): ``loss`` is the mean loss of this process's shard
        (``None`` when the shard is empty), ``share`` its weight in the global batch. The
        gradients of ``share * loss`` are summed across processes in one ``all_reduce`` (with
        the loss value, so the returned value is the global batch's mean loss, the same on every
        rank); a parameter keeps ``grad = None`` only when no process produced a gradient for it
        (as in a single process, so the optimizer skips it). Then clipping and the optimizer step
        run on identical gradients everywhere, which keeps the weights identical.
        """
        if not self.distributed.active:
            value = self.check_finite(float(loss.detach()))
            self.last_grad_norm = clip_and_step(loss, optimizer, parameters, self.max_grad_norm)
            return value
        import torch.distributed as dist

        params = list(parameters)
        optimizer.zero_grad(set_to_none=True)
        local = 0.0
        if loss is not None:
            local = float(loss.detach()) * float(share)
            (loss * float(share)).backward()
        device = params[0].device if params else torch.device("cpu")
        dtype = params[0].dtype if params else torch.float32
        # one flat buffer, one collective: every gradient, a has-gradient flag per parameter and
        # this rank's share of the loss
        parts = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), device=device,
                                                                           dtype=p.dtype)
                 for p in params]
        flags = [float(p.grad is not None) for p in params]
        buffer = torch.cat([*[t.to(dtype) for t in parts],
                            torch.tensor([*flags, local], dtype=dtype, device=device)])
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
        offset = 0
        has_grad = buffer[-1 - len(params):-1].tolist()
        for p, seen in zip(params, has_grad, strict=True):
            n = p.numel()
            if seen > 0:
                grad = buffer[offset:offset + n].view_as(p).to(p.dtype)
                if p.grad is None:
                    p.grad = grad.clone()
                else:
                    p.grad.copy_(grad)
            else:
                p.grad = None
            offset += n
        value = self.check_finite(float(buffer[-1]))
        self.last_grad_norm = None
        if self.max_grad_norm is not None:
            with_grad = [p for p in params if p.grad is not None]
            self.last_grad_norm = float(nn.utils.clip_grad_norm_(with_grad, self.max_grad_norm))
        optimizer.step()
        return value

    def batches(self, n: int):
        """``range(n)`` for an epoch step's batch loop, with a stop check before each batch and,
        when bars are on, one bar over every batch of every epoch (an ETA from batches done,
        not from finished epochs)."""
        n = int(n)
        bar = self._bar
        if bar is None and (self.verbose or _progress.enabled()) and n > 0 \
                and self.distributed.is_main:
            from tqdm.auto import tqdm

            bar = self._bar = tqdm(total=n * self.n_epochs, desc=self.name, unit="batch",
                                   leave=False)
        for b in range(n):
            _check_interrupt()
            yield b
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.set_postfix_str(f"epoch {self.epoch}/{self.n_epochs}")

    def check_stop(self) -> None:
        """Raise :class:`recforge.interrupt.Interrupted` when SIGINT / SIGTERM asked to stop;
        epoch steps call it between batches (the loop itself checks between epochs)."""
        _check_interrupt()

    # ---------------------------------------------------------------- the loop
    def _better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best if self.mode == "max" else value < best

    def run(self, train_epoch: Callable[[int, TrainingLoop], float | dict], *,
            get_state: Callable[[], dict] | None = None,
            set_state: Callable[[dict], None] | None = None,
            on_epoch_end: Callable[[dict], None] | None = None) -> dict[str, list]:
        """Train: ``train_epoch(epoch, loop)`` runs one epoch (1-based) and returns its mean
        loss, or a dict with ``train_loss`` and extra per-epoch values. ``get_state()`` returns a
        copy of the weights, ``set_state(state)`` puts one back (for ``restore_best`` and for
        keeping the last finite weights with ``on_nonfinite="stop"``). Returns the history.

        Data-parallel: the weights of rank 0 are first broadcast to every process (through
        ``get_state`` / ``set_state``), so all start identical whatever their seeds; each epoch's
        record (losses, timings, validation scores, which only rank 0 computes) is rank 0's,
        broadcast, so early stopping and best-weight restoration happen alike everywhere."""
        from tqdm.auto import tqdm

        ctx = self.distributed
        if ctx.active and get_state is not None and set_state is not None:
            import torch.distributed as dist

            state = get_state()
            for tensor in state.values():
                dist.broadcast(tensor, src=0)
            set_state(state)
        best_value, best_state, since_best = None, None, 0
        last_good = None
        keep_last_good = self.on_nonfinite == "stop" and get_state is not None
        bar = tqdm(range(1, self.n_epochs + 1), desc=self.name, unit="epoch",
                   disable=not ((self.verbose or _progress.enabled()) and ctx.is_main),
                   leave=False)
        try:
            for epoch in bar:
                _check_interrupt()
                self.epoch = epoch
                if keep_last_good:
                    last_good = get_state()
                started = time.perf_counter()
                try:
                    out = train_epoch(epoch, self)
                    record = dict(out) if isinstance(out, dict) else {"train_loss": out}
                    self.check_finite(float(record["train_loss"]))
                except NonFiniteLoss as err:
                    if self.on_nonfinite == "raise":
                        raise
                    self.stopped_early, self.stop_reason = True, str(err)
                    if last_good is not None and set_state is not None:
                        set_state(last_good)
                    break
                seconds = time.perf_counter() - started
                record = {"epoch": epoch, "train_loss": float(record.pop("train_loss")),
                          "seconds": seconds, **record}
                if self.validate is not None and ctx.is_main:
                    for key, value in self.validate(epoch).items():
                        record["val_" + str(key).removeprefix("val_")] = float(value)
                record = broadcast_object(record, ctx)
                self._append(record)
                if on_epoch_end is not None:
                    on_epoch_end(record)
                bar.set_postfix({k: f"{v:.4g}" for k, v in record.items()
                                 if k == "train_loss" or k.startswith("val_")})
                if self.validate is None:
                    continue
                if self.monitor not in record:
                    raise KeyError(f"{self.name}: early-stopping metric {self.monitor!r} not among the "
                                   f"validation scores {sorted(k for k in record if k.startswith('val_'))}")
                value = record[self.monitor]
                if self._better(value, best_value):
                    best_value, self.best_epoch, since_best = value, epoch, 0
                    if self.restore_best and get_state is not None:
                        best_state = get_state()
                else:
                    since_best += 1
                    if self.patience is not None and since_best >= self.patience:
                        self.stopped_early = True
                        self.stop_reason = (f"no better {self.monitor} for {since_best} epochs "
                                            f"(best {best_value:.6g} at epoch {self.best_epoch})")
                        break
        finally:
            bar.close()
            if self._bar is not None:
                self._bar.close()
                self._bar = None
        if best_state is not None and set_state is not None and self.best_epoch != self.epoch_last():
            set_state(best_state)
        return self.history

    def epoch_last(self) -> int | None:
        """The last epoch recorded in the history."""
        return self.history["epoch"][-1] if self.history["epoch"] else None

    def _append(self, record: dict) -> None:
        n = len(self.history["epoch"])
        for key in record:
            if key not in self.history:
                self.history[key] = [None] * n
        for key, column in self.history.items():
            column.append(record.get(key))


# ---------------------------------------------------------------------- the mixin
class NeuralModel:
    """Mixin of the torch models: ``class M(NeuralModel, SessionRecommender)``.

    A subclass lists the attributes holding its ``nn.Module`` s in ``_torch_modules`` (e.g.
    ``("net_",)``) and implements ``_build_modules()`` (fresh, untrained modules for the fitted
    shapes, used by :meth:`load`); models whose weights are not an ``nn.Module`` (GRU4Rec)
    override :meth:`_torch_state` and :meth:`_set_torch_state` instead. The constructor of the
    subclass stores ``random_state`` and ``device`` like any hyperparameter.
    """

    _torch_modules: ClassVar[tuple[str, ...]] = ()
    #: The model shards its mini-batches with :meth:`TrainingLoop.shard` and steps through
    #: :meth:`TrainingLoop.step`, so it trains data-parallel in a process group; a model that
    #: does not (its own optimizer step, batches that cannot be split) leaves it ``False`` and
    #: :meth:`_distributed_context` refuses a group of several processes, naming the model.
    supports_distributed: ClassVar[bool] = False
    #: Why a model with ``supports_distributed = False`` cannot train data-parallel (in the error).
    distributed_refusal: ClassVar[str] = "it does not shard its mini-batches across processes"
    #: Persisted by every neural model: the training history and the epoch whose weights it kept.
    state: ClassVar[tuple[str, ...]] = ("history_", "best_epoch_")

    # ---------------------------------------------------------------- device and seeds
    @contextlib.contextmanager
    def _threads(self):
        """Use the model's ``n_threads`` torch threads inside the block (when it has that
        parameter and it is set), then restore the previous number."""
        n = getattr(self, "n_threads", None)
        if n is None:
            yield
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(int(n))
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def _device(self) -> torch.device:
        """The resolved ``device``; in a process group a plain ``"cuda"`` (or ``"auto"`` with
        CUDA) means this process's own GPU, ``cuda:LOCAL_RANK``."""
        device = resolve_device(getattr(self, "device", "auto"))
        if device.type == "cuda" and device.index is None:
            ctx = distributed_context()
            if ctx.active:
                device = torch.device("cuda", ctx.local_rank)
        return device

    def _distributed_context(self) -> DistributedContext:
        """The process group this fit runs in (see :func:`distributed_context`); raises
        ``NotImplementedError`` naming the model when the group has several processes and the
        model does not support data-parallel training."""
        ctx = distributed_context()
        if ctx.active and not self.supports_distributed:
            raise NotImplementedError(
                f"{type(self).__name__} does not support distributed data-parallel training "
                f"({self.distributed_refusal}); train it in a single process "
                f"(this process is rank {ctx.rank} of {ctx.world_size})")
        return ctx

    def _seed_streams(self) -> SeedStreams:
        """The model's :class:`SeedStreams` from ``random_state``. In a process group, a
        ``random_state`` of ``None`` takes rank 0's fresh entropy on every rank, so all draw the
        same global batches. (Called first thing in every fit, it also refuses a process group
        when the model does not support one.)"""
        ctx = self._distributed_context()
        random_state = getattr(self, "random_state", None)
        if ctx.active and random_state is None:
            random_state = np.random.SeedSequence(
                broadcast_object(np.random.SeedSequence().entropy, ctx))
        return SeedStreams(random_state)

    def _training_loop(self, n_epochs: int, validation=None, *, patience: int | None = None,
                       monitor: str = "mrr@20", restore_best: bool = True, on_nonfinite: str = "raise",
                       max_grad_norm: float | None = None, verbose: bool = False,
                       ks: tuple[int, ...] = (20,)) -> TrainingLoop:
        """A :class:`TrainingLoop` whose validation (when ``validation`` is given) is the
        next-item evaluation of this model at cut-offs ``ks`` (session models) — the metrics
        become ``val_recall@k`` and ``val_mrr@k``. In a process group the loop is
        data-parallel (models with ``supports_distributed``; others raise)."""
        validate = None
        if validation is not None:
            validate = self._validator(validation, ks)
        return TrainingLoop(n_epochs, name=type(self).__name__, validate=validate, patience=patience,
                            monitor=monitor, restore_best=restore_best, on_nonfinite=on_nonfinite,
                            max_grad_norm=max_grad_norm, verbose=verbose,
                            distributed=self._distributed_context())

    def _validator(self, validation, ks: tuple[int, ...]) -> Callable[[int], dict]:
        def validate(epoch: int) -> dict:
            from ..metrics.session import mrr_at_k, recall_at_k
            from .session.replay import next_item_ranks

            self._eval_mode()
            try:
                ranks = next_item_ranks(self, validation)
            finally:
                self._train_mode()
            return {**{f"recall@{k}": recall_at_k(ranks, k) for k in ks},
                    **{f"mrr@{k}": mrr_at_k(ranks, k) for k in ks}}

        return validate

    def _eval_mode(self) -> None:
        for name in self._torch_modules:
            getattr(self, name).eval()

    def _train_mode(self) -> None:
        for name in self._torch_modules:
            getattr(self, name).train()

    # ---------------------------------------------------------------- weights
    def _prefix(self, name: str) -> str:
        # one module: its own state_dict names (the layout of files written before this base)
        return "" if len(self._torch_modules) == 1 else f"{name}."

    def _torch_state(self) -> dict[str, torch.Tensor]:
        """Every weight tensor by a flat name: the module's ``state_dict`` names, prefixed with
        ``<attribute>.`` when the model has several modules."""
        state = {}
        for name in self._torch_modules:
            for key, value in getattr(self, name).state_dict().items():
                state[self._prefix(name) + key] = value
        return state

    def _set_torch_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load weights named as by :meth:`_torch_state` into the existing modules."""
        for name in self._torch_modules:
            prefix = self._prefix(name)
            getattr(self, name).load_state_dict({k[len(prefix):]: v for k, v in state.items()
                                                 if k.startswith(prefix)})

    def _copy_torch_state(self) -> dict[str, torch.Tensor]:
        """A detached copy of the weights (for restoring the best epoch)."""
        return {k: v.detach().clone() for k, v in self._torch_state().items()}

    def _build_modules(self) -> None:
        """Create untrained modules for the fitted shapes (on :meth:`_device`) before loading."""
        raise NotImplementedError

    # ---------------------------------------------------------------- persistence
    def _save_extra(self, directory: Path, arrays: dict, state_spec: dict) -> None:
        from safetensors.torch import save_file

        save_file({k: v.detach().cpu().contiguous() for k, v in self._torch_state().items()},
                  str(Path(directory) / WEIGHTS_FILE))

    def _load_extra(self, directory: Path, config: dict) -> None:
        from safetensors.torch import load_file

        path = Path(directory) / WEIGHTS_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing (the model directory is incomplete)")
        self._build_modules()
        expected = self._torch_state()
        weights = load_file(str(path), device=str(self._device()))
        for key, value in expected.items():
            if key not in weights or tuple(weights[key].shape) != tuple(value.shape):
                raise ValueError(f"{path}: weight {key!r} missing or of the wrong shape for these "
                                 "hyperparameters")
        unknown = sorted(set(weights) - set(expected))
        if unknown:
            raise ValueError(f"{path}: unexpected weights {unknown[:5]}")
        self._set_torch_state(weights)
        self._eval_mode()
