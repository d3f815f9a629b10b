"""Neural ODEs: a thin, readable layer over torchdiffeq's ``odeint`` / ``odeint_adjoint``.

    h(t_1) = h(t_0) + ∫_{t_0}^{t_1} f(t, h(t); θ) dt

``adjoint=False`` backpropagates through the solver's operations (memory grows with the
number of steps); ``adjoint=True`` solves the adjoint ODE backwards instead,

    a(t) = ∂L/∂h(t),   da/dt = −a(t)ᵀ ∂f/∂h,   dL/dθ = −∫_{t_1}^{t_0} a(t)ᵀ ∂f/∂θ dt,

re-integrating h(t) backwards: memory stays flat, at the price of more evaluations of f.
:class:`coursekit.core.fields.NFECounter` counts the evaluations of f (NFE) in the forward
and backward passes.

Taught in: notebook 05.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchdiffeq import odeint, odeint_adjoint

from ..core.checks import check_input, finite_float, one_of, positive_int
from ..core.fields import NFECounter
from ..flows.base import parameter_dtype

FIXED_STEP_METHODS = {"euler", "midpoint", "rk4", "explicit_adams", "implicit_adams", "heun3"}
ADAPTIVE_METHODS = {"dopri5", "dopri8", "bosh3", "adaptive_heun", "fehlberg2"}


def check_method(method: str, rtol: float, atol: float) -> None:
    """Raise ``ValueError`` for an unknown solver or non-positive tolerances."""
    one_of(method, FIXED_STEP_METHODS | ADAPTIVE_METHODS, "method")
    if not (rtol > 0 and atol > 0):
        raise ValueError(f"rtol and atol must be positive, got rtol={rtol}, atol={atol}")


def check_state(x0: object, name: str, field: object = None) -> Tensor:
    """Raise ``TypeError``/``ValueError`` unless ``x0`` is a finite, non-empty float batch
    ``(batch, ...)`` in the dtype of ``field``'s parameters (if it has any).

    Checked before the solver starts: a NaN or an empty state would otherwise end in
    torchdiffeq's ``underflow in dt``, a dtype mismatch in a matmul error.
    """
    if not isinstance(x0, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x0).__name__}")
    if not x0.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype (float32/float64), got {x0.dtype}")
    like = parameter_dtype(field) if isinstance(field, nn.Module) else None
    return check_input(x0, name, like=like)


def check_times(t: Tensor | Sequence[float], like: Tensor) -> Tensor:
    """``t`` as a 1-D strictly monotone, finite tensor (≥ 2 points) on ``like``'s device and dtype."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.dim() != 1 or t.numel() < 2:
        raise ValueError(f"t must be a 1-D tensor of at least 2 times, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"t must be finite, got {t.tolist()}")
    d = t[1:] - t[:-1]
    if not ((d > 0).all() or (d < 0).all()):
        raise ValueError("t must be strictly increasing or strictly decreasing")
    return t


def odeint_any(func: nn.Module, y0, t: Tensor, *, method: str, rtol: float, atol: float,
               adjoint: bool, options: dict | None = None):
    """``odeint`` or ``odeint_adjoint`` (one switch) with the same arguments.

    For a fixed-step method without ``step_size`` in ``options`` the solver takes one step
    per interval of ``t``.
    """
    solve = odeint_adjoint if adjoint else odeint
    kwargs = dict(method=method, rtol=rtol, atol=atol, options=options)
    if adjoint:  # the backward (adjoint) solve uses the same solver and tolerances
        kwargs.update(adjoint_method=method, adjoint_rtol=rtol, adjoint_atol=atol, adjoint_options=options)
    return solve(func, y0, t, **kwargs)


class NeuralODE(nn.Module):
    """``forward(x0, t)`` returns the trajectory ``x(t_i)``, shape ``(len(t), batch, dim)``.

    ``field`` is any ``nn.Module`` with ``forward(t, x) -> dx/dt``. ``nfe_forward`` and
    ``nfe_backward`` report the evaluations of ``field`` in the last forward solve and in
    the backward pass that followed it (0 when backpropagating through the solver:
    autograd replays the stored graph instead of calling ``field``).
    """

    def __init__(self, field: nn.Module, method: str = "dopri5", rtol: float = 1e-5, atol: float = 1e-5,
                 adjoint: bool = False, options: dict | None = None):
        super().__init__()
        if not isinstance(field, nn.Module):
            raise TypeError(f"field must be an nn.Module with forward(t, x), got {type(field).__name__}")
        check_method(method, rtol, atol)
        self.counter = field if isinstance(field, NFECounter) else NFECounter(field)
        self.method, self.rtol, self.atol = method, float(rtol), float(atol)
        self.adjoint, self.options = bool(adjoint), options
        self._nfe_after_forward = 0

    @property
    def field(self) -> nn.Module:
        return self.counter.field

    @property
    def nfe(self) -> int:
        """Evaluations of ``field`` since the last forward started (forward + backward)."""
        return self.counter.nfe

    @property
    def nfe_forward(self) -> int:
        return self._nfe_after_forward

    @property
    def nfe_backward(self) -> int:
        return self.counter.nfe - self._nfe_after_forward

    def forward(self, x0: Tensor, t: Tensor | Sequence[float]) -> Tensor:
        check_state(x0, "x0", self.field)
        t = check_times(t, x0)
        self.counter.reset()
        traj = odeint_any(self.counter, x0, t, method=self.method, rtol=self.rtol, atol=self.atol,
                          adjoint=self.adjoint, options=self.options)
        self._nfe_after_forward = self.counter.nfe
        return traj

    def flow_map(self, x0: Tensor, t0: float = 0.0, t1: float = 1.0) -> Tensor:
        """``φ_{t0→t1}(x0)``: the end point of the trajectory only."""
        return self.forward(x0, [t0, t1])[-1]


def euler_resnet(field: nn.Module, h0: Tensor, t0: float, t1: float, n_steps: int) -> Tensor:
    """Euler's method written as a residual network: ``h ← h + Δt·f(t_k, h)``, ``n_steps`` times."""
    positive_int(n_steps, "n_steps")
    check_state(h0, "h0", field)
    t0, t1 = finite_float(t0, "t0"), finite_float(t1, "t1")
    dt = (t1 - t0) / n_steps
    h = h0
    for k in range(n_steps):
        t = torch.as_tensor(t0 + k * dt, dtype=h0.dtype, device=h0.device)
        h = h + dt * field(t, h)
    return h


__all__ = ["ADAPTIVE_METHODS", "FIXED_STEP_METHODS", "NeuralODE", "check_method", "check_state", "check_times",
           "euler_resnet", "odeint_any"]
