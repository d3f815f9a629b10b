"""Planar flow (Rezende & Mohamed, 2015): one hyperplane that pushes the plane along ``u``.

    x = f(z) = z + û · h(wᵀz + b),   h = tanh,
    ψ(z) = h'(wᵀz + b) · w,   det J_f(z) = 1 + ûᵀψ(z)   (matrix determinant lemma, O(D)).

``det J_f = 1 + h'(·) wᵀû`` and ``0 < h' ≤ 1``, so the map is invertible exactly when
``wᵀû ≥ -1``. The reparameterization

    û = u + (m(wᵀu) - wᵀu) · w / ‖w‖²,   m(a) = -1 + softplus(a) > -1,

moves ``u`` along ``w`` until ``wᵀû = m(wᵀu)`` and leaves its part orthogonal to ``w``
alone. With ``constrain=False`` the raw ``u`` is used: when ``wᵀu < -1`` the plane folds
(``det J_f < 0`` in a band), which the lesson-02 playground shows.

Taught in: notebook 02.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.checks import finite_float, positive_int
from .base import Bijection, as_vector
from .roots import solve_increasing


def _vector(value, dim: int, name: str, default_scale: float, generator) -> Tensor:
    if value is None:
        return default_scale * torch.randn(dim, generator=generator, dtype=torch.get_default_dtype())
    return as_vector(value, dim, name)


class Planar(Bijection):
    """``x = z + û tanh(wᵀz + b)`` on vectors of size ``dim``; ``log|det J_f| = log|1 + ûᵀψ(z)|``.

    ``u``, ``w`` (shape ``(dim,)``) and ``b`` (scalar) default to ``u ~ N(0, init_scale²)``,
    ``w ~ N(0, I)``, ``b = 0`` (a small ``‖w‖`` would make the correction ``w / ‖w‖²`` large).
    ``constrain=True`` uses û (always invertible); ``constrain=False``
    uses ``u`` as given (for showing the fold; then the inverse returns one preimage).
    The inverse solves the 1-D monotone equation ``α + wᵀû tanh(α + b) = wᵀx`` for
    ``α = wᵀz`` by bisection to ``tol``, then ``z = x - û tanh(α + b)``.
    """

    def __init__(self, dim: int, u=None, w=None, b=None, *, constrain: bool = True, tol: float = 1e-9,
                 init_scale: float = 0.1, generator: torch.Generator | None = None):
        super().__init__()
        positive_int(dim, "dim")
        if not finite_float(tol, "tol") > 0:
            raise ValueError(f"tol must be positive, got {tol}")
        finite_float(init_scale, "init_scale")
        self.event_shape = (dim,)
        self.constrain, self.tol = bool(constrain), float(tol)
        self.u = nn.Parameter(_vector(u, dim, "u", init_scale, generator))
        w = _vector(w, dim, "w", 1.0, generator)  # ‖w‖ ~ 1 keeps û ≈ u at init
        if not torch.isfinite(w).all() or float(w.norm()) == 0.0:
            raise ValueError("w must be a finite, non-zero vector (it is the normal of the hyperplane)")
        self.w = nn.Parameter(w)
        b = torch.zeros(()) if b is None else torch.as_tensor(b, dtype=torch.get_default_dtype())
        if b.dim() != 0:
            raise ValueError(f"b must be a scalar, got shape {tuple(b.shape)}")
        if not torch.isfinite(b):
            raise ValueError(f"b must be a finite number, got {b.item()}")
        self.b = nn.Parameter(b.clone())

    # --- parameters -------------------------------------------------------------------
    @property
    def u_hat(self) -> Tensor:
        """û: ``u`` moved along ``w`` so that ``wᵀû = -1 + softplus(wᵀu) > -1``."""
        wu = self.w @ self.u
        m = -1 + F.softplus(wu)
        # the clamp only matters if training drove w to exactly 0 (then f is a translation)
        return self.u + (m - wu) * self.w / (self.w @ self.w).clamp_min(1e-30)

    def effective_u(self) -> Tensor:
        """The ``u`` the map uses: û when ``constrain`` else the raw ``u``."""
        return self.u_hat if self.constrain else self.u

    def _det(self, h: Tensor, wu: Tensor) -> Tensor:
        """``det J_f = 1 + (1 - h²) wᵀu`` (signed; > 0 whenever ``wᵀu > -1``)."""
        return 1 + (1 - h**2) * wu

    def _logabsdet(self, h: Tensor, wu: Tensor) -> Tensor:
        s = (1 - h**2) * wu
        # log1p keeps precision when the layer is close to the identity; raw u may give s < -1
        return torch.log1p(s) if self.constrain else torch.log(torch.abs(1 + s))

    # --- the map ----------------------------------------------------------------------
    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        u = self.effective_u()
        h = torch.tanh(z @ self.w + self.b)
        x = z + h.unsqueeze(-1) * u
        return x, self._logabsdet(h, self.w @ u)

    def jacobian_det(self, z: Tensor) -> Tensor:
        """Signed ``det J_f(z) = 1 + ûᵀψ(z)`` per sample (negative where the plane folds)."""
        u = self.effective_u()
        return self._det(torch.tanh(z @ self.w + self.b), self.w @ u)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        u = self.effective_u()
        c = self.w @ u  # wᵀû ≥ -1: g(α) = α + c tanh(α + b) is increasing
        y = x @ self.w

        def g(alpha: Tensor) -> Tensor:
            return alpha + c * torch.tanh(alpha + self.b)

        with torch.no_grad():
            reach = c.abs() + self.tol  # |tanh| < 1 brackets the root: |α - wᵀx| < |c|
            alpha = solve_increasing(g, y, y - reach, y + reach, tol=self.tol)
        if self.constrain:
            # one Newton step with grad on: same value (to tol) and exact implicit gradients
            gprime = 1 + c * (1 - torch.tanh(alpha + self.b) ** 2)
            alpha = alpha - (g(alpha) - y) / gprime
        h = torch.tanh(alpha + self.b)
        z = x - h.unsqueeze(-1) * u
        return z, -self._logabsdet(h, c)

    def extra_repr(self) -> str:
        return f"dim={self.event_shape[0]}, constrain={self.constrain}, tol={self.tol:g}"


__all__ = ["Planar"]
