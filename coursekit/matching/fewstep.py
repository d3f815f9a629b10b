"""Few-step sampling: sample quality against the number of field evaluations (NFE).

For a trained field v_θ, integrate the same noise x₀ with Euler at 1, 2, 4, … steps and with
dopri5, and compare the samples with held-out data (sliced W₂, energy distance). Straighter
flows (OT-CFM) lose less quality when the steps are few. Taught in: notebook 07.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .metrics import energy_distance, sliced_wasserstein, straightness
from .sampling import Field, euler_sample, ode_sample

EULER_STEPS = (1, 2, 4, 8, 16, 32, 100)


@dataclass
class QualityRow:
    """Quality of one sampler: ``solver`` ("euler" or "dopri5"), NFE and distances to held-out data."""

    solver: str
    nfe: int
    sliced_w2: float
    energy: float


@torch.no_grad()
def quality_vs_nfe(field: Field, x0: Tensor, x_ref: Tensor, steps: Sequence[int] = EULER_STEPS,
                   rtol: float = 1e-5, atol: float = 1e-5, seed: int = 0) -> list[QualityRow]:
    """Euler with each number of ``steps`` and dopri5, from the same noise ``x0``, against ``x_ref``."""
    if x0.shape != x_ref.shape:
        raise ValueError(f"x0 and x_ref must have the same shape, got {tuple(x0.shape)} and {tuple(x_ref.shape)}")
    rows = []

    def score(solver: str, nfe: int, x: Tensor) -> QualityRow:
        g = torch.Generator().manual_seed(seed)  # the same projections for every row
        return QualityRow(solver, nfe, sliced_wasserstein(x, x_ref, generator=g), energy_distance(x, x_ref))

    for k in steps:
        rows.append(score("euler", k, euler_sample(field, x0, k)))
    x, nfe = ode_sample(field, x0, rtol=rtol, atol=atol, return_nfe=True)
    rows.append(score("dopri5", nfe, x))
    return rows


@torch.no_grad()
def flow_straightness(field: Field, x0: Tensor, n_steps: int = 100) -> float:
    """S(v) = ∫ E‖(x₁ − x₀) − v(t, x_t)‖² dt along the flow of v from ``x0`` (Euler, ``n_steps``)."""
    _, traj = euler_sample(field, x0, n_steps, return_trajectory=True)
    return straightness(traj)


__all__ = ["EULER_STEPS", "QualityRow", "flow_straightness", "quality_vs_nfe"]
