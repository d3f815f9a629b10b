"""Lesson 09: moving-digit clips, temporal autoencoder, tiling, latent DiT, the generator,
its checkpoint (kind "video") and its pictures."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.data import mnist_splits
from coursekit.data.clips import DIGIT_SIZE, bounce_trajectory, moving_digits, pool_digits
from coursekit.lessons import load_model
from coursekit.lessons import video as lesson
from coursekit.matching import euler_sample
from coursekit.training.checkpoints import load
from coursekit.video.dit import LatentDiT, time_freq_range
from coursekit.video.latent import LatentNormalizer, VideoModel, rectified_flow_loss
from coursekit.video.tae import (
    TemporalAutoencoder,
    psnr,
    seam_weights,
    tile_starts,
    tiled_apply,
    tiled_decode,
    tiled_encode,
)
from coursekit.widgets.video import clip_gif, clip_grid_frames, flow_playground, frame_strips

pytestmark = pytest.mark.usefixtures("one_thread")


# --- clips -------------------------------------------------------------------------------


def test_clip_generator_is_deterministic_and_seed_dependent():
    a, b = moving_digits(6, seed=3), moving_digits(6, seed=3)
    c = moving_digits(6, seed=4)
    assert a.clips.shape == (6, 16, 32, 32) and a.clips.dtype == np.float32
    np.testing.assert_array_equal(a.clips, b.clips)
    np.testing.assert_array_equal(a.digit_index, b.digit_index)
    assert not np.array_equal(a.clips, c.clips)
    assert 0.0 <= a.clips.min() and a.clips.max() <= 1.0
    assert (a.clips.reshape(6, 16, -1).max(-1) > 0.5).all()  # a digit is visible in every frame


def test_clip_parts_use_disjoint_mnist_images():
    splits = mnist_splits()
    tr, ev = moving_digits(50, seed=0, part="train"), moving_digits(50, seed=0, part="eval")
    assert tr.offset == 0 and ev.offset == splits.eval_offset
    assert tr.digit_index.max() < len(splits.train_images) and ev.digit_index.max() < len(splits.eval_images)
    if splits.carved:  # one MNIST file: training digits 0–7,999, held-out digits 8,000–9,999
        assert tr.digit_index.max() < 8000 <= ev.offset + ev.digit_index.min()
    with pytest.raises(ValueError, match="part"):
        moving_digits(2, part="test")
    with pytest.raises(ValueError, match="n_frames"):
        moving_digits(2, n_frames=0)
    with pytest.raises(ValueError, match="size"):
        moving_digits(2, size=DIGIT_SIZE - 1)


def test_pool_digits_is_a_2x2_mean_and_checks_shape():
    img = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    pooled = pool_digits(img)
    assert pooled.shape == (2, DIGIT_SIZE, DIGIT_SIZE)
    assert pooled[0, 0, 0] == pytest.approx((0 + 1 + 28 + 29) / 4 / 255)
    with pytest.raises(ValueError, match="28, 28"):
        pool_digits(img[:, :27])


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.integers(0, 30), st.integers(1, 4), st.integers(0, 2**31))
def test_bounce_trajectory_stays_on_canvas_with_bounded_speed(n_frames, room, max_speed, seed):
    traj = bounce_trajectory(n_frames, room, np.random.default_rng(seed), max_speed)
    assert traj.shape == (n_frames, 2)
    assert traj.min() >= 0 and traj.max() <= room
    assert np.abs(np.diff(traj, axis=0)).max(initial=0) <= max_speed
    np.testing.assert_array_equal(traj, bounce_trajectory(n_frames, room, np.random.default_rng(seed), max_speed))


# --- temporal autoencoder ------------------------------------------------------------------


def test_tae_shapes_and_variable_length():
    tae = TemporalAutoencoder(latent_channels=4, width=16)
    z = tae.encode(torch.rand(2, 16, 32, 32))
    assert z.shape == (2, 4, 8, 8, 8) == (2, *tae.latent_shape(16, 32, 32))
    assert tae.decode(z).shape == (2, 16, 32, 32)
    assert tae.encode(torch.rand(1, 24, 32, 32)).shape == (1, 4, 12, 8, 8)  # any even length
    x_hat = tae.decode(z)
    assert 0 <= x_hat.min() and x_hat.max() <= 1


def test_tae_rejects_bad_input():
    tae = TemporalAutoencoder(width=16)
    with pytest.raises(ValueError, match="divisible"):
        tae.encode(torch.rand(1, 15, 32, 32))
    with pytest.raises(ValueError, match="batch, T, H, W"):
        tae.encode(torch.rand(16, 32, 32))
    with pytest.raises(TypeError, match="floating-point"):
        tae.encode(torch.zeros(1, 16, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="latents"):
        tae.decode(torch.rand(1, 3, 8, 8, 8))
    with pytest.raises(ValueError, match="width"):
        TemporalAutoencoder(width=24)
    with pytest.raises(ValueError, match="latent_channels"):
        TemporalAutoencoder(latent_channels=0)


def test_tae_reconstruction_bound_after_short_training():
    torch.manual_seed(0)
    clip = moving_digits(1, seed=11).clips  # one fixed clip
    x = torch.from_numpy(clip)
    tae = TemporalAutoencoder(latent_channels=4, width=16)
    black = float(x.pow(2).mean())  # the MSE of predicting an empty canvas
    lesson.train_tae(tae, clip, n_steps=120, batch_size=1, lr=5e-3, progress=False)
    with torch.no_grad():
        x_hat = tae(x)[0]
    mse = float((x_hat - x).pow(2).mean())
    assert mse < 0.1 * black, (mse, black)
    assert float(psnr(x_hat, x)) > 10 * np.log10(1 / black) + 10  # 10 dB better than an empty canvas


# --- tiling --------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(4, 40), st.integers(2, 12), st.data())
def test_tiled_apply_of_a_pointwise_map_is_exact_everywhere(length, tile, data):
    """With no edge effects the blended tiles must give back the untiled result: the seam
    weights form a partition of unity."""
    overlap = data.draw(st.integers(0, tile - 1))
    blend = data.draw(st.booleans())
    x = torch.randn(2, max(length, tile), 3, dtype=torch.float64)
    out = tiled_apply(lambda v: 2 * v.repeat_interleave(2, 1), x, tile, overlap, 2, 1, 1, blend)
    torch.testing.assert_close(out, 2 * x.repeat_interleave(2, 1))


def test_seam_weights_ramps_sum_to_one():
    w_left = seam_weights(8, 4, first=True, last=False)
    w_right = seam_weights(8, 4, first=False, last=True)
    torch.testing.assert_close(w_left[-4:] + w_right[:4], torch.ones(4))
    assert tile_starts(48, 16, 4) == [0, 12, 24, 32]
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(48, 16, 16)


def test_tiled_encode_decode_match_untiled_away_from_seams():
    torch.manual_seed(0)
    tae = TemporalAutoencoder(latent_channels=4, width=16).double().eval()
    x = torch.from_numpy(moving_digits(2, n_frames=48, seed=5).clips).double()
    with torch.no_grad():
        z = tae.encode(x)
        z_tiled = tiled_encode(tae, x, tile=16, overlap=4)  # tiles 0, 12, 24, 32
        assert z_tiled.shape == z.shape
        # latent frames whose tile is the only one covering them, two frames from its edges
        inside = [2, 3, 4, 5, 8, 9, 10, 11]
        torch.testing.assert_close(z_tiled[:, :, inside], z[:, :, inside])
        x_hat = tae.decode(z)
        for blend in (True, False):
            x_tiled = tiled_decode(tae, z, tile=8, overlap=2, blend=blend)  # latent tiles 0, 6, 12, 16
            frames = list(range(4, 12)) + list(range(16, 24)) + list(range(40, 48))
            torch.testing.assert_close(x_tiled[:, frames], x_hat[:, frames])
        # without overlap the tile edges differ from the untiled decoding: the seams
        naive = tiled_decode(tae, z, tile=8, overlap=0)
        assert (naive - x_hat).abs()[:, 15:17].max() > 1e-6


# --- latent flow -------------------------------------------------------------------------


def test_dit_shapes_zero_init_and_bad_input():
    dit = LatentDiT(latent_channels=4, spatial=8, max_frames=8, width=32, depth=2, heads=4, patch_t=2)
    z = torch.randn(3, 4, 8, 8, 8)
    v = dit(torch.rand(3), z)
    assert v.shape == z.shape
    assert v.abs().max() == 0  # adaLN-Zero and a zero output layer: the untrained field is 0
    assert dit(0.5, z[:, :, :4]).shape == (3, 4, 4, 8, 8)  # fewer latent frames
    assert dit(torch.tensor(0.5), z).shape == dit(torch.full((3, 1), 0.5), z).shape == z.shape
    with pytest.raises(ValueError, match="t must"):
        dit(torch.rand(2), z)
    with pytest.raises(ValueError, match="z must"):
        dit(0.5, torch.randn(3, 4, 8, 4, 4))
    with pytest.raises(ValueError, match="width"):
        LatentDiT(width=0)
    with pytest.raises(ValueError, match="heads"):
        LatentDiT(width=32, heads=3)


def test_dit_time_features_are_dits_frequencies():
    """The kernel's [sin, cos] embedding with min/max chosen by time_freq_range has DiT's
    frequency set 1000·10000^(−k/half): the old cos-first embedding, columns permuted."""
    width, half = 64, 32
    t = torch.rand(5, dtype=torch.float64)
    freqs = 1000.0 * torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float64) / half)
    old = torch.cat([torch.cos(t[:, None] * freqs), torch.sin(t[:, None] * freqs)], dim=1)
    perm = [half + (half - 1 - j) for j in range(half)] + [half - 1 - j for j in range(half)]
    new = LatentDiT(width=width).double().time_features(t)
    torch.testing.assert_close(new, old[:, perm])
    assert time_freq_range(width)[1] == 1000.0


def test_rectified_flow_loss_and_euler_on_the_exact_field_of_a_point_mass():
    """For data at a single point c, the exact field is u_t(x) = (c − x)/(1 − t): the loss is
    0 there, and Euler reaches c exactly on the last step."""
    c = torch.randn(1, 4, 2, 8, 8, dtype=torch.float64)

    def field(t, x):
        return (c - x) / (1 - t).reshape(-1, 1, 1, 1, 1)

    z1 = c.expand(16, -1, -1, -1, -1)
    assert float(rectified_flow_loss(field, z1)) < 1e-20
    z = euler_sample(field, torch.randn(16, 4, 2, 8, 8, dtype=torch.float64), n_steps=3)
    torch.testing.assert_close(z, z1)


def test_rectified_flow_loss_with_given_noise_and_times_is_the_formula():
    """With z₀ and t given, the loss is deterministic: mean over entries and batch of
    (v(t, (1−t) z₀ + t z₁) − (z₁ − z₀))²."""
    g = torch.Generator().manual_seed(0)
    z1, z0 = torch.randn(3, 4, 2, 8, 8, generator=g), torch.randn(3, 4, 2, 8, 8, generator=g)
    t = torch.tensor([0.0, 0.4, 1.0])

    def field(tt, z):
        return torch.sin(z) * (1 + tt.reshape(-1, 1, 1, 1, 1))

    tt = t.reshape(-1, 1, 1, 1, 1)
    by_hand = (field(t, (1 - tt) * z0 + tt * z1) - (z1 - z0)).pow(2).mean()
    torch.testing.assert_close(rectified_flow_loss(field, z1, z0=z0, t=t), by_hand)
    assert float(rectified_flow_loss(field, z1, z0=z0, t=t)) == float(rectified_flow_loss(field, z1, z0=z0, t=t))


def test_latent_normalizer_round_trip():
    z = 3 + 2 * torch.randn(50, 4, 2, 3, 3, dtype=torch.float64)
    norm = LatentNormalizer.fit(z)
    zn = norm.normalize(z)
    torch.testing.assert_close(zn.mean(dim=(0, 2, 3, 4)), torch.zeros(4, dtype=torch.float64))
    torch.testing.assert_close(norm.denormalize(zn), z)


def small_model() -> VideoModel:
    torch.manual_seed(0)
    tae = TemporalAutoencoder(width=16)
    dit = LatentDiT(width=16, depth=1, heads=2, max_frames=8)
    for p in dit.parameters():  # move away from the zero init so generation depends on weights
        p.data.add_(0.05 * torch.randn_like(p))
    normalizer = LatentNormalizer(torch.tensor([0.1, 0.2, 0.3, 0.4]), torch.tensor([1.0, 2.0, 0.5, 1.5]))
    return VideoModel(tae, dit, normalizer)


def test_video_model_save_load_generate(tmp_path):
    model = small_model()
    path = lesson.save_model(model, tmp_path / "m.pt", meta={"data": "test"}, half=False)
    ckpt = load_model(path)
    assert ckpt.kind == "video" and ckpt.meta == {"data": "test"}
    loaded = ckpt.model
    assert isinstance(loaded, VideoModel) and loaded.dit.config == model.dit.config
    torch.testing.assert_close(loaded.normalizer.mean, model.normalizer.mean, rtol=0, atol=0)
    a = loaded.generate(2, n_steps=3, seed=1)
    assert a.shape == (2, 16, 32, 32)
    torch.testing.assert_close(a, model.generate(2, n_steps=3, seed=1))  # same weights, same clips
    torch.testing.assert_close(a, loaded.generate(2, n_steps=3, seed=1))
    with pytest.raises(ValueError, match="n_steps"):
        loaded.generate(2, n_steps=0)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")


def test_half_checkpoint_keeps_the_normalizer_exact(tmp_path):
    model = small_model()
    path = lesson.save_model(model, tmp_path / "h.pt", half=True)
    ckpt = load(path, kind="video")
    assert ckpt.state["tae"]["enc2d.1.weight"].dtype == torch.float32  # float16 on disk, float32 back
    rebuilt = lesson.from_checkpoint(ckpt)
    assert torch.equal(rebuilt.normalizer.std, model.normalizer.std)  # config, not float16 state
    ckpt.kind = "glow"
    with pytest.raises(ValueError, match="video"):
        lesson.from_checkpoint(ckpt)


def test_shipped_checkpoint_loads_and_generates():
    ckpt = load_model("video_toy.pt")
    assert ckpt.kind == "video" and ckpt.config["dit"]["width"] == 64 and ckpt.meta["commands"]
    clips, seconds = lesson.timed_generate(ckpt.model, 2, n_steps=2, warmup=False)
    assert clips.shape == (2, 16, 32, 32) and 0 <= float(clips.min()) and float(clips.max()) <= 1 and seconds > 0
    ink, motion = lesson.clip_stats(clips)
    assert 0 < ink < 1 and 0 <= motion < 1


def test_encode_and_reconstruct_in_batches_match_one_batch():
    tae = TemporalAutoencoder(width=16).eval()
    clips = moving_digits(5, seed=2).clips
    x = torch.from_numpy(clips)
    with torch.no_grad():
        torch.testing.assert_close(lesson.encode_clips(tae, clips, batch_size=2), tae.encode(x))
        torch.testing.assert_close(lesson.reconstruct(tae, clips, batch_size=2), tae(x)[0])
    with pytest.raises(ValueError, match="batch_size"):
        lesson.encode_clips(tae, clips, batch_size=0)


# --- pictures ------------------------------------------------------------------------------


def test_gif_and_strip_frames():
    clips = torch.rand(3, 4, 8, 8)
    frames = clip_grid_frames(clips, scale=2, pad=1)
    assert frames.shape == (4, 2 * 8, 2 * (3 * 8 + 2)) and frames.dtype == np.uint8
    assert clip_gif(clips)[:6] in (b"GIF89a", b"GIF87a")
    fig = frame_strips(clips, row_titles=["a", "b", "c"], every=2, title="t")
    assert len(fig.axes) == 1  # one mosaic, not one axes per frame
    plt.close(fig)
    with pytest.raises(ValueError, match="row_titles"):
        frame_strips(clips, row_titles=["a"])


def test_flow_playground_updates_in_place():
    pg = flow_playground(torch.rand(3, 4, 8, 8), every=2)
    before = pg.image.value
    pg.update(step=0, frame=3)
    assert pg.status.value.startswith("t = 0/2") and pg.image.value != before
    with pytest.raises(ValueError, match="unknown control"):
        pg.update(speed=1)
