"""Lesson 09: moving-digit clips, temporal autoencoder, tiling, latent DiT, pipeline."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from coursekit.data.clips import DIGIT_SIZE, bounce_trajectory, moving_digits, pool_digits
from coursekit.matching import euler_sample
from coursekit.video.dit import LatentDiT
from coursekit.video.pipeline import (
    LatentNormalizer,
    VideoModel,
    load_video_model,
    rectified_flow_loss,
    train_tae,
)
from coursekit.video.show import clip_grid_frames, flow_playground, gif_bytes
from coursekit.video.tae import (
    TemporalAutoencoder,
    psnr,
    seam_weights,
    tile_starts,
    tiled_apply,
    tiled_decode,
    tiled_encode,
)

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
    tr, ev = moving_digits(50, seed=0, part="train"), moving_digits(50, seed=0, part="eval")
    assert tr.offset == 0 and tr.digit_index.max() < 8000
    assert ev.offset + ev.digit_index.min() >= 8000  # carved test split: 8,000–9,999 held out
    with pytest.raises(ValueError, match="part"):
        moving_digits(2, part="test")
    with pytest.raises(ValueError, match="n_frames"):
        moving_digits(2, n_frames=0)


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


def test_tae_reconstruction_bound_after_short_training():
    torch.manual_seed(0)
    clip = moving_digits(1, seed=11).clips  # one fixed clip
    x = torch.from_numpy(clip)
    tae = TemporalAutoencoder(latent_channels=4, width=16)
    black = float(x.pow(2).mean())  # the MSE of predicting an empty canvas
    train_tae(tae, clip, n_steps=120, batch_size=1, lr=5e-3, progress=False)
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
    dit = LatentDiT(latent_channels=4, spatial=8, max_frames=8, dim=32, depth=2, heads=4, patch_t=2)
    z = torch.randn(3, 4, 8, 8, 8)
    v = dit(torch.rand(3), z)
    assert v.shape == z.shape
    assert v.abs().max() == 0  # adaLN-Zero and a zero output layer: the untrained field is 0
    assert dit(0.5, z[:, :, :4]).shape == (3, 4, 4, 8, 8)  # fewer latent frames
    with pytest.raises(ValueError, match="t must"):
        dit(torch.rand(2), z)
    with pytest.raises(ValueError, match="z must"):
        dit(0.5, torch.randn(3, 4, 8, 4, 4))


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


def test_latent_normalizer_round_trip():
    z = 3 + 2 * torch.randn(50, 4, 2, 3, 3, dtype=torch.float64)
    norm = LatentNormalizer.fit(z)
    zn = norm.normalize(z)
    torch.testing.assert_close(zn.mean(dim=(0, 2, 3, 4)), torch.zeros(4, dtype=torch.float64))
    torch.testing.assert_close(norm.denormalize(zn), z)


def test_video_model_save_load_generate(tmp_path):
    torch.manual_seed(0)
    tae = TemporalAutoencoder(width=16)
    dit = LatentDiT(dim=16, depth=1, heads=2, max_frames=8)
    for p in dit.parameters():  # move away from the zero init so generation depends on weights
        p.data.add_(0.05 * torch.randn_like(p))
    model = VideoModel(tae, dit, LatentNormalizer(torch.zeros(4), torch.ones(4)), {"data": "test"})
    path = model.save(tmp_path / "m.pt")
    loaded = load_video_model(path)
    assert loaded.meta == {"data": "test"}
    a, b = loaded.generate(2, n_steps=3, seed=1), loaded.generate(2, n_steps=3, seed=1)
    assert a.shape == (2, 16, 32, 32)
    torch.testing.assert_close(a, b)
    with pytest.raises(FileNotFoundError, match="train_video"):
        load_video_model(tmp_path / "missing.pt")


def test_gif_and_strip_frames():
    clips = torch.rand(3, 4, 8, 8)
    frames = clip_grid_frames(clips, scale=2, pad=1)
    assert frames.shape == (4, 16, 3 * 16 + 2) and frames.dtype == np.uint8
    assert gif_bytes(clips)[:6] in (b"GIF89a", b"GIF87a")


def test_flow_playground_updates_in_place():
    pg = flow_playground(torch.rand(3, 4, 8, 8), every=2)
    before = pg.image.value
    pg.update(step=0, frame=3)
    assert pg.status.value.startswith("t = 0/2") and pg.image.value != before
    with pytest.raises(ValueError, match="unknown control"):
        pg.update(speed=1)
