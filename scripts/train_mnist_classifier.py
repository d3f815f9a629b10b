"""Train the MNIST classifier of the course's sample-quality metric (``coursekit.evaluation``).

    COURSEKIT_DATA=../shared/data python scripts/train_mnist_classifier.py

Trains :class:`coursekit.evaluation.MnistClassifier` on MNIST images 0–7,999 (the carved split
when only the test file is available), measures its accuracy on images 8,000–9,999 and writes
``data/checkpoints/mnist_classifier.pt`` with that accuracy and this exact command in ``meta``.
Seeded: the same command gives the same weights on the same machine. It needs about a minute of
CPU time (one thread). Afterwards: ``python -m coursekit.training.checkpoints --update``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from coursekit.data import mnist_splits, to_unit
from coursekit.evaluation import accuracy, save_classifier, train_classifier
from coursekit.training.checkpoints import command_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="training steps")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (fixed: results depend on it)")
    parser.add_argument("--out", type=Path, default=Path("data/checkpoints/mnist_classifier.pt"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits = mnist_splits(allow_download=False)
    print("datos:", splits.source, flush=True)
    model, info = train_classifier(to_unit(splits.train_images), splits.train_labels, n_steps=args.steps,
                                   batch_size=args.batch, lr=args.lr, seed=args.seed, progress=True)
    acc = accuracy(model, to_unit(splits.eval_images), splits.eval_labels)
    train_acc = accuracy(model, to_unit(splits.train_images), splits.train_labels)
    print(f"exactitud: {acc:.4f} en {len(splits.eval_images)} imágenes de evaluación, {train_acc:.4f} en las de "
          f"entrenamiento ({info['seconds']:.0f} s)")
    command = command_line(parser, args, "scripts/train_mnist_classifier.py")
    meta = {"commands": [command], "eval_accuracy": acc, "train_accuracy": train_acc,
            "train_images": len(splits.train_images), "eval_images": len(splits.eval_images),
            "eval_offset": splits.eval_offset, "data": splits.source, "threads": args.threads,
            **{k: v for k, v in info.items() if k != "seconds"}}
    path = save_classifier(args.out, model, meta=meta)
    print("checkpoint:", path, f"({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
