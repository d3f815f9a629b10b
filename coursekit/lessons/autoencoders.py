"""Lesson 08's recipes (TensorFlow): the VAE and DCGAN training runs, their figures and the GIF.

Notebook 08, ``scripts/train_tf_models.py`` and ``benchmarks/bench_tf.py`` all build and
train the models through this module, so the three run the same thing:

* :class:`VaeRun` — ``CVAE`` + Adam(1e-4) + the ε generator, checkpointed by ``TrainingRun``;
* :class:`GanRun` — the DCGAN's two players and their two Adams, a progress frame (always the
  same fixed noise) every ``frame_every`` steps, and :meth:`GanRun.gif`;
* the figures: reconstructions, the 2-D latent space, the decoded latent grid (the course's
  ``plot_latent_images``) and sample mosaics, drawn with ``coursekit.viz.images``.

A run directory holds the checkpoints, ``history.json`` and (GAN) ``frames/``; building the
run again on the same directory resumes it. The models and losses are in ``coursekit.tf``.

Taught in: notebook 08.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

# First, before TensorFlow loads: coursekit.tf sets its environment (oneDNN kernels, log level).
from ..tf import (
    CVAE,
    NOISE_DIM,
    Autoencoder,
    BatchSampler,
    generate_images,
    make_discriminator_model,
    make_gan_train_step,
    make_generator_model,
    make_vae_train_step,
)

# isort: split
import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf

from ..core.checks import positive_int
from ..core.history import History
from ..data import to_signed
from ..training.tf_distributed import is_chief, make_gan_step, make_vae_step, training_run
from ..viz.images import save_gif, tile_images, to_uint8


class VaeRun:
    """The notebook's VAE training: ``images`` binarized ``(N, 28, 28, 1)``, batches of
    ``batch_size`` drawn by step (:class:`~coursekit.tf.BatchSampler`), Adam(``lr``), and a
    ``tf.random.Generator`` for ε, all checkpointed in ``directory`` every ``checkpoint_every`` steps.

    Pass ``model`` to train a CVAE built earlier (the notebook inspects it first).

    ``frame_images`` (binarized, ``(n, 28, 28, 1)``): a PNG frame of their reconstructions (fixed ε)
    every ``frame_every`` steps (default: one epoch) in ``directory/frames``, and :meth:`gif`.

    ``strategy`` (a ``tf.distribute`` strategy, :mod:`coursekit.training.tf_distributed`): the
    model (built here, or by the caller inside ``strategy.scope()``) and Adam live on its
    replicas; ``batch_size`` is the global batch, each replica computing its share with the same
    ε draws as on one device, so the steps are the one-device steps.
    """

    def __init__(self, directory: str | os.PathLike, images: np.ndarray, *, model: CVAE | None = None,
                 latent_dim: int = 2, batch_size: int = 32, lr: float = 1e-4, seed: int = 0,
                 checkpoint_every: int = 250, strategy: tf.distribute.Strategy | None = None,
                 frame_images: np.ndarray | None = None, frame_every: int | None = None):
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            self.model = CVAE(latent_dim) if model is None else model
            self.optimizer = keras.optimizers.Adam(lr)
            self.optimizer.build(self.model.trainable_variables)  # Adam's variables exist before a restore
        self.rng = tf.random.Generator.from_seed(seed)  # outside the scope: one ε stream, as on one device
        self.chief = is_chief(strategy)
        self.sampler = BatchSampler(images, batch_size, seed=seed)
        self.run = training_run(directory, strategy, checkpoint_every=checkpoint_every, model=self.model,
                                optimizer=self.optimizer, rng=self.rng)
        self.train_step = (make_vae_train_step(self.model, self.optimizer, self.rng) if strategy is None
                           else make_vae_step(strategy, self.model, self.optimizer, self.rng, batch_size))
        self.directory = Path(directory)
        # the source notebook's generate_and_save_images: the same test images, encoded, sampled with the
        # same ε and decoded, once per epoch (frame_every defaults to one epoch of steps)
        self.frame_images = None if frame_images is None else np.asarray(frame_images, dtype="float32")
        self.frame_every = positive_int(frame_every or self.sampler.steps_per_epoch, "frame_every")
        if self.frame_images is not None:
            self.frame_eps = tf.random.stateless_normal((len(self.frame_images), self.model.latent_dim), seed=(7, 0))

    @property
    def step(self) -> int:
        return int(self.run.step.numpy())

    @property
    def frames_dir(self) -> Path:
        return self.directory / "frames"

    def frame_paths(self) -> list[Path]:
        return sorted(self.frames_dir.glob("frame_*.png"))

    def save_frame(self, step: int) -> Path:
        """The frame images through the VAE (encode, z = μ + σ·ε with a fixed ε, decode), 4 wide, 3× larger."""
        import imageio.v3 as iio

        mean, logvar = self.model.encode(self.frame_images)
        probs = self.model.decode(self.model.reparameterize(mean, logvar, self.frame_eps), apply_sigmoid=True)
        path = self.frames_dir / f"frame_{step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(path, to_uint8(tile_images(np.asarray(probs)[..., 0], ncols=4), scale=3))
        return path

    def fit(self, n_steps: int, *, desc: str = "VAE", progress: bool = True) -> History:
        """Train until the run has done ``n_steps`` steps in total (resumes; see ``TrainingRun.fit``);
        with ``frame_images``, a frame at step 0 and every ``frame_every`` steps."""
        frames = self.frame_images is not None and self.chief
        if frames and self.step == 0 and not (self.frames_dir / "frame_000000.png").exists():
            self.save_frame(0)
        return self.run.fit(self.train_step, self.sampler, n_steps, desc=desc, progress=progress and self.chief,
                            callback=self.save_frame if frames else None, callback_every=self.frame_every)

    def gif(self, fps: float = 2.0) -> Path:
        """Every frame so far, in step order, as ``vae.gif`` in the run directory."""
        return _gif(self.frame_paths(), self.directory / "vae.gif", fps)


def gan_images(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` → the GAN's input: [−1, 1] (``to_signed``) with a channel axis."""
    return to_signed(images)[..., None]


