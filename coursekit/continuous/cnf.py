"""Continuous normalizing flows (CNF) and FFJORD's Hutchinson trace estimator.

A CNF is a bijection like the discrete flows of lessons 01–04: ``x = f(z)`` with ``f`` the
flow map of an ODE ``dx/dt = field(t, x)`` from ``t = 0`` (the base, ``z``) to ``t = 1``
(the data, ``x``). The discrete change of variables sums ``log|det J|`` over layers; the
continuous one integrates the trace of the field's Jacobian along the path,

    log|det J_f(z)| = ∫_0^1 tr(∂field/∂x)(t, x(t)) dt,

which is the instantaneous change of variables ``d log p_t(x(t)) / dt = −tr(∂field/∂x)``.
So ``Flow(StandardNormal(D), CNF(field))`` gives

    log p_1(x) = log p_0(z) − ∫_0^1 tr(∂field/∂x) dt,    z = x(0).

Both directions solve the augmented state ``(x, ℓ)`` with ``dℓ/dt = tr(∂field/∂x)`` and
``ℓ = 0`` at the start: ``forward`` from 0 to 1 (``ℓ(1) = logdet``), ``inverse`` from 1 to 0
(``ℓ(0) = −logdet = logdet_inv``). Convention as in flow matching (lesson 07): base at
``t = 0``, data at ``t = 1``.

The trace: exact (``D`` backward passes, O(D²) for an MLP) or Hutchinson's unbiased
``εᵀ (∂f/∂x) ε`` with ``E[εεᵀ] = I`` (one vector-Jacobian product, O(D)), with ``ε``
drawn once per solve so the dynamics stay a fixed, smooth function of ``(t, x)``.

Taught in: notebook 06.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.checks import check_input, finite_float, one_of, positive_int
from ..core.fields import NOISES, NFECounter, hutchinson_probe
from ..flows.base import Bijection, parameter_dtype
from .neural_ode import check_method, odeint_any

DIVERGENCES = ("exact", "hutchinson")


def _as_graph_input(x: Tensor, grad_mode: bool) -> Tensor:
    """``x`` ready for ``autograd.grad(·, x)``.

    Outside grad mode (no-grad evaluation, the adjoint's forward solve) a tensor may carry
    ``requires_grad`` without being part of any graph, so it becomes a fresh leaf.
    """
    if grad_mode and x.requires_grad:
        return x
    return x.detach().requires_grad_(True)


def _field_and_input(field: nn.Module, t: Tensor, x: Tensor, dx: Tensor | None,
                     grad_mode: bool) -> tuple[Tensor, Tensor]:
    if dx is None:
        x = _as_graph_input(x, grad_mode)
        dx = field(t, x)
    return x, dx


def divergence_exact(field: nn.Module, t: Tensor, x: Tensor, dx: Tensor | None = None,
                     create_graph: bool | None = None) -> Tensor:
    """``tr(∂f/∂x)`` per sample, exactly: one backward pass per dimension (D of them).

    Pass ``dx = field(t, x)`` (computed from an ``x`` that requires grad) to reuse it.
    ``create_graph`` (default: whether grad mode is on) keeps the result differentiable.
    """
    grad_mode = torch.is_grad_enabled()
    create = grad_mode if create_graph is None else create_graph
    with torch.enable_grad():
        x, dx = _field_and_input(field, t, x, dx, grad_mode)
        div = x.new_zeros(x.shape[0])
        for i in range(x.shape[1]):  # row i of the Jacobian, keep its diagonal entry
            row = torch.autograd.grad(dx[:, i].sum(), x, create_graph=create, retain_graph=True)[0]
            div = div + row[:, i]
    return div


def divergence_hutchinson(field: nn.Module, t: Tensor, x: Tensor, eps: Tensor | None = None,
                          dx: Tensor | None = None, create_graph: bool | None = None,
                          noise: str = "rademacher") -> Tensor:
    """Hutchinson's estimate ``εᵀ (∂f/∂x) ε`` per sample: one vector-Jacobian product.

    Unbiased when ``E[ε εᵀ] = I``. ``eps`` (shape of ``x``) defaults to a fresh
    :func:`~coursekit.core.fields.hutchinson_probe` of kind ``noise`` (Rademacher or Gaussian).
    """
    if eps is None:
        eps = hutchinson_probe(x, noise)
    if eps.shape != x.shape:
        raise ValueError(f"eps must have the shape of x {tuple(x.shape)}, got {tuple(eps.shape)}")
    grad_mode = torch.is_grad_enabled()
    create = grad_mode if create_graph is None else create_graph
    with torch.enable_grad():
        x, dx = _field_and_input(field, t, x, dx, grad_mode)
        eps_j = torch.autograd.grad((dx * eps).sum(), x, create_graph=create, retain_graph=True)[0]  # εᵀJ
    return (eps_j * eps).sum(dim=1)


class AugmentedDynamics(nn.Module):
    """``(x, ℓ) ↦ (f(t, x), tr(∂f/∂x))``: the ODE a CNF integrates (ℓ accumulates the log-det)."""

    def __init__(self, field: nn.Module, divergence: str = "exact"):
        super().__init__()
        self.field = field
        self.divergence = divergence
        self.eps: Tensor | None = None  # Hutchinson's ε, drawn once per solve by CNF

    def forward(self, t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        x = state[0]
        create = torch.is_grad_enabled()  # off in no-grad evaluation and in the adjoint's forward
        with torch.enable_grad():
            x = _as_graph_input(x, create)
            dx = self.field(t, x)
            if self.divergence == "exact":
                div = divergence_exact(self.field, t, x, dx, create_graph=create)
            else:
                div = divergence_hutchinson(self.field, t, x, self.eps, dx, create_graph=create)
        if not create:
            dx, div = dx.detach(), div.detach()
        return dx, div


class CNF(Bijection):
    """A continuous normalizing flow as a bijection: ``x = f(z)`` is the flow of ``field`` from t=0 to t=1.

    ``forward(z) -> (x, logdet)`` and ``inverse(x) -> (z, logdet_inv)`` each solve the
    augmented ODE once; ``Flow(StandardNormal(dim), CNF(field))`` is the density model.
    ``dim`` defaults to ``field.dim``. ``nfe`` counts the evaluations of the dynamics in the
    last solve (plus the adjoint's backward solve after ``.backward()`` when ``adjoint=True``).
    """

    def __init__(self, field: nn.Module, dim: int | None = None, divergence: str = "exact",
                 noise: str = "rademacher", method: str = "dopri5", rtol: float = 1e-5, atol: float = 1e-5,
                 adjoint: bool = False, options: dict | None = None):
        super().__init__()
        if not isinstance(field, nn.Module):
            raise TypeError(f"field must be an nn.Module with forward(t, x), got {type(field).__name__}")
        if dim is None:
            dim = getattr(field, "dim", None)
            if not isinstance(dim, int):
                raise ValueError("field has no int attribute 'dim'; pass dim explicitly")
        self.event_shape = (positive_int(dim, "dim"),)
        one_of(divergence, DIVERGENCES, "divergence")
        one_of(noise, NOISES, "noise")
        check_method(method, rtol, atol)
        self.field = field
        self.dynamics = NFECounter(AugmentedDynamics(field, divergence))
        self.noise, self.method, self.rtol, self.atol = noise, method, float(rtol), float(atol)
        self.adjoint, self.options = bool(adjoint), options

    @property
    def dim(self) -> int:
        return self.event_shape[0]

    @property
    def divergence(self) -> str:
        """``"exact"`` or ``"hutchinson"``: how the dynamics compute ``tr(∂f/∂x)`` (switchable)."""
        return self.dynamics.field.divergence

    @divergence.setter
    def divergence(self, value: str) -> None:
        self.dynamics.field.divergence = one_of(value, DIVERGENCES, "divergence")

    @property
    def nfe(self) -> int:
        return self.dynamics.nfe

    def _solve(self, x: Tensor, t0: float, t1: float) -> tuple[Tensor, Tensor]:
        """``(x(t1), ∫_{t0}^{t1} tr(∂f/∂x) dt)`` starting from ``x(t0) = x``."""
        t = torch.tensor([t0, t1], dtype=x.dtype, device=x.device)
        self.dynamics.reset()
        self.dynamics.field.eps = hutchinson_probe(x, self.noise) if self.divergence == "hutchinson" else None
        xs, ls = odeint_any(self.dynamics, (x, x.new_zeros(x.shape[0])), t, method=self.method, rtol=self.rtol,
                            atol=self.atol, adjoint=self.adjoint, options=self.options)
        return xs[-1], ls[-1]

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self._solve(z, 0.0, 1.0)  # logdet = ∫_0^1 tr dt

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self._solve(x, 1.0, 0.0)  # ∫_1^0 tr dt = −logdet

    def log_prob_at(self, x: Tensor, t: float, base: nn.Module) -> Tensor:
        """``log p_t(x) = log p_0(x_0) − ∫_0^t tr(∂f/∂x) ds``, the density at time ``t`` of ``base`` pushed by the flow.

        Solves from ``t`` down to 0; ``t = 1`` is the flow's ``log_prob``, ``t = 0`` the base itself.
        """
        check_input(x, "x", self.event_shape, like=parameter_dtype(self))
        if not 0.0 <= finite_float(t, "t") <= 1.0:
            raise ValueError(f"t must lie in [0, 1], got {t}")
        if float(t) == 0.0:
            self.dynamics.reset()
            return base.log_prob(x)
        z, logdet_inv = self._solve(x, float(t), 0.0)
        return base.log_prob(z) + logdet_inv

    def trajectory(self, x: Tensor, t0: float = 0.0, t1: float = 1.0, n_times: int = 2) -> Tensor:
        """Points carried by the flow from ``t0`` to ``t1`` (field only, no trace): ``(n_times, batch, dim)``."""
        check_input(x, "x", self.event_shape, like=parameter_dtype(self))
        if not isinstance(n_times, int) or isinstance(n_times, bool) or n_times < 2:
            raise ValueError(f"n_times must be an int >= 2 (the start and the end at least), got {n_times!r}")
        if finite_float(t0, "t0") == finite_float(t1, "t1"):
            raise ValueError(f"t0 and t1 must differ, got t0 = t1 = {t0}")
        t = torch.linspace(t0, t1, n_times, dtype=x.dtype, device=x.device)
        counter = NFECounter(self.field)
        out = odeint_any(counter, x, t, method=self.method, rtol=self.rtol, atol=self.atol,
                         adjoint=self.adjoint, options=self.options)
        self.dynamics.nfe = counter.nfe
        return out


__all__ = ["AugmentedDynamics", "CNF", "DIVERGENCES", "divergence_exact", "divergence_hutchinson"]
