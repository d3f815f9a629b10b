"""Sampling a learned field: integrate dx/dt = v_θ(t, x) from noise (t = 0) to data (t = 1).

Fixed-step Euler (1 NFE per step) and midpoint (2 NFE per step) show how few steps a
flow-matching field needs; ``ode_sample`` calls torchdiffeq's adaptive solvers (dopri5, …).
A field is the kernel's ``f(t, x)`` (:class:`coursekit.core.fields.VectorField`): the fixed-step
samplers pass one time per sample, shape (batch,), ``odeint`` a scalar. Taught in: notebook 07.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..core.checks import finite_float, positive_int
from ..core.fields import NFECounter, VectorField, batch_time


def _check(x0: Tensor, n_steps: int | None = None, t0: float = 0.0, t1: float = 1.0) -> None:
    if not isinstance(x0, Tensor) or not x0.is_floating_point() or x0.ndim < 1:
        what = f"dtype {x0.dtype}, shape {tuple(x0.shape)}" if isinstance(x0, Tensor) else type(x0).__name__
        raise TypeError(f"x0 must be a floating-point tensor of shape (batch, ...), got {what}")
    if x0.shape[0] < 1:
        raise ValueError(f"x0 is an empty batch (shape {tuple(x0.shape)}); pass at least one sample")
    if not torch.isfinite(x0).all():
        raise ValueError("x0 contains NaN or Inf values")
    if n_steps is not None:
        positive_int(n_steps, "n_steps")
    finite_float(t0, "t0")
    finite_float(t1, "t1")


def _fixed_step(step: Callable, field: VectorField, x0: Tensor, n_steps: int, t0: float, t1: float,
                return_trajectory: bool, enable_grad: bool):
    _check(x0, n_steps, t0, t1)
    ts = torch.linspace(t0, t1, n_steps + 1, dtype=x0.dtype, device=x0.device)
    x, traj = x0, [x0]
    with torch.set_grad_enabled(enable_grad):
        for k in range(n_steps):
            x = step(field, ts[k], ts[k + 1] - ts[k], x)
            if return_trajectory:
                traj.append(x)
    return (x, torch.stack(traj)) if return_trajectory else x


def _euler_step(field: VectorField, t: Tensor, h: Tensor, x: Tensor) -> Tensor:
    return x + h * field(batch_time(t, x), x)


def _midpoint_step(field: VectorField, t: Tensor, h: Tensor, x: Tensor) -> Tensor:
    x_mid = x + 0.5 * h * field(batch_time(t, x), x)
    return x + h * field(batch_time(t + 0.5 * h, x), x_mid)


def euler_sample(field: VectorField, x0: Tensor, n_steps: int, t0: float = 0.0, t1: float = 1.0,
                 return_trajectory: bool = False, enable_grad: bool = False):
    """Euler: x_{k+1} = x_k + h v(t_k, x_k), ``n_steps`` NFE. Returns x₁, or (x₁, traj (n_steps+1, …))."""
    return _fixed_step(_euler_step, field, x0, n_steps, t0, t1, return_trajectory, enable_grad)


def midpoint_sample(field: VectorField, x0: Tensor, n_steps: int, t0: float = 0.0, t1: float = 1.0,
                    return_trajectory: bool = False, enable_grad: bool = False):
    """Explicit midpoint (RK2): 2 NFE per step, error O(h²). Same returns as :func:`euler_sample`."""
    return _fixed_step(_midpoint_step, field, x0, n_steps, t0, t1, return_trajectory, enable_grad)


def ode_sample(field: VectorField, x0: Tensor, method: str = "dopri5", rtol: float = 1e-5, atol: float = 1e-5,
               t0: float = 0.0, t1: float = 1.0, n_points: int = 2, return_trajectory: bool = False,
               return_nfe: bool = False, enable_grad: bool = False, **options):
    """Integrate with ``torchdiffeq.odeint`` (adaptive ``dopri5`` by default).

    Returns x₁; with ``return_trajectory`` also the states at ``n_points`` equally spaced
    times; with ``return_nfe`` also the number of field evaluations the solver used.
    """
    from torchdiffeq import odeint

    _check(x0, None, t0, t1)
    if not isinstance(n_points, int) or isinstance(n_points, bool) or n_points < 2:
        raise ValueError(f"n_points must be an int >= 2, got {n_points!r}")
    if float(t0) == float(t1):
        raise ValueError(f"t0 and t1 must differ, got t0 = t1 = {t0}")
    counted = NFECounter(field)  # torchdiffeq passes a scalar t: fields accept it (batch_time)
    ts = torch.linspace(t0, t1, n_points, dtype=x0.dtype, device=x0.device)
    with torch.set_grad_enabled(enable_grad):
        traj = odeint(counted, x0, ts, method=method, rtol=rtol, atol=atol, options=options or None)
    out: tuple = (traj[-1],)
    if return_trajectory:
        out += (traj,)
    if return_nfe:
        out += (counted.nfe,)
    return out[0] if len(out) == 1 else out


__all__ = ["euler_sample", "midpoint_sample", "ode_sample"]
