"""The bijection contract for the lesson-01 layers, Compose, Inverse, Flow and StandardNormal."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.flows import (
    Compose,
    ElementwiseAffine,
    Flow,
    Inverse,
    Linear,
    StandardNormal,
    TanhWarp,
    check_input,
    set_validation,
    solve_increasing,
)
from coursekit.testing import autograd_logdet, check_bijection, check_rejects_bad_input

pytestmark = pytest.mark.usefixtures("float64")



SETTINGS = settings(max_examples=25, deadline=None)
dims = st.integers(1, 4)
seeds = st.integers(0, 2**31 - 1)


def _z(dim: int, seed: int, n: int = 8) -> torch.Tensor:
    return 2 * torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


@SETTINGS
@given(dim=dims, seed=seeds, log_scale=st.floats(-2, 2), shift=st.floats(-3, 3))
def test_elementwise_affine_contract(dim, seed, log_scale, shift):
    f = ElementwiseAffine(dim, scale=math.exp(log_scale), shift=shift)
    check_bijection(f, _z(dim, seed))


@SETTINGS
@given(dim=dims, seed=seeds, a=st.floats(-0.9, 4.0), b=st.floats(0.2, 3.0))
def test_tanh_warp_contract(dim, seed, a, b):
    if a * b <= -0.95:  # outside the invertible family: the constructor refuses it (tested below)
        a = -0.9 / b
    f = TanhWarp(dim, a=a, b=b, tol=1e-12)
    check_bijection(f, _z(dim, seed), atol=1e-8)


@SETTINGS
@given(dim=dims, seed=seeds)
def test_linear_contract(dim, seed):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(dim, dim, generator=g) + 2 * torch.eye(dim)
    if abs(torch.linalg.det(A)) < 1e-3:
        A = A + torch.eye(dim)
    f = Linear(A, shift=torch.randn(dim, generator=g))
    check_bijection(f, _z(dim, seed), atol=1e-8)


@SETTINGS
@given(seed=seeds, n_layers=st.integers(1, 5))
def test_compose_sums_logdets_and_matches_autograd(seed, n_layers):
    g = torch.Generator().manual_seed(seed)
    layers = []
    for _ in range(n_layers):
        layers.append(Linear(torch.randn(2, 2, generator=g) + 2 * torch.eye(2)))
        layers.append(TanhWarp(2, a=float(torch.rand(1, generator=g)) * 2, b=1.0, tol=1e-12))
    f = Compose(layers)
    z = _z(2, seed)
    check_bijection(f, z, atol=1e-7, rtol=1e-7)
    total, h = torch.zeros(len(z)), z
    for layer in layers:
        h, ld = layer(h)
        total = total + ld
    torch.testing.assert_close(f(z)[1], total)
    assert len(f.trajectory(z)) == len(layers) + 1


def test_inverse_swaps_directions():
    f = TanhWarp(2, a=1.5, b=1.0, tol=1e-12)
    z = _z(2, 0)
    inv = Inverse(f)
    torch.testing.assert_close(inv(z)[0], f.inverse(z)[0])
    check_bijection(inv, z, atol=1e-8)


def test_tanh_warp_inverse_has_exact_gradients():
    # the Newton step after the root solve makes dz/dx = 1/f'(z)
    f = TanhWarp(1, a=2.0, b=1.5)
    x = torch.linspace(-3, 3, 7).unsqueeze(1).requires_grad_()
    z, _ = f.inverse(x)
    (dz_dx,) = torch.autograd.grad(z.sum(), x)
    expected = torch.exp(-f._log_derivative(z.detach()))
    torch.testing.assert_close(dz_dx, expected, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("make", [
    lambda: ElementwiseAffine(2, 2.0, 1.0),
    lambda: TanhWarp(2, a=1.0),
    lambda: Linear([[2.0, 1.0], [0.0, 1.0]]),
    lambda: Compose([Linear([[2.0, 1.0], [0.0, 1.0]]), TanhWarp(2, a=1.0)]),
])
def test_bad_input_is_rejected_clearly(make):
    f = make()
    check_rejects_bad_input(f, _z(2, 1))
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        f(torch.zeros(4, 3))


def test_invalid_parameters_are_rejected():
    with pytest.raises(ValueError, match="a \\* b"):
        TanhWarp(1, a=-2.0, b=1.0)
    with pytest.raises(ValueError, match="singular"):
        Linear([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(ValueError, match="positive"):
        ElementwiseAffine(2, scale=-1.0)
    with pytest.raises(ValueError, match="square"):
        Linear(torch.ones(2, 3))
    with pytest.raises(ValueError, match="at least one"):
        Compose([])


def test_validation_can_be_switched_off():
    f = ElementwiseAffine(2)
    bad = torch.full((3, 2), float("nan"))
    set_validation(False)
    try:
        x, _ = f(bad)
        assert torch.isnan(x).all()
    finally:
        set_validation(True)
    with pytest.raises(ValueError):
        f(bad)


def test_check_input_messages():
    with pytest.raises(TypeError, match="torch.Tensor"):
        check_input([1.0], "x")
    with pytest.raises(ValueError, match="batch"):
        check_input(torch.zeros(3), "x")


def test_standard_normal_log_prob_matches_torch_distributions():
    base = StandardNormal(3)
    z = _z(3, 2)
    ref = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(base.log_prob(z), ref)
    assert base.sample(5).shape == (5, 3)
    assert base.double().sample(2).dtype == torch.float64
    with pytest.raises(ValueError):
        base.sample(0)
    with pytest.raises(ValueError):
        StandardNormal(0)


def test_flow_log_prob_integrates_to_one_and_matches_sample_and_log_prob():
    flow = Flow(StandardNormal(2), Compose([Linear([[1.0, 0.5], [-0.3, 0.8]]), TanhWarp(2, a=1.0)]))
    xs = torch.linspace(-9, 9, 401)
    yy, xx = torch.meshgrid(xs, xs, indexing="ij")
    pts = torch.stack([xx.flatten(), yy.flatten()], 1)
    with torch.no_grad():
        mass = flow.log_prob(pts).exp().sum() * (xs[1] - xs[0]) ** 2
        x, lp = flow.sample_and_log_prob(500)
    assert abs(mass.item() - 1) < 1e-3
    torch.testing.assert_close(lp, flow.log_prob(x), atol=1e-8, rtol=1e-8)


def test_flow_samples_follow_log_prob_monte_carlo():
    # the fraction of samples in a box matches the quadrature of exp(log_prob) over the box
    torch.manual_seed(0)
    flow = Flow(StandardNormal(2), Compose([Linear([[1.5, 0.2], [0.1, 0.7]]), TanhWarp(2, a=0.8)]))
    n = 100_000
    with torch.no_grad():
        x = flow.sample(n)
        frac = ((x[:, 0] > 0) & (x[:, 0] < 2) & (x[:, 1] > -1) & (x[:, 1] < 1)).double().mean().item()
        h = 0.01
        gx = torch.arange(0 + h / 2, 2, h)
        gy = torch.arange(-1 + h / 2, 1, h)
        yy, xx = torch.meshgrid(gy, gx, indexing="ij")
        mass = flow.log_prob(torch.stack([xx.flatten(), yy.flatten()], 1)).exp().sum().item() * h * h
    sigma = math.sqrt(mass * (1 - mass) / n)
    assert abs(frac - mass) < 4 * sigma + 1e-4, (frac, mass, sigma)


def test_autograd_logdet_oracle_on_linear_map():
    A = torch.tensor([[2.0, 1.0], [0.5, 3.0]])
    got = autograd_logdet(Linear(A), _z(2, 3))
    torch.testing.assert_close(got, torch.full((8,), math.log(abs(torch.linalg.det(A)))))


@SETTINGS
@given(target=st.floats(-50, 50), tol=st.sampled_from([1e-3, 1e-8, 1e-12]))
def test_solve_increasing_finds_the_root(target, tol):
    fn = lambda s: s**3 + s  # noqa: E731 - increasing everywhere
    t = torch.tensor([target])
    root = solve_increasing(fn, t, torch.tensor([-10.0]), torch.tensor([10.0]), tol=tol)
    assert abs(root.item() ** 3 + root.item() - target) <= 301 * tol  # |f'| <= 301 on the bracket


def test_solve_increasing_rejects_bad_arguments():
    with pytest.raises(ValueError):
        solve_increasing(lambda s: s, torch.zeros(1), torch.zeros(1), torch.ones(1), tol=0)
    with pytest.raises(RuntimeError, match="max_iter"):
        solve_increasing(lambda s: s, torch.zeros(1), -torch.ones(1), torch.ones(1), tol=1e-12, max_iter=3)
