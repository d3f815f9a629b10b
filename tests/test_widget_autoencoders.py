"""Lesson 08's panel interactivo: the VAE latent-space sliders decode the point they mark."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import coursekit.tf as ckt  # noqa: E402
from coursekit.widgets.autoencoders import vae_latent_playground  # noqa: E402


@pytest.fixture(scope="module")
def vae():
    ckt.seed_everything(0)
    return ckt.CVAE(2)


def test_sliders_decode_the_marked_point(vae):
    points = np.random.default_rng(0).normal(size=(50, 2))
    pg = vae_latent_playground(vae, points, labels=np.arange(50) % 10)
    before = pg.image.value
    marker = pg.fig.axes[0].lines[0]
    image = pg.fig.axes[1].images[0]
    pg.update(z1=1.5, z2=-2.0)
    assert pg.image.value != before  # the picture changed
    np.testing.assert_allclose(marker.get_data(), ([1.5], [-2.0]))
    expected = np.asarray(vae.sample(np.array([[1.5, -2.0]], dtype="float32")))[0, ..., 0]
    np.testing.assert_allclose(image.get_array(), expected, atol=1e-6)
    assert "z = (1.5, -2.0)" in pg.status.value and "‖z‖ = 2.50" in pg.status.value
    assert pg.fig.get_figwidth() <= 8.5 and all(t.get_fontsize() >= 10 for ax in pg.fig.axes for t in [ax.title])


def test_bad_input_is_rejected(vae):
    with pytest.raises(ValueError, match="latent_dim == 2"):
        vae_latent_playground(ckt.CVAE(3))
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        vae_latent_playground(vae, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="labels has 4 entries"):
        vae_latent_playground(vae, np.zeros((5, 2)), labels=np.zeros(4))
    with pytest.raises(ValueError, match="limit"):
        vae_latent_playground(vae, limit=-1)
