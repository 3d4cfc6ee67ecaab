"""Launching data-parallel training of recforge's torch models on one machine.

The training itself lives in the neural base (:mod:`recforge.models.neural`): a model with
``supports_distributed = True`` (SASRec, ...) trains data-parallel whenever it is fitted
inside a ``torch.distributed`` process group. This module makes that group:

* :func:`init_from_env` — join the group described by the ``torchrun`` environment variables
  (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``);
* :func:`launch` — start ``nproc`` local processes (``torch.multiprocessing``, spawned), give
  each the same variables with ``MASTER_ADDR=127.0.0.1`` and a free port, join the group in each,
  run a function and collect what every rank returns;
* :func:`fit_distributed` — fit a model that way; rank 0 saves it and returns its history.

Backend: ``gloo`` on CPU; with CUDA, ``cpu:gloo,cuda:nccl`` (NCCL for GPU tensors, gloo for
the CPU ones, so a model on either device works). The rendezvous and gloo's own sockets use the
loopback interface only, unless the caller's environment says otherwise.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..models.base import clone
from ..models.neural import DistributedContext, distributed_context

LOOPBACK = "127.0.0.1"
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _keep_gloo_on_loopback() -> None:
    """Point gloo at the loopback interface unless the environment names one already."""
    name = "lo" if sys.platform.startswith("linux") else "lo0" if sys.platform == "darwin" else None
    if name is not None:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", name)


def default_backend() -> str:
    """``"cpu:gloo,cuda:nccl"`` when CUDA is available, else ``"gloo"``."""
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def launched_by_torchrun() -> bool:
    """The environment describes a process group of more than one process (``torchrun``)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env(backend: str | None = None, timeout_s: float = 600.0) -> DistributedContext:
    """Join the process group the environment describes (``torchrun``'s variables) unless one is
    initialised already; returns this process's :class:`DistributedContext`. A missing
    ``MASTER_ADDR`` means 127.0.0.1; with a loopback master, gloo is kept on the loopback
    interface (``GLOO_SOCKET_IFNAME=lo``, ``lo0`` on macOS, unless set). With CUDA, the process's GPU is
    ``cuda:LOCAL_RANK``."""
    if dist.is_initialized():
        return distributed_context()
    for name in ("RANK", "WORLD_SIZE", "MASTER_PORT"):
        if name not in os.environ:
            raise RuntimeError(f"init_from_env: environment variable {name} is not set "
                               "(launch with torchrun or recforge.scale.distributed.launch)")
    os.environ.setdefault("MASTER_ADDR", LOOPBACK)
    if os.environ["MASTER_ADDR"] in (LOOPBACK, "localhost"):
        _keep_gloo_on_loopback()
    backend = backend or default_backend()
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", os.environ["RANK"])) % torch.cuda.device_count())
    import datetime

    dist.init_process_group(backend=backend, init_method="env://",
                            timeout=datetime.timedelta(seconds=float(timeout_s)))
    return distributed_context()


def shutdown() -> None:
    """Leave the process group (after a barrier, so no rank exits while others still talk)."""
    if dist.is_initialized():
        with contextlib.suppress(Exception):
            dist.barrier()
        dist.destroy_process_group()


def _worker(local_rank: int, fn: Callable, args: tuple, nproc: int, port: int, backend: str | None,
            threads: int | None, queue) -> None:
    os.environ.update({"RANK": str(local_rank), "LOCAL_RANK": str(local_rank),
                       "WORLD_SIZE": str(nproc), "LOCAL_WORLD_SIZE": str(nproc),
                       "MASTER_ADDR": LOOPBACK, "MASTER_PORT": str(port)})
    if threads is not None:
        torch.set_num_threads(int(threads))
    if nproc > 1:
        init_from_env(backend)
    try:
        result = fn(*args)
    finally:
        if nproc > 1:
            shutdown()
    queue.put((local_rank, result))


def launch(fn: Callable, nproc: int, args: tuple = (), *, port: int | None = None,
           backend: str | None = None, threads: int | None = None) -> list[Any]:
    """Run ``fn(*args)`` in ``nproc`` local processes forming one process group; returns the
    results of ranks ``0..nproc-1``.

    The processes are spawned (``fn`` and ``args`` must be picklable: a module-level function),
    with ``RANK`` = ``LOCAL_RANK`` = the process index, ``WORLD_SIZE`` = ``nproc``,
    ``MASTER_ADDR=127.0.0.1`` and ``MASTER_PORT`` = ``port`` or a free port. ``threads`` sets
    torch's intra-op threads in each (default: the machine's cores divided by ``nproc``, at least
    1, so the processes do not oversubscribe the cores). With ``nproc == 1`` no group is made:
    the function runs as a plain single process (in a child, like the others). An exception in
    any process stops them all and is raised here with that process's traceback.
    """
    nproc = int(nproc)
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc!r}")
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // nproc)
    port = int(port) if port is not None else free_port()
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    procs = mp.start_processes(_worker, args=(fn, args, nproc, port, backend, threads, queue),
                               nprocs=nproc, join=False, start_method="spawn")
    results: dict[int, Any] = {}

    def drain() -> None:
        while not queue.empty():
            rank, value = queue.get()
            results[rank] = value

    # drain while waiting: a large result must not block a child writing into a full pipe
    while not procs.join(timeout=0.2):
        drain()
    drain()
    return [results.get(rank) for rank in range(nproc)]


def _fit_worker(model, train, fit_kwargs: dict, save: Callable | None) -> dict | None:
    ctx = distributed_context()
    started = time.perf_counter()
    fitted = clone(model).fit(train, **fit_kwargs)
    seconds = time.perf_counter() - started
    if not ctx.is_main:
        return None
    if save is not None:
        save(fitted)
    return {"history": getattr(fitted, "history_", None), "fit_seconds": seconds,
            "world_size": ctx.world_size}


def fit_distributed(model, train, nproc: int, *, save: Callable | None = None,
                    port: int | None = None, backend: str | None = None, threads: int | None = None,
                    **fit_kwargs) -> dict:
    """Fit an unfitted copy of ``model`` on ``train`` in ``nproc`` local processes.

    Every process receives the data (pickled by the spawn) and fits the same hyperparameters;
    the model must support data-parallel training (``supports_distributed``) when
    ``nproc > 1``, otherwise the fit raises ``NotImplementedError`` naming it. Only rank 0 calls
    ``save(fitted_model)`` (a picklable callable, e.g. ``functools.partial`` of a module-level
    function). Returns rank 0's ``{"history": ..., "fit_seconds": ..., "world_size": ...}``.
    """
    results = launch(_fit_worker, nproc, (model, train, fit_kwargs, save), port=port, backend=backend,
                     threads=threads)
    return results[0]
