"""Minibatch couplings of noise x₀ and data x₁ (OT-CFM, Tong et al. 2024; Pooladian et al. 2023).

Within a minibatch of n noise and n data points, exact optimal transport for the squared
Euclidean cost is an assignment problem: the optimal plan between two uniform empirical
measures of equal size is a permutation (a vertex of the Birkhoff polytope). Pairing x₀
with the x₁ it is transported to makes the conditional paths cross less, so the learned
field is straighter and few-step sampling works better. Taught in: notebook 07.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor


def _check_pair(x0: Tensor, x1: Tensor) -> None:
    for name, x in (("x0", x0), ("x1", x1)):
        if not isinstance(x, Tensor) or not x.is_floating_point():
            what = f"dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got {what}")
        if x.ndim < 2 or x.shape[0] < 1:
            raise ValueError(f"{name} must have shape (batch, ...) with batch >= 1 and at least one "
                             f"feature dimension, got {tuple(x.shape)}; for one point per sample use x[:, None]")
    if x0.shape != x1.shape:
        raise ValueError(
            f"x0 and x1 must have the same shape (batch, ...), got {tuple(x0.shape)} and {tuple(x1.shape)}"
        )
    if x0.dtype != x1.dtype:
        raise ValueError(f"x0 and x1 must have the same dtype, got {x0.dtype} and {x1.dtype}")
    for name, x in (("x0", x0), ("x1", x1)):
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or Inf values")


def squared_cost(x0: Tensor, x1: Tensor) -> Tensor:
    """C_ij = ‖x₀ⁱ − x₁ʲ‖² over the flattened trailing dims, shape (n, n)."""
    return torch.cdist(x0.flatten(1), x1.flatten(1)) ** 2


def ot_permutation(x0: Tensor, x1: Tensor, solver: str = "scipy") -> Tensor:
    """Indices ``perm`` such that pairing ``x0[perm[j]]`` with ``x1[j]`` minimises Σ_j ‖x₀ − x₁‖².

    ``solver="scipy"`` uses ``scipy.optimize.linear_sum_assignment`` (Hungarian-type, exact);
    ``solver="pot"`` uses POT's network simplex ``ot.emd`` on uniform weights.
    """
    _check_pair(x0, x1)
    cost = squared_cost(x0.detach(), x1.detach()).double().cpu().numpy()
    if solver == "scipy":
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(cost)  # rows = 0..n-1 in order; x0[i] ↔ x1[cols[i]]
        perm = np.empty_like(cols)
        perm[cols] = rows
    elif solver == "pot":
        # POT probes every installed backend on import, TensorFlow included (≈ 20 s here);
        # we only hand it NumPy arrays, so skip the probes unless the user asked otherwise.
        for backend in ("TENSORFLOW", "JAX", "CUPY"):
            os.environ.setdefault(f"POT_BACKEND_DISABLE_{backend}", "1")
        import ot

        n = cost.shape[0]
        plan = ot.emd(np.full(n, 1.0 / n), np.full(n, 1.0 / n), cost)
        perm = plan.argmax(axis=0)  # column j: the x0 that carries its mass (plan is a permutation / n)
    else:
        raise ValueError(f"solver must be 'scipy' or 'pot', got {solver!r}")
    return torch.as_tensor(perm, dtype=torch.long, device=x0.device)


def ot_coupling(x0: Tensor, x1: Tensor, solver: str = "scipy") -> tuple[Tensor, Tensor]:
    """Reorder the noise so that ``(x0[i], x1[i])`` are minibatch-OT pairs; returns ``(x0, x1)``."""
    return x0[ot_permutation(x0, x1, solver)], x1


def independent_coupling(x0: Tensor, x1: Tensor) -> tuple[Tensor, Tensor]:
    """The I-CFM pairing: leave the independent draws as they are."""
    _check_pair(x0, x1)
    return x0, x1


def transport_cost(x0: Tensor, x1: Tensor) -> float:
    """Mean squared distance (1/n) Σ_i ‖x₀ⁱ − x₁ⁱ‖² of a pairing."""
    _check_pair(x0, x1)
    return float((x0 - x1).flatten(1).pow(2).sum(1).mean())


__all__ = ["independent_coupling", "ot_coupling", "ot_permutation", "squared_cost", "transport_cost"]
