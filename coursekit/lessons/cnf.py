"""Lesson 06's recipes: FFJORD on 2-D toy data (build, train, evaluate, rebuild a checkpoint),
the trace's cost against the dimension, and the density over time.

The FFJORD model is the lecture's continuous change of variables written as a flow,
``Flow(StandardNormal(2), CNF(MLPField(2, ...)))``, trained by maximum likelihood

    min_θ  E_{x ~ data} [ −log p_1(x; θ) ],   log p_1(x) = log p_0(z) − ∫_0^1 tr(∂f/∂x) dt

through the adjoint. One :func:`train_ffjord`, so that notebook 06, its benchmark and
lesson 07's comparison (flow matching vs FFJORD on the same data) run the same recipe.
The shipped ``ffjord_<set>.pt`` checkpoints (kind ``"ffjord"``) come from
``scripts/train_ffjord.py``; :func:`from_checkpoint` rebuilds them.

Taught in: notebook 06 (the baseline of notebook 07).
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from ..continuous import CNF, AugmentedDynamics, LinearField, MLPField, divergence_exact, divergence_hutchinson
from ..core.checks import one_of, positive_int
from ..core.fields import hutchinson_probe
from ..core.history import History
from ..data import sample_toy
from ..flows import Flow, StandardNormal
from ..training.checkpoints import Checkpoint
from ..training.loop import fit

if TYPE_CHECKING:
    from ..training.distributed import Distributed


def make_ffjord(dim: int = 2, hidden: int = 64, n_layers: int = 3, activation: str = "tanh",
                divergence: str = "exact", rtol: float = 1e-3, atol: float = 1e-3, adjoint: bool = True,
                method: str = "dopri5") -> Flow:
    """The course's FFJORD: ``Flow(StandardNormal(dim), CNF(MLPField(dim, ...)))``, solved with the adjoint."""
    cnf = CNF(MLPField(dim, hidden, n_layers, activation), divergence=divergence, method=method, rtol=rtol,
              atol=atol, adjoint=adjoint)
    return Flow(StandardNormal(dim), cnf)


def cnf_layers(model: nn.Module) -> list[CNF]:
    """The ``CNF`` layers inside ``model`` (a ``Flow``, a ``Compose``, a ``CNF``); ``TypeError`` if none."""
    layers = [m for m in model.modules() if isinstance(m, CNF)]
    if not layers:
        raise TypeError(f"expected a model with a CNF inside (e.g. make_ffjord()), got {type(model).__name__}")
    return layers


def nfe(model: nn.Module) -> int:
    """Evaluations of the dynamics in the last solve of every ``CNF`` layer of ``model``."""
    return sum(cnf.nfe for cnf in cnf_layers(model))


@torch.no_grad()
def evaluate_nll(model: Flow, x: Tensor, batch_size: int = 2500, rtol: float = 1e-5,
                 atol: float = 1e-5) -> tuple[float, int]:
    """Mean ``−log p(x)`` (nats) with the exact trace at tight tolerances; and the NFE per batch.

    ``model`` is a ``Flow`` whose transform holds CNF layers; their settings are restored after.
    """
    layers = cnf_layers(model)
    saved = [(c.divergence, c.rtol, c.atol) for c in layers]
    for c in layers:
        c.divergence, c.rtol, c.atol = "exact", rtol, atol
    try:
        total, most = 0.0, 0
        for chunk in x.split(batch_size):
            total += -model.log_prob(chunk).sum().item()
            most = max(most, nfe(model))
    finally:
        for c, (div, r, a) in zip(layers, saved):
            c.divergence, c.rtol, c.atol = div, r, a
    return total / x.shape[0], most


@dataclass
class FFJORDResult:
    """A trained FFJORD ``Flow`` and the numbers a benchmark reports about it."""

    model: Flow
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


