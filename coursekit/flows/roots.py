"""Numerical inverses: a vectorised bracketing root solver for monotone 1-D maps."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def solve_increasing(
    fn: Callable[[Tensor], Tensor],
    target: Tensor,
    lo: Tensor,
    hi: Tensor,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> Tensor:
    """Solve ``fn(s) = target`` elementwise for an increasing ``fn`` with ``s`` in ``[lo, hi]``.

    Bisection: the bracket halves every step, so after ``k`` steps the error is at most
    ``(hi - lo) / 2**k``. It stops once every bracket is narrower than ``tol``.
    """
    if tol <= 0:
        raise ValueError(f"tol must be positive, got {tol}")
    lo, hi = (t.clone() for t in torch.broadcast_tensors(lo, hi))
    width = float((hi - lo).max()) if hi.numel() else 0.0
    n_steps = max(1, math.ceil(math.log2(max(width, tol) / tol)))
    if n_steps > max_iter:
        raise RuntimeError(f"bracket width {width:.3g} needs {n_steps} > max_iter={max_iter} steps for tol={tol}")
    for _ in range(n_steps):
        mid = 0.5 * (lo + hi)
        below = fn(mid) < target
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return 0.5 * (lo + hi)
