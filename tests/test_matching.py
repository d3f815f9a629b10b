"""Tests for coursekit.matching (lesson 07): paths, losses, couplings, samplers; and lesson 07's recipes."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import jvp

from coursekit.core.fields import NFECounter, batch_time
from coursekit.matching import (
    GaussianPath,
    LinearPath,
    cfm_loss,
    euler_sample,
    fm_loss,
    midpoint_sample,
    ode_sample,
    ot_coupling,
    ot_permutation,
    transport_cost,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPES = [(5, 2), (3, 1, 4, 4), (4, 3, 2, 2, 2)]


paths = st.one_of(
    st.floats(0.0, 0.5).map(GaussianPath),
    st.floats(0.0, 0.0).map(LinearPath),  # σ = 0: x_t is a deterministic function of t
)


@settings(max_examples=15, deadline=None)
@given(path=paths, shape=st.sampled_from(SHAPES), seed=st.integers(0, 2**16))
def test_u_t_is_time_derivative_of_x_t(path, shape, seed):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(shape, generator=g, dtype=torch.float64)
    x1 = torch.randn(shape, generator=g, dtype=torch.float64)
    t = torch.rand(shape[0], generator=g, dtype=torch.float64)
    s = path.sample(x1, x0=x0, t=t)
    _, dxdt = jvp(lambda tt: path.interpolate(tt, x0, x1), (t,), (torch.ones_like(t),))
    assert s.t.shape == (shape[0],) and s.x_t.shape == shape and s.u_t.shape == shape
    torch.testing.assert_close(s.u_t, dxdt, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(s.x_t, path.interpolate(t, x0, x1))
    # the conditional field evaluated on the path is the path's velocity
    torch.testing.assert_close(path.conditional_field(t, s.x_t, x1), s.u_t, rtol=1e-9, atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(sigma_min=st.floats(0.0, 0.5), seed=st.integers(0, 2**16))
def test_gaussian_path_matches_lipman_formulas(sigma_min, seed):
    g = torch.Generator().manual_seed(seed)
    x1 = torch.randn(6, 3, generator=g, dtype=torch.float64)
    path = GaussianPath(sigma_min)
    s = path.sample(x1, t=torch.rand(6, generator=g, dtype=torch.float64), generator=g)
    sig = (1 - (1 - sigma_min) * s.t)[:, None]
    torch.testing.assert_close(s.u_t, (x1 - (1 - sigma_min) * s.x_t) / sig)
    mean, std = path.conditional_mean_std(s.t, x1)
    torch.testing.assert_close(mean, s.t[:, None] * x1)
    torch.testing.assert_close(std.reshape(-1), sig.reshape(-1))


def test_path_endpoints():
    x0, x1 = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    for path in (GaussianPath(0.0), LinearPath()):
        torch.testing.assert_close(path.interpolate(0.0, x0, x1), x0)
        torch.testing.assert_close(path.interpolate(1.0, x0, x1), x1)
    # σ_min > 0: at t = 1 the Gaussian path keeps a little noise around x₁
    torch.testing.assert_close(GaussianPath(0.1).interpolate(1.0, x0, x1), 0.1 * x0 + x1)


def test_cfm_loss_vanishes_for_exact_field_single_point():
    # one data point: the conditional field *is* the marginal field, so it has zero loss
    x1_star = torch.tensor([[1.5, -0.5]], dtype=torch.float64)
    for path in (GaussianPath(1e-3), LinearPath()):
        field = lambda t, x, p=path: p.conditional_field(t, x, x1_star.expand_as(x))  # noqa: E731
        x1 = x1_star.expand(256, 2)
        t = torch.rand(256, dtype=torch.float64) * 0.99
        assert cfm_loss(field, x1, path, t=t) < 1e-18
        assert cfm_loss(lambda t, x: torch.zeros_like(x), x1, path, t=t) > 0.1


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 24), d=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_ot_coupling_is_permutation_and_cheaper(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, d, generator=g, dtype=torch.float64)
    x1 = torch.randn(n, d, generator=g, dtype=torch.float64) + 2
    perm = ot_permutation(x0, x1)
    assert sorted(perm.tolist()) == list(range(n))
    y0, y1 = ot_coupling(x0, x1)
    assert torch.equal(y1, x1) and torch.equal(y0, x0[perm])
    assert transport_cost(y0, y1) <= transport_cost(x0, x1) + 1e-12
    pot0, _ = ot_coupling(x0, x1, solver="pot")
    assert abs(transport_cost(pot0, x1) - transport_cost(y0, y1)) < 1e-9
    if n <= 6:  # brute force over all permutations
        import itertools

        perms = torch.tensor(list(itertools.permutations(range(n))))
        best = float((x0[perms] - x1).pow(2).sum(-1).mean(-1).min())
        assert abs(best - transport_cost(y0, y1)) < 1e-9


def test_samplers_against_closed_form():
    # dx/dt = a x  ⇒  x(1) = eᵃ x(0)
    a = -0.7
    field = NFECounter(lambda t, x: a * x)
    x0 = torch.randn(8, 3, dtype=torch.float64)
    exact = x0 * torch.exp(torch.tensor(a, dtype=torch.float64))
    x1, traj = euler_sample(field, x0, 1, return_trajectory=True)
    torch.testing.assert_close(x1, (1 + a) * x0)
    assert traj.shape == (2, 8, 3) and field.nfe == 1
    err_e = [float((euler_sample(field, x0, n) - exact).abs().max()) for n in (10, 20)]
    err_m = [float((midpoint_sample(field, x0, n) - exact).abs().max()) for n in (10, 20)]
    assert abs(err_e[0] / err_e[1] - 2.0) < 0.2  # first order: halving h halves the error
    assert 3.6 < err_m[0] / err_m[1] < 4.4  # second order
    y, nfe = ode_sample(field, x0, rtol=1e-10, atol=1e-10, return_nfe=True)
    torch.testing.assert_close(y, exact, rtol=1e-8, atol=1e-8)
    assert nfe > 0
    y, tr = ode_sample(field, x0, method="rk4", n_points=5, return_trajectory=True, step_size=0.05)
    assert tr.shape == (5, 8, 3)


def test_field_receives_kernel_time():
    # fixed-step samplers and the loss pass one time per sample; odeint passes a scalar, which
    # every field accepts through batch_time
    seen = []

    def field(t, x):
        seen.append(tuple(torch.as_tensor(t).shape))
        return torch.zeros_like(x) + batch_time(t, x)[:, None]

    x0 = torch.randn(7, 2)
    euler_sample(field, x0, 2)
    midpoint_sample(field, x0, 1)
    cfm_loss(field, x0, LinearPath())
    assert set(seen) == {(7,)}
    seen.clear()
    y, nfe = ode_sample(field, x0, return_nfe=True)
    torch.testing.assert_close(y, x0 + 0.5)  # dx/dt = t
    assert nfe == len(seen) > 0 and set(seen) <= {(), (7,)}


def test_rejects_bad_input():
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="sigma_min"):
        GaussianPath(1.5)
    with pytest.raises(ValueError, match="sigma"):
        LinearPath(-1.0)
    with pytest.raises(ValueError, match="shape of x1"):
        LinearPath().sample(x, x0=torch.randn(4, 3))
    with pytest.raises(TypeError, match="floating-point"):
        LinearPath().sample(torch.ones(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"t must be a scalar or have shape \(4,\)"):
        LinearPath().sample(x, t=torch.rand(3))
    with pytest.raises(ValueError, match="n_steps"):
        euler_sample(lambda t, x: x, x, 0)
    with pytest.raises(ValueError, match="same shape"):
        ot_coupling(x, torch.randn(5, 2))
    with pytest.raises(ValueError, match="solver"):
        ot_coupling(x, x, solver="sinkhorn")
    with pytest.raises(ValueError, match="shape of x"):
        cfm_loss(lambda t, x: x[:, :1], x, LinearPath())
    with pytest.raises(TypeError, match="path"):
        cfm_loss(lambda t, x: x, x, "linear")


# --- closed-form marginals and the FM / CFM equivalence -----------------------------------

from coursekit.data import sample_toy  # noqa: E402
from coursekit.matching.marginal import MixtureTarget  # noqa: E402
from coursekit.matching.metrics import energy_distance, sliced_wasserstein, straightness  # noqa: E402


def _tiny_field(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).double()

    class F(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, t, x):
            return self.net(torch.cat([x, t[:, None]], 1))

    return F()


def _grads(loss, module):
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(module.parameters()))])


targets = st.builds(
    lambda k, std, seed: MixtureTarget(torch.randn(k, 2, generator=torch.Generator().manual_seed(seed),
                                                   dtype=torch.float64) * 2, std=std),
    st.integers(1, 5), st.sampled_from([0.0, 0.3]), st.integers(0, 2**16),
)
mix_paths = st.sampled_from([GaussianPath(1e-2), GaussianPath(0.2), LinearPath(), LinearPath(0.1)])


@settings(max_examples=20, deadline=None)
@given(target=targets, path=mix_paths, seed=st.integers(0, 2**16))
def test_marginal_satisfies_continuity_equation(target, path, seed):
    # ∂_t log p_t + ∇·u_t + u_t·∇ log p_t = 0   ⇔   ∂_t p_t + ∇·(p_t u_t) = 0
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 2, generator=g, dtype=torch.float64) * 2
    t = 0.05 + 0.85 * torch.rand(6, generator=g, dtype=torch.float64)
    logp = lambda tt, xx: target.log_prob_t(path, tt, xx)  # noqa: E731
    _, dlogp_dt = jvp(lambda tt: logp(tt, x), (t,), (torch.ones_like(t),))
    xg = x.clone().requires_grad_(True)
    grad_logp = torch.autograd.grad(logp(t, xg).sum(), xg)[0]
    u = target.marginal_field(path, t, xg)
    div = sum(torch.autograd.grad(u[:, i].sum(), xg, retain_graph=True)[0][:, i] for i in range(2))
    residual = dlogp_dt + div + (u * grad_logp).sum(1)
    assert residual.abs().max() < 1e-8


def test_marginal_density_normalised_and_matches_components():
    target = MixtureTarget(torch.tensor([[1.0, 2.0], [-2.0, 0.5], [0.0, -1.5]], dtype=torch.float64),
                           std=0.2, weights=torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64))
    n = 300
    ax = torch.linspace(-6, 6, n, dtype=torch.float64)
    xx = torch.stack(torch.meshgrid(ax, ax, indexing="xy"), -1).reshape(-1, 2)
    for path in (GaussianPath(1e-3), LinearPath(0.1)):
        mass = target.log_prob_t(path, 0.6, xx).exp().sum() * (ax[1] - ax[0]) ** 2
        assert abs(float(mass) - 1) < 1e-3
    points = MixtureTarget(target.means)  # std = 0: the components are the conditional fields
    x = torch.randn(5, 2, dtype=torch.float64)
    for path in (GaussianPath(1e-2), LinearPath()):
        comp = points.component_fields(path, 0.3, x)
        for k in range(3):
            torch.testing.assert_close(comp[:, k], path.conditional_field(0.3, x, target.means[k].expand(5, 2)))


@settings(max_examples=8, deadline=None)
@given(target=targets, path=mix_paths, seed=st.integers(0, 2**16))
def test_fm_and_cfm_gradients_agree_exactly_given_x(target, path, seed):
    # CFM conditioned on the component k (= on x₁ when std = 0), integrated exactly given x:
    # E_{k|x}‖v − u(x|k)‖² = ‖v − u(x)‖² + Var(u(x|k) | x): same θ-gradient, θ-free gap
    g = torch.Generator().manual_seed(seed)
    t = 0.02 + 0.9 * torch.rand(64, generator=g, dtype=torch.float64)
    x = target.sample_t(path, t, g)
    comp, gamma = target.component_fields(path, t, x), target.posterior(path, t, x)
    u = target.marginal_field(path, t, x)
    gap = (gamma * (comp - u[:, None]).pow(2).sum(-1)).sum(1).mean()
    for s in (seed, seed + 1):
        field = _tiny_field(s)
        v = field(t, x)
        l_cfm = (gamma * (v[:, None] - comp).pow(2).sum(-1)).sum(1).mean()
        l_fm = fm_loss(field, t, x, u)
        torch.testing.assert_close(_grads(l_cfm, field), _grads(l_fm, field), rtol=1e-9, atol=1e-11)
        assert abs(float((l_cfm - l_fm - gap).detach())) < 1e-10


@pytest.mark.parametrize("path", [GaussianPath(0.1), LinearPath(), LinearPath(0.2)], ids=repr)
def test_conditional_variance_is_the_cfm_fm_gap(path):
    """E_x Var[u_t(x|x₁) | x] (closed form) = E‖u_t(x|x₁) − u_t(x)‖² by Monte Carlo over (x₀, x₁, ε)."""
    target = MixtureTarget(torch.tensor([[2.0, 0.0], [-1.0, 1.5], [0.0, -2.0]], dtype=torch.float64), std=0.35)
    g = torch.Generator().manual_seed(0)
    n = 40_000
    for t in (0.0, 0.5, 0.9):
        x1 = target.sample(n, g)
        s = path.sample(x1, t=torch.full((n,), t, dtype=torch.float64), generator=g)
        mc = float((s.u_t - target.marginal_field(path, t, s.x_t)).pow(2).sum(1).mean())
        exact = float(target.conditional_variance(path, t, s.x_t).mean())
        assert abs(mc - exact) < 0.03 * exact, (t, mc, exact)
    points = MixtureTarget(target.means)  # std = 0: only the spread between the points is left
    x = torch.randn(7, 2, dtype=torch.float64)
    comp, gamma = points.component_fields(path, 0.4, x), points.posterior(path, 0.4, x)
    between = (gamma * (comp - points.marginal_field(path, 0.4, x)[:, None]).pow(2).sum(-1)).sum(1)
    if path.sigma == 0:
        torch.testing.assert_close(points.conditional_variance(path, 0.4, x), between)


def test_fm_and_cfm_gradients_agree_by_monte_carlo():
    # the actual minibatch estimators: gradient gap shrinks like 1/√N, loss gap is θ-free
    target = MixtureTarget(torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]], dtype=torch.float64), std=0.1)
    path = GaussianPath(1e-2)
    fields = [_tiny_field(1), _tiny_field(2)]
    errors, gaps = [], []
    for n in (2_000, 100_000):
        g = torch.Generator().manual_seed(n)
        x1 = target.sample(n, g)
        s = path.sample(x1, t=torch.rand(n, generator=g, dtype=torch.float64), generator=g)
        u = target.marginal_field(path, s.t, s.x_t)
        rel, gap = [], []
        for field in fields:
            l_cfm = ((field(s.t, s.x_t) - s.u_t) ** 2).sum(1).mean()
            l_fm = fm_loss(field, s.t, s.x_t, u)
            g_c, g_f = _grads(l_cfm, field), _grads(l_fm, field)
            rel.append(float((g_c - g_f).norm() / g_f.norm()))
            gap.append((l_cfm - l_fm).item())
        errors.append(max(rel))
        gaps.append(abs(gap[0] - gap[1]))
    assert errors[1] < 0.05 and errors[1] < errors[0] / 3
    assert gaps[1] < 0.02


def test_metrics():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 1, generator=g, dtype=torch.float64)
    assert sliced_wasserstein(x, x) == 0
    assert abs(sliced_wasserstein(x, x + 0.7) - 0.7) < 1e-12  # in 1-D every projection is ±x
    y = torch.randn(500, 2, generator=g, dtype=torch.float64)
    assert abs(energy_distance(y, y)) < 1e-12
    assert energy_distance(y, y + 1.0) > 0.5
    ts = torch.linspace(0, 1, 6, dtype=torch.float64)[:, None, None]
    a, b = torch.randn(1, 4, 2, dtype=torch.float64), torch.randn(1, 4, 2, dtype=torch.float64)
    assert straightness((1 - ts) * a + ts * b) < 1e-20
    assert straightness((1 - ts**2) * a + ts**2 * b) > 0.01


# --- lesson 07's recipes: training, few-step evaluation, MNIST; the 8gaussians target; the playground


def test_eight_gaussians_one_density():
    # the sampler, the exact mixture of the playground and the closed-form log-density are one q
    from coursekit.data.toy2d import eight_gaussians_log_prob, eight_gaussians_means
    from coursekit.matching import eight_gaussians_target

    target = eight_gaussians_target()
    x = torch.randn(200, 2, dtype=torch.float64) * 2
    torch.testing.assert_close(target.log_prob_t(LinearPath(), 1.0, x), eight_gaussians_log_prob(x))  # p_1 = q
    x1 = sample_toy("8gaussians", 16_000, torch.Generator().manual_seed(0)).double()
    nearest = torch.cdist(x1, target.means).argmin(1)
    for k in range(8):
        assert (x1[nearest == k].mean(0) - eight_gaussians_means(torch.float64)[k]).norm() < 0.03
    assert abs(float((x1 - target.means[nearest]).std()) - target.std) < 0.01


def test_train_fm_learns_and_reports_curve():
    from coursekit.lessons.flow_matching import train_fm

    res = train_fm("8gaussians", n_steps=120, batch_size=128, n_eval=2, n_test=300, progress=False)
    assert [p.step for p in res.curve] == [60, 120, 120] or [p.step for p in res.curve][-1] == 120
    assert all(b.time_s >= a.time_s for a, b in zip(res.curve, res.curve[1:]))
    assert res.test_nll < 4.2  # a Gaussian fitted to 8gaussians has NLL ≈ 4.24 nats
    assert res.time_to_nll(1e9) == res.curve[0].time_s and res.time_to_nll(-1e9) is None
    assert res.flow.transform.field is res.field


def test_training_helpers_accept_any_data_tensor():
    """Notebook 07's exercise 3: both helpers train on an (N, D) tensor (last n_test rows held out)."""
    from coursekit.lessons.flow_matching import train_ffjord_curve, train_fm

    g = torch.Generator().manual_seed(0)
    scale = torch.tensor([0.5, 1.0, 2.0])
    data = torch.randn(700, 3, generator=g) * scale + 1.0  # N(1, diag(scale²)) in 3-D
    exact_nll = float(-torch.distributions.Normal(1.0, scale).log_prob(data[-200:]).sum(1).mean())
    fm = train_fm(data, n_steps=150, batch_size=128, n_eval=1, n_test=200, progress=False)
    assert fm.field.dim == 3 and fm.dataset == "tensor (700, 3)"
    assert exact_nll - 0.05 < fm.test_nll < exact_nll + 0.5, (fm.test_nll, exact_nll)
    ff = train_ffjord_curve(data, n_steps=2, batch_size=64, divergence="hutchinson", n_eval=1, n_test=50,
                            progress=False)
    assert ff.field.dim == 3 and math.isfinite(ff.test_nll) and len(ff.history.steps) == 2
    quick = train_fm(data, n_steps=5, n_eval=0, n_test=200, progress=False)  # timings only, no test NLL
    assert math.isnan(quick.test_nll) and len(quick.curve) == 1 and quick.time_per_step_s > 0
    # the toy-set path is unchanged, and bad inputs are explained
    with pytest.raises(ValueError, match="more than n_test"):
        train_fm(data[:100], n_steps=1, n_test=200, progress=False)
    with pytest.raises(TypeError, match=r"shape \(N, D\)"):
        train_fm(torch.zeros(10, 2, 2), n_steps=1, n_test=2, progress=False)
    with pytest.raises(ValueError, match="does not match"):
        from coursekit.continuous import MLPField
        train_fm(data, n_steps=1, n_test=200, field=MLPField(2), progress=False)


