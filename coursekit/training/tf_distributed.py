"""Lesson 08's training steps under a ``tf.distribute`` strategy, meaning the same at any number of replicas.

    strategy = make_strategy("mirrored")          # every GPU of this machine (or the CPU)
    with strategy.scope():
        vae = CVAE(2); opt = keras.optimizers.Adam(1e-4); opt.build(vae.trainable_variables)
    rng = tf.random.Generator.from_seed(0)       # outside the scope: one stream, as on one device
    step = make_vae_step(strategy, vae, opt, rng, global_batch=32)
    run = TrainingRun("runs/vae", model=vae, optimizer=opt, rng=rng)
    run.fit(step, BatchSampler(images, 32), n_steps)

``make_strategy``: ``"mirrored"`` (``MirroredStrategy``: the GPUs of one machine),
``"multiworker"`` (``MultiWorkerMirroredStrategy``: several machines, the cluster described by
``TF_CONFIG`` on each), ``"default"`` (no distribution), or ``"auto"`` (multiworker when
``TF_CONFIG`` is set, mirrored when there are several GPUs, else default).

The steps draw the randomness of the whole global batch (ε of the VAE, the GAN's noise) from
one ``tf.random.Generator`` created outside the strategy's scope, exactly as the one-device
steps of :mod:`coursekit.tf` do; each replica takes its slice of the batch and of the draws and
computes the shared loss (:func:`coursekit.tf.vae_loss`, the GAN losses) on it, weighted by its
share of the global batch. Keras sums the replicas' gradients, so the update is the one-device
update on the global batch (up to float summation order). The DCGAN's BatchNormalization layers
normalise with each replica's own batch statistics, so the GAN step is *not* the same at
another number of replicas (the VAE step is).

Checkpoints: :class:`~coursekit.training.tf_run.TrainingRun` saves mirrored variables as one
copy, so a run resumes under any strategy and number of replicas. With several workers,
:func:`training_run` gives each its ``TrainingRun``: the chief's writes ``directory``; the
others restore the chief's latest checkpoint from ``directory`` (a folder every machine sees)
and write theirs, which TensorFlow needs them to write too, to a temporary folder.
"""

from __future__ import annotations

import os
import tempfile

import tensorflow as tf

from ..tf import NOISE_DIM, discriminator_loss, generator_loss, vae_loss
from .tf_run import TrainingRun

STRATEGIES = ("auto", "default", "mirrored", "multiworker")


