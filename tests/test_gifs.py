"""Every GIF the course writes has at least two distinct, non-blank frames.

The GIFs (grep ``save_gif`` / ``gif_bytes`` in ``coursekit`` and ``notebooks``):

* lesson 06: the density evolution ``p_t`` (``lessons.cnf.evolution_figure`` + ``evolution_gif``), whose moving
  artists are ``animated=True`` because a playground blits them;
* lesson 07: samples flowing from noise to data (``lessons.flow_matching.trajectory_gif``);
* lesson 08: the DCGAN's progress frames (``lessons.autoencoders.GanRun.gif``, TensorFlow);
* lesson 09: clips in a loop (``widgets.video.clip_gif``, behind ``show_gif``).

Each test runs the real code path at a tiny size and reads the GIF back from disk (or bytes).
"""

from __future__ import annotations

import imageio.v3 as iio
import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from coursekit import viz  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


def _frames(gif) -> np.ndarray:
    frames = iio.imread(gif, index=None, extension=".gif")
    return frames[..., :3] if frames.ndim == 4 else frames


def _content(frame: np.ndarray) -> float:
    """Share of pixels that differ from the frame's most common colour (its background)."""
    flat = frame.reshape(-1, frame.shape[-1]) if frame.ndim == 3 else frame.reshape(-1, 1)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    return 1.0 - counts.max() / len(flat)


def assert_good_gif(gif, min_content: float, min_frames: int = 2) -> np.ndarray:
    """≥ ``min_frames`` frames, ≥ 2 of them distinct, none blank (≥ ``min_content`` of its pixels drawn)."""
    frames = _frames(gif)
    assert len(frames) >= min_frames, f"{len(frames)} frame(s)"
    distinct = {f.tobytes() for f in frames}
    assert len(distinct) >= 2, f"all {len(frames)} frames are identical"
    content = [_content(f) for f in frames]
    assert min(content) >= min_content, f"blank frame(s): drawn share per frame {np.round(content, 3)}"
    return frames


def test_figure_to_array_draws_animated_artists():
    fig, ax = plt.subplots(figsize=(2, 2), dpi=50)
    img = ax.imshow(np.zeros((4, 4)), vmin=0, vmax=1, cmap="gray", animated=True)
    ax.set_axis_off()
    blank = viz.figure_to_array(fig)
    img.set_data(np.ones((4, 4)))
    full = viz.figure_to_array(fig)
    plt.close(fig)
    assert (full != blank).any(), "the animated image was not rendered"
    assert img.get_animated(), "figure_to_array must leave the artist animated (a playground blits it)"


def test_lesson06_density_evolution_gif(tmp_path):
    from coursekit.lessons import cnf as lesson
    from coursekit.widgets.core import Playground

    torch.manual_seed(0)
    model = lesson.make_ffjord(hidden=8, n_layers=2)
    evo = lesson.density_evolution(model, viz.make_grid(3.0, n=12), [0.0, 0.5, 1.0], viz.make_grid(3.0, n=4))
    fig, draw = lesson.evolution_figure(evo, figsize=(4.0, 2.0))
    import ipywidgets as W

    Playground(fig, {"t": W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.5)}, draw)  # as in notebook 06
    gif = lesson.evolution_gif(fig, draw, evo.times, tmp_path / "evo.gif", fps=6)
    frames = assert_good_gif(gif, min_content=0.2, min_frames=3)
    assert len({f.tobytes() for f in frames}) == 3
    with pytest.raises(ValueError, match="times"):
        lesson.density_evolution(model, viz.make_grid(3.0, n=4), [0.0, 1.5], viz.make_grid(3.0, n=2))


def test_lesson07_trajectory_gif(tmp_path):
    from coursekit.lessons import flow_matching as lesson
    from coursekit.matching import euler_sample

    def field(t, x):  # a rotation-and-shrink field: the samples visibly move
        return torch.stack([-x[:, 1], x[:, 0]], 1) - 0.5 * x

    with torch.no_grad():
        _, traj = euler_sample(field, torch.randn(200, 2, generator=torch.Generator().manual_seed(0)), 6,
                               return_trajectory=True)
    gif = lesson.trajectory_gif(traj, tmp_path / "fm.gif", every=2, size=1.6)
    frames = assert_good_gif(gif, min_content=0.02, min_frames=4)
    assert len(frames) == 4  # states 0, 2, 4, 6: the last one always included
    with pytest.raises(ValueError, match="trajectory"):
        lesson.trajectory_gif(traj[:, :, :1], tmp_path / "bad.gif")
    with pytest.raises(ValueError, match="every"):
        lesson.trajectory_gif(traj, tmp_path / "bad.gif", every=0)


def test_lesson08_gan_progress_gif(tmp_path):
    pytest.importorskip("tensorflow", reason="lesson 08's GAN needs TensorFlow (the [tf] extra)")
    from coursekit.lessons import autoencoders as lesson

    images = np.random.default_rng(0).integers(0, 256, (16, 28, 28), dtype=np.uint8)
    gan = lesson.GanRun(tmp_path, images, batch_size=8, checkpoint_every=100, frame_every=1)
    gan.fit(2, progress=False)
    assert_good_gif(gan.gif(fps=4), min_content=0.05, min_frames=3)


def test_lesson09_clip_gif():
    from coursekit.data.clips import moving_digits
    from coursekit.widgets.video import clip_gif

    clips = moving_digits(2, seed=0, part="train").clips[:, :4]
    assert_good_gif(clip_gif(clips, fps=8, scale=1), min_content=0.02, min_frames=4)
