"""Continuous normalizing flows (CNF) and FFJORD's Hutchinson trace estimator.

The instantaneous change of variables: along ``dx/dt = f(t, x)``,

    d log p_t(x(t)) / dt = −tr(∂f/∂x (t, x(t))).

Convention (the same as flow matching, lesson 07): the base ``p_0`` at ``t = 0`` and the
data at ``t = 1``. ``log_prob(x)`` integrates the augmented state ``(x, ℓ)`` from ``t = 1``
(the data point, ``ℓ = 0``) back to ``t = 0`` with ``dℓ/dt = −tr(∂f/∂x)`` written backwards,

    log p_1(x_1) = log p_0(x_0) − ∫_0^1 tr(∂f/∂x)(t, x(t)) dt.

The trace: exact (``D`` backward passes, O(D²) for an MLP) or Hutchinson's unbiased
``εᵀ (∂f/∂x) ε`` with ``E[εεᵀ] = I`` (one vector-Jacobian product, O(D)), with ``ε``
drawn once per solve so the dynamics stay a fixed, smooth function of ``(t, x)``.

Taught in: notebook 06.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.checks import check_input
from ..flows.base import StandardNormal
from .neural_ode import NFECounter, check_method, odeint_any

DIVERGENCES = ("exact", "hutchinson")
NOISES = ("rademacher", "gaussian")


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


def divergence_hutchinson(field: nn.Module, t: Tensor, x: Tensor, eps: Tensor, dx: Tensor | None = None,
                          create_graph: bool | None = None) -> Tensor:
    """Hutchinson's estimate ``εᵀ (∂f/∂x) ε`` per sample: one vector-Jacobian product.

    Unbiased when ``E[ε εᵀ] = I`` (Rademacher or standard Gaussian ``ε``, same shape as x).
    """
    if eps.shape != x.shape:
        raise ValueError(f"eps must have the shape of x {tuple(x.shape)}, got {tuple(eps.shape)}")
    grad_mode = torch.is_grad_enabled()
    create = grad_mode if create_graph is None else create_graph
    with torch.enable_grad():
        x, dx = _field_and_input(field, t, x, dx, grad_mode)
        eps_j = torch.autograd.grad((dx * eps).sum(), x, create_graph=create, retain_graph=True)[0]  # εᵀJ
    return (eps_j * eps).sum(dim=1)


def sample_noise(like: Tensor, noise: str) -> Tensor:
    """``ε`` with ``E[εεᵀ] = I``: Rademacher (±1, lowest variance) or standard Gaussian."""
    if noise == "rademacher":
        return torch.randint(0, 2, like.shape, device=like.device).to(like.dtype) * 2 - 1
    if noise == "gaussian":
        return torch.randn_like(like)
    raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")


class AugmentedDynamics(nn.Module):
    """``(x, ℓ) ↦ (f(t, x), −tr(∂f/∂x))``: the ODE a CNF integrates."""

    def __init__(self, field: nn.Module, divergence: str = "exact"):
        super().__init__()
        self.field = field
        self.divergence = divergence
        self.eps: Tensor | None = None  # drawn once per solve by CNF

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
        return dx, -div


class CNF(nn.Module):
    """A continuous normalizing flow: base ``p_0`` at t=0, data at t=1 (as in flow matching).

    ``log_prob(x)`` integrates data → base on the augmented state; ``sample(n)`` base →
    data on ``x`` alone; ``sample_and_log_prob(n)`` base → data with the log-density.
    ``nfe`` counts the evaluations of the dynamics in the last call (forward solve, plus
    the adjoint's backward solve after ``.backward()`` when ``adjoint=True``).
    """

    def __init__(self, field: nn.Module, base: nn.Module | None = None, divergence: str = "exact",
                 noise: str = "rademacher", method: str = "dopri5", rtol: float = 1e-5, atol: float = 1e-5,
                 adjoint: bool = False, options: dict | None = None):
        super().__init__()
        if not isinstance(field, nn.Module):
            raise TypeError(f"field must be an nn.Module with forward(t, x), got {type(field).__name__}")
        if divergence not in DIVERGENCES:
            raise ValueError(f"divergence must be one of {DIVERGENCES}, got {divergence!r}")
        if noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
        check_method(method, rtol, atol)
        dim = getattr(field, "dim", None)
        if base is None:
            if not isinstance(dim, int):
                raise ValueError("base is None and field has no int attribute 'dim'; pass base explicitly")
            base = StandardNormal(dim)
        self.field, self.base = field, base
        self.dynamics = NFECounter(AugmentedDynamics(field, divergence))
        self.noise, self.method, self.rtol, self.atol = noise, method, float(rtol), float(atol)
        self.adjoint, self.options = bool(adjoint), options

    @property
    def divergence(self) -> str:
        return self.dynamics.field.divergence

    @divergence.setter
    def divergence(self, value: str) -> None:
        if value not in DIVERGENCES:
            raise ValueError(f"divergence must be one of {DIVERGENCES}, got {value!r}")
        self.dynamics.field.divergence = value

    @property
    def nfe(self) -> int:
        return self.dynamics.nfe

    @property
    def dim(self) -> int:
        return self.base.dim

    def _anchor(self) -> Tensor:
        return next(self.field.parameters(), self.base._anchor)

    def integrate(self, x: Tensor, logp: Tensor, t: Tensor | list[float]) -> tuple[Tensor, Tensor]:
        """Solve the augmented ODE from ``t[0]`` through ``t``; returns trajectories of x and ℓ."""
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        self.dynamics.reset()
        self.dynamics.field.eps = sample_noise(x, self.noise) if self.divergence == "hutchinson" else None
        xs, ls = odeint_any(self.dynamics, (x, logp), t, method=self.method, rtol=self.rtol, atol=self.atol,
                            adjoint=self.adjoint, options=self.options)
        return xs, ls

    def log_prob(self, x: Tensor, t: float = 1.0) -> Tensor:
        """``log p_t(x) = log p_0(x_0) − ∫_0^t tr(∂f/∂x) ds``, shape ``(batch,)`` (data: ``t = 1``).

        Integrates the augmented state from ``t`` down to 0; ``t = 0`` is the base itself.
        """
        check_input(x, "x", (self.dim,))
        if not 0.0 <= float(t) <= 1.0:
            raise ValueError(f"t must lie in [0, 1], got {t}")
        if float(t) == 0.0:
            self.dynamics.reset()
            return self.base.log_prob(x)
        xs, ls = self.integrate(x, x.new_zeros(x.shape[0]), [float(t), 0.0])
        # ℓ(0) = ∫_t^0 −tr ds = +∫_0^t tr ds
        return self.base.log_prob(xs[-1]) - ls[-1]

    def transform(self, x: Tensor, t0: float, t1: float, n_times: int = 2) -> Tensor:
        """Move points along the flow from ``t0`` to ``t1`` (no divergence): ``(n_times, batch, D)``."""
        t = torch.linspace(t0, t1, n_times, dtype=x.dtype, device=x.device)
        counter = NFECounter(self.field)
        out = odeint_any(counter, x, t, method=self.method, rtol=self.rtol, atol=self.atol,
                         adjoint=self.adjoint, options=self.options)
        self.dynamics.nfe = counter.nfe
        return out

    def sample(self, n: int) -> Tensor:
        """``x_1 = φ_{0→1}(z)``, ``z ~ p_0``: integrate the field only (no trace needed)."""
        z = self.base.sample(n).to(self._anchor().dtype)
        return self.transform(z, 0.0, 1.0)[-1]

    def sample_and_log_prob(self, n: int) -> tuple[Tensor, Tensor]:
        """Samples and their log-density in one base → data solve."""
        z = self.base.sample(n).to(self._anchor().dtype)
        xs, ls = self.integrate(z, self.base.log_prob(z), [0.0, 1.0])
        return xs[-1], ls[-1]


__all__ = ["AugmentedDynamics", "CNF", "DIVERGENCES", "NOISES", "divergence_exact", "divergence_hutchinson",
           "sample_noise"]
