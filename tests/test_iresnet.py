"""i-ResNet blocks (lesson 04): contract, Lipschitz bound by SVD, fixed-point inverse, log-det series;
the lesson's data / Glow / i-ResNet comparison."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import jacrev

from coursekit.flows.base import Compose, Flow, Inverse, StandardNormal
from coursekit.flows.iresnet import ACTIVATIONS, IResBlock
from coursekit.testing import check_bijection, check_rejects_bad_input

pytestmark = pytest.mark.usefixtures("float64")



SETTINGS = settings(max_examples=12, deadline=None)
seeds = st.integers(0, 2**31 - 1)
lams = st.floats(0.3, 0.95)


def _block(seed: int, dim=3, **kw) -> IResBlock:
    torch.manual_seed(seed)
    return IResBlock(dim, **kw).eval()  # eval: the power iteration stops, so f is fixed between calls


def _z(shape, seed: int, n: int = 5) -> torch.Tensor:
    shape = (shape,) if isinstance(shape, int) else shape
    return 2 * torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


@SETTINGS
@given(seed=seeds, dim=st.integers(1, 4), lam=lams, depth=st.integers(1, 2),
       activation=st.sampled_from(sorted(ACTIVATIONS)))
def test_dense_block_contract_exact_logdet(seed, dim, lam, depth, activation):
    f = _block(seed, dim, hidden=8, lam=lam, depth=depth, activation=activation, tol=1e-13)
    report = check_bijection(f, _z(dim, seed), atol=1e-9, rtol=1e-9)
    assert report.roundtrip < 1e-9
    info = f.last_inverse_info
    assert info.converged and info.residual < 1e-13 and info.iterations == len(info.history) - 1


@settings(max_examples=3, deadline=None)
@given(seed=seeds, lam=lams)
def test_conv_block_contract_exact_logdet(seed, lam):
    f = _block(seed, (2, 3, 3), hidden=4, lam=lam, tol=1e-13)
    check_bijection(f, _z((2, 3, 3), seed, n=2), atol=1e-9, rtol=1e-9)


def test_rejects_bad_input_and_bad_parameters():
    check_rejects_bad_input(_block(0, 2), torch.randn(4, 2))
    check_rejects_bad_input(_block(0, (1, 3, 3), hidden=2), torch.randn(2, 1, 3, 3))
    for kwargs, match in [(dict(lam=1.0), "lam"), (dict(lam=-0.5), "lam"), (dict(hidden=0), "hidden"),
                          (dict(activation="relu6"), "activation"), (dict(logdet="svd"), "logdet"),
                          (dict(tol=0.0), "tol"), (dict(n_terms=0), "n_terms")]:
        with pytest.raises(ValueError, match=match):
            IResBlock(2, **kwargs)
    with pytest.raises(ValueError, match="dim"):
        IResBlock((3, 4))
    assert IResBlock(1, lam=2.0, strict=False).lam == 2.0  # plain ResNet block, for the demo only


@SETTINGS
@given(seed=seeds, dim=st.integers(1, 5), lam=lams, depth=st.integers(1, 2))
def test_lipschitz_bound_against_svd(seed, dim, lam, depth):
    f = _block(seed, dim, hidden=7, lam=lam, depth=depth)
    n_weights = depth + 1
    for w in f.weights():  # each normalized weight: σ_max(W̃) = λ by exact SVD
        assert abs(torch.linalg.svdvals(w.detach())[0].item() - lam) < 1e-9
    bound = f.lipschitz_bound()
    assert bound <= lam**n_weights * (1 + 1e-9)
    # the local Lipschitz constant σ_max(J_g(z)) (SVD of the autograd Jacobian) never exceeds it
    z = _z(dim, seed, n=20)
    jac = torch.stack([jacrev(lambda u: f.g(u.unsqueeze(0)).squeeze(0))(zi) for zi in z])
    assert torch.linalg.matrix_norm(jac, ord=2).max().item() <= bound * (1 + 1e-9)


def test_conv_spectral_norm_bounds_the_operator():
    torch.manual_seed(3)
    f = IResBlock((2, 4, 4), hidden=5, lam=0.8)
    f.refresh_spectral_norm(800)
    f.eval()
    for weight in f.weights():  # the conv as a matrix: autograd Jacobian of conv2d, then exact SVD
        w = weight.detach()

        def conv(u, w=w):
            return F.conv2d(u.unsqueeze(0), w, padding=1).reshape(-1)

        mat = jacrev(conv)(torch.zeros(w.shape[1], 4, 4))
        sigma = torch.linalg.svdvals(mat.reshape(mat.shape[0], -1))[0].item()
        assert abs(sigma - 0.8) < 1e-6
    assert f.lipschitz_bound() <= 0.8**2 * (1 + 1e-6)
    # the reshaped-kernel norm (what torch's spectral_norm would normalize) is not the operator norm
    w = f.layers[0].weight.detach()
    assert torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2).item() < 0.999


@SETTINGS
@given(seed=seeds, lam=lams, n_terms=st.integers(1, 12))
def test_truncated_series_bias_is_bounded_and_shrinks(seed, lam, n_terms):
    dim = 3
    f = _block(seed, dim, hidden=6, lam=lam)
    z = _z(dim, seed, n=6)
    exact = f.logdet_exact(z)
    rho = f.lipschitz_bound()
    # |tr(J^k)| ≤ D ρ^k, so the tail after n terms is at most D ρ^{n+1} / ((n+1)(1-ρ))
    for n in (n_terms, n_terms + 5):
        bias = (f.logdet_series(z, n, exact_trace=True) - exact).abs().max().item()
        assert bias <= dim * rho ** (n + 1) / ((n + 1) * (1 - rho)) + 1e-12
    assert (f.logdet_series(z, 80, exact_trace=True) - exact).abs().max().item() < 1e-8 * max(1, dim)


@settings(max_examples=4, deadline=None)
@given(seed=seeds, n_terms=st.integers(1, 6))
def test_hutchinson_is_unbiased_for_the_truncated_series(seed, n_terms):
    f = _block(seed, 3, hidden=6, lam=0.9)
    z0 = _z(3, seed, n=1)
    z = z0.expand(4000, 3).contiguous()  # one independent Rademacher probe per row
    est = f.logdet_series(z, n_terms, n_samples=1, generator=torch.Generator().manual_seed(seed))
    target = f.logdet_series(z0, n_terms, exact_trace=True).item()
    stderr = est.std().item() / math.sqrt(len(est))
    assert abs(est.mean().item() - target) < 5 * stderr + 1e-12


def test_hutchinson_on_a_small_image_converges_to_exact():
    f = _block(1, (1, 4, 4), hidden=4, lam=0.6)
    z0 = _z((1, 4, 4), 1, n=1)
    exact = f.logdet_exact(z0).item()
    est = f.logdet_series(z0.expand(1000, 1, 4, 4).contiguous(), 12, generator=torch.Generator().manual_seed(0))
    stderr = est.std().item() / math.sqrt(len(est))
    assert abs(est.mean().item() - exact) < 5 * stderr + 1e-5  # truncation bias ≤ 16·0.36¹³/(13·0.64) ≈ 3e-6
    # the block's own "series" mode averages n_samples probes per sample
    g = IResBlock((1, 4, 4), hidden=4, lam=0.6, logdet="series", n_terms=12, n_samples=100)
    g.load_state_dict(f.state_dict())
    g.eval()
    torch.manual_seed(0)
    assert abs(g(z0)[1].item() - exact) < 5 * est.std().item() / math.sqrt(100) + 1e-5


@SETTINGS
@given(seed=seeds, lam=lams)
def test_fixed_point_residuals_shrink_geometrically(seed, lam):
    dim = 4
    f = _block(seed, dim, hidden=8, lam=lam, tol=1e-14)
    x = _z(dim, seed, n=1)  # one sample: ‖r_k‖∞ ≤ ‖r_k‖₂ ≤ ρᵏ ‖r_0‖₂ ≤ ρᵏ √D ‖r_0‖∞
    z, info = f.solve(x)
    rho, r = f.lipschitz_bound(), info.history
    assert info.converged and (z + f.g(z) - x).abs().max().item() < 1e-14
    for k, rk in enumerate(r):
        assert rk <= rho**k * math.sqrt(dim) * r[0] + 1e-15
    _, capped = f.solve(x, tol=1e-30, max_iter=3)
    assert capped.iterations == 3 and not capped.converged and len(capped.history) == 4


def test_inverse_gradients_match_unrolled_autograd():
    f = _block(5, 3, hidden=8, lam=0.85, tol=1e-14)
    x = _z(3, 5, n=4).requires_grad_()
    z, logdet_inv = f.inverse(x)
    loss = (z**3).sum() + logdet_inv.sum()
    params = [p for p in f.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [x, *params])

    def unrolled(x):  # autograd straight through 300 fixed-point steps: the slow oracle
        z = x
        for _ in range(300):
            z = x - f.g(z)
        return z

    x2 = x.detach().clone().requires_grad_()
    z2 = unrolled(x2)
    loss2 = (z2**3).sum() - f.logdet_exact(z2).sum()
    for a, b in zip(grads, torch.autograd.grad(loss2, [x2, *params]), strict=True):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9)


def test_iresnet_flow_trains_by_maximum_likelihood():
    torch.manual_seed(0)
    blocks = Inverse(Compose([IResBlock(2, hidden=8, lam=0.9) for _ in range(2)]))
    flow = Flow(StandardNormal(2), blocks)  # density direction: z = F(x), no fixed point needed
    x = torch.randn(256, 2) * torch.tensor([2.0, 0.5]) + 1.0
    opt = torch.optim.Adam(flow.parameters(), lr=1e-2)
    before = -flow.log_prob(x).mean().item()
    for _ in range(30):
        opt.zero_grad()
        loss = -flow.log_prob(x).mean()
        loss.backward()
        opt.step()
    assert loss.item() < before - 0.3
    flow.eval()
    with torch.no_grad():
        xs = flow.sample(64)  # sampling runs the fixed point of every block
    assert torch.isfinite(xs).all()
    for b in blocks.bijection.bijections:
        assert b.last_inverse_info.converged


def test_rotation_block_is_the_worst_case_and_playground_reports_divergence():
    from coursekit.lessons.iresnet import rotation_block
    from coursekit.widgets.iresnet_playground import fixed_point_playground

    block = rotation_block(0.8, 0.7).double()
    assert abs(block.lipschitz_bound() - 0.64) < 1e-9
    x = torch.tensor([[1.0, -0.5]])
    z = torch.linalg.solve(torch.eye(2) + block.jacobian_g(x)[0], x[0])  # linear regime: g(z) = λ² R z
    torch.testing.assert_close(block.solve(x, tol=1e-13)[0][0], z, atol=1e-12, rtol=0)
    assert not rotation_block(1.1, 0.7).double().solve(x, max_iter=300)[1].converged
    pg = fixed_point_playground(n_iter=10)
    assert "converge en" in pg.status.value
    pg.update(lam=1.1)
    assert "no converge" in pg.status.value


def test_glow_iresnet_comparison_smoke():
    from coursekit.data.toy2d import eight_gaussians_log_prob
    from coursekit.lessons.iresnet import compare_glow_iresnet

    result = compare_glow_iresnet("8gaussians", n_steps=3, n_test=300, n_samples=50)
    assert set(result.test_nll) == {"data", "glow", "iresnet"} and set(result.flows) == {"glow", "iresnet"}
    assert all(v.shape == (300,) and v.dtype == torch.float64 and torch.isfinite(v).all()
               for v in result.test_nll.values())
    assert all(v.shape == (50, 2) for v in result.samples.values())
    assert len(result.iterations) == 8 and all(b.last_inverse_info.converged for b in result.iresnet_blocks())
    assert result.n_params("glow") > 0 and result.n_params("iresnet") > 0 and result.n_steps == 3
    test = torch.zeros(4, 2)  # "data" is −log p of the true density
    assert result.test_nll["data"].mean() > 0 and torch.isfinite(eight_gaussians_log_prob(test)).all()
    no_truth = compare_glow_iresnet("moons", n_steps=1, n_test=10, n_samples=5)
    assert "data" not in no_truth.test_nll and set(no_truth.samples) == {"data", "glow", "iresnet"}


# --- notebook 04's helpers: the benchmark's NLL table, the slide's ReLU block, the classifier ----------

BENCH = """<!-- bench:iresnet -->
| model | parameters | train steps | train time (s) | test NLL (nats) | sampling |
|---|---|---|---|---|---|
| data (true density) | — | — | — | 2.831 | — |
| Glow (affine coupling ×8) | 35,348 | 2000 | 8 | 3.132 | — (closed form) |
| i-ResNet (8 blocks, λ=0.97) | 35,860 | 2000 | 27 | 2.874 | 48, 78 |
<!-- /bench:iresnet -->
"""


def test_benchmark_nll_reads_the_iresnet_table(tmp_path):
    from coursekit.lessons.iresnet import benchmark_nll

    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n" + BENCH, encoding="utf-8")
    assert benchmark_nll(path) == {"data": 2.831, "glow": 3.132, "iresnet": 2.874, "steps": 2000.0}
    assert benchmark_nll(tmp_path / "missing.md") is None  # e.g. coursekit installed without the repository
    path.write_text("<!-- bench:glow -->\n<!-- /bench:glow -->\n", encoding="utf-8")
    assert benchmark_nll(path) is None
    path.write_text(BENCH.replace("| Glow (affine", "| Glöw (affine"), encoding="utf-8")
    with pytest.raises(ValueError, match="no data / Glow / i-ResNet NLL table"):
        benchmark_nll(path)


def test_relu_branch_is_the_slides_block_and_still_a_contraction():
    from coursekit.lessons.iresnet import relu_branch

    torch.manual_seed(0)
    block = IResBlock(2, hidden=16, lam=0.9, depth=2).double().eval()
    g, jacobian = relu_branch(block)
    z = 3 * torch.randn(200, 2, dtype=torch.float64)
    h = z
    for i, (w, layer) in enumerate(zip(block.weights(), block.layers)):
        h = F.linear(h, w, layer.bias)
        h = torch.relu(h) if i < len(block.layers) - 1 else h
    torch.testing.assert_close(g(z), h)
    torch.testing.assert_close(jacobian(z), torch.func.vmap(jacrev(lambda u: g(u[None])[0]))(z))
    assert torch.linalg.matrix_norm(jacobian(z), ord=2).max() <= block.lipschitz_bound() * (1 + 1e-9)
    assert not torch.allclose(g(z), block.g(z))  # ReLU, not the block's ELU
    with pytest.raises(ValueError, match="dense IResBlock"):
        relu_branch(IResBlock((1, 4, 4), hidden=2))
    with pytest.raises(TypeError, match="IResBlock"):
        relu_branch(torch.nn.Linear(2, 2))


def test_iresnet_stack_classifies_the_moons_and_stays_invertible():
    from coursekit.lessons.iresnet import labelled_moons, train_classifier

    x, y = labelled_moons(400, seed=0)
    assert x.shape == (400, 2) and y.tolist() == [0] * 200 + [1] * 200
    assert x[y == 0, 1].mean() > x[y == 1, 1].mean()  # class 0 is the upper moon
    assert labelled_moons(4, dtype=torch.float64)[0].dtype == torch.float64  # ready for float64 blocks
    run = train_classifier(n_blocks=3, hidden=16, n_steps=150, n_train=400, n_test=400)
    assert run.accuracy > 0.85 and run.accuracy > run.baseline_accuracy
    with torch.no_grad():
        feats, logdet = run.stack(x.to(torch.get_default_dtype()))
        back, _ = run.stack.inverse(feats)
    assert (back - x).abs().max() < 1e-4 and torch.isfinite(logdet).all()
    with pytest.raises(ValueError, match="n_steps"):
        train_classifier(n_steps=0)