def make_strategy(kind: str = "auto", devices: list[str] | None = None) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy named by ``kind`` (see the module's docstring)."""
    if kind not in STRATEGIES:
        raise ValueError(f"kind must be one of {STRATEGIES}, got {kind!r}")
    if kind == "auto":
        if os.environ.get("TF_CONFIG"):
            kind = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            kind = "mirrored"
        else:
            kind = "default"
    if kind == "multiworker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("kind='multiworker' needs the TF_CONFIG environment variable (the cluster and this "
                             "worker's task), e.g. "
                             '{"cluster": {"worker": ["host0:12345", "host1:12345"]}, "task": {"type": "worker", '
                             '"index": 0}}')
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True for the worker that writes checkpoints and logs: always, except on the
    non-chief workers of a ``MultiWorkerMirroredStrategy`` (chief: task ``chief``, or worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type or resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().jobs


def training_run(directory: str | os.PathLike, strategy: tf.distribute.Strategy | None = None,
                 **kwargs) -> TrainingRun:
    """This worker's :class:`~coursekit.training.tf_run.TrainingRun` (``kwargs`` as there): on the
    chief (always, except with several workers) the run in ``directory``; on another worker a run
    that writes to a temporary folder (TensorFlow's collective save needs every worker) and starts
    from the chief's latest checkpoint in ``directory``, so every worker resumes the same step."""
    if is_chief(strategy):
        return TrainingRun(directory, **kwargs)
    run = TrainingRun(tempfile.mkdtemp(prefix="coursekit_worker_"), **kwargs)
    latest = tf.train.latest_checkpoint(str(directory))
    if latest is not None:
        run.checkpoint.restore(latest).assert_existing_objects_matched()
    return run


def _check_batch(strategy: tf.distribute.Strategy, global_batch: int) -> int:
    if not isinstance(global_batch, int) or isinstance(global_batch, bool) or global_batch < 1:
        raise ValueError(f"global_batch must be a positive int, got {global_batch!r}")
    n = strategy.num_replicas_in_sync
    if global_batch % n:
        raise ValueError(f"global_batch = {global_batch} must be divisible by the number of replicas ({n})")
    return global_batch // n


def _split(strategy: tf.distribute.Strategy, local: int, *tensors) -> tuple:
    """Per tensor, each replica's rows ``[r·local, (r+1)·local)`` of the global batch."""

    def rows(t):
        return lambda ctx: t[ctx.replica_id_in_sync_group * local:(ctx.replica_id_in_sync_group + 1) * local]

    return tuple(strategy.experimental_distribute_values_from_function(rows(t)) for t in tensors)


def _global_norm(grads) -> tf.Tensor:
    # the norm of the summed (global) gradient, for the log; the update itself uses Keras's all-reduce
    ctx = tf.distribute.get_replica_context()
    return tf.linalg.global_norm(ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads))


def make_vae_step(strategy: tf.distribute.Strategy, model, optimizer, rng: tf.random.Generator,
                  global_batch: int):
    """``step(x) -> {"loss", "grad_norm"}`` on a global batch ``x`` of ``global_batch`` images: the
    update of :func:`coursekit.tf.make_vae_train_step` (same ε stream from ``rng``), on the replicas."""
    local = _check_batch(strategy, global_batch)
    share = local / global_batch

    def replica_step(x, eps):
        with tf.GradientTape() as tape:
            loss = vae_loss(model, x, eps) * share  # the replicas' terms add up to the global mean
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return {"loss": loss, "grad_norm": _global_norm(grads)}

    @tf.function
    def step(x):
        x = tf.convert_to_tensor(x, dtype=tf.float32)
        eps = rng.normal(shape=(tf.shape(x)[0], model.latent_dim))  # the global batch's ε, as on one device
        out = strategy.run(replica_step, args=_split(strategy, local, x, eps))
        return {"loss": strategy.reduce(tf.distribute.ReduceOp.SUM, out["loss"], axis=None),
                "grad_norm": strategy.reduce(tf.distribute.ReduceOp.MEAN, out["grad_norm"], axis=None)}

    return step


def make_gan_step(strategy: tf.distribute.Strategy, generator, discriminator, generator_optimizer,
                  discriminator_optimizer, rng: tf.random.Generator, global_batch: int,
                  noise_dim: int = NOISE_DIM):
    """``step(images) -> {"loss", "gen_loss", "disc_loss", "grad_norm"}``: the update of
    :func:`coursekit.tf.make_gan_train_step` (same noise stream from ``rng``), on the replicas.
    BatchNormalization uses each replica's batch statistics (see the module's docstring)."""
    local = _check_batch(strategy, global_batch)
    share = local / global_batch

    def replica_step(images, noise):
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated, training=True)
            gen_loss = generator_loss(fake_output) * share
            disc_loss = discriminator_loss(real_output, fake_output) * share
        g_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
        d_grads = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
        generator_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables, strict=True))
        discriminator_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables, strict=True))
        return {"gen_loss": gen_loss, "disc_loss": disc_loss, "grad_norm": _global_norm(g_grads + d_grads)}

    @tf.function
    def step(images):
        images = tf.convert_to_tensor(images, dtype=tf.float32)
        noise = rng.normal((tf.shape(images)[0], noise_dim))
        out = strategy.run(replica_step, args=_split(strategy, local, images, noise))
        gen = strategy.reduce(tf.distribute.ReduceOp.SUM, out["gen_loss"], axis=None)
        disc = strategy.reduce(tf.distribute.ReduceOp.SUM, out["disc_loss"], axis=None)
        return {"loss": gen + disc, "gen_loss": gen, "disc_loss": disc,
                "grad_norm": strategy.reduce(tf.distribute.ReduceOp.MEAN, out["grad_norm"], axis=None)}

    return step


__all__ = ["STRATEGIES", "is_chief", "make_gan_step", "make_strategy", "make_vae_step", "training_run"]
