"""A small training loop: progress bar, atomic checkpoints, resume, and a NaN/Inf guard.

    history = fit(loss_fn, model, optimizer, n_steps=2000, checkpoint="runs/glow.pt")

``loss_fn(step)`` returns the loss tensor, or a dict with a ``"loss"`` entry and other
scalars to log. Every ``checkpoint_every`` steps the model, optimizer, scheduler, step,
history and every RNG state are written to a temporary file and renamed over the old
checkpoint (a crash mid-write never leaves a broken file). Calling ``fit`` again with the
same ``checkpoint`` resumes where the last checkpoint left off and, because the RNG
states are restored too, ends in the same state as a run that was never interrupted.
The checkpoint is written with :func:`coursekit.training.checkpoints.save` (kind ``"fit"``).
With ``distributed=`` (:mod:`coursekit.training.distributed`) the same loop runs on every
process of a ``torchrun`` job: rank 0 logs and writes the checkpoint, every rank resumes from it.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..core.history import History, NonFiniteError
from . import checkpoints

if TYPE_CHECKING:
    from .distributed import Distributed


def rng_state() -> dict:
    """Every RNG's state as tensors, ints and tuples (what a ``weights_only`` checkpoint can hold)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached)}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    name, keys, pos, has_gauss, cached = state["numpy"]
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():  # a run resumed on fewer GPUs sets those it has
        torch.cuda.set_rng_state_all(state["cuda"][:torch.cuda.device_count()])


def _as_scalars(out: Tensor | Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    if isinstance(out, Tensor):
        return out, {"loss": out}
    if isinstance(out, Mapping) and "loss" in out:
        return out["loss"], dict(out)
    raise TypeError("loss_fn must return a scalar tensor or a dict with a 'loss' entry")


def _check_finite(step: int, scalars: Mapping[str, Tensor], model: nn.Module) -> None:
    for name, value in scalars.items():
        if isinstance(value, Tensor) and not torch.isfinite(value).all():
            raise NonFiniteError(f"step {step}: {name} is {value.detach().flatten()[0].item()} (non-finite)")
    for pname, p in model.named_parameters():
        if p.grad is not None and not torch.isfinite(p.grad).all():
            raise NonFiniteError(f"step {step}: gradient of parameter '{pname}' is non-finite")


def fit(
    loss_fn: Callable[[int], Tensor | Mapping[str, Tensor]],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    n_steps: int,
    *,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 100,
    scheduler=None,
    clip_grad_norm: float | None = None,
    progress: bool = True,
    desc: str = "entrenando",
    generators: Sequence[torch.Generator] = (),
    distributed: Distributed | None = None,
) -> History:
    """Run ``n_steps`` optimizer steps (resuming from ``checkpoint`` if it exists).

    ``generators``: the private ``torch.Generator`` objects ``loss_fn`` draws from (batch
    order, noise); their states are checkpointed with the global RNGs, so a resumed run
    draws exactly what an uninterrupted one would.

    ``distributed``: this process's :class:`~coursekit.training.distributed.Distributed`
    when several train together (``model`` must be wrapped by ``distributed.wrap``). Rank 0
    alone shows progress and writes ``checkpoint``; on resume it reads the file and broadcasts
    it, so every rank resumes (at any world size). The logged scalars are means over the ranks,
    and a NaN/Inf on any rank stops every rank with the step and the rank.

    Raises :class:`NonFiniteError` naming the step and the quantity if the loss, a
    logged scalar or a gradient becomes NaN/Inf; the last checkpoint stays untouched.
    """
    if not isinstance(n_steps, int) or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative int, got {n_steps!r}")
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    generators = list(generators)
    if not all(isinstance(g, torch.Generator) for g in generators):
        raise TypeError("generators must be torch.Generator objects, got "
                        f"{[type(g).__name__ for g in generators]}")
    parallel = distributed is not None and distributed.active
    if parallel:
        distributed.check_wrapped(model)
    main = distributed is None or distributed.is_main
    history, start, saved = History(), 0, None
    if checkpoint is not None and main and Path(checkpoint).exists():
        saved = checkpoints.load(checkpoint, kind="fit", device="cpu" if parallel else None)
    if parallel and checkpoint is not None:
        saved = distributed.broadcast(saved)  # every rank resumes from rank 0's file
    if saved is not None:
        model.load_state_dict(saved.state["model"])
        optimizer.load_state_dict(saved.state["optimizer"])
        if scheduler is not None and "scheduler" in saved.state:
            scheduler.load_state_dict(saved.state["scheduler"])
        history, start = History.from_dict(saved.meta["history"]), saved.meta["step"]
        set_rng_state(saved.meta["rng"])
        saved_generators = saved.meta.get("generators", [])
        if len(saved_generators) != len(generators):
            raise ValueError(f"{checkpoint} holds {len(saved_generators)} generator states but fit() was given "
                             f"{len(generators)} generators: resume with the same training function")
        for g, state in zip(generators, saved_generators):
            g.set_state(state)

    def save(step: int) -> None:
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict()}
        if scheduler is not None:
            state["scheduler"] = scheduler.state_dict()
        checkpoints.save(checkpoint, "fit", state, meta={"step": step, "history": history.to_dict(),
                                                          "rng": rng_state(),
                                                          "generators": [g.get_state() for g in generators]})

    model.train()
    progress = progress and main
    bar = tqdm(range(start, n_steps), initial=start, total=n_steps, desc=desc, disable=not progress)
    for step in bar:
        optimizer.zero_grad(set_to_none=True)
        loss, scalars = _as_scalars(loss_fn(step))
        if parallel:  # one all_reduce after backward: scalars' means and every rank's NaN/Inf flags
            loss.backward()
            logged = distributed.step_scalars(step, scalars)
            _check_finite(step, {}, model)  # the averaged gradients, identical on every rank
        else:
            _check_finite(step, scalars, model)
            loss.backward()
            _check_finite(step, {}, model)
        if clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if not parallel:
            logged = {k: float(v.detach()) if isinstance(v, Tensor) else float(v) for k, v in scalars.items()}
        history.append(step, logged)
        if progress and (step % 10 == 0 or step == n_steps - 1):
            bar.set_postfix(loss=f"{logged['loss']:.4g}")
        if checkpoint is not None and main and ((step + 1) % checkpoint_every == 0 or step + 1 == n_steps):
            save(step + 1)
    bar.close()
    if parallel:
        distributed.barrier()  # the last checkpoint is on disk before any rank returns
    return history


def smooth(values: list[float], window: int = 50) -> np.ndarray:
    """Moving average for plotting noisy loss curves."""
    v = np.asarray(values, dtype=float)
    window = max(1, min(window, len(v)))
    return np.convolve(v, np.ones(window) / window, mode="valid") if len(v) else v


__all__ = ["History", "NonFiniteError", "fit", "rng_state", "set_rng_state", "smooth"]
