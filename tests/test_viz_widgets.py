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


# --- playground controls: overrides, bad values, the browser's stale answers (issues 14, 17) ---


@pytest.fixture(scope="module")
def planar_pg():
    from coursekit.widgets.planar_radial import planar_radial_playground

    return planar_radial_playground(grid_size=40)


def test_update_applies_selector_before_the_sliders_it_reloads(planar_pg):
    pg = planar_pg
    pg.update(capa=2, u1=-3)  # before: selecting layer 2 reloaded u₁ and dropped −3 silently
    assert pg.controls["capa"].value == 2 and pg.controls["u1"].value == pytest.approx(-3.0)
    pg.update(capa=1)
    pg.update(capa=2)
    assert pg.controls["u1"].value == pytest.approx(-3.0)  # layer 2 kept its u₁
    pg.update(capa=1, u1=1.2)


@pytest.mark.parametrize("bad, match, error", [
    (dict(u1=float("nan")), r"'u1'.*finite.*nan", ValueError),
    (dict(u1=float("inf")), r"'u1'.*finite", ValueError),
    (dict(u1=9.0), r"'u1'.*outside.*\[-4, 4\]", ValueError),
    (dict(u1=0.05), r"'u1'.*grid.*0 and 0.1", ValueError),
    (dict(capas=2.5), r"'capas'.*grid", ValueError),
    (dict(u1="1"), r"'u1'.*expected a number", TypeError),
    (dict(tipo="plana"), r"'tipo'.*options", ValueError),
    (dict(capas=2, capa=5, u1=-1.0), r"'capa'.*requested 5.*took 2", ValueError),
])
def test_update_rejects_bad_values_before_changing_anything(planar_pg, bad, match, error):
    pg = planar_pg
    before, image = pg.params, pg.image.value
    with pytest.raises(error, match=match):
        pg.update(**bad)
    assert pg.params == before and pg.image.value == image
    pg.update()  # and nothing hidden changed either (the layers' stored values)
    assert pg.image.value == image


def test_measure_latency_moves_no_control_and_restores_the_image(planar_pg):
    pg = planar_pg
    before, image = pg.params, pg.image.value
    lat = measure_latency(pg.update, [dict(u1=float(v)) for v in np.linspace(-1.5, 1.5, 4)], warmup=1)
    assert lat.n == 4 and "en Python" in str(lat)
    assert pg.params == before and pg.image.value == image
    assert measure_latency(pg, [dict(capas=8)], warmup=0).n == 1 and pg.params == before
    with pytest.raises(ValueError, match="unknown control"):
        measure_latency(pg.update, [dict(nope=1)])


def _browser_answer(ctrl, value):
    """What ipywidgets does with a value the browser sends (an update message from the front end)."""
    ctrl.set_state({"value": value})


def test_stale_browser_answers_do_not_move_the_slider():
    pg = change_of_variables_playground(grid_size=30)
    warp = pg.controls["warp"]
    pg.update(warp=1.85)
    pg.update(warp=2.1)
    pg.update(warp=0.0)  # the last value set from code
    # ipywidgets 8's slider answers each value, rounded to the step with float noise, after the cell
    for v in (1.8500000000000003, 2.1000000000000005):
        _browser_answer(warp, v)
        assert warp.value == 0.0, "a stale answer of the browser moved the slider"
    _browser_answer(warp, 1e-16)  # the answer to the last value is kept (it is that value)
    assert warp.value == pytest.approx(0.0)
    _browser_answer(warp, 1.5)  # a real move
    assert warp.value == 1.5
    pg.update(warp=0.0)


def test_snapshot_draws_animated_artists_without_moving_controls():
    pg = change_of_variables_playground(grid_size=30)
    before, image = pg.params, pg.image.value
    a, b = pg.snapshot(warp=2.0), pg.snapshot()
    assert a.ndim == 3 and a.shape == b.shape and (np.abs(a.astype(int) - b).sum(-1) > 30).mean() > 0.01
    assert pg.params == before and pg.image.value == image


def test_lesson01_colour_scale_is_fixed():
    pg = change_of_variables_playground(grid_size=30)
    img_x = pg.fig.axes[1].images[0]
    clim = img_x.get_clim()
    pg.update(scale_x=0.5, warp=1.5)
    assert img_x.get_clim() == clim  # the density dilutes visibly instead of being rescaled
    pg.update(scale_x=1.0, warp=0.0)


def test_lesson04_error_axis_reaches_the_convergence_iteration():
    from coursekit.widgets.iresnet_playground import fixed_point_playground

    pg = fixed_point_playground()
    pg.update(lam=0.9, angle=1.0)  # before: the axis stopped at 40 while the status said 67
    iterations = int(pg.status.value.split("converge en <b>")[1].split("</b>")[0])
    assert iterations > 40 and pg.fig.axes[1].get_xlim()[1] == iterations
    pg.update(lam=0.99)  # Lip(g) = 0.98 < 1: slow, but not "Lip(g) ≥ 1"
    assert "Lip(g) ≥ 1" not in pg.status.value and pg.fig.axes[1].get_xlim()[1] == 40


def test_lesson07_x1_slider_is_disabled_in_marginal_mode():
    from coursekit.widgets.flow_matching import flow_matching_playground

    pg = flow_matching_playground(grid_size=30, n_pairs=20)
    assert pg.params["campo"] == "marginal" and pg.controls["k"].disabled
    pg.update(campo="condicional")
    assert not pg.controls["k"].disabled
    before = pg.image.value
    pg.update(k=3)
    assert pg.image.value != before
    pg.update(campo="marginal", k=0)


def test_lesson02_marks_the_edited_layer(planar_pg):
    pg = planar_pg
    pg.update(capa=1)
    one = pg.image.value
    pg.update(capa=2)
    assert pg.image.value != one and "capa editada: 2 de 2 (planar)" in [t.get_text() for t in pg.fig.axes[1].texts]
    pg.update(capa=1)


def test_playground_figures_are_legible_at_the_size_shown(planar_pg):
    from coursekit.widgets.core import MAX_FIGURE_PX, MIN_FONT_PX
    from coursekit.widgets.flow_matching import flow_matching_playground
    from coursekit.widgets.iresnet_playground import fixed_point_playground
    from coursekit.widgets.video import flow_playground

    pgs = [change_of_variables_playground(grid_size=30), planar_pg, fixed_point_playground(),
           flow_matching_playground(grid_size=30, n_pairs=20), flow_playground(np.random.rand(5, 8, 16, 16))]
    for pg in pgs:
        assert pg.min_font_px >= MIN_FONT_PX
        assert pg.fig.get_figwidth() * pg.fig.get_dpi() <= MAX_FIGURE_PX + 0.5
        assert pg.image.layout.width == f"{round(pg.fig.get_figwidth() * pg.fig.get_dpi())}px"