def train_ffjord(dataset: str = "8gaussians", n_steps: int = 1000, batch_size: int = 512, lr: float = 3e-3,
                 hidden: int = 64, n_layers: int = 3, activation: str = "tanh", divergence: str = "exact",
                 rtol: float = 1e-3, atol: float = 1e-3, adjoint: bool = True, n_test: int = 5000,
                 seed: int = 0, checkpoint: str | os.PathLike | None = None, model: Flow | None = None,
                 device: torch.device | str | None = None, progress: bool = True,
                 distributed: Distributed | None = None) -> FFJORDResult:
    """Train FFJORD by maximum likelihood on ``sample_toy(dataset)`` and evaluate it.

    Each step draws a fresh batch (the toy sets are infinite); the test NLL is measured
    on ``n_test`` samples from a separate generator (seed ``seed + 1``), never trained on.
    ``model`` continues training a given FFJORD ``Flow``; ``checkpoint`` makes ``fit`` save / resume.
    Training time counts the optimization only (not the evaluation).

    ``distributed`` (:mod:`coursekit.training.distributed`; ``device`` should be its
    ``device``): ``batch_size`` is the global batch; every rank draws the whole batch from the
    same generator and keeps its share, ``log_prob`` running through DDP. The run means the
    same at any world size, but agrees only to the solver's tolerance, not to rounding: an
    adaptive solver picks its steps from the error norm of the batch it solves (each rank's
    share). With ``divergence="hutchinson"`` each rank also draws its own probes (still
    unbiased). Only rank 0 evaluates; the other ranks return ``test_nll = nan``.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    torch.manual_seed(seed)
    if model is None:
        model = make_ffjord(2, hidden, n_layers, activation, divergence, rtol, atol, adjoint)
    cnf_layers(model)
    model = model.to(device)
    part = distributed.shard.part(batch_size, "batch_size") if distributed is not None else slice(None)
    log_prob = distributed.wrap(model, "log_prob") if distributed is not None else model.log_prob
    gen = torch.Generator().manual_seed(seed)
    x_test = sample_toy(dataset, n_test, torch.Generator().manual_seed(seed + 1)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(n_steps, 1), eta_min=lr / 10)
    nfe_f: list[int] = []
    nfe_b: list[int] = []

    def loss_fn(step: int):
        if nfe_f and len(nfe_b) < len(nfe_f):  # the previous step's backward has run by now
            nfe_b.append(nfe(model) - nfe_f[-1])
        x = sample_toy(dataset, batch_size, gen)[part].to(device)  # this rank's share of the batch
        loss = -log_prob(x).mean()
        nfe_f.append(nfe(model))
        return {"loss": loss, "nfe": torch.tensor(float(nfe_f[-1]))}

    t0 = time.perf_counter()
    history = fit(loss_fn, model, opt, n_steps, scheduler=sched, checkpoint=checkpoint,
                  checkpoint_every=max(n_steps // 10, 1), progress=progress, desc=f"FFJORD {dataset}",
                  generators=[gen], distributed=distributed)
    if nfe_f and len(nfe_b) < len(nfe_f):
        nfe_b.append(nfe(model) - nfe_f[-1])
    train_time = time.perf_counter() - t0
    if distributed is not None and not distributed.is_main:
        return FFJORDResult(model, dataset, history, train_time, float("nan"), nfe_f, nfe_b)
    model.eval()
    nll, nfe_test = evaluate_nll(model, x_test)
    with torch.no_grad():
        model.sample(1000)
    return FFJORDResult(model, dataset, history, train_time, nll, nfe_f, nfe_b, nfe_test, nfe(model),
                        sum(p.numel() for p in model.parameters()))


def from_checkpoint(ckpt: Checkpoint, device: torch.device | str = "cpu") -> Flow:
    """The FFJORD ``Flow`` of a kind-``"ffjord"`` checkpoint: ``make_ffjord(**config)`` + the field's weights."""
    if ckpt.kind != "ffjord" or "field" not in ckpt.state:
        raise ValueError(f"{ckpt.path} is not an FFJORD checkpoint (kind 'ffjord' with a 'field' state)")
    model = make_ffjord(**ckpt.config)
    model.transform.field.load_state_dict(ckpt.state["field"])
    return model.to(device).eval()


