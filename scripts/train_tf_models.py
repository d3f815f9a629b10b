"""Train lesson 08's VAE and DCGAN longer than the notebook can, into the folders it resumes from.

    COURSEKIT_DATA=../shared/data python scripts/train_tf_models.py --gan-steps 11700 --gan-batch 256

Writes ``notebooks/runs/08/vae`` and ``notebooks/runs/08/gan`` (checkpoints, ``history.json``,
GAN progress frames) with the same objects as the notebook, so running notebook 08 afterwards
(FULL mode) picks the longer runs up instead of training again. Interrupt it at any time
(Ctrl-C, a lost session) and run the same command again: it continues from the last checkpoint.
The GAN checkpoints hold two models and two Adam states (~30 MB each): they stay out of git.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import coursekit.tf as ckt  # noqa: E402
from coursekit.tf import plots  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def train_vae(out: Path, train, evaluation, steps: int) -> float:
    keras.utils.set_random_seed(0)
    vae = ckt.CVAE(latent_dim=2)
    opt = keras.optimizers.Adam(1e-4)
    opt.build(vae.trainable_variables)
    rng = tf.random.Generator.from_seed(0)
    run = ckt.TrainingRun(out / "vae", checkpoint_every=250, model=vae, optimizer=opt, rng=rng)
    run.fit(ckt.make_vae_train_step(vae, opt, rng), ckt.BatchSampler(ckt.binarize(train), 32, seed=0), steps,
            desc="VAE")
    return ckt.evaluate_elbo(vae, ckt.binarize(evaluation))


def train_gan(out: Path, train, steps: int, batch: int) -> None:
    keras.utils.set_random_seed(0)
    g, d = ckt.make_generator_model(), ckt.make_discriminator_model()
    g_opt, d_opt = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)
    g_opt.build(g.trainable_variables)
    d_opt.build(d.trainable_variables)
    rng = tf.random.Generator.from_seed(1)
    run = ckt.TrainingRun(out / "gan", checkpoint_every=max(1, steps // 20), max_to_keep=2, generator=g,
                          discriminator=d, generator_optimizer=g_opt, discriminator_optimizer=d_opt, rng=rng)
    fixed_noise = tf.random.stateless_normal((16, ckt.NOISE_DIM), seed=(42, 0))  # as in the notebook
    frames = out / "gan" / "frames"

    def save_frame(step: int) -> None:
        plots.save_frame(ckt.gan.generate_images(g, fixed_noise), frames / f"frame_{step:06d}.png")

    if int(run.step.numpy()) == 0:
        save_frame(0)
    run.fit(ckt.make_gan_train_step(g, d, g_opt, d_opt, rng), ckt.BatchSampler(ckt.to_gan_range(train), batch),
            steps, desc="GAN", callback=save_frame, callback_every=max(1, steps // 40))
    plots.make_gif(sorted(frames.glob("frame_*.png")), out / "gan" / "dcgan.gif", fps=4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "notebooks" / "runs" / "08")
    parser.add_argument("--vae-steps", type=int, default=30_000, help="total steps of batch 32")
    parser.add_argument("--gan-steps", type=int, default=11_700, help="total steps (course: 50 epochs of 60k at 256)")
    parser.add_argument("--gan-batch", type=int, default=256)
    args = parser.parse_args()
    data = ckt.load_mnist_tf()
    print("datos:", data.source, "| dispositivo:", ckt.device())
    if args.vae_steps:
        elbo = train_vae(args.out, data.train_images, data.eval_images, args.vae_steps)
        print(f"VAE: ELBO de evaluación = {elbo:.1f} nats/imagen ({len(data.eval_images)} imágenes no vistas)")
    if args.gan_steps:
        train_gan(args.out, data.train_images, args.gan_steps, args.gan_batch)
        print("GAN: GIF en", args.out / "gan" / "dcgan.gif")


if __name__ == "__main__":
    main()