def test_quality_vs_nfe_rows_and_exact_field():
    from coursekit.lessons.flow_matching import flow_straightness, quality_vs_nfe

    # the constant field v = c: dx/dt = c moves N(0, I) to N(c, I) exactly in one step
    c = torch.tensor([1.0, -2.0], dtype=torch.float64)
    field = lambda t, x: c.expand_as(x)  # noqa: E731
    x0 = torch.randn(400, 2, dtype=torch.float64)
    rows = quality_vs_nfe(field, x0, x0 + c, steps=(1, 4))
    assert [r.solver for r in rows] == ["euler", "euler", "dopri5"]
    assert all(r.sliced_w2 < 1e-6 for r in rows) and rows[0].nfe == 1
    assert flow_straightness(field, x0, 10) < 1e-20


def test_mnist_recipes_and_checkpoint_roundtrip(tmp_path):
    import numpy as np

    from coursekit.lessons import load_model
    from coursekit.lessons.flow_matching import KIND, as_signed_tensor, heldout_cfm, mnist_loss, signed_to_display
    from coursekit.matching import MLPImageField
    from coursekit.training import checkpoints

    imgs = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    x = as_signed_tensor(imgs)
    assert x.shape == (10, 1, 28, 28) and x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1
    torch.testing.assert_close(signed_to_display(x)[:, 0] * 255, torch.as_tensor(imgs).float())
    field = MLPImageField((1, 28, 28), hidden=32, n_layers=2)
    torch.nn.init.normal_(field.net[-1].weight, std=0.01)
    assert torch.isfinite(mnist_loss(field, x, batch=4)(0))
    checkpoints.save(tmp_path / "f.pt", KIND, {"model": field.state_dict()}, config=field.config(),
                     meta={"note": "test"}, half=True)
    ckpt = load_model(tmp_path / "f.pt")
    loaded = ckpt.model
    assert ckpt.kind == KIND and ckpt.meta == {"note": "test"} and not loaded.training
    assert loaded.config() == field.config()
    t = torch.rand(3)
    out, out2 = field(t, x[:3]), loaded(t, x[:3])
    assert out.shape == out2.shape == (3, 1, 28, 28)
    assert (out - out2).abs().max() < 1e-2  # float16 storage
    assert abs(heldout_cfm(field, x) - heldout_cfm(loaded, x)) < 1e-2
    with pytest.raises(TypeError, match="uint8"):
        as_signed_tensor(imgs.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        field(torch.rand(2), torch.randn(2, 1, 14, 14))
    with pytest.raises(ValueError, match="t_dim must be even"):
        MLPImageField((1, 28, 28), t_dim=31)
    with pytest.raises(ValueError, match="hidden"):
        MLPImageField((1, 28, 28), hidden=0)


def test_shipped_fm_mnist_loads():
    from coursekit.lessons import load_model
    from coursekit.training import checkpoints

    if checkpoints.find("fm_mnist.pt", allow_download=False) is None:
        pytest.skip("fm_mnist.pt is not in data/checkpoints")
    ckpt = load_model("fm_mnist.pt")
    assert ckpt.kind == "fm_image_field" and ckpt.meta["carved"] and ckpt.meta["steps"] > 0
    with torch.no_grad():
        v = ckpt.model(torch.full((2,), 0.5), torch.zeros(2, 1, 28, 28))
    assert v.shape == (2, 1, 28, 28) and torch.isfinite(v).all()


def test_playground_updates_in_place():
    from coursekit.widgets.flow_matching import flow_matching_playground

    pg = flow_matching_playground(grid_size=40, n_arrows=8, n_pairs=20)
    first = pg.image.value
    pg.update(t=0.9, campo="condicional", k=2, ot=True)
    assert pg.image.value != first and "∫p" in pg.status.value
    mass = float(pg.status.value.split("≈ ")[1].split(" ")[0])
    assert abs(mass - 1) < 0.02
    with pytest.raises(ValueError, match="unknown control"):
        pg.update(sigma=1.0)


def test_playground_cfm_fm_gap_is_the_monte_carlo_value():
    """The value lesson 07's playground shows as "L_CFM − L_FM en este t" equals, within the Monte Carlo error
    of both sides, a brute-force estimate of E‖u_t(x | x₁) − u_t(x)‖² at several t (issue 16: the old value,
    the spread *between* components only, showed 0.01 at t = 1 instead of ≈ 1.9). The same criterion rejects
    that old value, so this test can fail."""
    import re

    from coursekit.matching import eight_gaussians_target
    from coursekit.widgets.flow_matching import flow_matching_playground

    pg = flow_matching_playground(grid_size=12, n_arrows=3, n_pairs=8)
    target, path = eight_gaussians_target(), GaussianPath(sigma_min=0.1)  # the playground's own q and path

    def between_only(t, x):  # the pre-fix formula: Σ_k γ_k ‖E[u_t | x, k] − u_t(x)‖²
        comp, gamma = target.component_fields(path, t, x), target.posterior(path, t, x)
        return (gamma * (comp - target.marginal_field(path, t, x)[:, None]).pow(2).sum(-1)).sum(1)

    n = 200_000
    for t in (0.0, 0.25, 0.5, 0.75, 0.9, 1.0):
        status = pg.draw({**pg.params, "t": t})
        shown = float(re.search(r"L<sub>CFM</sub> − L<sub>FM</sub>[^:]*:\s*([0-9.]+)", status).group(1))
        # the playground averages the closed form over 1000 draws of x ~ p_t (seed 1): its own sampling error
        xs = target.sample_t(path, torch.full((1000,), t, dtype=torch.float64), torch.Generator().manual_seed(1))
        per_x = target.conditional_variance(path, t, xs)
        se_shown = float(per_x.std()) / math.sqrt(len(per_x))
        # brute force: draw (x₀, x₁), form u_t(x_t | x₁), subtract the exact marginal field
        g = torch.Generator().manual_seed(100 + int(100 * t))
        s = path.sample(target.sample(n, g), t=torch.full((n,), t, dtype=torch.float64), generator=g)
        sq = (s.u_t - target.marginal_field(path, t, s.x_t)).pow(2).sum(1)
        mc, se_mc = float(sq.mean()), float(sq.std()) / math.sqrt(n)
        tol = 4 * math.hypot(se_shown, se_mc) + 5e-4  # + the 3 decimals shown
        assert abs(shown - mc) < tol, (t, shown, mc, tol)
        old = float(between_only(t, xs).mean())
        if t >= 0.5:  # where the within-component spread matters, the same criterion rejects the old value
            assert abs(old - mc) > tol, (t, old, mc, tol)
