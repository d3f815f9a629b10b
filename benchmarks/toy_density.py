"""The true log-density of the 2-D toy sets whose density is known in closed form or by
quadrature, so that an NLL table can show, beside each model's test NLL, the NLL of the
data's own density on the same test sample and the gap between them.

A model's test NLL estimates the cross-entropy H(p, q) = H(p) + KL(p‖q) on a finite sample:
it can fall below the data's entropy H(p) by sampling error, never below the true-density
NLL of the same sample by more than that error on average — the gap NLL_model − NLL_true
(same points) is the sample estimate of KL(p‖q) ≥ 0.

* ``8gaussians``: ``coursekit.data.toy2d.eight_gaussians_log_prob`` (closed form).
* ``checkerboard``: uniform on 8 squares of side 2 (area 32): log p = −log 32 on the
  support, −∞ off it.
* ``moons``: two half circles (radius 2 after the ×2 scaling, t ~ U(0, π)) blurred by
  Gaussian noise of std 2 × 0.1: p(x) = ½ Σ_branch (1/π) ∫₀^π N(x; c_b(t), σ²I) dt, by the
  midpoint rule on ``n_quad`` nodes (spacing ≪ σ: error far below the printed digits).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from coursekit.data.toy2d import eight_gaussians_log_prob

KNOWN = ("8gaussians", "checkerboard", "moons")
MOONS_NOISE = 0.1  # coursekit.data.toy2d.moons' default


def _moons_log_prob(x: Tensor, n_quad: int = 4000) -> Tensor:
    x = x.to(torch.float64)
    t = (torch.arange(n_quad, dtype=torch.float64) + 0.5) * (math.pi / n_quad)
    shift = torch.tensor([-1.0, -0.2], dtype=torch.float64)
    upper = torch.stack([torch.cos(t), torch.sin(t)], 1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1)
    centres = torch.cat([upper, lower]) * 2 + shift  # (2 n_quad, 2)
    sigma = 2 * MOONS_NOISE
    out = []
    for chunk in x.split(2048):
        sq = (chunk[:, None, :] - centres[None]).pow(2).sum(-1)
        log_n = -0.5 * sq / sigma**2 - math.log(2 * math.pi * sigma**2)
        out.append(torch.logsumexp(log_n, 1) - math.log(2 * n_quad))  # mean over branches and nodes
    return torch.cat(out)


def _checkerboard_log_prob(x: Tensor) -> Tensor:
    u = x.to(torch.float64) / 2  # back to the unscaled board: x1 in [-2, 2), x2 in [-2, 2)
    inside = (u.abs() <= 2).all(1)
    dark = (torch.floor(u[:, 0]) + torch.floor(u[:, 1])) % 2 == 0
    return torch.where(inside & dark, torch.tensor(-math.log(32.0), dtype=torch.float64),
                       torch.tensor(-math.inf, dtype=torch.float64))


def true_log_prob(name: str, x: Tensor) -> Tensor:
    """log p_data(x) of toy set ``name`` at the points ``x`` (n, 2), float64, shape (n,)."""
    if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must be a tensor of shape (n, 2), got {getattr(x, 'shape', type(x).__name__)}")
    if name == "8gaussians":
        return eight_gaussians_log_prob(x.to(torch.float64))
    if name == "checkerboard":
        return _checkerboard_log_prob(x)
    if name == "moons":
        return _moons_log_prob(x)
    raise ValueError(f"the true density of {name!r} is not known here; known: {KNOWN}")


def true_nll(name: str, x: Tensor) -> float | None:
    """Mean −log p_data over the sample ``x`` (nats), or ``None`` when the density is not known."""
    return -true_log_prob(name, x).mean().item() if name in KNOWN else None
