"""The bijection contract, composition and flows.

A bijection maps the latent ``z`` to the data ``x`` (the lecture's direction
``x = f(z)``):

* ``forward(z) -> (x, logdet)`` with ``logdet = log|det J_f(z)|``, shape ``(batch,)``;
* ``inverse(x) -> (z, logdet_inv)`` with ``logdet_inv = log|det J_{f^-1}(x)|``
  ``= -logdet`` at the matching point.

A flow pairs a base density ``p_z`` with a bijection and gives the change of variables

    log p_x(x) = log p_z(f^-1(x)) + log|det J_{f^-1}(x)|.

Taught in: notebook 01.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..core.checks import check_input, positive_int


def as_vector(value, dim: int, name: str) -> Tensor:
    """A layer parameter as a fresh ``(dim,)`` tensor of the default dtype (a scalar is broadcast).

    Raises ``ValueError`` naming ``name`` for a wrong shape or a NaN/Inf entry (a NaN
    parameter would make every output NaN without an error)."""
    try:
        t = torch.as_tensor(value, dtype=torch.get_default_dtype())
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be a number or a sequence of {dim} numbers, got {value!r}") from err
    if t.dim() == 0:
        t = t.expand(dim)
    if t.shape != (dim,):
        raise ValueError(f"{name} must be a scalar or have shape ({dim},), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite, got {t.tolist()}")
    return t.clone()


def parameter_dtype(module: nn.Module) -> torch.dtype | None:
    """The dtype of ``module``'s first floating parameter (``None`` if it has none).

    Buffers do not count: a fixed buffer may be kept in float64 and cast per call."""
    for t in module._parameters.values():  # the module's own parameters first: no recursion
        if t is not None and t.is_floating_point():
            return t.dtype
    for t in module.parameters():
        if t.is_floating_point():
            return t.dtype
    return None


class Bijection(nn.Module):
    """Base class: subclasses implement ``_forward`` and ``_inverse``.

    ``event_shape`` (``None`` = any) is checked on every call while validation is on, and
    so are the rest of :func:`~coursekit.core.checks.check_input`'s rules: a float, finite,
    non-empty batch whose dtype is the dtype of the layer's parameters (a float64 batch into
    a float32 layer raises ``ValueError`` naming both; convert one of them).
    """

    event_shape: tuple[int, ...] | None = None

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        check_input(z, "z", self.event_shape, like=parameter_dtype(self))
        return self._forward(z)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_input(x, "x", self.event_shape, like=parameter_dtype(self))
        return self._inverse(x)

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


class Inverse(Bijection):
    """Swap the two directions of a bijection: ``f^-1`` as a bijection in its own right."""

    def __init__(self, bijection: Bijection):
        super().__init__()
        self.bijection = bijection
        self.event_shape = bijection.event_shape

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.bijection.inverse(z)

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.bijection(x)


class Compose(Bijection):
    """``f = f_K ∘ ... ∘ f_1``: log-dets add up, ``log|det J_f| = Σ_k log|det J_{f_k}|``.

    Each layer checks its own input, so layers that change the shape (``Squeeze``) compose:
    ``event_shape`` is the first layer's (what ``forward`` takes).
    """

    def __init__(self, bijections: Iterable[Bijection]):
        super().__init__()
        self.bijections = nn.ModuleList(bijections)
        if len(self.bijections) == 0:
            raise ValueError("Compose needs at least one bijection")
        self.event_shape = self.bijections[0].event_shape

    def __len__(self) -> int:
        return len(self.bijections)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        # float, finite, non-empty, batched; the shape is the first layer's to check
        check_input(z, "z", like=parameter_dtype(self))
        return self._forward(z)

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check_input(x, "x", like=parameter_dtype(self))  # the shape is the last layer's to check
        return self._inverse(x)

    def _forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        total = z.new_zeros(z.shape[0])
        for f in self.bijections:
            z, logdet = f(z)
            total = total + logdet
        return z, total

    def _inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        total = x.new_zeros(x.shape[0])
        for f in reversed(self.bijections):
            x, logdet = f.inverse(x)
            total = total + logdet
        return x, total

    def trajectory(self, z: Tensor) -> list[Tensor]:
        """``[z, f_1(z), f_2(f_1(z)), ...]``: where samples are after each layer."""
        points = [z]
        for f in self.bijections:
            z, _ = f(z)
            points.append(z)
        return points


class StandardNormal(nn.Module):
    """``p_z = N(0, I)`` over samples of shape ``event_shape``; follows ``.to(device)``."""

    def __init__(self, *event_shape: int):
        super().__init__()
        if not event_shape:
            raise ValueError("StandardNormal needs an event shape, e.g. StandardNormal(2)")
        for d in event_shape:
            positive_int(d, "each entry of event_shape")
        self.event_shape = tuple(event_shape)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # device/dtype carrier

    @property
    def dim(self) -> int:
        return math.prod(self.event_shape)

    def log_prob(self, z: Tensor) -> Tensor:
        check_input(z, "z", self.event_shape)
        flat = z.reshape(z.shape[0], -1)
        return -0.5 * (flat**2).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        positive_int(n, "n")
        z = torch.randn(n, *self.event_shape, device=self._anchor.device, dtype=self._anchor.dtype)
        return temperature * z


class Flow(nn.Module):
    """A normalizing flow ``x = f(z)``, ``z ~ p_z``.

    ``log_prob(x) = log p_z(f^-1(x)) + log|det J_{f^-1}(x)|``.
    """

    def __init__(self, base: nn.Module, transform: Bijection):
        super().__init__()
        self.base = base
        self.transform = transform

    def log_prob(self, x: Tensor) -> Tensor:
        z, logdet_inv = self.transform.inverse(x)
        return self.base.log_prob(z) + logdet_inv

    def sample(self, n: int) -> Tensor:
        x, _ = self.transform(self.base.sample(n))
        return x

    def sample_and_log_prob(self, n: int) -> tuple[Tensor, Tensor]:
        """One pass, no inverse: ``log p_x(x) = log p_z(z) - log|det J_f(z)|``."""
        z = self.base.sample(n)
        x, logdet = self.transform(z)
        return x, self.base.log_prob(z) - logdet
