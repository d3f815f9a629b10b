"""Flow-matching losses: L_FM (needs the marginal field u_t) and L_CFM (needs only u_t(x | x₁)).

    L_FM(θ)  = E_{t, x ~ p_t}        ‖v_θ(t, x) − u_t(x)‖²
    L_CFM(θ) = E_{t, x₁ ~ q, x ~ p_t(·|x₁)} ‖v_θ(t, x) − u_t(x | x₁)‖²

They differ by a constant independent of θ, so ∇_θ L_FM = ∇_θ L_CFM (Lipman et al., 2023,
Thm. 2). Both are simulation-free: no ODE is solved during training. Taught in: notebook 07.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..core.fields import VectorField
from .paths import AffinePath, PathSample, _check_tensor

Coupling = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def _squared_error(v: Tensor, u: Tensor, reduce_dims: str) -> Tensor:
    if v.shape != u.shape:
        raise ValueError(f"field(t, x) must return the shape of x {tuple(u.shape)}, got {tuple(v.shape)}")
    err = (v - u).flatten(1).pow(2)
    if reduce_dims == "sum":
        return err.sum(1)
    if reduce_dims == "mean":
        return err.mean(1)
    raise ValueError(f"reduce_dims must be 'sum' or 'mean', got {reduce_dims!r}")


def cfm_loss(field: VectorField, x1: Tensor, path: AffinePath, x0: Tensor | None = None,
             coupling: Coupling | None = None, t: Tensor | None = None,
             reduce_dims: str = "sum", return_sample: bool = False) -> Tensor | tuple[Tensor, PathSample]:
    """Monte Carlo L_CFM on a minibatch: ``mean_i ‖field(t_i, x_t^i) − u_t^i‖²``.

    ``field(t, x)`` receives one time per sample, ``t`` of shape (batch,). ``x0`` defaults
    to N(0, I) noise; ``coupling(x0, x1) -> (x0, x1)`` re-pairs them first (e.g.
    :func:`~coursekit.matching.couplings.ot_coupling`). ``reduce_dims="mean"`` averages over
    the trailing dims instead of summing (handy for images and latents).
    """
    if not isinstance(path, AffinePath):
        raise TypeError(f"path must be a GaussianPath or LinearPath, got {type(path).__name__}")
    _check_tensor("x1", x1)  # before drawing x0 like it: an int x1 gets a clear error, not randn's
    if x1.dim() < 2:
        raise ValueError(f"x1 must have shape (batch, dim, ...), got {tuple(x1.shape)}; "
                         "for one number per sample use x1[:, None]")
    if x0 is None:
        x0 = torch.randn_like(x1)
    if coupling is not None:
        x0, x1 = coupling(x0, x1)
    s = path.sample(x1, x0=x0, t=t)
    loss = _squared_error(field(s.t, s.x_t), s.u_t, reduce_dims).mean()
    return (loss, s) if return_sample else loss


def fm_loss(field: VectorField, t: Tensor, x: Tensor, u_marginal: Tensor, reduce_dims: str = "sum") -> Tensor:
    """Monte Carlo L_FM at points ``x ~ p_t`` given the marginal field ``u_marginal = u_t(x)``.

    Only computable when u_t(x) is known in closed form (see :mod:`coursekit.matching.marginal`).
    """
    return _squared_error(field(t, x), u_marginal, reduce_dims).mean()


__all__ = ["Coupling", "cfm_loss", "fm_loss"]
