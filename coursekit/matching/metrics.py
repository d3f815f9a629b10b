"""Sample-quality and path metrics for few-step sampling.

* sliced Wasserstein-2: average over random directions θ of W₂ between the 1-D projections
  θᵀx (a sort per direction: O(L n log n));
* energy distance: 2E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖ (a proper metric, no kernel bandwidth);
* straightness of a trajectory (Liu et al., 2023): S = ∫₀¹ E‖(x₁ − x₀) − ẋ_t‖² dt, zero exactly
  when every path is a straight line at constant speed, so one Euler step is exact.

Taught in: notebook 07.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _flat(name: str, x: Tensor) -> Tensor:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.ndim < 2:
        raise ValueError(f"{name} must be a floating-point tensor of shape (n, ...), got {getattr(x, 'shape', x)}")
    return x.flatten(1)


def sliced_wasserstein(x: Tensor, y: Tensor, n_projections: int = 256,
                       generator: torch.Generator | None = None) -> float:
    """Sliced W₂ between the empirical measures of ``x`` and ``y`` (same number of points)."""
    x, y = _flat("x", x), _flat("y", y)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    theta = torch.randn(x.shape[1], n_projections, dtype=x.dtype, generator=generator).to(x.device)
    theta = theta / theta.norm(dim=0, keepdim=True)
    px, _ = torch.sort(x @ theta, 0)
    py, _ = torch.sort(y @ theta, 0)
    return float((px - py).pow(2).mean().sqrt())


def energy_distance(x: Tensor, y: Tensor) -> float:
    """Energy distance D²(x, y) = 2E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖ (V-statistic)."""
    x, y = _flat("x", x), _flat("y", y)
    return float(2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean())


def straightness(trajectory: Tensor) -> float:
    """S = mean over steps and samples of ‖(x₁ − x₀) − Δx_k / Δt‖² for a uniform-step trajectory (K+1, n, …)."""
    if trajectory.ndim < 3 or trajectory.shape[0] < 2:
        raise ValueError(f"trajectory must have shape (steps+1, n, ...), got {tuple(trajectory.shape)}")
    k = trajectory.shape[0] - 1
    chord = (trajectory[-1] - trajectory[0]).flatten(1)
    vel = (trajectory[1:] - trajectory[:-1]).flatten(2) * k
    return float((vel - chord[None]).pow(2).sum(-1).mean())


__all__ = ["energy_distance", "sliced_wasserstein", "straightness"]
