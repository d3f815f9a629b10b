"""Lesson 05's recipes: the spiral data and its training, solver error/NFE, adjoint memory.

Notebook 05 and ``benchmarks/bench_neural_ode.py`` call the same code, so the numbers a
student sees and the ones in the benchmark table come from one place. The formulas
(``NeuralODE``, ``euler_resnet``, the fields, ``solve_adjoint``) are in
:mod:`coursekit.continuous`.

Taught in: notebook 05.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..continuous import NeuralODE, ODEFunc, SpiralField, euler_resnet
from ..core.checks import positive_int
from ..core.history import History
from ..training.loop import fit
from ..training.memory import measure_peak_memory


@dataclass
class SpiralData:
    """A trajectory of the true spiral ``dh/dt = (h**3) Aᵀ`` and its noisy observations."""

    t: Tensor  # (n,)
    true: Tensor  # (n, 2)
    observed: Tensor  # (n, 2) = true + noise


def spiral_data(n: int = 1000, t_max: float = 25.0, noise: float = 0.05, seed: int = 0,
                dtype: torch.dtype = torch.float32) -> SpiralData:
    """The classic Neural-ODE demo data: ``h(0) = (2, 0)`` integrated to ``t_max``, plus noise."""
    if n < 2 or t_max <= 0 or noise < 0:
        raise ValueError(f"need n >= 2, t_max > 0, noise >= 0; got n={n}, t_max={t_max}, noise={noise}")
    t = torch.linspace(0.0, t_max, n, dtype=torch.float64)
    with torch.no_grad():
        true = NeuralODE(SpiralField(), rtol=1e-8, atol=1e-8)(torch.tensor([[2.0, 0.0]], dtype=torch.float64), t)[:, 0]
    g = torch.Generator().manual_seed(seed)
    observed = true + noise * torch.randn(true.shape, generator=g, dtype=torch.float64)
    return SpiralData(t.to(dtype), true.to(dtype), observed.to(dtype))


def spiral_batch(data: SpiralData, window: int = 10, batch_size: int = 16,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Random windows of ``window`` observed instants: ``(h0 (B, 2), t (window,), target (window, B, 2))``.

    Short windows keep each solve cheap and the loss well conditioned (a single solve over
    the whole spiral from one start point is a much harder optimization problem).
    """
    n = data.t.shape[0]
    if not 2 <= window < n:
        raise ValueError(f"window must be in [2, {n - 1}], got {window}")
    start = torch.randint(0, n - window, (batch_size,), generator=generator)
    idx = start[None, :] + torch.arange(window)[:, None]  # (window, B)
    target = data.observed[idx]  # (window, B, 2)
    return target[0], data.t[:window] - data.t[0], target


@dataclass
class SpiralRun:
    """A Neural ODE trained on the spiral, its logged loss and forward NFE per step, and snapshots."""

    model: NeuralODE
    history: History  # "loss" (mean |pred − target|) and "nfe" (forward NFE) per step
    snapshots: dict[int, Tensor] = field(default_factory=dict)  # step -> trajectory from h(0), (n, 2)
    seconds: float = 0.0  # wall time of the training loop


