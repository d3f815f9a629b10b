"""Train lesson 08's DCGAN longer than the notebook can and export a small generator file.

    COURSEKIT_DATA=../shared/data nice -n 10 python scripts/train_dcgan.py --steps 6000

Trains with the notebook's own recipe (``coursekit.lessons.autoencoders.GanRun``: the
``coursekit.tf.gan`` players, two Adam(1e-4), batch 32 as the notebook on CPU, seed 0, images
0–7,999 of the carved MNIST split when only the test file is present) in ``runs/dcgan``
(checkpoints every ``--checkpoint-every`` steps, ``history.json``, progress frames and GIF):
interrupt it at any time and run the same command again, it continues from the last checkpoint.
On its way it keeps the generator at each of ``--snapshots`` (default: step 1,000, where the
notebook's FULL run on CPU stops: the same recipe, the same seed, so the same model).

When the run has done ``--steps`` steps it scores the snapshots and the final generator with
the course's sample-quality metric (``coursekit.evaluation.mnist_quality`` on 2,000 samples of
fixed noise) and writes the final generator alone to ``data/checkpoints/dcgan_generator.npz``
(float16 weights, the command, the steps and those scores, read with ``allow_pickle=False``:
see :mod:`coursekit.tf.pretrained`). Afterwards run
``python -m coursekit.training.checkpoints --update`` to record its SHA-256.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from coursekit.lessons import autoencoders as lesson  # first: it sets TensorFlow's environment

# isort: split
import numpy as np
import tensorflow as tf

import coursekit.tf as ckt
from coursekit.tf.gan import NOISE_DIM, generate_images
from coursekit.tf.pretrained import GENERATOR_FILE, load_generator, save_generator

N_SCORE = 2000


def score(generator) -> dict:
    """The metric of ``N_SCORE`` samples of ``generator`` from fixed noise (stateless seed (0, 0))."""
    from coursekit.evaluation import mnist_quality  # PyTorch: only for the final scores

    noise = tf.random.stateless_normal((N_SCORE, NOISE_DIM), seed=(0, 0))
    images = np.clip(generate_images(generator, noise).numpy()[..., 0], 0.0, 1.0)
    return mnist_quality(images).as_dict()


def main() -> None:
    from coursekit.training.checkpoints import command_line

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000, help="total training steps")
    parser.add_argument("--batch", type=int, default=32, help="batch size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--snapshots", type=int, nargs="*", default=[1000], help="steps whose generator is kept")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/dcgan"))
    parser.add_argument("--out", type=Path, default=Path("data/checkpoints") / GENERATOR_FILE)
    args = parser.parse_args()
    command = command_line(parser, args, "scripts/train_dcgan.py")
    ckt.seed_everything(args.seed)
    data = ckt.load_mnist_tf()
    print("datos:", data.source, "| dispositivo:", ckt.device(), flush=True)
    gan = lesson.GanRun(args.run_dir, data.train_images, batch_size=args.batch, seed=args.seed,
                        checkpoint_every=args.checkpoint_every, max_to_keep=2, frame_every=max(1, args.steps // 40))
    print(f"empezando en el paso {gan.step} de {args.steps}", flush=True)
    for stop in sorted(s for s in args.snapshots if 0 < s < args.steps):
        snap = args.run_dir / f"generator_{stop:06d}.npz"
        if gan.step <= stop and not snap.exists():
            gan.fit(stop, progress=False)
            gan.run.save()  # the snapshot's step is a checkpoint too
            save_generator(gan.generator, snap, meta={"steps": gan.step})
            print(f"paso {gan.step}: generador guardado en {snap}", flush=True)
    gan.fit(args.steps, progress=False)
    gan.gif()
    scores = {}
    for snap in sorted(args.run_dir.glob("generator_*.npz")):
        g = load_generator(snap)
        scores[str(g.coursekit_meta["steps"])] = score(g)
    scores[str(gan.step)] = score(gan.generator)
    for step, q in scores.items():
        print(f"paso {step}: {q}", flush=True)
    path = save_generator(gan.generator, args.out, meta={
        "commands": [command], "steps": gan.step, "batch_size": args.batch, "seed": args.seed,
        "train_images": len(data.train_images), "data": data.source,
        "quality": scores, "quality_note": f"coursekit.evaluation.mnist_quality of {N_SCORE} samples, "
                                           "noise tf.random.stateless_normal(seed=(0, 0)), clipped to [0, 1]"})
    print("generador:", path, f"({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
