"""Lesson 02's recipes: fit planar and radial flows by reverse KL (VI) and by maximum likelihood,
score them, and save or rebuild the shipped ``vi_planar_radial.pt`` (kind ``"vi"``).

The formulas (reverse KL, the annealing weight ``λ_t``, ``log Z``, the walled targets) are in
:mod:`coursekit.flows.vi`; the layers in :mod:`coursekit.flows.planar` and
:mod:`coursekit.flows.radial`.

Reverse KL (VI) trains on samples of the flow and needs only ``f``; forward KL (maximum
likelihood) on data ``x_i ~ p_data`` minimizes ``-mean log q(x_i)``, which needs ``f⁻¹`` on
every step (a root solve per planar layer).

A ``"vi"`` checkpoint holds one flow per key ``"{kind}-{U}-K{n_layers}"``: ``state[key]`` is
its state dict, ``config[key]`` what rebuilds it (``kind``, ``energy``, ``n_layers``) and
``meta["models"][key]`` its score and training curve; the rest of ``meta`` says how it was
trained. :func:`from_checkpoint` gives ``{key: TrainedFlow}``.

The cells the student writes (û, the planar layer, the reverse-KL estimate) are checked
(``coursekit.exercises.check``) against :func:`u_hat_reference`, :func:`planar_reference` and
:func:`reverse_kl_reference` on :func:`u_hat_cases`, :func:`planar_cases` and
:func:`reverse_kl_cases`, chosen so that each typical mistake fails on a case of its own.

Taught in: notebook 02.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import contourpy
import numpy as np
import torch
from torch import Tensor

from .. import seed_everything
from ..core.checks import finite_float, one_of, positive_int
from ..flows.base import Compose, Flow, StandardNormal
from ..flows.planar import Planar
from ..flows.radial import Radial
from ..flows.vi import Energy, annealing_weight, as_energy, log_partition, reverse_kl_loss
from ..training import checkpoints
from ..training.loop import History, fit
from ..viz import make_grid

KINDS = ("planar", "radial")


def make_flow(kind: str, n_layers: int, dim: int = 2, seed: int | None = 0) -> Flow:
    """``N(0, I)`` pushed through ``n_layers`` planar or radial layers (random init from ``seed``)."""
    one_of(kind, KINDS, "kind")
    positive_int(n_layers, "n_layers")
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    if kind == "planar":
        layers = [Planar(dim, generator=g) for _ in range(n_layers)]
    else:
        # centres spread over the target's scale, so each radial layer has its own region
        layers = [Radial(dim, z0=1.5 * torch.randn(dim, generator=g), alpha=1.0, beta=0.0)
                  for _ in range(n_layers)]
    return Flow(StandardNormal(dim), Compose(layers))


@dataclass
class VIScore:
    """Reverse KL ``KL(q ‖ p)`` (nats), ``ELBO`` and ``log Z``; ``stderr`` of the MC estimate."""

    kl: float
    elbo: float
    log_z: float
    stderr: float

    def __str__(self) -> str:
        return f"KL(q‖p) = {self.kl:.3f} ± {self.stderr:.3f} nats, ELBO = {self.elbo:.3f} (log Z = {self.log_z:.3f})"


@torch.no_grad()
def score_reverse_kl(flow: Flow, energy: str | Energy, n: int = 20_000, log_z: float | None = None) -> VIScore:
    """Fresh-sample estimate of ``KL(q ‖ p) = E_q[log q + U] + log Z`` and the ELBO."""
    U = as_energy(energy)
    log_z = log_partition(U) if log_z is None else log_z
    x, log_q = flow.sample_and_log_prob(n)
    terms = (log_q + U(x)).double()
    elbo = -float(terms.mean())
    return VIScore(kl=log_z - elbo, elbo=elbo, log_z=log_z, stderr=float(terms.std() / math.sqrt(n)))


def fit_reverse_kl(flow: Flow, energy: str | Energy, n_steps: int, *, batch: int = 256, lr: float = 5e-3,
                   anneal_steps: int | None = None, cosine: bool = False,
                   checkpoint: str | os.PathLike | None = None, progress: bool = True) -> History:
    """Minimize ``E_q[log q + λ_t U]`` with Adam (:func:`coursekit.training.fit`: checkpoints, NaN guard).

    ``λ_t = annealing_weight(t, anneal_steps)`` is the annealing weight (the notebook writes it
    ``λ_t``, not ``β_t``: ``β`` already names the radial layer's parameter).

    ``cosine`` decays the learning rate to 0 over ``n_steps`` (a cleaner final fit). Logs
    ``loss`` (the annealed objective), ``weight`` (``λ_t``) and ``neg_elbo`` (``E_q[log q + U]``).
    """
    U = as_energy(energy)
    opt = torch.optim.Adam(flow.parameters(), lr=lr)

    def loss_fn(step: int) -> dict[str, Tensor]:
        weight = annealing_weight(step, anneal_steps)
        x, log_q = flow.sample_and_log_prob(batch)
        u = U(x)
        return {"loss": (log_q + weight * u).mean(), "weight": torch.tensor(weight),
                "neg_elbo": (log_q + u).mean().detach()}

    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, n_steps)) if cosine else None
    return fit(loss_fn, flow, opt, n_steps, checkpoint=checkpoint, progress=progress, scheduler=sched,
               desc="VI (KL inversa)", clip_grad_norm=100.0)


def mean_nll(flow: Flow, x: Tensor, batch: int = 4096) -> float:
    """Average ``-log q(x)`` (nats) over ``x``, in batches, without gradients."""
    with torch.no_grad():
        total = sum(float(-flow.log_prob(xb).sum()) for xb in x.split(batch))
    return total / x.shape[0]


def fit_max_likelihood(flow: Flow, data: Tensor, n_steps: int, *, batch: int = 256, lr: float = 5e-3,
                       checkpoint: str | os.PathLike | None = None, progress: bool = True,
                       generator: torch.Generator | None = None) -> History:
    """Forward KL: minimize ``-mean log q(x_i)`` over minibatches of ``data`` (``(N, D)``)."""
    if not isinstance(data, Tensor) or data.dim() != 2:
        raise ValueError(f"data must be a (N, D) tensor, got {getattr(data, 'shape', type(data).__name__)}")
    opt = torch.optim.Adam(flow.parameters(), lr=lr)

    def loss_fn(step: int) -> Tensor:
        idx = torch.randint(0, data.shape[0], (batch,), generator=generator)
        return -flow.log_prob(data[idx]).mean()

    return fit(loss_fn, flow, opt, n_steps, checkpoint=checkpoint, progress=progress,
               desc="máxima verosimilitud", clip_grad_norm=100.0,
               generators=[generator] if generator is not None else [])  # a resumed run draws the same batches


# --- the fold: what a layer that is not injective really does to p_z ---------------------------


@torch.no_grad()
def pushforward_density(f, bounds: float = 4.0, bins: int = 60, n: int = 200_000,
                        generator: torch.Generator | None = None) -> tuple[np.ndarray, float]:
    """Histogram estimate of the density of ``x = f(z)``, ``z ~ N(0, I)`` in 2-D, on ``bins × bins`` cells.

    It only pushes samples forward, never inverts ``f``, so it is right even where ``f``
    folds (several ``z`` for one ``x``) and the change-of-variables formula is not.
    Returns ``(image, inside)``: the density indexed ``[row = x₂, column = x₁]`` (for
    ``imshow(origin="lower")`` over ``[-bounds, bounds]²``) and the fraction of samples inside.
    """
    bounds = finite_float(bounds, "bounds")
    if bounds <= 0:
        raise ValueError(f"bounds must be positive, got {bounds}")
    positive_int(bins, "bins")
    positive_int(n, "n")
    z = torch.randn(n, 2, generator=generator, dtype=torch.get_default_dtype())
    x = f(z)[0].cpu().double().numpy()
    counts, _, _ = np.histogram2d(x[:, 1], x[:, 0], bins=bins, range=[[-bounds, bounds], [-bounds, bounds]])
    cell = (2 * bounds / bins) ** 2
    return counts / (n * cell), float(counts.sum() / n)


@torch.no_grad()
def formula_mass(f, bounds: float = 4.0, n: int = 200_000, generator: torch.Generator | None = None,
                 atol: float = 1e-6) -> float:
    """The mass the change-of-variables formula gives ``[-bounds, bounds]²``, by Monte Carlo.

    The formula ``p_z(g(x)) |det J_g(x)|`` uses the one preimage ``g(x)`` that ``f.inverse``
    returns; changing variables ``z = g(x)``, its integral over the window is the probability
    that ``z ~ N(0, I)`` lands inside the window *and* is the preimage the inverse returns,
    ``g(f(z)) = z`` (to ``atol``). Where ``f`` is a bijection that is every sample in the window;
    where ``f`` folds, only the samples on the branch the inverse picks. Unlike a grid sum of
    the formula, it does not miss the narrow peaks of a nearly singular layer.
    """
    bounds = finite_float(bounds, "bounds")
    if bounds <= 0:
        raise ValueError(f"bounds must be positive, got {bounds}")
    positive_int(n, "n")
    z = torch.randn(n, 2, generator=generator, dtype=torch.get_default_dtype())
    x = f(z)[0]
    inside = (x.abs() <= bounds).all(1)
    counted = inside & ((f.inverse(x)[0] - z).abs().amax(1) <= atol)
    return float(counted.double().mean())


@torch.no_grad()
def fold_lines(layer: Planar | Radial, bounds: float = 4.0, n: int = 400) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Where ``layer`` folds the plane: the curves ``det J_f(z) = 0`` in ``z`` and their images in ``x``.

    The curves are the zero contour of ``det J_f`` on an ``n × n`` grid of ``[-bounds, bounds]²``
    (``contourpy``); pushed through ``f`` they are the fold lines in ``x``, the edges of the
    region whose points have more than one preimage. An invertible layer has none.
    Returns ``(in_z, in_x)``, two lists of ``(m, 2)`` arrays.
    """
    bounds = finite_float(bounds, "bounds")
    positive_int(n, "n")
    ref = next(layer.parameters())
    grid = make_grid(bounds, n, dtype=ref.dtype, device=ref.device)
    det = grid.image(layer.jacobian_det(grid.points))
    axis = np.linspace(-bounds, bounds, n)
    in_z = [seg for seg in contourpy.contour_generator(axis, axis, det).lines(0.0) if len(seg) > 1]
    in_x = [layer(torch.as_tensor(seg, dtype=ref.dtype, device=ref.device))[0].cpu().numpy() for seg in in_z]
    return in_z, in_x


# --- the paper's figure: one flow per (layer type, energy, K) ---------------------------------


@dataclass
class TrainedFlow:
    """A flow fitted by reverse KL to a named energy, with its score and (subsampled) ``-ELBO`` curve."""

    flow: Flow
    kind: str
    energy: str
    n_layers: int
    score: VIScore
    seconds: float
    curve: list[float] = field(default_factory=list)


def model_key(kind: str, energy: str, n_layers: int) -> str:
    """``"planar-U1-K8"``: how a checkpoint names each flow."""
    return f"{kind}-{energy}-K{n_layers}"


def train_model(kind: str, energy: str, n_layers: int, n_steps: int, *, anneal_steps: int | None,
                lr: float = 5e-3, batch: int = 256, seed: int = 0, log_z: float | None = None,
                n_score: int = 20_000) -> TrainedFlow:
    """One model of the figure: seeded init, :func:`fit_reverse_kl` with cosine decay, fresh-sample score."""
    seed_everything(seed)
    flow = make_flow(kind, n_layers, seed=seed)
    t0 = time.perf_counter()
    hist = fit_reverse_kl(flow, energy, n_steps, batch=batch, lr=lr, anneal_steps=anneal_steps, cosine=True,
                          progress=False)
    seconds = time.perf_counter() - t0
    score = score_reverse_kl(flow, energy, n=n_score, log_z=log_z)
    curve = hist["neg_elbo"][:: max(1, n_steps // 200)]
    return TrainedFlow(flow, kind, energy, n_layers, score, seconds, list(curve))


def save_models(path: str | os.PathLike, models: dict[str, TrainedFlow], meta: dict | None = None) -> Path:
    """Write ``models`` as one ``"vi"`` checkpoint (``meta``: how they were trained)."""
    state = {key: m.flow.state_dict() for key, m in models.items()}
    config = {key: {"kind": m.kind, "energy": m.energy, "n_layers": m.n_layers} for key, m in models.items()}
    scores = {key: {**asdict(m.score), "seconds": m.seconds, "curve": list(m.curve)} for key, m in models.items()}
    return checkpoints.save(path, "vi", state, config=config, meta={**(meta or {}), "models": scores})


def from_checkpoint(ckpt: checkpoints.Checkpoint, device: torch.device | str = "cpu") -> dict[str, TrainedFlow]:
    """``{key: TrainedFlow}`` from a ``"vi"`` checkpoint (flows in the default dtype, eval mode, on ``device``)."""
    if ckpt.kind != "vi":
        raise ValueError(f"expected a 'vi' checkpoint, got {ckpt.kind!r}")
    models = {}
    for key, cfg in ckpt.config.items():
        flow = make_flow(cfg["kind"], cfg["n_layers"], seed=None)
        flow.load_state_dict(ckpt.state[key])
        saved = ckpt.meta["models"][key]
        score = VIScore(kl=saved["kl"], elbo=saved["elbo"], log_z=saved["log_z"], stderr=saved["stderr"])
        models[key] = TrainedFlow(flow.to(device).eval(), cfg["kind"], cfg["energy"], cfg["n_layers"], score,
                                  saved["seconds"], list(saved["curve"]))
    return models


# --- the cells the student writes: references and cases for coursekit.exercises.check -----------------


def _planar(u: Tensor, w: Tensor, b, constrain: bool) -> Planar:
    """coursekit's :class:`Planar` holding exactly these parameters, in ``u``'s dtype (no random draw)."""
    layer = Planar(u.shape[0], u=0.0, w=1.0, b=0.0, constrain=constrain).to(u.dtype)
    with torch.no_grad():
        layer.u.copy_(u), layer.w.copy_(w), layer.b.copy_(torch.as_tensor(b, dtype=u.dtype))
    return layer


def u_hat_reference(u: Tensor, w: Tensor) -> Tensor:
    """û of coursekit's :class:`Planar` for these ``u`` and ``w``."""
    return _planar(u, w, 0.0, True).u_hat.detach()


def planar_reference(z: Tensor, u: Tensor, w: Tensor, b, constrain: bool = True) -> tuple[Tensor, Tensor]:
    """``(x, logdet)`` of coursekit's :class:`Planar` with these parameters at ``z``."""
    with torch.no_grad():
        return _planar(u, w, b, constrain)(z)


def _planar_parameters(dtype: torch.dtype) -> dict[str, tuple[Tensor, Tensor]]:
    """``(u, w)`` pairs: wᵀu = −log(e − 1) (where û = u), wᵀu = −4 with ‖w‖ = 1, and D = 5 with ‖w‖ = 3."""
    def t(*v):
        return torch.tensor(v, dtype=dtype)

    w_a = t(1.5, -0.5)
    u_a = -math.log(math.e - 1) * w_a / (w_a @ w_a) + 0.8 * t(0.5, 1.5)  # m(wᵀu) = wᵀu: û = u
    w_b = t(0.6, 0.8)
    u_b = -4.0 * w_b + 0.5 * t(-0.8, 0.6)  # wᵀu = −4
    w_c = 3 * t(1.0, -2.0, 0.5, 1.0, 2.0) / math.sqrt(10.25)  # ‖w‖ = 3
    u_c = 2.0 * w_c / 9 + t(0.4, 0.1, 0.0, -0.4, 0.1)  # the second term is ⟂ w: wᵀu = 2
    return {"a": (u_a, w_a), "b": (u_b, w_b), "c": (u_c, w_c)}


def u_hat_cases(dtype: torch.dtype = torch.float64) -> list[tuple[str, tuple[Tensor, Tensor]]]:
    """``(label, (u, w))`` for the û cell; the last one (‖w‖ = 3) catches a missing ``/ ‖w‖²``."""
    p = _planar_parameters(dtype)
    return [("wᵀu = −log(e − 1): aquí û = u", p["a"]),
            ("wᵀu = −4 < −1, ‖w‖ = 1", p["b"]),
            ("D = 5, wᵀu = 2, ‖w‖ = 3", p["c"])]


def planar_cases(dtype: torch.dtype = torch.float64, seed: int = 0) -> list[tuple[str, tuple]]:
    """``(label, (z, u, w, b, constrain))`` for the planar cell, one typical mistake per case.

    1. ``wᵀu = −log(e − 1)``, where û = u: the map and ``h'`` (forgetting ``h'`` or ``b`` fails here);
    2. ``wᵀu = −4`` with û: using ``u`` instead of û fails here;
    3. the raw layer (``constrain=False``) with ``wᵀu = −4`` on points that cross the band where
       ``det J_f < 0``: dropping the absolute value gives ``nan`` here;
    4. ``D = 5`` and ``‖w‖ = 3``: a û without ``/ ‖w‖²`` fails here.
    """
    g = torch.Generator().manual_seed(seed)
    p = _planar_parameters(dtype)
    z_fold = torch.stack([torch.linspace(-1.5, 1.5, 61, dtype=dtype), torch.zeros(61, dtype=dtype)], 1)
    raw_u, raw_w = torch.tensor([-2.0, 0.0], dtype=dtype), torch.tensor([2.0, 0.0], dtype=dtype)
    z_a, z_b = (2 * torch.randn(50, 2, generator=g, dtype=dtype) for _ in range(2))
    z_c = torch.randn(50, 5, generator=g, dtype=dtype)
    return [
        ("b = 0.3, wᵀu = −log(e − 1): aquí û = u", (z_a, *p["a"], 0.3, True)),
        ("b = −0.2, wᵀu = −4 < −1: aquí û ≠ u", (z_b, *p["b"], -0.2, True)),
        ("u crudo (constrain=False), wᵀu = −4: det J_f < 0 cerca del hiperplano", (z_fold, raw_u, raw_w, 0.0, False)),
        ("D = 5, ‖w‖ = 3, b = 0.1", (z_c, *p["c"], 0.1, True)),
    ]


#: samples per reverse-KL check case
N_FIXED_SAMPLES = 512


def on_fixed_samples(estimate, n: int = N_FIXED_SAMPLES):
    """Adapt the student's ``estimate(z, x, logdet, U, lam)`` to the cases ``(seed, flow, energy, lam)``.

    ``lam`` is the annealing weight ``λ_t`` (passed by position, whatever the student calls it).

    Draws ``z`` exactly as :func:`reverse_kl_reference` does (same seed, same call), so both
    see the same samples; the global random state is left untouched.
    """
    def run(seed: int, flow: Flow, energy: str | Energy, lam: float):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            z = flow.base.sample(n)
        x, logdet = flow.transform(z)
        return estimate(z, x, logdet, as_energy(energy), lam)

    return run


def reverse_kl_reference(seed: int, flow: Flow, energy: str | Energy, lam: float,
                         n: int = N_FIXED_SAMPLES) -> Tensor:
    """coursekit's :func:`~coursekit.flows.vi.reverse_kl_loss` on the ``n`` samples that ``seed`` draws."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return reverse_kl_loss(flow, energy, n, lam).detach()


def reverse_kl_cases(dtype: torch.dtype = torch.float64) -> list[tuple[str, tuple]]:
    """``(label, (seed, flow, energy, lam))`` for the reverse-KL cell (``lam``: the annealing weight λ).

    An untrained planar flow on U2 (the sign of the log-det, ``log p_z``'s constant, mean vs
    sum), the same with ``λ = 0.3`` (a forgotten ``λ``), and the figures' radial + planar
    layers, whose log-det is far from 0, on a Gaussian energy.
    """
    m = torch.tensor([1.0, -0.5], dtype=dtype)

    def gaussian(x: Tensor) -> Tensor:
        return 0.5 * ((x - m) ** 2).sum(-1)

    planar = make_flow("planar", 8, seed=0).to(dtype)
    figures = Flow(StandardNormal(2), Compose([Radial(2, z0=[0.5, 0.0], alpha=0.5, beta=2.0),
                                               Planar(2, u=[1.5, 0.5], w=[2.0, 0.5], b=0.0)])).to(dtype)
    return [("planar K = 8 sin entrenar, U2, λ = 1", (0, planar, "U2", 1.0)),
            ("el mismo flujo con λ = 0.3 (recocido)", (1, planar, "U2", 0.3)),
            ("radial β = 2 + planar de las figuras, U(x) = ½‖x − m‖²", (2, figures, gaussian, 1.0))]


__all__ = [
    "KINDS", "N_FIXED_SAMPLES", "TrainedFlow", "VIScore", "fit_max_likelihood", "fit_reverse_kl", "fold_lines",
    "formula_mass", "from_checkpoint", "make_flow", "mean_nll", "model_key", "on_fixed_samples", "planar_cases",
    "planar_reference", "pushforward_density", "reverse_kl_cases", "reverse_kl_reference", "save_models",
    "score_reverse_kl", "train_model", "u_hat_cases", "u_hat_reference",
]