def train_spiral(data: SpiralData, n_steps: int = 1500, rtol: float = 1e-4, atol: float = 1e-4, lr: float = 1e-3,
                 window: int = 10, batch_size: int = 16, snapshot_steps: Iterable[int] = (), seed: int = 0,
                 device: torch.device | str = "cpu", progress: bool = True) -> SpiralRun:
    """Fit ``ODEFunc`` (the ``h**3`` input of the true spiral) to random windows, dopri5 + RMSprop.

    At each step in ``snapshot_steps`` (before its update) the whole trajectory from the true
    ``h(0)`` is recorded, to watch the fit improve.
    """
    positive_int(n_steps, "n_steps")
    torch.manual_seed(seed)
    model = NeuralODE(ODEFunc(dim=2, hidden=50, cubic=True).to(device), method="dopri5", rtol=rtol, atol=atol)
    opt = torch.optim.RMSprop(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    t_all, h_start = data.t.to(device), data.true[:1].to(device)
    snapshot_steps, snapshots = set(snapshot_steps), {}

    def loss_fn(step: int):
        if step in snapshot_steps:
            with torch.no_grad():
                snapshots[step] = model(h_start, t_all)[:, 0].cpu()
        h0, t, target = spiral_batch(data, window, batch_size, gen)
        loss = (model(h0.to(device), t.to(device)) - target.to(device)).abs().mean()
        return {"loss": loss, "nfe": torch.tensor(float(model.nfe_forward))}

    t0 = time.perf_counter()
    history = fit(loss_fn, model, opt, n_steps=n_steps, progress=progress, desc="espiral")
    return SpiralRun(model, history, snapshots, time.perf_counter() - t0)


@dataclass
class SolverRow:
    method: str
    setting: str  # steps or tolerance
    nfe: int
    error: float  # max |h(T) − reference|


def solver_table(field: nn.Module, h0: Tensor, t1: float, steps: tuple[int, ...] = (10, 40),
                 tolerances: tuple[float, ...] = (1e-3, 1e-6)) -> list[SolverRow]:
    """Error at ``t1`` and NFE of a ResNet (Euler steps), euler, rk4 and dopri5.

    The reference solution is dopri5 at ``rtol = atol = 1e-10`` in float64.
    """
    field = field.double()
    h0 = h0.double()
    ref = NeuralODE(field, rtol=1e-10, atol=1e-10)
    with torch.no_grad():
        h_ref = ref(h0, [0.0, t1])[-1]
        rows = []
        for n in steps:
            h = euler_resnet(field, h0, 0.0, t1, n)
            rows.append(SolverRow("ResNet (h ← h + Δt·f)", f"{n} bloques", n, (h - h_ref).abs().max().item()))
            for method in ("euler", "rk4"):
                ode = NeuralODE(field, method=method, options=dict(step_size=t1 / n))
                h = ode(h0, [0.0, t1])[-1]
                rows.append(SolverRow(method, f"{n} pasos", ode.nfe_forward, (h - h_ref).abs().max().item()))
        for tol in tolerances:
            ode = NeuralODE(field, method="dopri5", rtol=tol, atol=tol)
            h = ode(h0, [0.0, t1])[-1]
            rows.append(SolverRow("dopri5", f"tol {tol:.0e}", ode.nfe_forward, (h - h_ref).abs().max().item()))
    return rows


@dataclass
class MemoryRow:
    steps: int
    direct_bytes: int
    adjoint_bytes: int
    direct_s: float
    adjoint_s: float
    nfe_forward: int
    nfe_backward_adjoint: int
    how: str


def _sync(device: torch.device | str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def adjoint_memory_table(field: nn.Module, h0: Tensor, step_counts: tuple[int, ...] = (10, 40, 160),
                         t1: float = 1.0, device: torch.device | str = "cpu") -> list[MemoryRow]:
    """Peak memory and time of one forward+backward, backprop-through-solver vs adjoint.

    rk4 with a fixed number of steps, so both modes do the same forward work and the
    step count is the variable: direct memory grows with it, the adjoint's stays flat.
    """
    field = field.to(device)
    h0 = h0.to(device)
    warm = NeuralODE(field, method="rk4", options=dict(step_size=t1))  # first-call costs out of the numbers
    measure_peak_memory(lambda: warm(h0, [0.0, t1])[-1].sum().backward(), device)
    field.zero_grad(set_to_none=True)
    rows = []
    for n in step_counts:
        out = {}
        for adjoint in (False, True):
            ode = NeuralODE(field, method="rk4", adjoint=adjoint, options=dict(step_size=t1 / n))

            def run(ode=ode):
                ode(h0, [0.0, t1])[-1].pow(2).sum().backward()

            mem = measure_peak_memory(run, device)  # the tracker slows ops down: time a second, untracked run
            field.zero_grad(set_to_none=True)
            _sync(device)
            t0 = time.perf_counter()
            run()
            _sync(device)
            out[adjoint] = (mem, time.perf_counter() - t0, ode.nfe_forward, ode.nfe_backward)
            field.zero_grad(set_to_none=True)
        (d, d_s, nfe_f, _), (a, a_s, _, nfe_b) = out[False], out[True]
        rows.append(MemoryRow(n, d.peak_bytes, a.peak_bytes, d_s, a_s, nfe_f, nfe_b, d.how))
    return rows


__all__ = ["MemoryRow", "SolverRow", "SpiralData", "SpiralRun", "adjoint_memory_table", "solver_table",
           "spiral_batch", "spiral_data", "train_spiral"]