@dataclass
class TraceCost:
    """Median seconds per divergence evaluation at each dimension, and log-log slopes."""

    dims: list[int]
    exact_s: list[float]
    hutchinson_s: list[float]
    slope_exact: float  # fitted on the dimensions ≥ fit_from
    slope_hutchinson: float
    fit_from: int

    @property
    def ratios(self) -> list[float]:
        return [e / h for e, h in zip(self.exact_s, self.hutchinson_s)]


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def loglog_slope(x: list[float], y: list[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x``: the exponent ``k`` in ``y ∝ x^k``."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def trace_cost(dims: tuple[int, ...] = (2, 8, 32, 128, 512), batch: int = 64, hidden: int | None = 64,
               repeats: int = 5, fit_from: int = 32, device: torch.device | str = "cpu",
               seed: int = 0, training: bool = False) -> TraceCost:
    """Time ``tr(∂f/∂x)`` exactly (D vector-Jacobian products) vs Hutchinson (one) for an MLP field.

    ``hidden`` is the MLP's width; ``None`` makes it grow with the dimension (``hidden = D``).
    ``training=False`` times the divergence alone (as in evaluation); ``training=True`` keeps
    it differentiable and includes the backward pass through it (as in a training step).
    """
    torch.manual_seed(seed)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    exact, hutch = [], []
    for d in dims:
        f = MLPField(d, hidden=d if hidden is None else hidden, n_layers=2).to(device)
        x = torch.randn(batch, d, device=device)
        t = torch.tensor(0.5, device=device)
        eps = hutchinson_probe(x)

        def run(divergence, f=f, t=t, x=x, eps=eps):
            div = divergence_exact(f, t, x, create_graph=training) if divergence == "exact" else \
                divergence_hutchinson(f, t, x, eps, create_graph=training)
            if training:
                div.sum().backward()
            sync()

        exact.append(_median_time(lambda run=run: run("exact"), repeats))
        hutch.append(_median_time(lambda run=run: run("hutchinson"), repeats))
    big = [i for i, d in enumerate(dims) if d >= fit_from] or list(range(len(dims)))
    dims_big = [dims[i] for i in big]
    return TraceCost(list(dims), exact, hutch, loglog_slope(dims_big, [exact[i] for i in big]),
                     loglog_slope(dims_big, [hutch[i] for i in big]), fit_from)


@torch.no_grad()
def density_over_time(model: Flow, points: Tensor, times: list[float] | Tensor,
                      batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """``log p_t`` and ``tr(∂f/∂x)(t, ·)`` at fixed ``points`` for each time: two ``(len(times), N)`` arrays.

    ``model`` is ``Flow(base, CNF(field))``; ``log p_t(x)`` integrates from ``t`` down to 0
    (one solve per time, :meth:`CNF.log_prob_at`); the divergence is the integrand of the
    log-determinant, evaluated without any solve.
    """
    cnf = model.transform
    if not isinstance(cnf, CNF):
        raise TypeError(f"model must be Flow(base, CNF(field)), got a transform {type(cnf).__name__}")
    logps, divs = [], []
    for t in [float(v) for v in times]:
        lp = torch.cat([cnf.log_prob_at(chunk, t, model.base) for chunk in points.split(batch_size)])
        tt = torch.tensor(t, dtype=points.dtype, device=points.device)
        dv = torch.cat([divergence_exact(cnf.field, tt, chunk) for chunk in points.split(batch_size)])
        logps.append(lp.cpu().numpy())
        divs.append(dv.cpu().numpy())
    return np.stack(logps), np.stack(divs)


@dataclass
class AdjointRow:
    """One CNF training gradient ``∇_θ E[−log p(x)]`` by backprop through the solver and by the adjoint."""

    n_steps: int          # fixed rk4 steps from t = 1 to 0 (both modes do the same forward work)
    grad_rel_diff: float  # ‖g_adjoint − g_direct‖ / ‖g_direct‖ over all parameters
    direct_bytes: int     # peak tensor memory of one forward + backward
    adjoint_bytes: int
    direct_s: float       # wall time of one forward + backward (untracked run)
    adjoint_s: float
    nfe_backward: int     # evaluations of the dynamics in the adjoint's backward solve
    how: str              # how memory was measured ("cuda allocator" / "tensor tracker")


def adjoint_vs_backprop(field: nn.Module, x: Tensor, step_counts: tuple[int, ...] = (8, 32),
                        divergence: str = "exact", device: torch.device | str = "cpu") -> list[AdjointRow]:
    """The CNF loss ``−mean log p(x)`` of ``Flow(StandardNormal(D), CNF(field))`` and its gradient, with and
    without the adjoint (``odeint_adjoint`` vs ``odeint``), rk4 with ``n`` fixed steps for each ``n``.

    Same parameters, same data, same ε (Hutchinson): the gradients agree up to the solver's error, while the
    memory of backprop grows with the steps and the adjoint's does not (its price: a second, backward solve).
    """
    from ..training.memory import measure_peak_memory

    one_of(divergence, ("exact", "hutchinson"), "divergence")
    field, x = field.to(device), x.to(device)
    params = [p for p in field.parameters() if p.requires_grad]
    if not params:
        raise ValueError("field has no trainable parameters: there is no gradient to compare")
    rows = []
    for n in step_counts:
        n = positive_int(n, "step count")
        grads, mems, secs, nfe_b = {}, {}, {}, 0
        for adjoint in (False, True):
            cnf = CNF(field, divergence=divergence, method="rk4", adjoint=adjoint, options=dict(step_size=1.0 / n))
            flow = Flow(StandardNormal(cnf.dim), cnf)

            def run(flow=flow):
                torch.manual_seed(0)  # the same ε in both modes (Hutchinson)
                loss = -flow.log_prob(x).mean()
                return torch.autograd.grad(loss, params)

            mems[adjoint] = measure_peak_memory(run, device)
            t0 = time.perf_counter()
            grads[adjoint] = run()
            if device != "cpu" and torch.device(device).type == "cuda":
                torch.cuda.synchronize(device)
            secs[adjoint] = time.perf_counter() - t0
            if adjoint:
                nfe_b = cnf.nfe
        g_d = torch.cat([g.reshape(-1) for g in grads[False]])
        g_a = torch.cat([g.reshape(-1) for g in grads[True]])
        rows.append(AdjointRow(n, ((g_a - g_d).norm() / g_d.norm()).item(), mems[False].peak_bytes,
                               mems[True].peak_bytes, secs[False], secs[True], nfe_b, mems[False].how))
    return rows


@dataclass
class DensityEvolution:
    """:func:`density_over_time` on a grid plus the field's arrows: what notebook 06's slider and GIF show.

    ``logp`` and ``div`` are ``(len(times), n·n)``; ``mass`` is ``Σ p_t · cell area`` per time (≈ 1 when the
    window holds the density); ``arrows`` is ``(len(times), M, 2)``, ``f(t, ·)`` at ``arrow_points`` ``(M, 2)``.
    """

    times: np.ndarray
    logp: np.ndarray
    div: np.ndarray
    mass: np.ndarray
    bounds: tuple[float, float, float, float]
    n: int
    arrow_points: np.ndarray
    arrows: np.ndarray


@torch.no_grad()
def density_evolution(model: Flow, grid, times, arrow_grid) -> DensityEvolution:
    """``log p_t``, ``tr(∂f/∂x)(t, ·)`` and the mass on ``grid`` and ``f(t, ·)`` on ``arrow_grid``
    (both :func:`coursekit.viz.make_grid` grids), for each of ``times``."""
    times = np.asarray([float(v) for v in times])
    if len(times) < 1 or not ((times >= 0) & (times <= 1)).all():
        raise ValueError(f"times must be a non-empty list of values in [0, 1], got {times}")
    logp, div = density_over_time(model, grid.points, times)
    field = model.transform.field
    arrows = np.stack([field(torch.tensor(t, dtype=arrow_grid.points.dtype, device=arrow_grid.points.device),
                             arrow_grid.points).cpu().numpy() for t in times])
    return DensityEvolution(times, logp, div, np.exp(logp).sum(1) * grid.cell_area, tuple(grid.bounds), grid.n,
                            arrow_grid.points.cpu().numpy(), arrows)


def evolution_figure(evo: DensityEvolution, figsize: tuple[float, float] = (8.4, 4.0)):
    """Notebook 06's two panels at the first time, moving parts ``animated=True`` (a playground blits them):
    ``p_t`` on the left, the log-determinant's integrand ``tr(∂f/∂x)`` with the arrows of ``f`` on the right.

    Returns ``(fig, draw)``; ``draw({"t": t})`` shows the stored time nearest to ``t`` (also written on the
    figure, so a GIF frame carries it) and returns an HTML status line."""
    import matplotlib.pyplot as plt

    n, times = evo.n, evo.times
    vmax_p, vdiv = float(np.exp(evo.logp).max()), float(np.abs(evo.div).max()) or 1.0
    fig, axes = plt.subplots(1, 2, figsize=figsize)
    img_p = axes[0].imshow(np.exp(evo.logp[0]).reshape(n, n), origin="lower", extent=evo.bounds, cmap="viridis",
                           vmin=0, vmax=vmax_p, animated=True)
    img_d = axes[1].imshow(evo.div[0].reshape(n, n), origin="lower", extent=evo.bounds, cmap="RdBu_r",
                           vmin=-vdiv, vmax=vdiv, animated=True)
    qp = evo.arrow_points
    quiv = axes[1].quiver(qp[:, 0], qp[:, 1], evo.arrows[0][:, 0], evo.arrows[0][:, 1], color="k", alpha=0.6,
                          animated=True)
    label = axes[0].text(0.03, 0.97, "", transform=axes[0].transAxes, color="w", va="top", fontsize=11,
                         animated=True)
    axes[0].set_title("densidad $p_t(x)$")
    axes[1].set_title(r"$\mathrm{tr}(\partial f/\partial x)(t, x)$ y campo $f$")
    fig.colorbar(img_d, ax=axes[1], fraction=0.046)
    fig.tight_layout()

    def draw(params) -> str:
        k = int(np.abs(times - float(params["t"])).argmin())
        img_p.set_data(np.exp(evo.logp[k]).reshape(n, n))
        img_d.set_data(evo.div[k].reshape(n, n))
        quiv.set_UVC(evo.arrows[k][:, 0], evo.arrows[k][:, 1])
        label.set_text(f"t = {times[k]:.2f}")
        return f"t = {times[k]:.2f}<br>masa en la ventana: {evo.mass[k]:.3f}"

    draw({"t": float(times[0])})
    return fig, draw


def evolution_gif(fig, draw, times, path, fps: float = 6.0) -> str:
    """One GIF frame per time: ``draw({"t": t})``, then the whole figure, animated artists included
    (:func:`coursekit.viz.figure_to_array`). No slider moves (the playground on screen stays where it is)."""
    from ..viz.images import figure_to_array, save_gif

    frames = []
    for t in times:
        draw({"t": float(t)})
        frames.append(figure_to_array(fig))
    return save_gif(frames, path, fps=fps)


# --- notebook 06's "Escríbelo tú" checks: the cases its cells run and the references they compare with ---------


def _seeded(build, seed: int):
    """``build()`` with torch's global generator seeded, leaving the caller's random state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


#: a non-symmetric 3×3 matrix with tr A = 0.6: the linear field's divergence, and a Jacobian whose full sum ≠ trace
CHECK_MATRIX = ((0.5, 2.0, 0.0), (-0.3, 0.2, 1.0), (0.4, 0.0, -0.1))


def dynamics_reference(field: nn.Module, t: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """The lecture's ``(dx/dt, d log p/dt) = (f, −tr ∂f/∂x)``: :class:`AugmentedDynamics` (``dℓ/dt = +tr``), negated."""
    dx, dl = AugmentedDynamics(field, divergence="exact")(t, (x, x.new_zeros(x.shape[0])))
    return dx, -dl


def dynamics_cases() -> list[tuple[str, tuple]]:
    """Cases ``(label, (field, t, x))`` for the augmented dynamics, in float64: a linear field with a
    non-symmetric ``A`` (a wrong sign, or the sum of the whole Jacobian, shows) and MLPs in 2-D and 4-D."""
    f64 = torch.float64
    g = torch.Generator().manual_seed(0)
    mlp2 = _seeded(lambda: MLPField(2, hidden=16, n_layers=2).double(), 0)
    mlp4 = _seeded(lambda: MLPField(4, hidden=16, n_layers=2).double(), 1)
    return [("campo lineal 3-D, A no simétrica",
             (LinearField(torch.tensor(CHECK_MATRIX, dtype=f64)), torch.tensor(0.0, dtype=f64),
              torch.randn(4, 3, generator=g, dtype=f64))),
            ("MLP 2-D, t = 0.3, lote de 5",
             (mlp2, torch.tensor(0.3, dtype=f64), torch.randn(5, 2, generator=g, dtype=f64))),
            ("MLP 4-D, t = 0.9, lote de 3",
             (mlp4, torch.tensor(0.9, dtype=f64), torch.randn(3, 4, generator=g, dtype=f64)))]


def hutchinson_reference(field: nn.Module, t: Tensor, x: Tensor, eps: Tensor) -> Tensor:
    """``εᵀ (∂f/∂x) ε`` per sample with the given ``ε``: :func:`divergence_hutchinson`."""
    return divergence_hutchinson(field, t, x, eps)


def hutchinson_cases() -> list[tuple[str, tuple]]:
    """Cases ``(label, (field, t, x, eps))`` with a fixed ``ε`` (Rademacher and Gaussian), in float64."""
    f64 = torch.float64
    g = torch.Generator().manual_seed(0)
    mlp3 = _seeded(lambda: MLPField(3, hidden=16, n_layers=2).double(), 2)
    mlp5 = _seeded(lambda: MLPField(5, hidden=16, n_layers=2).double(), 3)
    t = torch.tensor(0.4, dtype=f64)
    x3, x5 = torch.randn(6, 3, generator=g, dtype=f64), torch.randn(4, 5, generator=g, dtype=f64)
    linear = LinearField(torch.tensor(CHECK_MATRIX, dtype=f64))
    return [("MLP 3-D, ε de Rademacher", (mlp3, t, x3, hutchinson_probe(x3, "rademacher", g))),
            ("MLP 3-D, ε gaussiano", (mlp3, t, x3, hutchinson_probe(x3, "gaussian", g))),
            ("campo lineal 3-D, A no simétrica, ε gaussiano", (linear, t, x3, hutchinson_probe(x3, "gaussian", g))),
            ("MLP 5-D, ε gaussiano", (mlp5, t, x5, hutchinson_probe(x5, "gaussian", g)))]


def all_signs(dim: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """The ``2^dim`` Rademacher vectors ``ε ∈ {−1, +1}^dim``, shape ``(2^dim, dim)``; their mean ``ε εᵀ`` is ``I``."""
    positive_int(dim, "dim")
    return torch.tensor(list(itertools.product([-1.0, 1.0], repeat=dim)), dtype=dtype)


def averaged_over_all_signs(estimator):
    """``(field, t, x) -> mean_ε estimator(field, t, x, ε)`` over the ``2^D`` Rademacher vectors, at one point
    ``x`` of shape ``(1, D)``: exactly ``tr(∂f/∂x)`` for an unbiased estimator (no Monte Carlo)."""
    def run(field, t, x):
        signs = all_signs(x.shape[1], x.dtype).to(x.device)
        return estimator(field, t, x.repeat(len(signs), 1), signs).mean().reshape(1)

    return run


def all_signs_cases() -> list[tuple[str, tuple]]:
    """Cases ``(label, (field, t, x))`` at one point each, for :func:`averaged_over_all_signs`."""
    return [(label.split(",")[0] + f", {2 ** x.shape[1]} vectores ε", (field, t, x[:1]))
            for label, (field, t, x, _) in hutchinson_cases()[1:]]


__all__ = ["CHECK_MATRIX", "AdjointRow", "DensityEvolution", "FFJORDResult", "TraceCost", "all_signs",
           "all_signs_cases", "adjoint_vs_backprop", "averaged_over_all_signs", "cnf_layers", "density_evolution",
           "density_over_time", "dynamics_cases", "dynamics_reference", "evaluate_nll", "evolution_figure",
           "evolution_gif", "from_checkpoint", "hutchinson_cases", "hutchinson_reference", "loglog_slope",
           "make_ffjord", "nfe", "trace_cost", "train_ffjord"]
