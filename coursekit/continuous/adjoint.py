"""The adjoint method written out: what ``odeint_adjoint`` does inside, in a few lines.

For a loss ``L(h(t_1))`` the adjoint state ``a(t) = ∂L/∂h(t)`` obeys

    da/dt = −a(t)ᵀ ∂f/∂h (t, h(t)),          a(t_1) = ∂L/∂h(t_1),

and the parameter gradient is

    dL/dθ = −∫_{t_1}^{t_0} a(t)ᵀ ∂f/∂θ (t, h(t)) dt.

One backward solve of the augmented state ``(h, a, g)`` re-integrates ``h`` from ``t_1``
down to ``t_0`` (nothing from the forward pass is stored) while ``a`` and ``g`` follow
the two equations above: memory independent of the number of solver steps.

Taught in: notebook 05.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchdiffeq import odeint

from ..core.fields import NFECounter


class _AdjointDynamics(nn.Module):
    def __init__(self, field: nn.Module):
        super().__init__()
        self.field = field
        self.params = [p for p in field.parameters() if p.requires_grad]

    def forward(self, t: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        h, a = state[0], state[1]
        with torch.enable_grad():
            h = h.detach().requires_grad_(True)
            f = self.field(t, h)
            # one vector-Jacobian product gives both aᵀ∂f/∂h and aᵀ∂f/∂θ
            vjps = torch.autograd.grad(f, (h, *self.params), a, allow_unused=True)
        a_dot = -vjps[0]
        g_dot = [-(v if v is not None else torch.zeros_like(p)).reshape(-1) for v, p in zip(vjps[1:], self.params)]
        return (f.detach(), a_dot, torch.cat(g_dot) if g_dot else h.new_zeros(0))


@dataclass
class AdjointSolution:
    """Result of :func:`solve_adjoint` at the requested times (ordered from ``t_1`` down)."""

    t: Tensor  # (K,) from t_1 to t_0
    h: Tensor  # (K, batch, D): the re-integrated forward trajectory
    a: Tensor  # (K, batch, D): a(t) = ∂L/∂h(t)
    grad_theta: list[Tensor]  # dL/dθ, shaped like the field's parameters
    nfe: int


def solve_adjoint(field: nn.Module, h1: Tensor, dL_dh1: Tensor, t: Sequence[float] | Tensor,
                  method: str = "dopri5", rtol: float = 1e-7, atol: float = 1e-7) -> AdjointSolution:
    """Integrate ``(h, a, g)`` backwards through the times ``t`` (decreasing, ``t[0] = t_1``).

    ``h1 = h(t_1)`` and ``dL_dh1 = ∂L/∂h(t_1)``; returns ``a`` at every time of ``t`` and
    ``dL/dθ`` accumulated down to ``t[-1] = t_0``.
    """
    t = torch.as_tensor(t, dtype=h1.dtype, device=h1.device)
    if t.dim() != 1 or t.numel() < 2 or not (t[1:] < t[:-1]).all():
        raise ValueError("t must be a 1-D strictly decreasing tensor (from t_1 down to t_0)")
    if dL_dh1.shape != h1.shape:
        raise ValueError(f"dL_dh1 must have the shape of h1 {tuple(h1.shape)}, got {tuple(dL_dh1.shape)}")
    dyn = _AdjointDynamics(field)
    counter = NFECounter(dyn)
    g0 = h1.new_zeros(sum(p.numel() for p in dyn.params))
    with torch.no_grad():
        hs, as_, gs = odeint(counter, (h1.detach(), dL_dh1.detach(), g0), t, method=method, rtol=rtol, atol=atol)
    grads, offset = [], 0
    for p in dyn.params:
        grads.append(gs[-1][offset:offset + p.numel()].reshape(p.shape))
        offset += p.numel()
    return AdjointSolution(t, hs, as_, grads, counter.nfe)


__all__ = ["AdjointSolution", "solve_adjoint"]
