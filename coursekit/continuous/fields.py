"""Vector fields ``f(t, x) -> dx/dt`` with torchdiffeq's signature.

Every continuous model of the course (Neural ODE, CNF/FFJORD, flow matching) is one of
these fields integrated by an ODE solver:

    h(t_1) = h(t_0) + ∫_{t_0}^{t_1} f(t, h(t); θ) dt.

Each field has an int ``dim``, the size of ``x``. ``MLPField`` reads ``t`` through
:func:`coursekit.core.fields.batch_time` (a number, a 0-d tensor or one time per sample);
``ResNetField`` picks its block from a scalar ``t`` (robust to float32 time grids); the others are autonomous.

Taught in: notebooks 05, 06 (and 07 trains the same ``MLPField`` with flow matching).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..core.checks import positive_int
from ..core.fields import batch_time

_ACTIVATIONS = {"softplus": nn.Softplus, "tanh": nn.Tanh, "silu": nn.SiLU, "elu": nn.ELU, "relu": nn.ReLU}


class MLPField(nn.Module):
    """``f(t, x) = MLP([x, t])``: a time-dependent field on ``R^dim``.

    ``n_layers`` hidden layers of width ``hidden``; time enters as an extra input column.
    A smooth activation (softplus, tanh) keeps ``f`` smooth, which adaptive solvers and
    the divergence ``tr(∂f/∂x)`` of a CNF need (ReLU makes ``∂f/∂x`` piecewise constant).
    """

    def __init__(self, dim: int, hidden: int = 64, n_layers: int = 3, activation: str = "softplus"):
        super().__init__()
        self.dim = positive_int(dim, "dim")
        positive_int(hidden, "hidden")
        positive_int(n_layers, "n_layers")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        layers: list[nn.Module] = []
        width = dim + 1
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), _ACTIVATIONS[activation]()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, t: Tensor | float, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}), got {getattr(x, 'shape', type(x).__name__)}")
        return self.net(torch.cat([x, batch_time(t, x)[:, None]], dim=1))


class ODEFunc(nn.Module):
    """The slide's autonomous field ``f(t, h) = net(h)`` (``t`` is accepted and ignored).

    The classic torchdiffeq demo feeds ``h**3`` to the network, the same non-linearity
    as the spiral that it learns (see :class:`SpiralField`).
    """

    def __init__(self, dim: int = 2, hidden: int = 50, cubic: bool = True):
        super().__init__()
        self.dim = positive_int(dim, "dim")
        self.cubic = bool(cubic)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, dim))
        for m in self.net.modules():  # small initial field: the first solves are cheap
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.1)
                nn.init.zeros_(m.bias)

    def forward(self, t: Tensor | float, h: Tensor) -> Tensor:
        return self.net(h**3 if self.cubic else h)


class LinearField(nn.Module):
    """``f(t, x) = x Aᵀ`` (i.e. ``dx/dt = A x``): closed form ``x(t) = exp(tA) x(0)``.

    Its divergence is ``tr(A)`` everywhere, so a CNF on it has
    ``log p(x(T)) = log p(x(0)) − T·tr(A)``: the oracle of the tests.
    """

    def __init__(self, A: Tensor, trainable: bool = False):
        super().__init__()
        A = torch.as_tensor(A)
        if A.dim() != 2 or A.shape[0] != A.shape[1] or not A.is_floating_point():
            raise ValueError(f"A must be a square floating matrix, got shape {tuple(A.shape)} dtype {A.dtype}")
        self.dim = A.shape[0]
        if trainable:
            self.A = nn.Parameter(A.clone())
        else:
            self.register_buffer("A", A.clone())

    def forward(self, t: Tensor | float, x: Tensor) -> Tensor:
        return x @ self.A.T

    def flow(self, x0: Tensor, t: float) -> Tensor:
        """The exact solution ``x(t) = exp(tA) x(0)`` (matrix exponential)."""
        return x0 @ torch.linalg.matrix_exp(t * self.A.to(x0.dtype)).T


class SpiralField(nn.Module):
    """The true dynamics of the classic demo: ``dh/dt = (h**3) Aᵀ``, a damped spiral.

    ``A = [[-0.1, 2], [-2, -0.1]]``; a Neural ODE learns it from a noisy trajectory.
    """

    def __init__(self, damping: float = 0.1, speed: float = 2.0):
        super().__init__()
        self.dim = 2
        A = torch.tensor([[-damping, speed], [-speed, -damping]], dtype=torch.float64)
        self.register_buffer("A", A)

    def forward(self, t: Tensor | float, h: Tensor) -> Tensor:
        return (h**3) @ self.A.T.to(h.dtype)


class ResNetField(nn.Module):
    """A residual network's step as a field with *one set of weights per step*.

    ``h_{k+1} = h_k + Δt·f(h_k, θ_k)``: with ``Δt = 1`` this is a ResNet block; read as
    Euler's method it discretizes ``dh/dt = f(h, t, θ(t))`` with piecewise-constant θ(t).
    """

    def __init__(self, dim: int, n_steps: int, hidden: int = 32, T: float = 1.0):
        super().__init__()
        self.dim = positive_int(dim, "dim")
        self.n_steps = positive_int(n_steps, "n_steps")
        self.T = float(T)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, dim)) for _ in range(n_steps)
        )

    #: times within this fraction of a step below a block boundary count as the boundary
    #: (float32 ``linspace(0, 1, 11)`` holds 0.6999999 for 0.7: a plain floor would pick block 6)
    BOUNDARY_TOL = 1e-4

    def block_index(self, t: Tensor | float) -> int:
        """The block that acts at time ``t``: ``k`` with ``t_k ≤ t < t_{k+1}``, ``t_k = k·T/n_steps``.

        Clamped to ``[0, n_steps − 1]``; rounding errors of a float32 time grid are absorbed.
        """
        k = math.floor(float(t) / self.T * self.n_steps + self.BOUNDARY_TOL)
        return min(max(k, 0), self.n_steps - 1)

    def forward(self, t: Tensor | float, h: Tensor) -> Tensor:
        return self.blocks[self.block_index(t)](h)

    def resnet(self, h: Tensor) -> Tensor:
        """The residual network itself: ``h ← h + Δt·f_k(h)`` for k = 0..n_steps−1."""
        dt = self.T / self.n_steps
        for block in self.blocks:
            h = h + dt * block(h)
        return h


__all__ = ["LinearField", "MLPField", "ODEFunc", "ResNetField", "SpiralField"]
