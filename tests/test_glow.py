"""Lesson 03 (Glow): every layer satisfies the bijection contract in float64; the lesson's
recipes and the shipped checkpoint."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.core.checks import event_shape_of
from coursekit.flows.actnorm import ActNorm
from coursekit.flows.base import Compose, Flow
from coursekit.flows.coupling import AffineCoupling, make_mask
from coursekit.flows.dequantize import Dequantize, LogitTransform, bits_per_dim, sample_at_temperature
from coursekit.flows.glow import Glow, glow_2d, glow_step, mnist_glow
from coursekit.flows.invconv import InvConv1x1, Permutation
from coursekit.flows.multiscale import Split, Squeeze, squeeze
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


# --- actnorm ---------------------------------------------------------------------------

@SETTINGS
@given(shape=st.sampled_from([(3,), (2, 3, 3)]), seed=st.integers(0, 10_000))
def test_actnorm_contract(shape, seed):
    f = ActNorm(shape).double()
    f.initialized.fill_(True)  # skip the data-dependent init: random parameters instead
    randomize(f, seed)
    check_bijection(f, randn(seed, 4, *shape))


@SETTINGS
@given(shape=st.sampled_from([(3,), (2, 4, 4)]), direction=st.sampled_from(["forward", "inverse"]),
       seed=st.integers(0, 10_000))
def test_actnorm_data_dependent_init_standardizes_the_output(shape, direction, seed):
    data = randn(seed, 64, *shape) * 3.0 + 5.0
    f = ActNorm(shape).double()
    out, _ = f(data) if direction == "forward" else f.inverse(data)
    dims = [0] if len(shape) == 1 else [0, 2, 3]
    torch.testing.assert_close(out.mean(dims), torch.zeros(shape[0], dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(out.var(dims, unbiased=False), torch.ones(shape[0], dtype=torch.float64),
                               atol=1e-6, rtol=0)
    assert bool(f.initialized)
    before = f.shift.clone()
    f.inverse(data + 1.0)  # a second batch must not re-initialize
    torch.testing.assert_close(f.shift, before)
    check_bijection(f, data[:3])


def test_actnorm_state_dict_keeps_initialization():
    f = ActNorm(2)
    f.inverse(torch.randn(16, 2) * 4)
    g = ActNorm(2)
    g.load_state_dict(f.state_dict())
    assert bool(g.initialized)
    torch.testing.assert_close(g.log_scale, f.log_scale)


# --- 1x1 convolution and permutations --------------------------------------------------

@SETTINGS
@given(shape=st.sampled_from([(3,), (4,), (3, 2, 2), (4, 3, 3)]), lu=st.booleans(), seed=st.integers(0, 10_000))
def test_invconv_contract(shape, lu, seed):
    torch.manual_seed(seed)
    f = randomize(InvConv1x1(shape, lu=lu).double(), seed, std=0.5) if lu else InvConv1x1(shape).double()
    if not lu:
        with torch.no_grad():
            f.weight.copy_(randn(seed, shape[0], shape[0]) + 2 * torch.eye(shape[0], dtype=torch.float64))
    check_bijection(f, randn(seed, 3, *shape))


@SETTINGS
@given(c=st.integers(2, 6), seed=st.integers(0, 10_000))
def test_invconv_lu_and_plain_agree(c, seed):
    w = randn(seed, c, c)
    plain = InvConv1x1((c, 2, 3), weight=w).double()
    lu = InvConv1x1((c, 2, 3), lu=True, weight=w).double()
    torch.testing.assert_close(lu.matrix(), w)
    torch.testing.assert_close(lu.log_abs_det_w(), torch.linalg.slogdet(w).logabsdet)
    z = randn(seed + 1, 4, c, 2, 3)
    (xp, ldp), (xl, ldl) = plain(z), lu(z)
    torch.testing.assert_close(xp, xl)
    torch.testing.assert_close(ldp, ldl)
    torch.testing.assert_close(ldp, 6 * torch.linalg.slogdet(w).logabsdet.expand(4))  # H·W·log|det W|
    torch.testing.assert_close(lu.inverse_matrix(), torch.linalg.inv(w))


@SETTINGS
@given(kind=st.sampled_from(["reverse", "shuffle"]), shape=st.sampled_from([(5,), (4, 2, 2)]),
       seed=st.integers(0, 10_000))
def test_permutation_contract(kind, shape, seed):
    f = Permutation(shape, kind, seed=seed).double()
    check_bijection(f, randn(seed, 3, *shape))
    if kind == "reverse":
        z = randn(seed, 2, *shape)
        torch.testing.assert_close(f(z)[0], z.flip(1))


# --- squeeze, split, steps and the multi-scale model ----------------------------------

class Flattened(torch.nn.Module):
    """View a shape-changing bijection through flat vectors so check_bijection applies."""

    def __init__(self, f, in_shape, out_shape):
        super().__init__()
        self.f, self.in_shape, self.out_shape = f, in_shape, out_shape

    def forward(self, z):
        x, ld = self.f(z.reshape(-1, *self.in_shape))
        return x.reshape(z.shape[0], -1), ld

    def inverse(self, x):
        z, ld = self.f.inverse(x.reshape(-1, *self.out_shape))
        return z.reshape(x.shape[0], -1), ld


def test_squeeze_is_a_volume_preserving_permutation():
    f = Squeeze((2, 4, 6))
    assert f.latent_shape == (8, 2, 3)
    check_bijection(Flattened(f, (8, 2, 3), (2, 4, 6)), randn(0, 3, 48))
    z, _ = f.inverse(torch.arange(48.0).reshape(1, 2, 4, 6))
    assert z.shape == (1, 8, 2, 3)
    # the top-left 2x2 patch of channel 0 becomes the first 4 channels at pixel (0, 0)
    torch.testing.assert_close(z[0, :4, 0, 0], torch.tensor([0.0, 1.0, 6.0, 7.0]))
    with pytest.raises(ValueError, match="even H and W"):
        Squeeze((1, 3, 4))


@SETTINGS
@given(seed=st.integers(0, 10_000))
def test_split_contract_and_prior(seed):
    f = randomize(Split((4, 3, 3)).double(), seed)
    z = randn(seed, 3, 4, 3, 3)
    check_bijection(f, z)
    x, logdet = f(z)
    torch.testing.assert_close(x[:, :2], z[:, :2])  # h₁ passes through
    s, t = f.scale_shift(z[:, :2])
    torch.testing.assert_close(x[:, 2:], t + s.exp() * z[:, 2:])  # h₂ = μ(h₁) + σ(h₁)·ε
    torch.testing.assert_close(logdet, s.sum((1, 2, 3)))


@SETTINGS
@given(shape=st.sampled_from([(2,), (4,), (4, 2, 2)]),
       permutation=st.sampled_from(["lu", "conv", "reverse", "shuffle"]), seed=st.integers(0, 10_000))
def test_glow_step_contract(shape, permutation, seed):
    torch.manual_seed(seed)
    f = glow_step(shape, hidden=6, permutation=permutation, seed=seed).double()
    f.inverse(randn(seed, 32, *shape) * 2 + 1)  # data-dependent actnorm init
    randomize(f.bijections[0], seed)  # non-trivial coupling
    check_bijection(f, randn(seed, 3, *shape))


@SETTINGS
@given(levels=st.integers(1, 2), permutation=st.sampled_from(["lu", "reverse"]), seed=st.integers(0, 10_000))
def test_glow_multiscale_contract(levels, permutation, seed):
    torch.manual_seed(seed)
    f = Glow((1, 4, 4), levels=levels, flow_steps=2, hidden=4, permutation=permutation).double()
    f.inverse(randn(seed, 16, 1, 4, 4))
    for name, p in f.named_parameters():
        if "net" in name:
            with torch.no_grad():
                p.add_(0.2 * randn(seed, *p.shape))
    check_bijection(f, randn(seed, 2, 1, 4, 4))
    check_rejects_bad_input(f, randn(seed, 2, 1, 4, 4))


def test_glow_rejects_bad_config():
    with pytest.raises(ValueError, match="divisible"):
        Glow((1, 28, 28), levels=3)
    with pytest.raises(ValueError, match="permutation"):
        glow_step(4, permutation="rotate")
    with pytest.raises(ValueError, match="image shape"):
        Glow((4,))
    with pytest.raises(ValueError, match="flow_steps must be a positive int"):
        Glow((1, 4, 4), flow_steps=0)
    with pytest.raises(ValueError, match="levels must be a positive int"):
        Glow((1, 4, 4), levels=True)


def test_event_shape_of_is_the_one_shape_check():
    assert event_shape_of(3) == (3,) and event_shape_of((2, 4, 4)) == (2, 4, 4)
    assert event_shape_of(torch.Size([1, 2, 2])) == (1, 2, 2)
    for bad in (0, (2, 3), (1, 0, 4), (1.0, 2, 2), True, "abc", None):
        with pytest.raises(ValueError, match="dim must be an int D or a shape"):
            event_shape_of(bad)
    with pytest.raises(ValueError, match="hidden must be a positive int"):
        AffineCoupling(4, hidden=0)


@pytest.mark.parametrize("order", ["layer, squeeze", "squeeze, layer"])
def test_hand_built_compose_with_squeeze_accepts_valid_input_and_round_trips(order):
    # each layer checks its own input, so a shape-changing layer composes (x = f(z): the list runs latent → data)
    torch.manual_seed(0)
    if order == "layer, squeeze":  # a coupling on the squeezed shape, then Squeeze unsqueezes to the image
        layer = randomize(AffineCoupling((4, 2, 2), hidden=4).double(), 1)
        f = Compose([layer, Squeeze((1, 4, 4))])
    else:  # Squeeze first: the next layer works on the image
        layer = randomize(AffineCoupling((1, 4, 4), hidden=4, mask="checkerboard").double(), 1)
        f = Compose([Squeeze((1, 4, 4)), layer])
    x = randn(0, 3, 1, 4, 4)
    z, logdet_inv = f.inverse(x)
    assert z.shape == (3, 4, 2, 2)
    x_back, logdet = f(z)
    torch.testing.assert_close(x_back, x)
    torch.testing.assert_close(logdet, -logdet_inv)
    inner = layer.inverse(squeeze(x))[1] if order == "layer, squeeze" else layer.inverse(x)[1]
    torch.testing.assert_close(logdet_inv, inner)  # Squeeze adds 0
    check_bijection(Flattened(f, (4, 2, 2), (1, 4, 4)), randn(1, 3, 16))
    with pytest.raises(ValueError, match="shape"):
        f.inverse(randn(2, 3, 4, 2, 2))  # the latent side is not valid data


def test_glow_2d_trajectory_and_blocks():
    f = glow_2d(2, flow_steps=3, hidden=8).double()
    z = randn(0, 10, 2)
    f.inverse(z)
    traj = f.trajectory(z)
    assert len(traj) == 4 and all(t.shape == (10, 2) for t in traj)
    torch.testing.assert_close(traj[-1], f(z)[0])
    rows = Glow((1, 8, 8), levels=2, flow_steps=1, hidden=2).blocks()
    assert rows[0] == ("x", (1, 8, 8)) and rows[-1][1] == (8, 2, 2)


# --- pre-processing and bits/dim -------------------------------------------------------

@SETTINGS
@given(alpha=st.floats(0.0, 0.2), seed=st.integers(0, 10_000))
def test_logit_contract(alpha, seed):
    f = LogitTransform((1, 2, 2), alpha=alpha)
    check_bijection(f, randn(seed, 3, 1, 2, 2) * 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        f.inverse(torch.full((1, 1, 2, 2), 1.5, dtype=torch.float64))


def test_dequantize_stays_in_its_bin():
    k = torch.randint(0, 256, (50, 1, 4, 4), dtype=torch.uint8)
    y = Dequantize()(k, dtype=torch.float64)
    assert (y >= 0).all() and (y < 1).all()
    torch.testing.assert_close(torch.floor(y * 256), k.double())
    with pytest.raises(ValueError, match="integers"):
        Dequantize()(torch.tensor([[256.0]]))
    with pytest.raises(TypeError, match="torch.Tensor"):
        Dequantize()([1, 2])


def test_bits_per_dim_of_the_uniform_density_is_eight():
    # p_y = 1 on [0,1]^D puts probability 256^-D on every image: exactly 8 bits per pixel
    torch.testing.assert_close(bits_per_dim(torch.zeros(3), 784), torch.full((3,), 8.0))
    # nats → bits → per dimension: −log p = D·ln 2 nats is one bit per dimension less
    torch.testing.assert_close(bits_per_dim(torch.tensor([10 * math.log(2.0)]), 10), torch.tensor([7.0]))
    with pytest.raises(ValueError, match="num_dims must be a positive int"):
        bits_per_dim(torch.zeros(1), 0)


def test_mnist_glow_log_prob_matches_monte_carlo_normalization():
    # a 1-level Glow on 2x2 "images": its density p_y must integrate to 1
    torch.manual_seed(0)
    flow = mnist_glow((1, 2, 2), levels=1, flow_steps=1, hidden=4).double()
    flow.log_prob(torch.rand(64, 1, 2, 2, dtype=torch.float64))
    # with α > 0 the support is [0, 1] widened by α/(1 − 2α) on each side: integrate over it
    a = 0.05 / 0.9
    y = (torch.rand(200_000, 1, 2, 2, dtype=torch.float64) * (1 + 2 * a) - a).clamp(-a + 1e-9, 1 + a - 1e-9)
    with torch.no_grad():
        mass = flow.log_prob(y).exp().mean() * (1 + 2 * a) ** 4  # Monte Carlo ∫ p_y
    assert abs(mass.item() - 1.0) < 0.05, mass
    x = sample_at_temperature(flow, 5, 0.7)
    assert x.shape == (5, 1, 2, 2) and ((x >= 0) & (x <= 1)).all()
    torch.testing.assert_close(sample_at_temperature(flow, 3, 0.0), sample_at_temperature(flow, 3, 0.0))


# --- the lesson's recipes, the shipped checkpoint and the playgrounds ---------------------

def test_lesson_recipes_and_a_glow_checkpoint_round_trip(tmp_path):
    from coursekit.lessons import glow as lesson
    from coursekit.lessons import load_model
    from coursekit.training import checkpoints

    with pytest.raises(ValueError, match="uint8"):
        lesson.as_pixels(torch.zeros(2, 4, 4))
    torch.manual_seed(0)
    cfg = dict(shape=(1, 4, 4), levels=1, flow_steps=1, hidden=4, permutation="lu")
    flow = mnist_glow(**cfg)
    pixels = torch.randint(0, 256, (8, 1, 4, 4), dtype=torch.uint8)
    lesson.init_actnorm(flow, pixels)
    loss = lesson.bpd_loss(flow, pixels, batch=4)(0)["loss"]
    assert torch.isfinite(loss)
    path = lesson.save_model(tmp_path / "g.pt", flow, cfg, meta={"n_steps": 0})
    ckpt = load_model(path)
    assert ckpt.kind == "glow" and ckpt.config == cfg and ckpt.meta == {"n_steps": 0}
    assert isinstance(ckpt.model, Flow) and not ckpt.model.training
    assert lesson.evaluate_bpd(ckpt.model, pixels) == pytest.approx(lesson.evaluate_bpd(flow, pixels), abs=1e-6)
    other = checkpoints.save(tmp_path / "fit.pt", "fit", {"model": flow.state_dict()})
    with pytest.raises(ValueError, match="not a 'glow' one"):
        lesson.from_checkpoint(checkpoints.load(other), "cpu")


# held-out bits/dim of glow_mnist.pt on MNIST test images 8,000–8,063 (dequantization seed 0), measured
# with the code and file of before the checkpoint format change (commit 934732c)
SHIPPED_BPD_64 = 1.738598


def test_shipped_glow_checkpoint_gives_its_recorded_bits_per_dim():
    from coursekit.data import load_mnist
    from coursekit.lessons import load_model

    try:
        images, _ = load_mnist("test", allow_download=False)
    except FileNotFoundError:
        pytest.skip("MNIST test split not available offline")
    ckpt = load_model("glow_mnist.pt")
    assert ckpt.kind == "glow" and ckpt.config["flow_steps"] == 6 and isinstance(ckpt.model, Flow)
    pixels = torch.from_numpy(images[8000:8064].copy()).unsqueeze(1)
    y = Dequantize()(pixels, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    with torch.no_grad():
        bpd = bits_per_dim(ckpt.model.log_prob(y), 784).mean().item()
    assert bpd == pytest.approx(SHIPPED_BPD_64, abs=1e-4)
    # 64 images are not the 2,000 of the recorded score, but close to it
    assert abs(bpd - ckpt.meta["heldout_bits_per_dim"]) < 0.1
    assert len(ckpt.meta["history"]["values"]["bpd"]) == ckpt.meta["n_steps"]


def test_layer_states_walk_latent_to_data_and_conserve_mass():
    from coursekit import viz
    from coursekit.widgets.glow_steps import draw_architecture, flat_layers, layer_states

    torch.manual_seed(0)
    flow = glow_2d(2, flow_steps=2, hidden=8).double()
    data = randn(1, 64, 2)
    flow.inverse(data)
    randomize(flow.bijections[0].bijections[0], 2)
    assert len(flat_layers(flow)) == 6
    grid = viz.make_grid(6.0, 120, dtype=torch.float64)
    states = layer_states(flow, randn(2, 16, 2), data[:16], grid)
    assert len(states) == 7
    torch.testing.assert_close(torch.as_tensor(states[-1]["samples"]), flow(randn(2, 16, 2))[0])
    torch.testing.assert_close(torch.as_tensor(states[0]["data"]), flow.inverse(data[:16])[0])
    for s in states:  # every intermediate density still integrates to ≈ 1 on the window
        assert abs(s["density"].sum() * grid.cell_area - 1.0) < 0.02
    with pytest.raises(TypeError, match="Glow"):
        draw_architecture(flow)


def test_temperature_playground_swaps_precomputed_mosaics():
    from coursekit.widgets.glow_steps import temperature_playground

    torch.manual_seed(0)
    flow = mnist_glow((1, 4, 4), levels=1, flow_steps=1, hidden=2)
    pg = temperature_playground(flow, n=6, n_temperatures=3)
    assert pg.controls["temperature"].options == (0.0, 0.5, 1.0)
    pg.update(temperature=0.0)
    assert "T = 0.00" in pg.status.value
    with pytest.raises(ValueError, match="n_temperatures"):
        temperature_playground(flow, n=4, n_temperatures=0)


def test_glow_couplings_keep_one_half_unless_asked():
    def parities(model):
        return [b.parity for flow in model.flows for step in flow.bijections for b in step.bijections
                if type(b).__name__ == "AffineCoupling"]

    assert not any(parities(Glow((1, 4, 4), levels=1, flow_steps=4, hidden=2, permutation="reverse")))
    assert parities(Glow((1, 4, 4), levels=1, flow_steps=4, hidden=2, alternate_parity=True)) == [False, True] * 2


# --- notebook 03's helpers: the checkpoint's metadata in Spanish, the 1×1 conv log-det timing ---------

def test_checkpoint_metadata_reads_in_spanish():
    from coursekit.lessons import glow as lesson

    meta = {"n_steps": 5000, "trained_on": "MNIST test split images 0-7,999",
            "evaluated_on": "MNIST test split images 8,000-9,999 (never trained on)", "heldout_bits_per_dim": 1.7074}
    lines = lesson.checkpoint_summary(meta)
    assert lines == ["5000 pasos de entrenamiento con las imágenes 0–7.999 de la partición de prueba de MNIST",
                     "evaluado en las imágenes 8.000–9.999 de la partición de prueba de MNIST (nunca vistas al "
                     "entrenar): 1.707 bits/dim guardados en el punto de control"]
    assert not any(word in " ".join(lines) for word in ("split", "images", "never"))
    assert lesson.describe_data("otro texto") == "otro texto"  # unknown text passes through
    with pytest.raises(ValueError, match="heldout_bits_per_dim"):
        lesson.checkpoint_summary({k: v for k, v in meta.items() if k != "heldout_bits_per_dim"})
    with pytest.raises(TypeError, match="meta must be a dict"):
        lesson.checkpoint_summary(["n_steps"])
    with pytest.raises(TypeError, match="text must be a str"):
        lesson.describe_data(3)


def test_logdet_timings_rank_lu_first_once_warm():
    from coursekit.lessons import glow as lesson

    rows = lesson.logdet_timings([8, 256], min_run_time=0.02)
    assert [r.channels for r in rows] == [8, 256]
    assert all(r.slogdet_s > 0 and r.lu_s > 0 for r in rows)
    assert rows[1].lu_s < rows[1].slogdet_s  # Σ log|s| is O(C), slogdet O(C³): at C = 256 by a wide margin
    with pytest.raises(ValueError, match="min_run_time"):
        lesson.logdet_timings([4], min_run_time=0)
    with pytest.raises(ValueError, match="size"):
        lesson.logdet_timings([0])
