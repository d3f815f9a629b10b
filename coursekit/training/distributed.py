"""Training on several processes with ``torch.distributed`` and DDP, meaning the same at any world size.

The same script runs as one process (``python scripts/train_flow_matching.py``) or under
``torchrun --nproc_per_node N [--nnodes M --rdzv-endpoint HOST:PORT]``::

    with distributed.init() as dist:              # torchrun's env vars, or one process
        field = MLPImageField(...).to(dist.device)
        loss = lesson.mnist_loss(field, x, batch=128, generator=gen, distributed=dist)
        fit(loss, field, opt, n_steps, checkpoint="runs/fm.pt", generators=[gen], distributed=dist)

What this module guarantees, and how:

* **Backend**: ``nccl`` when the process has a CUDA device (``cuda:LOCAL_RANK``), ``gloo`` on CPU.
* **Global batch, global draws**: a recipe draws the randomness of the *whole* global batch
  (batch indices, noise, times) from generators that hold the same state on every rank,
  then each rank keeps its slice (:class:`Shard`). Each rank computes the mean loss of its
  ``batch / world_size`` samples; DDP averages the gradients, which is the gradient of the
  mean over the global batch. The step, the learning-rate schedule and the checkpoint are
  therefore the same at any world size: only the floating-point summation order differs
  (about 1e-16 relative in float64). Drawing the global batch's noise on every rank costs a
  few megabytes of random numbers per step, nothing next to a forward and backward pass.
* **Rank 0** alone shows the progress bar, logs, and writes the atomic checkpoint
  (:func:`coursekit.training.fit` with ``distributed=``). On resume, rank 0 reads it and
  broadcasts it, so every rank resumes (also on machines without a shared file system, and
  at a different world size: nothing in the checkpoint depends on it).
* **NaN/Inf**: after every backward pass one small ``all_reduce`` carries the logged scalars
  (their mean over the ranks is what rank 0 logs) and, per rank, whether a scalar or a local
  gradient (checked by a DDP communication hook *before* averaging) was non-finite. Every rank
  then raises the same :class:`~coursekit.core.history.NonFiniteError`, naming the step, the
  quantity and the rank(s); no rank is left waiting in a collective.

Everything here is ``torch.distributed`` and ``DistributedDataParallel`` as they are: the
gradient all-reduce is DDP's own (:func:`~torch.distributed.algorithms.ddp_comm_hooks.default_hooks.allreduce_hook`).
"""

from __future__ import annotations

import datetime
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel

from ..core.history import NonFiniteError

#: the environment variables ``torchrun`` sets for each process
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Shard:
    """Rank ``rank`` of ``world_size``: which part of a global batch this process computes."""

    rank: int = 0
    world_size: int = 1

    def __post_init__(self):
        for name in ("rank", "world_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} must be an int, got {type(v).__name__}")
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(f"need world_size >= 1 and 0 <= rank < world_size, got rank={self.rank}, "
                             f"world_size={self.world_size}")

    def size(self, global_batch: int, name: str = "batch") -> int:
        """The local batch ``global_batch / world_size``; ``ValueError`` unless it divides exactly
        (equal shards are what makes DDP's average the gradient of the global mean)."""
        if not isinstance(global_batch, int) or isinstance(global_batch, bool) or global_batch < 1:
            raise ValueError(f"{name} must be a positive int, got {global_batch!r}")
        if global_batch % self.world_size:
            raise ValueError(f"{name} = {global_batch} is the global batch and must be divisible by the number of "
                             f"processes ({self.world_size}); got remainder {global_batch % self.world_size}")
        return global_batch // self.world_size

    def part(self, global_batch: int, name: str = "batch") -> slice:
        """The slice of a global batch that this rank computes."""
        n = self.size(global_batch, name)
        return slice(self.rank * n, (self.rank + 1) * n)

    def take(self, x: Tensor, name: str = "batch") -> Tensor:
        """This rank's rows of ``x`` (the global batch along dimension 0)."""
        return x[self.part(len(x), name)]


class _Call(nn.Module):
    """``forward(*args) = fn(module, *args)``: lets DDP see a loss or a method such as ``log_prob``
    (DDP synchronises gradients only for what runs through its ``forward``)."""

    def __init__(self, module: nn.Module, fn: Callable[..., Any]):
        super().__init__()
        self.module, self.fn = module, fn

    def forward(self, *args, **kwargs):
        return self.fn(self.module, *args, **kwargs)


