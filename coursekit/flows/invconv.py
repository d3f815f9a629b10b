"""Channel mixing: the invertible 1×1 convolution (Glow) and fixed permutations.

``InvConv1x1`` multiplies the channel vector of every pixel by one matrix ``W``
(``C×C``), ``x[:, :, i, j] = W z[:, :, i, j]``. The Jacobian is block diagonal with
``H·W`` copies of ``W``, so

    log|det J_f| = H · W · log|det W|.

*plain*: ``W`` is a free parameter and ``log|det W|`` comes from ``slogdet`` (O(C³)).
*LU*: ``W = P L (U + diag(s))`` with ``P`` a fixed permutation, ``L`` unit lower
triangular, ``U`` strictly upper triangular, ``s = sign · exp(log_s)``; then
``log|det W| = Σ log|s|`` costs O(C) and ``W`` can never become singular.

``Permutation`` is the ablation's baseline: a fixed ``"reverse"`` order (RealNVP) or a
random ``"shuffle"``; its log-det is 0. For vectors ``(D,)`` all act on the D entries.

Taught in: notebook 03.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..core.checks import event_shape_of, one_of
from .base import Bijection


def _mix(w: Tensor, v: Tensor) -> Tensor:
    """Apply ``w`` to the channel axis (1) of a vector batch or an image batch."""
    if v.dim() == 2:
        return v @ w.T
    return torch.einsum("ij,bjhw->bihw", w, v)


class InvConv1x1(Bijection):
    """``x = W z`` per pixel; ``log|det J_f| = H·W·log|det W|`` (``lu=True``: ``H·W·Σ log|s|``).

    ``weight``: the starting ``W`` (default: a random rotation, so ``log|det W| = 0``).
    """

    def __init__(self, dim: int | Sequence[int], lu: bool = False, weight: Tensor | None = None):
        super().__init__()
        self.event_shape = event_shape_of(dim)
        c = self.event_shape[0]
        self.lu = bool(lu)
        if weight is None:
            weight = torch.linalg.qr(torch.randn(c, c))[0]
        weight = torch.as_tensor(weight)
        if not weight.is_floating_point():
            weight = weight.to(torch.get_default_dtype())  # a float64 W keeps its precision
        if weight.shape != (c, c):
            raise ValueError(f"weight must have shape ({c}, {c}), got {tuple(weight.shape)}")
        if torch.linalg.matrix_rank(weight) < c:
            raise ValueError("weight must be invertible")
        if not self.lu:
            self.weight = nn.Parameter(weight.clone())
            return
        p, lower, upper = torch.linalg.lu(weight)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign_s", s.sign())
        self.register_buffer("lower_mask", torch.tril(torch.ones(c, c), -1))
        self.lower = nn.Parameter(lower * self.lower_mask)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(s.abs().log())

    @property
    def pixels(self) -> int:
        return 1 if len(self.event_shape) == 1 else self.event_shape[1] * self.event_shape[2]

    def _factors(self) -> tuple[Tensor, Tensor]:
        eye = torch.eye(self.lower.shape[0], dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * self.log_s.exp())
        return lower, upper

    def matrix(self) -> Tensor:
        """The ``C×C`` matrix ``W`` (assembled from ``P, L, U, s`` in the LU form)."""
        if not self.lu:
            return self.weight
        lower, upper = self._factors()
        return self.perm @ lower @ upper

    def log_abs_det_w(self) -> Tensor:
        """``log|det W|``: ``slogdet`` (plain, O(C³)) or ``Σ log|s|`` (LU, O(C))."""
        return torch.linalg.slogdet(self.weight).logabsdet if not self.lu else self.log_s.sum()

    def inverse_matrix(self) -> Tensor:
        """``W⁻¹``; the LU form uses two triangular solves instead of a general inverse."""
        if not self.lu:
            return torch.linalg.inv(self.weight)
        lower, upper = self._factors()
        y = torch.linalg.solve_triangular(lower, self.perm.T, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(upper, y, upper=True)

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        logdet = (self.pixels * self.log_abs_det_w()).expand(z.shape[0])
        return _mix(self.matrix(), z), logdet

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        logdet = (-self.pixels * self.log_abs_det_w()).expand(x.shape[0])
        return _mix(self.inverse_matrix(), x), logdet

    def extra_repr(self) -> str:
        return f"shape={self.event_shape}, lu={self.lu}"


class Permutation(Bijection):
    """A fixed channel permutation: ``"reverse"`` or a seeded random ``"shuffle"``; log-det 0."""

    def __init__(self, dim: int | Sequence[int], kind: str = "reverse", seed: int | None = None):
        super().__init__()
        self.event_shape = event_shape_of(dim)
        c = self.event_shape[0]
        one_of(kind, ("reverse", "shuffle"), "kind")
        if kind == "reverse":
            perm = torch.arange(c - 1, -1, -1)
        else:
            gen = None if seed is None else torch.Generator().manual_seed(seed)
            perm = torch.randperm(c, generator=gen)
        self.kind = kind
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return z.index_select(1, self.perm), z.new_zeros(z.shape[0])

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x.index_select(1, self.inv_perm), x.new_zeros(x.shape[0])

    def extra_repr(self) -> str:
        return f"shape={self.event_shape}, kind={self.kind!r}"


__all__ = ["InvConv1x1", "Permutation"]
