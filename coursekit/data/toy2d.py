"""2-D toy data sets (the scalings of the FFJORD code base) and the energies U1–U4.

Every sampler takes ``n``, an optional ``torch.Generator`` and a ``dtype`` (float32 unless
asked, never the global default: the same seed gives the same points after
``torch.set_default_dtype(torch.float64)``) and returns an ``(n, 2)`` tensor of that dtype;
nothing is read from disk. Taught in: notebooks 02, 03, 04, 06, 07.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..core.checks import positive_int

Generator = torch.Generator | None
F32 = torch.float32


def _check_n(n: int) -> None:
    positive_int(n, "n")


def _rand(n: int, g: Generator, *shape: int, dtype: torch.dtype = F32) -> Tensor:
    return torch.rand(n, *shape, generator=g, dtype=dtype)


def _randn(n: int, g: Generator, *shape: int, dtype: torch.dtype = F32) -> Tensor:
    return torch.randn(n, *shape, generator=g, dtype=dtype)


def moons(n: int, generator: Generator = None, noise: float = 0.1, dtype: torch.dtype = F32) -> Tensor:
    """Two interleaved half circles, scaled by 2 and centred."""
    n_out = n // 2
    t = math.pi * _rand(n, generator, dtype=dtype)
    upper = torch.arange(n) < n_out
    x = torch.where(upper, torch.cos(t), 1 - torch.cos(t))
    y = torch.where(upper, torch.sin(t), 0.5 - torch.sin(t))
    pts = torch.stack([x, y], 1) + noise * _randn(n, generator, 2, dtype=dtype)
    return pts * 2 + torch.tensor([-1.0, -0.2], dtype=dtype)


# FFJORD's 8gaussians: centres on a circle of radius 4, std 0.5, all divided by √2
EIGHT_GAUSSIANS_STD = 0.5 / math.sqrt(2)


def eight_gaussians_means(dtype: torch.dtype = torch.float32) -> Tensor:
    """The eight centres m_k = 4 (cos kπ/4, sin kπ/4) / √2, shape (8, 2)."""
    angles = torch.arange(8, dtype=dtype) * (2 * math.pi / 8)
    return 4 * torch.stack([torch.cos(angles), torch.sin(angles)], 1) / math.sqrt(2)


def eight_gaussians(n: int, generator: Generator = None, dtype: torch.dtype = F32) -> Tensor:
    """Eight Gaussians: q = (1/8) Σ_k N(m_k, s² I) with ``eight_gaussians_means()``, s = ``EIGHT_GAUSSIANS_STD``."""
    idx = torch.randint(0, 8, (n,), generator=generator)
    return eight_gaussians_means(dtype)[idx] + EIGHT_GAUSSIANS_STD * _randn(n, generator, 2, dtype=dtype)


def eight_gaussians_log_prob(x: Tensor) -> Tensor:
    """The exact log-density of :func:`eight_gaussians` at ``x`` (n, 2), shape (n,)."""
    sq = (x[:, None, :] - eight_gaussians_means(x.dtype).to(x.device)[None]).pow(2).sum(-1)  # (n, 8)
    log_n = -0.5 * sq / EIGHT_GAUSSIANS_STD**2 - math.log(2 * math.pi * EIGHT_GAUSSIANS_STD**2)
    return torch.logsumexp(log_n, 1) - math.log(8)


def checkerboard(n: int, generator: Generator = None, dtype: torch.dtype = F32) -> Tensor:
    """Uniform on the dark squares of a 4 × 4 board over [-4, 4]²."""
    x1 = _rand(n, generator, dtype=dtype) * 4 - 2
    x2 = _rand(n, generator, dtype=dtype) - torch.randint(0, 2, (n,), generator=generator).to(dtype) * 2.0
    x2 = x2 + torch.floor(x1) % 2
    return torch.stack([x1, x2], 1) * 2


def pinwheel(n: int, generator: Generator = None, arms: int = 5, dtype: torch.dtype = F32) -> Tensor:
    """Five curved arms (radial std 0.3, tangential std 0.1, rate 0.25)."""
    labels = torch.randint(0, arms, (n,), generator=generator).to(dtype)
    feats = (_randn(n, generator, 2, dtype=dtype) * torch.tensor([0.3, 0.1], dtype=dtype)
             + torch.tensor([1.0, 0.0], dtype=dtype))
    angles = labels * (2 * math.pi / arms) + 0.25 * torch.exp(feats[:, 0])
    c, s = torch.cos(angles), torch.sin(angles)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    return 2 * (rot @ feats.unsqueeze(-1)).squeeze(-1)


def rings(n: int, generator: Generator = None, noise: float = 0.08, dtype: torch.dtype = F32) -> Tensor:
    """Four concentric circles of radii 3, 2.25, 1.5 and 0.75."""
    radius = 3.0 * (1 + torch.randint(0, 4, (n,), generator=generator).to(dtype)) / 4
    t = 2 * math.pi * _rand(n, generator, dtype=dtype)
    pts = radius[:, None] * torch.stack([torch.cos(t), torch.sin(t)], 1)
    return pts + noise * _randn(n, generator, 2, dtype=dtype)


def circles(n: int, generator: Generator = None, factor: float = 0.5, noise: float = 0.08,
            dtype: torch.dtype = F32) -> Tensor:
    """Two concentric circles (radii 3 and 1.5) with noise."""
    inner = torch.arange(n) >= n // 2
    t = 2 * math.pi * _rand(n, generator, dtype=dtype)
    radius = torch.where(inner, torch.tensor(factor, dtype=dtype), torch.tensor(1.0, dtype=dtype))
    pts = radius[:, None] * torch.stack([torch.cos(t), torch.sin(t)], 1)
    return 3 * (pts + noise * _randn(n, generator, 2, dtype=dtype))


def two_spirals(n: int, generator: Generator = None, dtype: torch.dtype = F32) -> Tensor:
    """Two interleaved spirals."""
    half = n // 2
    t = torch.sqrt(_rand(half, generator, dtype=dtype)) * 540 * (2 * math.pi) / 360
    d1 = torch.stack([-torch.cos(t) * t, torch.sin(t) * t], 1) + _rand(half, generator, 2, dtype=dtype) * 0.5
    pts = torch.cat([d1, -d1, d1[: n - 2 * half]], 0) / 3
    return pts + 0.1 * _randn(n, generator, 2, dtype=dtype)


def swissroll(n: int, generator: Generator = None, noise: float = 1.0, dtype: torch.dtype = F32) -> Tensor:
    """The 2-D Swiss roll (the (x, z) plane of scikit-learn's 3-D roll, divided by 5)."""
    t = 1.5 * math.pi * (1 + 2 * _rand(n, generator, dtype=dtype))
    pts = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1)
    return (pts + noise * _randn(n, generator, 2, dtype=dtype)) / 5


