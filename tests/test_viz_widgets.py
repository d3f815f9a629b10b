"""Grids, lattices, GIFs and the lesson-01 playground."""

import numpy as np
import pytest
import torch

from coursekit import viz
from coursekit.flows import Linear
from coursekit.widgets import change_of_variables_playground, measure_latency
from coursekit.widgets.change_of_variables import linear_warp_map


def test_grid_layout_matches_imshow_orientation():
    g = viz.make_grid((-1, 1, -2, 2), 5)
    assert g.points.shape == (25, 2)
    img = g.image(g.points[:, 1])  # y grows with the row index (origin="lower")
    assert img[0, 0] == -2 and img[-1, 0] == 2 and img[0, -1] == -2
    assert g.cell_area == pytest.approx(0.5 * 1.0)
    with pytest.raises(ValueError):
        viz.as_bounds((1, 0, 0, 1))


def test_lattice_and_push():
    lines = viz.lattice(1.0, n_lines=3, n_points=4)
    assert lines.shape == (6, 4, 2)
    pushed = viz.push_lattice(Linear(torch.eye(2) * 2), lines)
    assert torch.allclose(pushed, 2 * lines)


def test_abs_det_on_grid_for_linear_map():
    g = viz.make_grid(1.0, 4)
    det = viz.abs_det_on_grid(Linear([[2.0, 1.0], [0.0, 3.0]]), g)
    assert np.allclose(det, 6.0)


def test_save_gif_roundtrip(tmp_path):
    import imageio.v3 as iio

    fig, axes = viz.new_figure()
    ax = axes[0, 0]
    frames = []
    for k in range(3):
        ax.clear()
        ax.plot([0, 1], [0, k])
        frames.append(viz.figure_to_array(fig))
    path = viz.save_gif(frames, tmp_path / "a.gif", fps=5)
    back = iio.imread(path)
    assert back.shape[0] == 3 and back.shape[1:3] == frames[0].shape[:2]
    with pytest.raises(ValueError):
        viz.save_gif([], tmp_path / "b.gif")


def test_tile_images_layout_and_errors():
    images = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    out = viz.tile_images(images, ncols=2, pad=1, pad_value=-1.0)
    assert out.shape == (3 * 2 + 2, 2 * 3 + 1)  # 3 rows of 2 (the last half empty), 1-pixel gaps
    assert np.array_equal(out[0:2, 4:7], images[1]) and np.array_equal(out[6:8, 0:3], images[4])
    assert (out[6:8, 4:7] == -1.0).all() and (out[2, :] == -1.0).all()
    assert viz.tile_images(images[:, None], ncols=8).shape == (2, 5 * 3 + 4)  # (n, 1, H, W), ncols capped at n
    with pytest.raises(ValueError, match="ncols"):
        viz.tile_images(images, ncols=0)
    with pytest.raises(ValueError, match="shape"):
        viz.tile_images(images[0], ncols=1)
    assert viz.to_uint8(np.array([[0.0, 1.0]]), scale=2).tolist() == [[0, 0, 255, 255]] * 2


def test_playground_updates_image_and_checks_mass():
    pg = change_of_variables_playground(grid_size=60)
    before = pg.image.value
    pg.update(angle=0.8, warp=1.5)
    assert pg.image.value != before and pg.image.value[:4] == b"\x89PNG"
    assert pg.controls["angle"].value == pytest.approx(0.8)
    assert "∫p" in pg.status.value
    mass = float(pg.status.value.split("≈ ")[1].split(" ")[0])
    assert 0.9 < mass <= 1.001  # the window [-4, 4]^2 holds most of the mass
    pg.controls["shear"].value = 0.5  # a slider move (what the browser does) redraws too
    assert pg.image.value != before
    with pytest.raises(ValueError, match="unknown control"):
        pg.update(nope=1)


def test_measure_latency_reports_sorted_stats():
    calls = []
    lat = measure_latency(lambda **s: calls.append(s), [dict(a=i) for i in range(10)], warmup=2)
    assert lat.n == 10 and len(calls) == 12 and lat.p95_ms >= lat.median_ms >= 0


def test_linear_warp_map_is_a_valid_bijection():
    from coursekit.testing import check_bijection

    torch.set_default_dtype(torch.float64)
    try:
        f = linear_warp_map(angle=0.4, scale_x=1.3, scale_y=0.7, shear=0.5, warp=1.2)
        f.bijections[1].tol = 1e-12
        check_bijection(f, torch.randn(16, 2), atol=1e-7)
    finally:
        torch.set_default_dtype(torch.float32)
