"""Train lesson 08's VAE and DCGAN longer than the notebook can, into the folders it resumes from.

    COURSEKIT_DATA=../shared/data python scripts/train_tf_models.py --gan-steps 11700 --gan-batch 256

Writes ``notebooks/runs/08/vae`` and ``notebooks/runs/08/gan`` (checkpoints, ``history.json``,
GAN progress frames, ``dcgan.gif``) with the notebook's own recipes
(``coursekit.lessons.autoencoders.VaeRun`` / ``GanRun``), so running notebook 08 afterwards
(FULL mode) picks the longer runs up instead of training again. Interrupt it at any time
(Ctrl-C, a lost session) and run the same command again: it continues from the last checkpoint.
The GAN checkpoints hold two models and two Adam states (~30 MB each): they stay out of git.

Several devices (``coursekit.training.tf_distributed``): ``--strategy mirrored`` trains on every
GPU of the machine (``MirroredStrategy``); ``--strategy multiworker`` on several machines
(``MultiWorkerMirroredStrategy``; the same command on each, with ``TF_CONFIG`` naming the cluster
and the machine's index, and ``--out`` on a disk they all see); ``auto`` (the default) picks
multiworker when ``TF_CONFIG`` is set, mirrored with several GPUs, else one device. The batch
sizes are global, so the VAE's steps are the one-device steps; the chief alone writes and prints.
A run resumes under any strategy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from coursekit.lessons import autoencoders as lesson  # first: it sets TensorFlow's environment

# isort: split
import keras
import tensorflow as tf

import coursekit.tf as ckt
from coursekit.training.tf_distributed import STRATEGIES, is_chief, make_strategy

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "notebooks" / "runs" / "08")
    parser.add_argument("--vae-steps", type=int, default=30_000, help="total steps of batch 32")
    parser.add_argument("--gan-steps", type=int, default=11_700, help="total steps (course: 50 epochs of 60k at 256)")
    parser.add_argument("--gan-batch", type=int, default=256, help="global batch (split over the replicas)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="auto", help="tf.distribute strategy")
    args = parser.parse_args()
    strategy = make_strategy(args.strategy)  # first: MultiWorkerMirroredStrategy must precede other TF work
    chief, replicas = is_chief(strategy), f"{type(strategy).__name__}, {strategy.num_replicas_in_sync} réplica(s)"
    if strategy is tf.distribute.get_strategy():
        strategy = None  # one device: the notebook's own steps
    data = ckt.load_mnist_tf()
    if chief:
        print("datos:", data.source, "| dispositivo:", ckt.device(), "|", ckt.runtime_info(), "|", replicas)
    if args.vae_steps:
        keras.utils.set_random_seed(0)
        vae = lesson.VaeRun(args.out / "vae", ckt.binarize(data.train_images), checkpoint_every=250,
                            strategy=strategy)
        vae.fit(args.vae_steps)
        if chief:
            elbo = ckt.evaluate_elbo(vae.model, ckt.binarize(data.eval_images))
            print(f"VAE: ELBO de evaluación = {elbo:.1f} nats/imagen ({len(data.eval_images)} imágenes no vistas)")
    if args.gan_steps:
        gan = lesson.GanRun(args.out / "gan", data.train_images, batch_size=args.gan_batch,
                            checkpoint_every=max(1, args.gan_steps // 20), frame_every=max(1, args.gan_steps // 40),
                            strategy=strategy)
        gan.fit(args.gan_steps)
        if chief:
            print("GAN: GIF en", gan.gif())


if __name__ == "__main__":
    main()