TOY_DATASETS: dict[str, Callable[..., Tensor]] = {
    "moons": moons,
    "8gaussians": eight_gaussians,
    "checkerboard": checkerboard,
    "pinwheel": pinwheel,
    "rings": rings,
    "circles": circles,
    "2spirals": two_spirals,
    "swissroll": swissroll,
}


def sample_toy(name: str, n: int, generator: Generator = None, dtype: torch.dtype = F32) -> Tensor:
    """``n`` samples of the toy set ``name`` (one of ``TOY_DATASETS``), shape ``(n, 2)``.

    Drawn in ``dtype`` (float32 unless asked; not the global default dtype), so a seeded
    ``generator`` gives the same points whatever ``torch.get_default_dtype()`` is.
    """
    if name not in TOY_DATASETS:
        raise ValueError(f"unknown toy data set {name!r}; expected one of {sorted(TOY_DATASETS)}")
    _check_n(n)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype (torch.float32/torch.float64), got {dtype!r}")
    return TOY_DATASETS[name](n, generator, dtype=dtype)


# --- the energies of Rezende & Mohamed (2015): p(z) ∝ exp(-U(z)) -------------------------


def _w1(z: Tensor) -> Tensor:
    return torch.sin(2 * math.pi * z[:, 0] / 4)


def _w2(z: Tensor) -> Tensor:
    return 3 * torch.exp(-0.5 * ((z[:, 0] - 1) / 0.6) ** 2)


def _w3(z: Tensor) -> Tensor:
    return 3 * torch.sigmoid((z[:, 0] - 1) / 0.3)


def _neg_logsumexp2(a: Tensor, b: Tensor) -> Tensor:
    return -torch.logsumexp(torch.stack([a, b]), 0)


def energy_u1(z: Tensor) -> Tensor:
    r = z.norm(dim=1)
    ring = 0.5 * ((r - 2) / 0.4) ** 2
    return ring + _neg_logsumexp2(-0.5 * ((z[:, 0] - 2) / 0.6) ** 2, -0.5 * ((z[:, 0] + 2) / 0.6) ** 2)


def energy_u2(z: Tensor) -> Tensor:
    return 0.5 * ((z[:, 1] - _w1(z)) / 0.4) ** 2


def energy_u3(z: Tensor) -> Tensor:
    d = z[:, 1] - _w1(z)
    return _neg_logsumexp2(-0.5 * (d / 0.35) ** 2, -0.5 * ((d + _w2(z)) / 0.35) ** 2)


def energy_u4(z: Tensor) -> Tensor:
    d = z[:, 1] - _w1(z)
    return _neg_logsumexp2(-0.5 * (d / 0.4) ** 2, -0.5 * ((d + _w3(z)) / 0.35) ** 2)


ENERGIES: dict[str, Callable[[Tensor], Tensor]] = {
    "U1": energy_u1,
    "U2": energy_u2,
    "U3": energy_u3,
    "U4": energy_u4,
}


def energy(name: str) -> Callable[[Tensor], Tensor]:
    """The energy ``U`` named ``"U1"`` … ``"U4"``: ``(n, 2) -> (n,)``, target ∝ exp(-U)."""
    if name not in ENERGIES:
        raise ValueError(f"unknown energy {name!r}; expected one of {sorted(ENERGIES)}")
    return ENERGIES[name]
