"""Lesson 07's recipes: flow matching against FFJORD, few-step sampling, and MNIST.

* :func:`train_fm` / :func:`train_ffjord_curve` train *the same* ``MLPField`` on the same data
  (a 2-D toy set, or any data tensor (N, D)) by flow matching (a regression: no ODE is solved)
  and by FFJORD (maximum likelihood: an ODE and its adjoint in every step), and measure at the
  same steps the training wall time (evaluation excluded) and the test NLL through lesson 06's
  CNF (exact trace, dopri5).
* :func:`quality_vs_nfe` integrates the same noise with Euler at 1, 2, 4, … steps and with
  dopri5 and scores the samples against held-out data (sliced W₂, energy distance).
* MNIST: pixels to [−1, 1] (:func:`as_signed_tensor`), the CFM loss for ``fit``
  (:func:`mnist_loss`), a held-out score with fixed draws (:func:`heldout_cfm`), and the
  shipped field (kind ``"fm_image_field"``, :func:`from_checkpoint`; written by
  ``scripts/train_flow_matching.py``).

Taught in: notebook 07.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from ..continuous import CNF, MLPField
from ..core.checks import positive_int
from ..core.fields import VectorField
from ..core.history import History
from ..data import sample_toy, to_signed
from ..flows import Flow, StandardNormal
from ..matching import (
    AffinePath,
    LinearPath,
    MLPImageField,
    cfm_loss,
    energy_distance,
    euler_sample,
    ode_sample,
    ot_coupling,
    sliced_wasserstein,
    straightness,
)
from ..training.checkpoints import Checkpoint
from ..training.loop import fit
from .cnf import evaluate_nll, make_ffjord

if TYPE_CHECKING:
    from ..training.distributed import Distributed

KIND = "fm_image_field"  # the checkpoint kind of the MNIST field
EULER_STEPS = (1, 2, 4, 8, 16, 32, 100)

# --- flow matching vs FFJORD on 2-D data -----------------------------------------------------


@dataclass
class CurvePoint:
    """Test NLL (nats) after ``step`` steps and ``time_s`` seconds of training (evaluation excluded)."""

    step: int
    time_s: float
    test_nll: float


@dataclass
class TrainResult:
    """A trained ``field``, the density model around it (``Flow(StandardNormal(2), CNF(field))``)
    and the measured curve."""

    field: nn.Module
    flow: Flow
    method: str
    dataset: str
    history: History
    train_time_s: float
    curve: list[CurvePoint] = dataclasses.field(default_factory=list)

    @property
    def test_nll(self) -> float:
        return self.curve[-1].test_nll

    @property
    def time_per_step_s(self) -> float:
        return self.train_time_s / max(len(self.history.steps), 1)

    def time_to_nll(self, target: float) -> float | None:
        """Training seconds until the test NLL first reached ``target`` (None if never)."""
        return next((p.time_s for p in self.curve if p.test_nll <= target), None)


def fm_flow(field: nn.Module) -> Flow:
    """Lesson 06's density model around a flow-matching field: log p(x) by the instantaneous
    change of variables (exact trace, dopri5, tolerances 1e-5)."""
    return Flow(StandardNormal(field.dim), CNF(field, divergence="exact", method="dopri5", rtol=1e-5, atol=1e-5))


@dataclass
class _Data:
    """Where batches and the test set come from: a toy set's name, or the rows of an (N, D) tensor."""

    name: str
    dim: int
    test: Tensor
    draw: Callable[[int, torch.Generator], Tensor]


def _data(dataset: str | Tensor, n_test: int, seed: int) -> _Data:
    """A named 2-D toy set (fresh samples every batch; the test set drawn with seed + 1) or a
    data tensor (N, D): its last ``n_test`` rows are the test set, batches are drawn (with
    replacement) from the other rows."""
    if isinstance(dataset, str):
        return _Data(dataset, 2, sample_toy(dataset, n_test, torch.Generator().manual_seed(seed + 1)),
                     lambda n, gen: sample_toy(dataset, n, gen))
    if not isinstance(dataset, Tensor) or dataset.ndim != 2 or not dataset.is_floating_point():
        raise TypeError("dataset must be a toy set's name or a floating-point tensor of shape (N, D), got "
                        f"{getattr(dataset, 'shape', type(dataset).__name__)}")
    if len(dataset) <= n_test:
        raise ValueError(f"a data tensor needs more than n_test = {n_test} rows (the last n_test are the "
                         f"test set), got {len(dataset)}")
    train, test = dataset[:-n_test], dataset[-n_test:]
    return _Data(f"tensor {tuple(dataset.shape)}", dataset.shape[1], test,
                 lambda n, gen: train[torch.randint(len(train), (n,), generator=gen)])