class GanRun:
    """The DCGAN of the course on uint8 ``images``: G and D from ``coursekit.tf`` (weights seeded
    by ``seed``, so a rebuilt run starts from the same weights before it restores), two
    Adam(``lr``) (G's rate is ``generator_lr`` when given), a noise generator, checkpoints in
    ``directory`` every ``checkpoint_every`` steps (the last ``max_to_keep`` kept) and a PNG
    frame of G on a fixed noise every ``frame_every`` steps in ``directory/frames``.

    ``strategy`` (a ``tf.distribute`` strategy, :mod:`coursekit.training.tf_distributed`): the
    players and their Adams live on its replicas; ``batch_size`` is the global batch, each replica
    computing its share with the same noise draws as on one device. The BatchNormalization layers
    use each replica's batch statistics, so the run changes a little with the number of replicas.
    Only the chief writes frames.
    """

    def __init__(self, directory: str | os.PathLike, images: np.ndarray, *, batch_size: int = 64,
                 lr: float = 1e-4, generator_lr: float | None = None, seed: int = 0,
                 checkpoint_every: int = 100, max_to_keep: int = 2, frame_every: int = 50, n_frame_images: int = 16,
                 strategy: tf.distribute.Strategy | None = None):
        keras.utils.set_random_seed(seed)
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            self.generator, self.discriminator = make_generator_model(), make_discriminator_model()
            self.generator_optimizer = keras.optimizers.Adam(lr if generator_lr is None else generator_lr)
            self.discriminator_optimizer = keras.optimizers.Adam(lr)
            self.generator_optimizer.build(self.generator.trainable_variables)
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)
        self.rng = tf.random.Generator.from_seed(seed + 1)
        self.directory = Path(directory)
        self.chief = is_chief(strategy)
        self.sampler = BatchSampler(gan_images(images), batch_size, seed=seed)
        self.run = training_run(self.directory, strategy, checkpoint_every=checkpoint_every,
                                max_to_keep=max_to_keep, generator=self.generator, discriminator=self.discriminator,
                                generator_optimizer=self.generator_optimizer,
                                discriminator_optimizer=self.discriminator_optimizer, rng=self.rng)
        self.frame_every = positive_int(frame_every, "frame_every")
        self.fixed_noise = tf.random.stateless_normal((positive_int(n_frame_images, "n_frame_images"), NOISE_DIM),
                                                      seed=(42, 0))  # the same z in every frame
        self.train_step = (
            make_gan_train_step(self.generator, self.discriminator, self.generator_optimizer,
                                self.discriminator_optimizer, self.rng) if strategy is None
            else make_gan_step(strategy, self.generator, self.discriminator, self.generator_optimizer,
                               self.discriminator_optimizer, self.rng, batch_size))

    @property
    def step(self) -> int:
        return int(self.run.step.numpy())

    @property
    def frames_dir(self) -> Path:
        return self.directory / "frames"

    def frame_paths(self) -> list[Path]:
        return sorted(self.frames_dir.glob("frame_*.png"))

    def save_frame(self, step: int) -> Path:
        """G(fixed noise) as a 4-wide mosaic, enlarged 3×, written to ``frames/frame_<step>.png``."""
        import imageio.v3 as iio

        mosaic = tile_images(generate_images(self.generator, self.fixed_noise).numpy()[..., 0], ncols=4)
        path = self.frames_dir / f"frame_{step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(path, to_uint8(mosaic, scale=3))
        return path

    def fit(self, n_steps: int, *, desc: str = "GAN", progress: bool = True) -> History:
        """Train until the run has done ``n_steps`` steps in total, one frame every ``frame_every``."""
        if self.chief and self.step == 0 and not (self.frames_dir / "frame_000000.png").exists():
            self.save_frame(0)
        return self.run.fit(self.train_step, self.sampler, n_steps, desc=desc, progress=progress and self.chief,
                            callback=self.save_frame if self.chief else None, callback_every=self.frame_every)

    def gif(self, fps: float = 4.0) -> Path:
        """Every frame so far, in step order, as ``dcgan.gif`` in the run directory."""
        return _gif(self.frame_paths(), self.directory / "dcgan.gif", fps)


