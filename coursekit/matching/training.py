"""Train an ``MLPField`` by flow matching and FFJORD side by side, with a test-NLL curve.

The cost claim of the lecture: maximum likelihood for a CNF solves an ODE (and the
adjoint ODE) in every step, flow matching regresses a field on samples of a path and
solves nothing. Both functions here train *the same* ``MLPField`` on the same 2-D toy set
and measure, at the same steps, the training wall time (evaluation excluded) and the test
NLL through lesson 06's ``CNF`` (exact trace, dopri5). Taught in: notebook 07.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..continuous import CNF, MLPField, evaluate_nll, make_ffjord
from ..data import sample_toy
from ..training.loop import History, fit
from .couplings import ot_coupling
from .losses import cfm_loss
from .paths import AffinePath, LinearPath


@dataclass
class CurvePoint:
    """Test NLL (nats) after ``step`` steps and ``time_s`` seconds of training (evaluation excluded)."""

    step: int
    time_s: float
    test_nll: float


@dataclass
class TrainResult:
    """A trained field, its CNF (for log p and sampling) and the measured curve."""

    field: nn.Module
    cnf: CNF
    method: str
    dataset: str
    history: History
    train_time_s: float
    curve: list[CurvePoint] = field(default_factory=list)

    @property
    def test_nll(self) -> float:
        return self.curve[-1].test_nll

    @property
    def time_per_step_s(self) -> float:
        return self.train_time_s / max(len(self.history.steps), 1)

    def time_to_nll(self, target: float) -> float | None:
        """Training seconds until the test NLL first reached ``target`` (None if never)."""
        return next((p.time_s for p in self.curve if p.test_nll <= target), None)


def fm_cnf(field_: nn.Module) -> CNF:
    """Lesson 06's CNF around a flow-matching field: log p(x) by the instantaneous change of variables."""
    return CNF(field_, divergence="exact", method="dopri5", rtol=1e-5, atol=1e-5)


def _run(method: str, dataset: str, model: nn.Module, cnf: CNF, loss_of_batch, n_steps: int,
         batch_size: int, lr: float, n_eval: int, n_test: int, seed: int,
         checkpoint: str | os.PathLike | None, progress: bool) -> TrainResult:
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    x_test = sample_toy(dataset, n_test, torch.Generator().manual_seed(seed + 1)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(n_steps, 1), eta_min=lr / 10)
    eval_steps = {round(n_steps * (k + 1) / n_eval) for k in range(n_eval)}
    curve: list[CurvePoint] = []
    clock = {"start": time.perf_counter(), "paused": 0.0}

    def evaluate(step: int) -> None:
        elapsed = time.perf_counter() - clock["start"] - clock["paused"]
        t0 = time.perf_counter()
        was_training = cnf.training
        cnf.eval()
        nll, _ = evaluate_nll(cnf, x_test)
        cnf.train(was_training)
        curve.append(CurvePoint(step, elapsed, nll))
        clock["paused"] += time.perf_counter() - t0  # evaluation does not count as training time

    def loss_fn(step: int):
        if step in eval_steps:  # the model has taken `step` optimizer steps
            evaluate(step)
        return loss_of_batch(sample_toy(dataset, batch_size, gen).to(device))

    history = fit(loss_fn, model, opt, n_steps, scheduler=sched, checkpoint=checkpoint,
                  checkpoint_every=max(n_steps // 10, 1), progress=progress, desc=f"{method} {dataset}")
    evaluate(n_steps)
    train_time = curve[-1].time_s
    return TrainResult(cnf.field, cnf, method, dataset, history, train_time, curve)


def train_fm(dataset: str = "8gaussians", n_steps: int = 2000, batch_size: int = 512, lr: float = 3e-3,
             hidden: int = 64, n_layers: int = 3, activation: str = "tanh", path: AffinePath | None = None,
             ot: bool = False, n_eval: int = 4, n_test: int = 5000, seed: int = 0,
             checkpoint: str | os.PathLike | None = None, field_: nn.Module | None = None,
             device: torch.device | str | None = None, progress: bool = True) -> TrainResult:
    """Flow matching (I-CFM by default, OT-CFM with ``ot=True``) of an ``MLPField`` on a toy set.

    The loss is :func:`~coursekit.matching.losses.cfm_loss`: no ODE is solved in training.
    The test NLL (``n_eval`` times during training) uses ``n_test`` held-out samples.
    """
    torch.manual_seed(seed)
    device = torch.device(device) if device is not None else torch.device("cpu")
    model = (field_ or MLPField(2, hidden, n_layers, activation)).to(device)
    path = path or LinearPath()
    coupling = ot_coupling if ot else None

    def loss_of_batch(x1):
        return cfm_loss(model, x1, path, coupling=coupling)

    return _run("OT-CFM" if ot else "I-CFM", dataset, model, fm_cnf(model), loss_of_batch, n_steps,
                batch_size, lr, n_eval, n_test, seed, checkpoint, progress)


def train_ffjord_curve(dataset: str = "8gaussians", n_steps: int = 500, batch_size: int = 512, lr: float = 3e-3,
                       hidden: int = 64, n_layers: int = 3, activation: str = "tanh", divergence: str = "exact",
                       n_eval: int = 4, n_test: int = 5000, seed: int = 0,
                       device: torch.device | str | None = None, progress: bool = True) -> TrainResult:
    """FFJORD (lesson 06's ``make_ffjord``: dopri5 + adjoint, rtol = atol = 1e-3) with the same curve."""
    torch.manual_seed(seed)
    device = torch.device(device) if device is not None else torch.device("cpu")
    cnf = make_ffjord(2, hidden, n_layers, activation, divergence).to(device)

    def loss_of_batch(x1):
        loss = -cnf.log_prob(x1).mean()
        return {"loss": loss, "nfe": torch.tensor(float(cnf.nfe))}  # forward-solve NFE of this step

    return _run("FFJORD", dataset, cnf, cnf, loss_of_batch, n_steps, batch_size, lr, n_eval, n_test, seed,
                None, progress)


__all__ = ["CurvePoint", "TrainResult", "fm_cnf", "train_ffjord_curve", "train_fm"]
