"""Variational inference with a flow: the reverse KL, its annealing and the targets of lesson 02.

Against an unnormalized target ``p(x) = exp(-U(x)) / Z``, with ``x = f(z)``, ``z ~ p_z`` and
``log q(x) = log p_z(z) - log|det J_f(z)|``,

    KL(q ‖ p) = E_q[log q(x) + U(x)] + log Z,      ELBO = E_q[-U(x) - log q(x)] = log Z - KL.

Only samples and ``forward`` are needed, never ``f⁻¹``: that is why planar and radial layers,
without a cheap inverse, suit VI. Training minimizes ``E_q[log q(x) + β_t U(x)]`` with the
annealing ``β_t = min(1, 0.01 + t / anneal_steps)`` of Rezende & Mohamed (2015).

Energies given by name (``"U1"``..``"U4"``) get a soft wall at ``|x₁| = 4`` (:func:`target`):
U2–U4 do not confine ``x₁``, so without it ``e^{-U}`` is not normalizable.

Taught in: notebook 02.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..data import energy as named_energy
from .base import Flow

Energy = Callable[[Tensor], Tensor]


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


def as_energy(energy: str | Energy) -> Energy:
    """A name (``"U1"``..``"U4"``, walled by :func:`target`) or a callable ``U: (n, D) -> (n,)``."""
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
    return (log_q + beta * as_energy(energy)(x)).mean()


@torch.no_grad()
def log_partition(energy: str | Energy, bounds: float = 8.0, n: int = 1000) -> float:
    """``log Z = log ∫ exp(-U(x)) dx`` by the midpoint rule on ``[-bounds, bounds]²`` (2-D only)."""
    U = as_energy(energy)
    h = 2 * bounds / n
    c = torch.linspace(-bounds + h / 2, bounds - h / 2, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(c, c, indexing="ij")
    pts = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    return float(torch.logsumexp(-U(pts), 0) + 2 * math.log(h))


__all__ = ["Energy", "annealing_weight", "as_energy", "confined", "log_partition", "reverse_kl_loss", "target"]