def _gif(paths: list[Path], out: Path, fps: float) -> Path:
    import imageio.v3 as iio

    if not paths:
        raise ValueError(f"no frames in {out.parent / 'frames'}: train first")
    return Path(save_gif([iio.imread(p) for p in paths], out, fps=fps))


# --- the checks of the cells the student writes: same weights, same inputs, same ε / noise ---

def _delta(before: list[np.ndarray], variables, lr: float) -> np.ndarray:
    """(w_after − w_before)/lr, all variables in one vector: with SGD, the gradient that was applied."""
    return np.concatenate([((v.numpy() - b) / lr).ravel() for b, v in zip(before, variables, strict=True)])


def vae_step_outcome(step_fn, x, eps, seed: int = 0, lr: float = 0.1) -> tuple[float, np.ndarray]:
    """Run ``step_fn(model, optimizer, x, eps)`` once on a CVAE(2) with weights seeded by ``seed`` and
    SGD(``lr``); return ``(loss, applied gradient)``. Two step functions agree iff both outputs do."""
    keras.utils.set_random_seed(seed)
    model, opt = CVAE(2), keras.optimizers.SGD(lr)
    opt.build(model.trainable_variables)
    before = [v.numpy() for v in model.trainable_variables]
    loss = step_fn(model, opt, tf.constant(x, tf.float32), tf.constant(eps, tf.float32))
    return float(loss), _delta(before, model.trainable_variables, lr)


