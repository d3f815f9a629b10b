"""Variational inference with normalizing flows (reverse KL) and maximum likelihood (forward KL).

Reverse KL / ELBO against an unnormalized target ``p(x) = exp(-U(x)) / Z``: with
``x = f(z)``, ``z ~ p_z`` and ``log q(x) = log p_z(z) - log|det J_f(z)|``,

    KL(q ‖ p) = E_q[log q(x) + U(x)] + log Z,      ELBO = E_q[-U(x) - log q(x)] = log Z - KL.

Energies given by name (``"U1"``..``"U4"``) get a soft wall at ``|x₁| = 4`` (:func:`target`):
U2–U4 do not confine ``x₁``, so without it ``e^{-U}`` is not normalizable.
Training minimizes ``E_q[log q(x) + β_t U(x)]`` (only samples and ``forward`` are needed,
never ``f⁻¹``: that is why planar and radial layers, without a cheap inverse, suit VI).
``β_t = min(1, 0.01 + t / anneal_steps)`` is the annealing of Rezende & Mohamed (2015).

Forward KL (maximum likelihood) on data ``x_i ~ p_data`` minimizes ``-mean log q(x_i)``,
which needs ``f⁻¹`` on every step (a root solve per planar layer).

Taught in: notebook 02.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .data import energy as named_energy
from .flows.base import Compose, Flow, StandardNormal
from .flows.planar import Planar
from .flows.radial import Radial
from .training.loop import History, fit

Energy = Callable[[Tensor], Tensor]


def make_flow(kind: str, n_layers: int, dim: int = 2, seed: int | None = 0) -> Flow:
    """``N(0, I)`` pushed through ``n_layers`` planar or radial layers (random init from ``seed``)."""
    if kind not in {"planar", "radial"}:
        raise ValueError(f"kind must be 'planar' or 'radial', got {kind!r}")
    if not isinstance(n_layers, int) or n_layers < 1:
        raise ValueError(f"n_layers must be a positive int, got {n_layers!r}")
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    if kind == "planar":
        layers = [Planar(dim, generator=g) for _ in range(n_layers)]
    else:
        # centres spread over the target's scale, so each radial layer has its own region
        layers = [Radial(dim, z0=1.5 * torch.randn(dim, generator=g), alpha=1.0, beta=0.0)
                  for _ in range(n_layers)]
    return Flow(StandardNormal(dim), Compose(layers))


def confined(energy: Energy, bound: float = 4.0, width: float = 0.2) -> Energy:
    """``U(x) + ½ relu(|x₁| - bound)² / width²``: a soft wall at ``|x₁| = bound``.

    U2–U4 of the paper only confine ``x₂``: along ``x₁`` the density ``e^{-U}`` does not decay,
    so it is not normalizable and a flow can raise its ELBO without limit by spreading along
    ``x₁``. The wall (outside the paper's window ``[-4, 4]²``) makes every target a density.
    """

    def walled(x: Tensor) -> Tensor:
        return energy(x) + 0.5 * (torch.relu(x[:, 0].abs() - bound) / width) ** 2

    return walled


def target(name: str) -> Energy:
    """The lesson-02 target ``"U1"``..``"U4"``: the paper's energy with the wall of :func:`confined`."""
    return confined(named_energy(name))


def _as_energy(energy: str | Energy) -> Energy:
    if isinstance(energy, str):
        return target(energy)
    if not callable(energy):
        raise TypeError(f"energy must be a name like 'U1' or a callable, got {type(energy).__name__}")
    return energy


def annealing_weight(step: int, anneal_steps: int | None, start: float = 0.01) -> float:
    """``β_t = min(1, start + t / anneal_steps)``; ``None`` or 0 means no annealing (β = 1)."""
    if not anneal_steps:
        return 1.0
    return min(1.0, start + step / anneal_steps)


def reverse_kl_loss(flow: Flow, energy: str | Energy, n: int, beta: float = 1.0) -> Tensor:
    """Monte Carlo ``E_q[log q(x) + β U(x)]`` from ``n`` samples (``= KL - log Z`` at β = 1)."""
    x, log_q = flow.sample_and_log_prob(n)
    return (log_q + beta * _as_energy(energy)(x)).mean()


@torch.no_grad()
def log_partition(energy: str | Energy, bounds: float = 8.0, n: int = 1000) -> float:
    """``log Z = log ∫ exp(-U(x)) dx`` by the midpoint rule on ``[-bounds, bounds]²`` (2-D only)."""
    U = _as_energy(energy)
    h = 2 * bounds / n
    c = torch.linspace(-bounds + h / 2, bounds - h / 2, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(c, c, indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    return float(torch.logsumexp(-U(pts), 0) + 2 * math.log(h))


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
    U = _as_energy(energy)
    log_z = log_partition(U) if log_z is None else log_z
    x, log_q = flow.sample_and_log_prob(n)
    terms = (log_q + U(x)).double()
    elbo = -float(terms.mean())
    return VIScore(kl=log_z - elbo, elbo=elbo, log_z=log_z, stderr=float(terms.std() / math.sqrt(n)))


def fit_reverse_kl(flow: Flow, energy: str | Energy, n_steps: int, *, batch: int = 256, lr: float = 5e-3,
                   anneal_steps: int | None = None, cosine: bool = False,
                   checkpoint: str | os.PathLike | None = None, progress: bool = True) -> History:
    """Minimize ``E_q[log q + β_t U]`` with Adam (``coursekit.train.fit``: checkpoints, NaN guard).

    ``cosine`` decays the learning rate to 0 over ``n_steps`` (a cleaner final fit). Logs
    ``loss`` (the annealed objective), ``beta`` and ``neg_elbo`` (``E_q[log q + U]``).
    """
    U = _as_energy(energy)
    opt = torch.optim.Adam(flow.parameters(), lr=lr)

    def loss_fn(step: int) -> dict[str, Tensor]:
        beta = annealing_weight(step, anneal_steps)
        x, log_q = flow.sample_and_log_prob(batch)
        u = U(x)
        return {"loss": (log_q + beta * u).mean(), "beta": torch.tensor(beta),
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
               desc="máxima verosimilitud", clip_grad_norm=100.0)


def load_vi_checkpoint(path: str | os.PathLike, map_location=None) -> dict[str, dict]:
    """Models saved by ``scripts/train_vi.py``: ``{"planar-U1-K8": {"flow": Flow, "kl": ..., ...}}``.

    Each entry keeps the saved score (``kl``, ``elbo``, ``log_z``, ``stderr``, ``seconds``,
    ``curve``) and gets a ready ``flow``; ``meta`` (steps, command) is under the key ``"_meta"``.
    """
    from .training.loop import load_checkpoint

    state = load_checkpoint(path, map_location=map_location)
    out: dict[str, dict] = {"_meta": state.get("meta", {})}
    for key, entry in state["models"].items():
        flow = make_flow(entry["kind"], entry["K"], seed=None)
        flow.load_state_dict(entry["state_dict"])
        out[key] = {**{k: v for k, v in entry.items() if k != "state_dict"}, "flow": flow}
    return out


__all__ = [
    "VIScore", "annealing_weight", "confined", "fit_max_likelihood", "fit_reverse_kl", "load_vi_checkpoint",
    "log_partition", "make_flow", "mean_nll", "reverse_kl_loss", "score_reverse_kl", "target",
]