_DDP_KEYWORDS = inspect.signature(DistributedDataParallel.__init__).parameters


def _flag_then_allreduce(state: Distributed, bucket):
    # Local gradients, before averaging: remember whether any is NaN/Inf (no host sync here),
    # then DDP's default all-reduce (divide by the world size, sum over the ranks).
    state._grad_bad = state._grad_bad | ~torch.isfinite(bucket.buffer()).all()
    return default_hooks.allreduce_hook(None, bucket)


class Distributed:
    """This process's place in the run; :func:`init` builds it. ``world_size == 1`` without a
    process group is the plain single-process run, and every method is then a no-op."""

    def __init__(self, rank: int, world_size: int, local_rank: int, device: torch.device, backend: str | None):
        self.shard = Shard(rank, world_size)
        self.local_rank, self.device, self.backend = local_rank, torch.device(device), backend
        self._wrapped: set[int] = set()
        self._grad_bad = torch.zeros((), dtype=torch.bool, device=self.device)

    @property
    def rank(self) -> int:
        return self.shard.rank

    @property
    def world_size(self) -> int:
        return self.shard.world_size

    @property
    def active(self) -> bool:
        """True when a process group runs (under ``torchrun``, even with one process)."""
        return self.backend is not None and dist.is_initialized()

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, shows progress and writes checkpoints."""
        return self.rank == 0

    def __repr__(self) -> str:
        return (f"Distributed(rank={self.rank}, world_size={self.world_size}, device={self.device}, "
                f"backend={self.backend})")

    def __enter__(self) -> Distributed:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Leave the process group (if this process joined one)."""
        if self.active:
            dist.destroy_process_group()

    def print(self, *args, **kwargs) -> None:
        """``print`` on rank 0 only."""
        if self.is_main:
            print(*args, **kwargs, flush=True)

    # --- the model --------------------------------------------------------------------------

    def wrap(self, model: nn.Module, call: str | Callable[..., Any] | None = None) -> Callable[..., Any]:
        """What the loss calls instead of ``model`` so that DDP averages the gradients.

        ``call=None`` wraps ``model`` itself (``wrapped(t, x) == model(t, x)``); a method name
        (``"log_prob"``) or a function ``fn(model, *args)`` (a loss) is run through DDP's
        ``forward`` instead. Without a process group it returns the plain call. The optimizer,
        :func:`~coursekit.training.fit` and the checkpoints keep using ``model`` itself.
        """
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(call, str):
            if not callable(getattr(model, call, None)):
                raise ValueError(f"call = {call!r} is not a method of {type(model).__name__}")
            name = call
            call = lambda m, *a, **k: getattr(m, name)(*a, **k)  # noqa: E731
        elif call is not None and not callable(call):
            raise TypeError(f"call must be None, a method name or a function fn(model, *args), got {call!r}")
        if not self.active:
            if call is None:
                return model
            return lambda *a, **k: call(model, *a, **k)
        module = model if call is None else _Call(model, call)
        anchor = next(model.parameters(), None)
        if anchor is None:
            raise ValueError(f"{type(model).__name__} has no parameters to train")
        if anchor.device != self.device:
            raise ValueError(f"model is on {anchor.device} but this rank trains on {self.device}: "
                             "move it with model.to(distributed.device) before wrap()")
        # The buffers are set at construction, the same on every rank, and do not change in
        # training: no buffer broadcast in each forward (the keyword was renamed in recent torch).
        no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in _DDP_KEYWORDS
                   else {"broadcast_buffers": False})
        ddp = DistributedDataParallel(module, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                      **no_sync)
        ddp.register_comm_hook(self, _flag_then_allreduce)
        self._wrapped.add(id(model))
        return ddp

    def check_wrapped(self, model: nn.Module) -> None:
        """``ValueError`` if several processes would train ``model`` without DDP averaging its gradients."""
        if self.active and self.world_size > 1 and id(model) not in self._wrapped:
            raise ValueError(f"model ({type(model).__name__}) is trained by {self.world_size} processes but was not "
                             "wrapped with distributed.wrap(model): its gradients would not be averaged")

    # --- collectives ------------------------------------------------------------------------

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (tensors, dicts, a checkpoint, ...)."""
        if not self.active:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self.device if self.backend == "nccl" else None)
        return box[0]

    def barrier(self) -> None:
        if self.active and self.backend == "nccl":
            dist.barrier(device_ids=[self.device.index])
        elif self.active:
            dist.barrier()

    def all_reduce(self, x: Tensor, op=dist.ReduceOp.SUM) -> Tensor:
        """``torch.distributed.all_reduce`` on a copy of ``x`` (moved to this rank's device)."""
        y = x.detach().to(self.device).clone()
        if self.active:
            dist.all_reduce(y, op=op)
        return y

    def step_scalars(self, step: int, scalars: Mapping[str, Tensor | float]) -> dict[str, float]:
        """After the backward pass of ``step``: the mean over the ranks of each logged scalar.

        One ``all_reduce`` also carries, per rank, whether each scalar and the local
        gradients (seen by the DDP hook before averaging) were finite; if any was not, every
        rank raises the same :class:`NonFiniteError` naming the step, the quantity and the rank(s).
        """
        names = list(scalars)
        values = torch.tensor([float(v.detach()) if isinstance(v, Tensor) else float(v) for v in scalars.values()],
                              dtype=torch.float64)
        flags = torch.zeros(self.world_size, len(names) + 1, dtype=torch.float64)
        flags[self.rank, :-1] = (~torch.isfinite(values)).double()
        flags[self.rank, -1] = float(self._grad_bad.item())
        self._grad_bad = torch.zeros((), dtype=torch.bool, device=self.device)
        total = self.all_reduce(torch.cat([torch.nan_to_num(values), flags.flatten()])).cpu()
        flags = total[len(names):].reshape(self.world_size, len(names) + 1) > 0
        for j, what in enumerate([*names, "a gradient (before averaging over the ranks)"]):
            bad = flags[:, j].nonzero().flatten().tolist()
            if bad:
                ranks = ", ".join(map(str, bad))
                raise NonFiniteError(f"step {step}: {what} is non-finite (NaN/Inf) on rank {ranks} "
                                     f"of {self.world_size}; every rank stops, the last checkpoint is kept")
        means = total[:len(names)] / self.world_size
        return {k: float(v) for k, v in zip(names, means)}


def _int_env(name: str) -> int:
    raw = os.environ[name]
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an int (torchrun sets it), got {raw!r}") from None


def init(device: torch.device | str | None = None, backend: str | None = None,
         timeout_s: float = 1800.0) -> Distributed:
    """Join the run ``torchrun`` started (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
    ``MASTER_PORT`` in the environment), or describe a single process when they are absent.

    ``device``: by default ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU. ``backend``:
    by default ``nccl`` for CUDA, ``gloo`` for the CPU. ``timeout_s``: how long a collective
    waits for a missing rank before failing.
    """
    if backend not in (None, "nccl", "gloo"):
        raise ValueError(f"backend must be None (automatic), 'nccl' or 'gloo', got {backend!r}")
    if not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        auto = "cuda" if torch.cuda.is_available() else "cpu"
        return Distributed(0, 1, 0, torch.device(device if device is not None else auto), None)
    missing = [k for k in TORCHRUN_ENV if k not in os.environ and k != "LOCAL_RANK"]
    if missing:
        raise ValueError(f"RANK and WORLD_SIZE are set but {missing} are not: start the script with torchrun "
                         "(or set MASTER_ADDR and MASTER_PORT too)")
    rank, world = _int_env("RANK"), _int_env("WORLD_SIZE")
    local = _int_env("LOCAL_RANK") if "LOCAL_RANK" in os.environ else 0
    Shard(rank, world)  # validates
    if device is None:
        dev = torch.device(f"cuda:{local}") if torch.cuda.is_available() else torch.device("cpu")
    else:
        dev = torch.device(device)
    if dev.type == "cuda":
        if dev.index is None:
            dev = torch.device(f"cuda:{local}")
        torch.cuda.set_device(dev)
    backend = backend or ("nccl" if dev.type == "cuda" else "gloo")
    if backend == "nccl" and dev.type != "cuda":
        raise ValueError(f"backend 'nccl' needs a CUDA device, got device {dev}")
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=float(timeout_s)))
    return Distributed(rank, world, local, dev, backend)


__all__ = ["Distributed", "Shard", "TORCHRUN_ENV", "init"]
