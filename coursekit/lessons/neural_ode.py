"""Lesson 05's recipes: the spiral data and its training, solver error/NFE, RK4's two tableaus, adjoint memory.

Notebook 05 and ``benchmarks/bench_neural_ode.py`` call the same code, so the numbers a
student sees and the ones in the benchmark table come from one place. The formulas
(``NeuralODE``, ``euler_resnet``, the fields, ``solve_adjoint``) are in
:mod:`coursekit.continuous`.

Taught in: notebook 05.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torchdiffeq import odeint

from ..continuous import LinearField, MLPField, NeuralODE, ODEFunc, SpiralField, euler_resnet, solve_adjoint
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
    note: str = ""  # what the solver warned about, in Spanish (empty if nothing)


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


#: torchdiffeq's fixed-step multistep methods; ``max_order = k + 1`` makes them use the last ``k`` values of f
MULTISTEP = {"explicit_adams": "Adams–Bashforth", "implicit_adams": "Adams–Bashforth–Moulton"}


def multistep_table(field: nn.Module, h0: Tensor, t1: float, steps: tuple[int, ...] = (10, 40, 160),
                    order: int = 4, default_order_steps: int | None = 40) -> list[SolverRow]:
    """Error at ``t1`` and NFE of rk4 against torchdiffeq's Adams methods on a fixed grid of ``n`` steps.

    ``explicit_adams`` is Adams–Bashforth: each step reuses the last ``order`` values of f (one new
    evaluation per step, after an RK4 start); ``implicit_adams`` adds the Adams–Moulton corrector
    (fixed-point iterations, more evaluations). Both are run with ``max_order = order + 1``; with
    ``default_order_steps`` a last row runs ``explicit_adams`` with torchdiffeq's default (up to 11
    past values) on that many steps. Reference: dopri5 at ``rtol = atol = 1e-10`` in float64.
    """
    if not isinstance(order, int) or not 3 <= order <= 11:
        raise ValueError(f"order must be an int in [3, 11] (torchdiffeq's Adams methods), got {order!r}")
    for n in steps:
        positive_int(n, "steps")
    field, h0 = field.double(), h0.double()
    with torch.no_grad():
        h_ref = NeuralODE(field, rtol=1e-10, atol=1e-10)(h0, [0.0, t1])[-1]
        runs = [(m, n, {"max_order": order + 1}) for n in steps for m in ("rk4", *MULTISTEP)]
        if default_order_steps is not None:
            runs.append(("explicit_adams", positive_int(default_order_steps, "default_order_steps"), {}))
        rows = []
        for method, n, extra in runs:
            options = {"step_size": t1 / n, **(extra if method != "rk4" else {})}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ode = NeuralODE(field, method=method, options=options)
                h = ode(h0, [0.0, t1])[-1]
            label = method if method == "rk4" else f"{method} ({MULTISTEP[method]})"
            setting = f"{n} pasos" + ("" if method == "rk4" else
                                     f", {order} valores pasados" if extra else ", por defecto (hasta 11)")
            note = ("el corrector no convergió en algún paso"
                    if any("did not converge" in str(w.message) for w in caught) else "")
            err = (h - h_ref).abs().max().item()
            if err != err:  # NaN: the method left its stability region and blew up
                err, note = float("inf"), "inestable: el resultado es NaN"
            rows.append(SolverRow(label, setting, ode.nfe_forward, err, note))
    return rows


_RK4_RULES = {
    # (stage times c, stage coefficients a_ij, weights b): dh = dt·Σ b_i k_i, k_i = f(t + c_i·dt, h + dt·Σ a_ij k_j)
    "classic": ((0.0, 0.5, 0.5, 1.0), ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), (1 / 6, 1 / 3, 1 / 3, 1 / 6)),
    "3/8": ((0.0, 1 / 3, 2 / 3, 1.0), ((), (1 / 3,), (-1 / 3, 1.0), (1.0, -1.0, 1.0)), (1 / 8, 3 / 8, 3 / 8, 1 / 8)),
}


def rk4_step(field: nn.Module, t: float | Tensor, h: Tensor, dt: float, rule: str = "classic") -> Tensor:
    """One Runge–Kutta step of order 4, ``h(t) → h(t + dt)`` (``dt < 0`` integrates backwards).

    ``rule="classic"`` is the textbook tableau (stages at t, t + dt/2, t + dt/2, t + dt; weights
    1/6, 1/3, 1/3, 1/6). ``rule="3/8"`` is Kutta's 3/8 rule (stages at t, t + dt/3, t + 2dt/3,
    t + dt; weights 1/8, 3/8, 3/8, 1/8), which is what torchdiffeq's ``method="rk4"`` takes.
    Both have order 4: on a field affine in ``(t, h)`` they give the same step; on others
    they differ by O(dt⁵) per step.
    """
    if rule not in _RK4_RULES:
        raise ValueError(f"rule must be one of {sorted(_RK4_RULES)}, got {rule!r}")
    c, a, b = _RK4_RULES[rule]
    t = float(t)
    ks: list[Tensor] = []
    for ci, ai in zip(c, a):
        hi = h + dt * sum((aij * kj for aij, kj in zip(ai, ks)), torch.zeros_like(h))
        ks.append(field(torch.tensor(t + ci * dt, dtype=h.dtype, device=h.device), hi))
    return h + dt * sum((bi * ki for bi, ki in zip(b, ks)), torch.zeros_like(h))


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


# --- notebook 05's "Escríbelo tú" checks: the cases its cells run and the references they compare with ---------


def _seeded(build, seed: int):
    """``build()`` with torch's global generator seeded, leaving the caller's random state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def one_step_reference(method: str):
    """``(f, t, h, dt) -> h(t + dt)``: one step of torchdiffeq's ``odeint`` with a fixed-step ``method``."""
    def step(f, t, h, dt):
        times = torch.tensor([float(t), float(t) + float(dt)], dtype=h.dtype, device=h.device)
        return odeint(f, h, times, method=method)[-1]

    return step


