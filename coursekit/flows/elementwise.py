"""Simple bijections of lesson 01: elementwise affine, a monotone warp, a linear map.

Taught in: notebook 01.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.checks import finite_float, positive_int
from .base import Bijection, as_vector
from .roots import solve_increasing


class ElementwiseAffine(Bijection):
    """``x = exp(log_scale) * z + shift``; ``log|det J_f| = Σ log_scale``.

    The scale is ``exp(log_scale) > 0``, so the map is invertible for any parameters.
    """

    def __init__(self, dim: int, scale=1.0, shift=0.0):
        super().__init__()
        self.event_shape = (positive_int(dim, "dim"),)
        scale = as_vector(scale, dim, "scale")
        if (scale <= 0).any():
            raise ValueError("scale must be positive")
        self.log_scale = nn.Parameter(scale.log())
        self.shift = nn.Parameter(as_vector(shift, dim, "shift"))

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x = z * self.log_scale.exp() + self.shift
        return x, self.log_scale.sum().expand(z.shape[0])

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = (x - self.shift) * (-self.log_scale).exp()
        return z, -self.log_scale.sum().expand(x.shape[0])


class TanhWarp(Bijection):
    """``x = z + a * tanh(b * z)`` elementwise, a monotone nonlinear map.

    ``dx/dz = 1 + a b (1 - tanh²(b z)) > 0`` whenever ``a b > -1``; the parameterization
    ``a = softplus(ρ) - 0.99 / b`` guarantees it. ``a > 0`` stretches the centre and
    pushes mass away from 0, ``a < 0`` pulls it in. A positive ``a`` alone does not make
    ``N(0, 1)`` bimodal: that needs ``2ab³ > 1 + ab`` (``a > 1`` when ``b = 1``; see
    ``coursekit.lessons.change_of_variables.tanh_warp_is_bimodal``). The inverse has no
    closed form: it is a monotone root solve with tolerance ``tol``.
    """

    def __init__(self, dim: int, a=1.0, b=1.0, tol: float = 1e-9):
        super().__init__()
        self.event_shape = (positive_int(dim, "dim"),)
        if not finite_float(tol, "tol") > 0:
            raise ValueError(f"tol must be positive, got {tol}")
        self.tol = float(tol)
        a, b = as_vector(a, dim, "a"), as_vector(b, dim, "b")
        if (b <= 0).any():
            raise ValueError("b must be positive")
        if (a * b <= -0.99).any():
            raise ValueError("a * b must be > -0.99 for the warp to stay invertible")
        self.log_b = nn.Parameter(b.log())
        # inverse softplus of a + 0.99/b (always > 0 here)
        s = a + 0.99 / b
        self.rho = nn.Parameter(s + torch.log(-torch.expm1(-s)))

    @property
    def b(self) -> Tensor:
        return self.log_b.exp()

    @property
    def a(self) -> Tensor:
        return F.softplus(self.rho) - 0.99 / self.b

    def _map(self, z: Tensor) -> Tensor:
        return z + self.a * torch.tanh(self.b * z)

    def _log_derivative(self, z: Tensor) -> Tensor:
        t = torch.tanh(self.b * z)
        return torch.log1p(self.a * self.b * (1 - t**2))

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self._map(z), self._log_derivative(z).sum(-1)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        reach = self.a.abs().expand_as(x)  # |x - z| <= |a| brackets the root
        with torch.no_grad():
            z = solve_increasing(self._map, x, x - reach, x + reach, tol=self.tol)
        # one Newton step with autograd on: same value (to tol), and exact gradients
        # dz/dx = 1/f'(z) by the implicit function theorem, so the inverse can be trained
        z = z - (self._map(z) - x) / self._log_derivative(z).exp()
        return z, -self._log_derivative(z).sum(-1)


class Linear(Bijection):
    """``x = A z + c`` with an invertible matrix ``A``; ``log|det J_f| = log|det A|``."""

    def __init__(self, matrix, shift=None):
        super().__init__()
        A = torch.as_tensor(matrix, dtype=torch.get_default_dtype())
        if A.dim() != 2 or A.shape[0] != A.shape[1] or A.shape[0] == 0:
            raise ValueError(f"matrix must be square (D, D) with D >= 1, got {tuple(A.shape)}")
        if not torch.isfinite(A).all():
            raise ValueError("matrix must be finite (it contains NaN or Inf)")
        if torch.linalg.matrix_rank(A) < A.shape[0]:
            raise ValueError("matrix must be invertible (it is singular)")
        dim = A.shape[0]
        self.event_shape = (dim,)
        self.matrix = nn.Parameter(A.clone())
        self.shift = nn.Parameter(as_vector(0.0 if shift is None else shift, dim, "shift"))

    def _logabsdet(self, n: int) -> Tensor:
        return torch.linalg.slogdet(self.matrix).logabsdet.expand(n)

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z @ self.matrix.T + self.shift, self._logabsdet(z.shape[0])

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = torch.linalg.solve(self.matrix, (x - self.shift).T).T
        return z, -self._logabsdet(x.shape[0])
