"""Lesson 03 (Glow): every layer satisfies the bijection contract in float64."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.flows.coupling import AffineCoupling, make_mask
from coursekit.testing import check_bijection, check_rejects_bad_input

SETTINGS = settings(max_examples=6, deadline=None)


def randomize(module: torch.nn.Module, seed: int, std: float = 0.3) -> torch.nn.Module:
    """Random parameters (layers start at the identity, which would test nothing)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)
    return module


def randn(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# --- affine coupling -------------------------------------------------------------------

@SETTINGS
@given(dim=st.integers(2, 6), mask=st.sampled_from(["half", "alternate"]), parity=st.booleans(),
       seed=st.integers(0, 10_000))
def test_coupling_vector_contract(dim, mask, parity, seed):
    f = randomize(AffineCoupling(dim, hidden=8, mask=mask, parity=parity).double(), seed, std=0.5)
    check_bijection(f, randn(seed, 5, dim))


@SETTINGS
@given(mask=st.sampled_from(["channel", "checkerboard"]), parity=st.booleans(), seed=st.integers(0, 10_000))
def test_coupling_image_contract(mask, parity, seed):
    f = randomize(AffineCoupling((2, 4, 4), hidden=4, mask=mask, parity=parity).double(), seed)
    check_bijection(f, randn(seed, 3, 2, 4, 4))


def test_coupling_starts_at_identity_and_keeps_conditioning_half():
    f = AffineCoupling(4, hidden=8).double()
    z = randn(0, 7, 4)
    x, logdet = f(z)
    torch.testing.assert_close(x, z)
    torch.testing.assert_close(logdet, torch.zeros(7, dtype=torch.float64))
    randomize(f, 1)
    x, _ = f(z)
    torch.testing.assert_close(x[:, :2], z[:, :2])  # x₁ = z₁ exactly
    assert not torch.allclose(x[:, 2:], z[:, 2:])


def test_coupling_scale_is_bounded():
    f = randomize(AffineCoupling(2, hidden=8, scale_bound=1.5).double(), 3, std=5.0)
    s, _ = f.scale_shift(randn(0, 100, 1) * 100)
    assert s.abs().max() <= 1.5


def test_masks_partition_and_parity():
    cases = [((5,), "half"), ((5,), "alternate"), ((4, 2, 2), "channel"), ((1, 3, 3), "checkerboard")]
    for shape, kind in cases:
        m0, m1 = make_mask(shape, kind), make_mask(shape, kind, parity=True)
        torch.testing.assert_close(m0 + m1, torch.ones(shape))
        assert 0 < m0.sum() < m0.numel()


def test_coupling_rejects_bad_input_and_config():
    f = AffineCoupling(3).double()
    check_rejects_bad_input(f, randn(0, 4, 3))
    check_rejects_bad_input(AffineCoupling((2, 2, 2)).double(), randn(0, 2, 2, 2, 2))
    with pytest.raises(ValueError, match="mask for vectors"):
        AffineCoupling(4, mask="checkerboard")
    with pytest.raises(ValueError, match="one half empty"):
        AffineCoupling(1)
    with pytest.raises(ValueError, match="one half empty"):
        AffineCoupling((1, 4, 4), mask="channel")
    with pytest.raises(ValueError, match="shape"):
        AffineCoupling((2, 3))