def step_cases(nonlinear: bool = False) -> list[tuple[str, tuple]]:
    """Cases ``(label, (f, t, h, dt))`` for one Euler or RK4 step, in float64.

    Fields affine in ``(t, h)``, where the classic RK4 and torchdiffeq's 3/8 rule take exactly the
    same step: autonomous, time-dependent (an RK4 stage evaluated at the wrong time shows), and
    backwards (``dt < 0``). ``nonlinear=True`` adds an MLP field (for Euler, on which all agree).
    """
    g = torch.Generator().manual_seed(0)
    A = torch.randn(3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(3, generator=g, dtype=torch.float64)
    h = torch.randn(4, 3, generator=g, dtype=torch.float64)

    def affine(t, x):
        return x @ A.T + t * b

    cases = [("campo lineal autónomo, t = 0, Δt = 0.5", (LinearField(A), 0.0, h, 0.5)),
             ("campo afín en t, t = 0.7, Δt = 0.3", (affine, 0.7, h, 0.3)),
             ("hacia atrás: campo afín, t = 1, Δt = −0.4", (affine, 1.0, h, -0.4))]
    if nonlinear:
        mlp = _seeded(lambda: MLPField(3, hidden=16, n_layers=2).double(), 0)
        cases.append(("campo no lineal (MLP), t = 0.2, Δt = 0.1", (mlp, 0.2, h, 0.1)))
    return cases


def adjoint_reference(field: nn.Module, hT: Tensor, T: float) -> Tensor:
    """``∂L/∂h(0)`` for ``L = ½‖h(T)‖²`` (so ``a(T) = h(T)``), by :func:`solve_adjoint` at tight tolerances."""
    return solve_adjoint(field, hT, hT, [float(T), 0.0], rtol=1e-10, atol=1e-10).a[-1]


def adjoint_cases() -> list[tuple[str, tuple]]:
    """Cases ``(label, (field, hT, T))`` for the adjoint written by hand, in float64.

    A linear field with a non-normal ``A`` (``A Aᵀ ≠ Aᵀ A``: ``a Aᵀ`` instead of ``a A`` shows), at
    two horizons, and an MLP field, whose Jacobian changes along the path (``h`` must be
    re-integrated backwards, not frozen at ``h(T)``).
    """
    A = torch.tensor([[0.2, 1.5], [-0.4, -0.3]], dtype=torch.float64)
    mlp = _seeded(lambda: MLPField(2, hidden=16, n_layers=2).double(), 1)
    hT = torch.randn(3, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return [("campo lineal no normal, T = 1", (LinearField(A), hT, 1.0)),
            ("campo lineal no normal, T = 2.5", (LinearField(A), hT, 2.5)),
            ("campo no lineal (MLP), T = 1", (mlp, hT, 1.0))]


__all__ = ["MULTISTEP", "MemoryRow", "SolverRow", "SpiralData", "SpiralRun", "adjoint_cases", "adjoint_memory_table",
           "adjoint_reference", "multistep_table", "one_step_reference", "rk4_step", "solver_table", "spiral_batch",
           "spiral_data", "step_cases", "train_spiral"]