def gan_step_outcome(step_fn, images, noise, seed: int = 0, lr: float = 0.1):
    """Run ``step_fn(G, D, opt_G, opt_D, images, noise)`` once on the course's G and a D without
    dropout (deterministic, whatever order D is called in), seeded by ``seed``, with two SGD(``lr``).
    Returns ``(gen_loss, disc_loss, applied gradient of G, applied gradient of D)``."""
    keras.utils.set_random_seed(seed)
    gen, disc = make_generator_model(), make_discriminator_model(dropout=0.0)
    opt_g, opt_d = keras.optimizers.SGD(lr), keras.optimizers.SGD(lr)
    opt_g.build(gen.trainable_variables)
    opt_d.build(disc.trainable_variables)
    g0, d0 = [v.numpy() for v in gen.trainable_variables], [v.numpy() for v in disc.trainable_variables]
    out = step_fn(gen, disc, opt_g, opt_d, tf.constant(images, tf.float32), tf.constant(noise, tf.float32))
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise TypeError(f"the GAN step must return (gen_loss, disc_loss), got {type(out).__name__}")
    return (float(out[0]), float(out[1]), _delta(g0, gen.trainable_variables, lr),
            _delta(d0, disc.trainable_variables, lr))


def save_checkpoint(directory, step: int, max_to_keep: int = 2, **objects) -> str:
    """``tf.train.Checkpoint(step=..., **objects)`` saved by a ``CheckpointManager`` as ``ckpt-<step>``
    (the newest ``max_to_keep`` kept); returns the prefix written."""
    ckpt = tf.train.Checkpoint(step=tf.Variable(step, dtype=tf.int64), **objects)
    manager = tf.train.CheckpointManager(ckpt, str(directory), max_to_keep=max_to_keep)
    return manager.save(checkpoint_number=step)


def restore_latest(directory, **objects) -> int:
    """Restore the newest checkpoint in ``directory`` into ``objects``; returns its step (0 if none)."""
    step = tf.Variable(0, dtype=tf.int64)
    ckpt = tf.train.Checkpoint(step=step, **objects)
    latest = tf.train.latest_checkpoint(str(directory))
    if latest is None:
        return 0
    ckpt.restore(latest).assert_existing_objects_matched()
    return int(step.numpy())


def checkpoint_roundtrip(save_fn, restore_fn, directory) -> tuple[int, float, int, float, int]:
    """The scenario of the checkpoint exercise, in a fresh ``directory``: a small model, its Adam and
    a ``tf.random.Generator`` take a step and are saved at steps 1, 2 and 3 (``save_fn(directory,
    step, model=..., optimizer=..., rng=...)``), then train on; new objects are built and
    ``restore_fn(directory, model=..., optimizer=..., rng=...)`` brings them back.

    Returns ``(restored step, max |Δ weights| vs step 3, Adam's iterations, max |Δ RNG state|,
    checkpoints left on disk)``."""
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise ValueError(f"{directory} is not empty: the scenario needs a fresh folder")

    def build(seed):
        keras.utils.set_random_seed(seed)
        model, opt = Autoencoder(4), keras.optimizers.Adam(1e-2)
        opt.build(model.trainable_variables)
        return model, opt, tf.random.Generator.from_seed(seed)

    model, opt, rng = build(0)
    x = tf.random.stateless_uniform((8, 28, 28), seed=(1, 2))

    def train():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(x) - x) ** 2)
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        rng.normal((2,))  # the generator's state moves too

    for step in (1, 2, 3):
        train()
        save_fn(directory, step, model=model, optimizer=opt, rng=rng)
    saved = [v.numpy() for v in model.variables]
    saved_rng = rng.state.numpy()
    train()  # what happens after the last checkpoint is lost
    model2, opt2, rng2 = build(1)  # other initial weights: a restore that does nothing is caught
    step = restore_fn(directory, model=model2, optimizer=opt2, rng=rng2)
    dw = max(float(np.max(np.abs(a - b.numpy()))) for a, b in zip(saved, model2.variables, strict=True))
    d_rng = float(np.max(np.abs(saved_rng.astype("float64") - rng2.state.numpy().astype("float64"))))
    kept = len(list(directory.glob("*.index")))
    return int(step), dw, int(opt2.iterations.numpy()), d_rng, kept


def read_gif(path) -> tuple[np.ndarray, float, int]:
    """A GIF read back: ``(frames as uint8 grey (n, H, W), duration of a frame in ms, loop)``."""
    import imageio.v3 as iio

    frames = np.asarray(iio.imread(path, index=None))
    if frames.ndim == 4:  # RGB(A) frames of a grey picture: keep one channel
        frames = frames[..., 0]
    meta = iio.immeta(path, index=0)
    return frames.astype("uint8"), float(meta.get("duration", 0.0)), int(meta.get("loop", -1))


