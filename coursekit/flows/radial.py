"""Radial flow (Rezende & Mohamed, 2015): contract or expand the space around a point z₀.

    x = f(z) = z + β h(α, r) (z - z₀),   h(α, r) = 1 / (α + r),   r = ‖z - z₀‖.

Every point moves along its ray from z₀ and the radius becomes ``r' = r (1 + β h)``, so

    det J_f(z) = (1 + β h)^{D-1} · (1 + β h + β h'(α, r) r) = (1 + β h)^{D-1} · (1 + α β / (α + r)²).

Both factors are positive when ``β ≥ -α``; the parameterization ``α = softplus(α̂) > 0``,
``β = -α + softplus(β̂)`` enforces it. The inverse is closed form: ``r' = r + β r / (α + r)``
is the quadratic ``r² + (α + β - r') r - α r' = 0``, whose positive root is ``r``.

Taught in: notebook 02.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.checks import finite_float, positive_int
from .base import Bijection


def _inv_softplus(y: Tensor) -> Tensor:
    return y + torch.log(-torch.expm1(-y))


class Radial(Bijection):
    """``x = z + β (z - z₀) / (α + ‖z - z₀‖)`` on vectors of size ``dim``.

    ``z0`` defaults to a small random point (``init_scale``), ``alpha > 0`` and ``beta``
    (``> -alpha`` when ``constrain``). ``constrain=False`` keeps ``β`` raw (``β̂ = beta``),
    so ``β < -α`` is possible and the map folds through z₀ (then the inverse returns the
    preimage on the same side of z₀).
    """

    def __init__(self, dim: int, z0=None, alpha: float = 1.0, beta: float = 0.0, *, constrain: bool = True,
                 init_scale: float = 0.1, generator: torch.Generator | None = None):
        super().__init__()
        positive_int(dim, "dim")
        dtype = torch.get_default_dtype()
        finite_float(init_scale, "init_scale")
        if z0 is None:
            z0 = init_scale * torch.randn(dim, generator=generator, dtype=dtype)
        z0 = torch.as_tensor(z0, dtype=dtype).clone()
        if z0.shape != (dim,):
            raise ValueError(f"z0 must have shape ({dim},), got {tuple(z0.shape)}")
        if not torch.isfinite(z0).all():
            raise ValueError(f"z0 must be finite, got {z0.tolist()}")
        alpha, beta = finite_float(alpha, "alpha"), finite_float(beta, "beta")
        alpha_t, beta_t = torch.as_tensor(alpha, dtype=dtype), torch.as_tensor(beta, dtype=dtype)
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if constrain and not beta > -alpha:
            raise ValueError(f"beta must be > -alpha = {-alpha} for an invertible radial flow, got {beta}")
        self.event_shape = (dim,)
        self.constrain = bool(constrain)
        self.z0 = nn.Parameter(z0)
        self.alpha_raw = nn.Parameter(_inv_softplus(alpha_t))
        self.beta_raw = nn.Parameter(_inv_softplus(beta_t + alpha_t) if constrain else beta_t)

    @property
    def alpha(self) -> Tensor:
        return F.softplus(self.alpha_raw)

    @property
    def beta(self) -> Tensor:
        """``β = -α + softplus(β̂) > -α`` (constrained) or the raw ``β̂``."""
        return -self.alpha + F.softplus(self.beta_raw) if self.constrain else self.beta_raw

    def _factors(self, r: Tensor) -> tuple[Tensor, Tensor]:
        """``(1 + β h, 1 + α β / (α + r)²)``: the tangential and radial stretches."""
        alpha, beta = self.alpha, self.beta
        return 1 + beta / (alpha + r), 1 + alpha * beta / (alpha + r) ** 2

    def _logabsdet(self, r: Tensor) -> Tensor:
        tangential, radial = self._factors(r)
        d = self.event_shape[0]
        return (d - 1) * torch.log(tangential.abs()) + torch.log(radial.abs())

    def jacobian_det(self, z: Tensor) -> Tensor:
        """Signed ``det J_f(z)`` per sample (negative where a raw ``β < -α`` folds the space)."""
        tangential, radial = self._factors((z - self.z0).norm(dim=-1))
        return tangential ** (self.event_shape[0] - 1) * radial

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        d = z - self.z0
        r = d.norm(dim=-1)
        x = z + (self.beta / (self.alpha + r)).unsqueeze(-1) * d
        return x, self._logabsdet(r)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        alpha, beta = self.alpha, self.beta
        dx = x - self.z0
        r_out = dx.norm(dim=-1)
        # positive root of r² + B r - α r' = 0, B = α + β - r', in the form without cancellation
        B = alpha + beta - r_out
        disc = torch.sqrt(B**2 + 4 * alpha * r_out)
        r = torch.where(B >= 0, 2 * alpha * r_out / (B + disc).clamp_min(torch.finfo(B.dtype).tiny), 0.5 * (disc - B))
        tangential, _ = self._factors(r)
        z = self.z0 + dx / tangential.unsqueeze(-1)
        return z, -self._logabsdet(r)

    def extra_repr(self) -> str:
        return f"dim={self.event_shape[0]}, constrain={self.constrain}"


__all__ = ["Radial"]
