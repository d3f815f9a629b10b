"""FFJORD's training recipe on 2-D toy data: maximum likelihood through the adjoint.

    min_θ  E_{x ~ data} [ −log p_1(x; θ) ],   log p_1(x) = log p_0(x_0) − ∫_0^1 tr(∂f/∂x) dt

One function, :func:`train_ffjord`, so that lesson 06's notebook and benchmark and
lesson 07's comparison (flow matching vs FFJORD on the same data) run the same recipe.

Taught in: notebook 06 (the baseline of notebook 07).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch

from ..data import sample_toy
from ..training.loop import History, fit
from .cnf import CNF
from .fields import MLPField


@dataclass
class FFJORDResult:
    """A trained CNF and the numbers a benchmark reports about it."""

    model: CNF
    dataset: str
    history: History
    train_time_s: float
    test_nll: float  # nats per sample, on held-out samples, exact trace, eval tolerances
    nfe_forward: list[int] = field(default_factory=list)  # per step, training solve
    nfe_backward: list[int] = field(default_factory=list)  # per step, adjoint solve
    nfe_test: int = 0  # log_prob on the test set (data → base)
    nfe_sample: int = 0  # sampling base → data
    n_params: int = 0

    def summary(self) -> dict:
        n = len(self.nfe_forward)
        return {
            "dataset": self.dataset, "steps": n, "train_time_s": round(self.train_time_s, 1),
            "test_nll": round(self.test_nll, 3),
            "mean_nfe_forward": round(sum(self.nfe_forward) / max(n, 1), 1),
            "mean_nfe_backward": round(sum(self.nfe_backward) / max(n, 1), 1),
            "nfe_test": self.nfe_test, "nfe_sample": self.nfe_sample, "n_params": self.n_params,
        }


def make_ffjord(dim: int = 2, hidden: int = 64, n_layers: int = 3, activation: str = "tanh",
                divergence: str = "exact", rtol: float = 1e-3, atol: float = 1e-3, adjoint: bool = True,
                method: str = "dopri5") -> CNF:
    """The course's FFJORD for 2-D data: an ``MLPField`` inside a ``CNF`` with the adjoint."""
    return CNF(MLPField(dim, hidden, n_layers, activation), divergence=divergence, method=method,
               rtol=rtol, atol=atol, adjoint=adjoint)


@torch.no_grad()
def evaluate_nll(model: CNF, x: torch.Tensor, batch_size: int = 2500, rtol: float = 1e-5,
                 atol: float = 1e-5) -> tuple[float, int]:
    """Mean ``−log p(x)`` (nats) with the exact trace at tight tolerances; and the NFE per batch."""
    saved = model.divergence, model.rtol, model.atol
    model.divergence, model.rtol, model.atol = "exact", rtol, atol
    try:
        total, nfe = 0.0, 0
        for chunk in x.split(batch_size):
            total += -model.log_prob(chunk).sum().item()
            nfe = max(nfe, model.nfe)
    finally:
        model.divergence, model.rtol, model.atol = saved
    return total / x.shape[0], nfe


def train_ffjord(dataset: str = "8gaussians", n_steps: int = 1000, batch_size: int = 512, lr: float = 3e-3,
                 hidden: int = 64, n_layers: int = 3, activation: str = "tanh", divergence: str = "exact",
                 rtol: float = 1e-3, atol: float = 1e-3, adjoint: bool = True, n_test: int = 5000,
                 seed: int = 0, checkpoint: str | os.PathLike | None = None, model: CNF | None = None,
                 device: torch.device | str | None = None, progress: bool = True) -> FFJORDResult:
    """Train FFJORD by maximum likelihood on ``sample_toy(dataset)`` and evaluate it.

    Each step draws a fresh batch (the toy sets are infinite); the test NLL is measured
    on ``n_test`` samples from a separate generator (seed ``seed + 1``), never trained on.
    ``model`` continues training a given CNF; ``checkpoint`` makes ``fit`` save / resume.
    Training time counts the optimization only (not the evaluation).
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    torch.manual_seed(seed)
    if model is None:
        model = make_ffjord(2, hidden, n_layers, activation, divergence, rtol, atol, adjoint)
    model = model.to(device)
    gen = torch.Generator().manual_seed(seed)
    x_test = sample_toy(dataset, n_test, torch.Generator().manual_seed(seed + 1)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(n_steps, 1), eta_min=lr / 10)
    nfe_f: list[int] = []
    nfe_b: list[int] = []

    def loss_fn(step: int):
        if nfe_f and len(nfe_b) < len(nfe_f):  # the previous step's backward has run by now
            nfe_b.append(model.nfe - nfe_f[-1])
        x = sample_toy(dataset, batch_size, gen).to(device)
        loss = -model.log_prob(x).mean()
        nfe_f.append(model.nfe)
        return {"loss": loss, "nfe": torch.tensor(float(model.nfe))}

    t0 = time.perf_counter()
    history = fit(loss_fn, model, opt, n_steps, scheduler=sched, checkpoint=checkpoint,
                  checkpoint_every=max(n_steps // 10, 1), progress=progress, desc=f"FFJORD {dataset}")
    if nfe_f and len(nfe_b) < len(nfe_f):
        nfe_b.append(model.nfe - nfe_f[-1])
    train_time = time.perf_counter() - t0
    model.eval()
    nll, nfe_test = evaluate_nll(model, x_test)
    with torch.no_grad():
        model.sample(1000)
    nfe_sample = model.nfe
    return FFJORDResult(model, dataset, history, train_time, nll, nfe_f, nfe_b, nfe_test, nfe_sample,
                        sum(p.numel() for p in model.parameters()))


def load_ffjord(path: str | os.PathLike, device: torch.device | str | None = None) -> tuple[CNF, dict]:
    """A CNF from a file written by ``scripts/train_ffjord.py``, and that file's metadata."""
    from ..training.loop import load_checkpoint

    state = load_checkpoint(path, map_location="cpu")
    if "field" not in state or "config" not in state:
        raise ValueError(f"{path} is not an FFJORD checkpoint (expected keys 'field' and 'config')")
    model = make_ffjord(2, **{k: state["config"][k] for k in ("hidden", "n_layers", "activation", "divergence",
                                                                  "rtol", "atol", "adjoint")})
    model.field.load_state_dict(state["field"])
    meta = {k: v for k, v in state.items() if k != "field"}
    return model.to(device or "cpu"), meta


__all__ = ["FFJORDResult", "evaluate_nll", "load_ffjord", "make_ffjord", "train_ffjord"]