# --- figures (Spanish titles: the student reads them) ---

def _as_images(x) -> np.ndarray:
    x = np.asarray(x, dtype="float32")
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise ValueError(f"expected images (N, H, W) or (N, H, W, 1), got shape {x.shape}")
    return x


def plot_reconstructions(originals, reconstructions, n: int = 10, title: str = "Originales y reconstrucciones"):
    """Top row: originals; bottom row: the model's reconstructions (values in [0, 1])."""
    a, b = _as_images(originals)[:n], _as_images(reconstructions)[:n]
    if a.shape != b.shape:
        raise ValueError(f"originals {a.shape} and reconstructions {b.shape} differ in shape")
    fig, axes = plt.subplots(2, len(a), figsize=(min(8.4, 0.84 * len(a)), 2.5), squeeze=False)
    for i in range(len(a)):
        for row, imgs in enumerate((a, b)):
            axes[row, i].imshow(imgs[i], cmap="gray", vmin=0, vmax=1)
            axes[row, i].axis("off")
    axes[0, 0].set_title("original", fontsize=10, loc="left")
    axes[1, 0].set_title("reconstrucción", fontsize=10, loc="left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_latent_space(z, labels, title: str = "Espacio latente (media de q(z|x))"):
    """Scatter of 2-d latent codes coloured by the digit's label."""
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"plot_latent_space needs 2-d codes (N, 2), got shape {z.shape}")
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    art = ax.scatter(z[:, 0], z[:, 1], c=np.asarray(labels), cmap="tab10", s=4, alpha=0.7,
                     vmin=-0.5, vmax=9.5)  # one colour per digit, ticks centred
    fig.colorbar(art, ax=ax, ticks=range(10), label="dígito")
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title=title)
    return fig


def latent_grid(model: CVAE, n: int = 20, lo: float = 0.05, hi: float = 0.95):
    """Decode the points (Φ⁻¹(u_j), Φ⁻¹(u_i)) for u on a regular grid in [lo, hi]: the
    quantiles of N(0, 1) from TFP, so equal areas of prior mass get equal room.
    Returns ``(image, quantiles)``: row i of the mosaic has z₂ = quantiles[i], column j z₁ = quantiles[j]."""
    import tensorflow_probability as tfp

    n = positive_int(n, "n")
    if getattr(model, "latent_dim", None) != 2:
        raise ValueError("latent_grid needs a model with latent_dim == 2")
    q = tfp.distributions.Normal(0.0, 1.0).quantile(np.linspace(lo, hi, n).astype("float32")).numpy()
    z = np.array([[zj, zi] for zi in q for zj in q], dtype="float32")  # the course's loop order
    return tile_images(np.asarray(model.sample(z))[..., 0], ncols=n, pad=0), q


def plot_latent_images(model: CVAE, n: int = 20):
    """The course's figure: the decoder's output over the latent grid."""
    image, _ = latent_grid(model, n)
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.imshow(image, cmap="Greys_r")
    ax.set_title("Rejilla latente decodificada\n(cuantiles de N(0, 1))")
    ax.axis("off")
    return fig


def plot_samples(images, title: str, ncols: int = 4):
    """A mosaic of images in [0, 1] (``(N, H, W)`` or ``(N, H, W, 1)``)."""
    fig, ax = plt.subplots(figsize=(3.5, 3.5))
    ax.imshow(tile_images(_as_images(images), ncols=ncols), cmap="gray", vmin=0, vmax=1)
    ax.set_title(title)
    ax.axis("off")
    return fig


__all__ = ["GanRun", "VaeRun", "checkpoint_roundtrip", "gan_images", "gan_step_outcome", "latent_grid",
           "plot_latent_images", "plot_latent_space", "plot_reconstructions", "plot_samples", "read_gif",
           "restore_latest", "save_checkpoint", "vae_step_outcome"]