def _run(method: str, data: _Data, model: nn.Module, flow: Flow, loss_of_batch, n_steps: int,
         batch_size: int, lr: float, n_eval: int, seed: int,
         checkpoint: str | os.PathLike | None, progress: bool) -> TrainResult:
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    x_test = data.test.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(n_steps, 1), eta_min=lr / 10)
    eval_steps = {round(n_steps * (k + 1) / n_eval) for k in range(n_eval)}
    curve: list[CurvePoint] = []
    clock = {"start": time.perf_counter(), "paused": 0.0}

    def evaluate(step: int) -> None:
        elapsed = time.perf_counter() - clock["start"] - clock["paused"]
        if n_eval == 0:  # timings only: no test NLL
            curve.append(CurvePoint(step, elapsed, float("nan")))
            return
        t0 = time.perf_counter()
        was_training = flow.training
        flow.eval()
        nll, _ = evaluate_nll(flow, x_test)
        flow.train(was_training)
        curve.append(CurvePoint(step, elapsed, nll))
        clock["paused"] += time.perf_counter() - t0  # evaluation does not count as training time

    def loss_fn(step: int):
        if step in eval_steps:  # the model has taken `step` optimizer steps
            evaluate(step)
        return loss_of_batch(data.draw(batch_size, gen).to(device))

    history = fit(loss_fn, model, opt, n_steps, scheduler=sched, checkpoint=checkpoint,
                  checkpoint_every=max(n_steps // 10, 1), progress=progress, desc=f"{method} {data.name}")
    evaluate(n_steps)
    return TrainResult(flow.transform.field, flow, method, data.name, history, curve[-1].time_s, curve)


def train_fm(dataset: str | Tensor = "8gaussians", n_steps: int = 2000, batch_size: int = 512, lr: float = 3e-3,
             hidden: int = 64, n_layers: int = 3, activation: str = "tanh", path: AffinePath | None = None,
             ot: bool = False, n_eval: int = 4, n_test: int = 5000, seed: int = 0,
             checkpoint: str | os.PathLike | None = None, field: nn.Module | None = None,
             device: torch.device | str | None = None, progress: bool = True) -> TrainResult:
    """Flow matching (I-CFM by default, OT-CFM with ``ot=True``) of an ``MLPField``.

    ``dataset`` is a 2-D toy set's name or any data tensor (N, D) (its last ``n_test`` rows
    are held out). The loss is :func:`~coursekit.matching.cfm_loss`: no ODE is solved in
    training. The test NLL (``n_eval`` times during training) uses ``n_test`` held-out samples;
    ``n_eval=0`` skips it (``test_nll`` is NaN) when only the timings or the field are wanted.
    """
    data = _data(dataset, n_test, seed)
    torch.manual_seed(seed)
    model = (field or MLPField(data.dim, hidden, n_layers, activation)).to(device or "cpu")
    if getattr(model, "dim", data.dim) != data.dim:
        raise ValueError(f"field.dim = {model.dim} does not match the data's dimension {data.dim}")
    path = path or LinearPath()
    coupling = ot_coupling if ot else None

    def loss_of_batch(x1):
        return cfm_loss(model, x1, path, coupling=coupling)

    return _run("OT-CFM" if ot else "I-CFM", data, model, fm_flow(model), loss_of_batch, n_steps,
                batch_size, lr, n_eval, seed, checkpoint, progress)


def train_ffjord_curve(dataset: str | Tensor = "8gaussians", n_steps: int = 500, batch_size: int = 512,
                       lr: float = 3e-3, hidden: int = 64, n_layers: int = 3, activation: str = "tanh",
                       divergence: str = "exact", n_eval: int = 4, n_test: int = 5000, seed: int = 0,
                       device: torch.device | str | None = None, progress: bool = True) -> TrainResult:
    """FFJORD (lesson 06's ``make_ffjord``: dopri5 + adjoint, rtol = atol = 1e-3) with the same curve;
    ``dataset`` as in :func:`train_fm` (a toy set's name or a data tensor (N, D))."""
    data = _data(dataset, n_test, seed)
    torch.manual_seed(seed)
    flow = make_ffjord(data.dim, hidden, n_layers, activation, divergence).to(device or "cpu")

    def loss_of_batch(x1):
        loss = -flow.log_prob(x1).mean()
        return {"loss": loss, "nfe": torch.tensor(float(flow.transform.nfe))}  # forward-solve NFE of this step

    return _run("FFJORD", data, flow, flow, loss_of_batch, n_steps, batch_size, lr, n_eval, seed, None, progress)


# --- sample quality against the number of field evaluations ----------------------------------


@dataclass
class QualityRow:
    """Quality of one sampler: ``solver`` ("euler" or "dopri5"), NFE and distances to held-out data."""

    solver: str
    nfe: int
    sliced_w2: float
    energy: float


@torch.no_grad()
def quality_vs_nfe(field: VectorField, x0: Tensor, x_ref: Tensor, steps: Sequence[int] = EULER_STEPS,
                   rtol: float = 1e-5, atol: float = 1e-5, seed: int = 0) -> list[QualityRow]:
    """Euler with each number of ``steps`` and dopri5, from the same noise ``x0``, against ``x_ref``.

    Straighter flows (OT-CFM) lose less quality when the steps are few."""
    if x0.shape != x_ref.shape:
        raise ValueError(f"x0 and x_ref must have the same shape, got {tuple(x0.shape)} and {tuple(x_ref.shape)}")

    def score(solver: str, nfe: int, x: Tensor) -> QualityRow:
        g = torch.Generator().manual_seed(seed)  # the same projections for every row
        return QualityRow(solver, nfe, sliced_wasserstein(x, x_ref, generator=g), energy_distance(x, x_ref))

    rows = [score("euler", k, euler_sample(field, x0, k)) for k in steps]
    x, nfe = ode_sample(field, x0, rtol=rtol, atol=atol, return_nfe=True)
    return rows + [score("dopri5", nfe, x)]


@torch.no_grad()
def flow_straightness(field: VectorField, x0: Tensor, n_steps: int = 100) -> float:
    """S(v) = ∫ E‖(x₁ − x₀) − v(t, x_t)‖² dt along the flow of v from ``x0`` (Euler, ``n_steps``)."""
    _, traj = euler_sample(field, x0, n_steps, return_trajectory=True)
    return straightness(traj)


def trajectory_gif(trajectory, path, every: int = 2, fps: float = 10.0, lim: float = 4.0,
                   size: float = 3.2) -> str:
    """A GIF of samples flowing from the noise (t = 0) to the data (t = 1): one frame every ``every`` states
    of ``trajectory`` ``(n_steps + 1, N, 2)`` (``euler_sample(..., return_trajectory=True)``), the last state
    always included, each titled with its ``t``; returns the path."""
    import matplotlib.pyplot as plt

    from ..viz.images import figure_to_array, save_gif

    traj = trajectory.detach().cpu().numpy() if hasattr(trajectory, "detach") else np.asarray(trajectory)
    if traj.ndim != 3 or traj.shape[-1] != 2 or len(traj) < 2:
        raise ValueError(f"trajectory must have shape (n_steps + 1 >= 2, N, 2), got {traj.shape}")
    every = positive_int(every, "every")
    last = len(traj) - 1
    ks = sorted(set(range(0, last + 1, every)) | {last})
    fig, ax = plt.subplots(figsize=(size, size))
    try:
        sc = ax.scatter(traj[0, :, 0], traj[0, :, 1], s=2)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
        frames = []
        for k in ks:
            sc.set_offsets(traj[k])
            ax.set_title(f"t = {k / last:.2f}")
            frames.append(figure_to_array(fig))
    finally:
        plt.close(fig)
    return save_gif(frames, path, fps=fps)


# --- MNIST -----------------------------------------------------------------------------------


def as_signed_tensor(images: np.ndarray) -> Tensor:
    """uint8 images (N, 28, 28) → float32 tensor (N, 1, 28, 28) in [−1, 1] (``coursekit.data.to_signed``)."""
    return torch.from_numpy(to_signed(images)).unsqueeze(1)


def signed_to_display(x: Tensor) -> Tensor:
    """The inverse for display: [−1, 1] → [0, 1], clipped (samples overshoot a little)."""
    return x.add(1).div(2).clamp(0, 1)


def mnist_loss(field: nn.Module, x_train: Tensor, batch: int = 128, path: AffinePath | None = None,
               ot: bool = False, generator: torch.Generator | None = None,
               distributed: Distributed | None = None) -> Callable[[int], Tensor]:
    """``loss(step)`` for :func:`coursekit.training.fit`: CFM on a random minibatch of ``x_train``.

    ``distributed`` (:mod:`coursekit.training.distributed`): ``batch`` is the global batch;
    every rank draws the whole batch's indices (``generator``), noise x₀ and times t (the
    global RNG, on the CPU), pairs them (OT) and keeps its ``batch / world_size`` rows, the
    loss going through DDP. On the CPU these are the draws of ``distributed=None``, so the
    run is the same at any world size (up to float summation order)."""
    path = path or LinearPath()
    device = next(field.parameters()).device
    if distributed is not None:
        return _sharded_mnist_loss(field, x_train, batch, path, ot, generator, distributed)

    def loss_fn(step: int) -> Tensor:
        idx = torch.randint(len(x_train), (batch,), generator=generator)
        return cfm_loss(field, x_train[idx].to(device), path, coupling=ot_coupling if ot else None,
                        reduce_dims="mean")

    return loss_fn


def _sharded_mnist_loss(field, x_train, batch, path, ot, generator, distributed):
    part = distributed.shard.part(batch, "batch")  # ValueError unless the world size divides batch
    if path.sigma > 0:
        raise ValueError(f"distributed training needs a path without extra noise (sigma = 0), got {path!r}")
    forward, device = distributed.wrap(field), next(field.parameters()).device

    def loss_fn(step: int) -> Tensor:
        x1 = x_train[torch.randint(len(x_train), (batch,), generator=generator)]  # the global batch
        x0 = torch.randn(x1.shape, dtype=x1.dtype)  # what cfm_loss draws when not given, in the same order
        if ot:
            x0, x1 = ot_coupling(x0, x1)
        t = torch.rand(batch, dtype=x1.dtype)
        return cfm_loss(forward, x1[part].to(device), path, x0=x0[part].to(device), t=t[part].to(device),
                        reduce_dims="mean")

    return loss_fn


@torch.no_grad()
def heldout_cfm(field: nn.Module, x_eval: Tensor, path: AffinePath | None = None, seed: int = 0,
                batch: int = 500) -> float:
    """Mean CFM loss (per pixel) on held-out images, with t and x₀ fixed by ``seed``, so two
    fields are compared on the same draws."""
    path = path or LinearPath()
    g = torch.Generator().manual_seed(seed)
    device = next(field.parameters()).device
    total = 0.0
    for chunk in x_eval.split(batch):
        x0 = torch.randn(chunk.shape, generator=g)
        t = torch.rand(chunk.shape[0], generator=g)
        total += float(cfm_loss(field, chunk.to(device), path, x0=x0.to(device), t=t.to(device),
                                reduce_dims="mean")) * len(chunk)
    return total / len(x_eval)


def from_checkpoint(ckpt: Checkpoint, device) -> MLPImageField:
    """The ``MLPImageField`` of a ``"fm_image_field"`` checkpoint, float32, in eval mode, on ``device``."""
    if ckpt.kind != KIND:
        raise ValueError(f"expected a {KIND!r} checkpoint, got {ckpt.kind!r}")
    field = MLPImageField(**ckpt.config)
    field.load_state_dict(ckpt.state["model"])
    return field.to(device).eval()


__all__ = ["EULER_STEPS", "KIND", "CurvePoint", "QualityRow", "TrainResult", "as_signed_tensor", "flow_straightness",
           "fm_flow", "from_checkpoint", "heldout_cfm", "mnist_loss", "quality_vs_nfe", "signed_to_display",
           "train_ffjord_curve", "train_fm", "trajectory_gif"]
