"""Train the small MNIST Glow that notebook 03 loads (``data/checkpoints/glow_mnist.pt``).

Reproduce the shipped checkpoint (5000 steps of batch 64 in all; about 50 min on one core
of a shared, heavily loaded 2-core box, far less on an idle one or a GPU): the three calls
stored in its ``meta["commands"]``, in order, each resuming the run the previous one left in
``runs/glow_mnist_run.pt`` (``COURSEKIT_DATA=/path/to/data`` in front of each)::

    python scripts/train_glow.py --steps 5000 --batch 64 --lr 0.001 --until 400 --threads 1 \
        --run runs/glow_mnist_run.pt --out data/checkpoints/glow_mnist.pt
    python scripts/train_glow.py --steps 3000 --batch 64 --lr 0.001 --threads 1 \
        --run runs/glow_mnist_run.pt --out data/checkpoints/glow_mnist.pt
    python scripts/train_glow.py --steps 5000 --batch 64 --lr 0.001 --threads 1 \
        --run runs/glow_mnist_run.pt --out data/checkpoints/glow_mnist.pt

The learning rate follows a cosine over ``--steps`` as each call sets it: the shipped run
began with ``--steps 5000`` and was interrupted after step 400 (``--until 400`` repeats
that), went on with ``--steps 3000`` to step 3000, then was resumed with ``--steps 5000``
(a warm restart at step 3000). Each call appends itself to the model file's
``meta["commands"]`` (a call that only repeats the last one, after an interruption, is the
same run and is not added).

Data: ``coursekit.data.mnist_splits()``. Offline, with only the MNIST *test* split at
hand, it trains on test-split images 0–7,999 and reports bits/dim on images
8,000–9,999, which it never trained on; the checkpoint's metadata says so. The full
training state (optimizer, RNG) goes to ``--run`` so an interrupted run resumes
(``coursekit.training.fit``, a checkpoint of kind ``"fit"``); ``--out`` gets the small
model-only file (kind ``"glow"``, float32, < 5 MB) that ``coursekit.lessons.load_model``
reads. ``--export-only`` writes ``--out`` from the current ``--run`` state without training.

On several processes (GPUs, or CPU cores with gloo), ``--batch`` being the global batch split
over them, so the run is the same at any world size and resumes at any world size
(``coursekit.training.distributed``; the ``--`` keeps torchrun from reading ``--run`` as its
own ``--run-path``)::

    torchrun --nproc_per_node 4 -- scripts/train_glow.py --steps 3000 --run runs/glow_run.pt --out runs/glow_mnist.pt
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from coursekit.core.history import History
from coursekit.data import mnist_splits
from coursekit.flows.glow import mnist_glow
from coursekit.lessons import glow as lesson
from coursekit.training import checkpoints, distributed, fit

CONFIG = dict(shape=(1, 28, 28), levels=2, flow_steps=6, hidden=64, permutation="lu", alternate_parity=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000, help="training steps (in all, counting a resumed run)")
    ap.add_argument("--batch", type=int, default=64, help="global batch (split over torchrun's processes)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--until", type=int, default=None,
                    help="stop after this step (the schedule still spans --steps): what an interruption does")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--run", default="runs/glow_mnist_run.pt")
    ap.add_argument("--out", default="data/checkpoints/glow_mnist.pt")
    ap.add_argument("--export-only", action="store_true")
    args = ap.parse_args()
    if args.until is not None and not 0 < args.until <= args.steps:
        ap.error(f"--until must be in 1..--steps ({args.steps}), got {args.until}")
    torch.set_num_threads(args.threads)
    args.commands = checkpoints.resumed_commands(args.out, args.run,
                                                 checkpoints.command_line(ap, args, "scripts/train_glow.py"))
    with distributed.init() as dist:  # torchrun's processes, or this one alone
        train_and_export(args, dist)


def train_and_export(args, dist: distributed.Distributed) -> None:
    torch.manual_seed(0)
    device = dist.device
    data = mnist_splits()
    train = torch.from_numpy(data.train_images.copy()).unsqueeze(1)
    held_out = torch.from_numpy(data.eval_images.copy()).unsqueeze(1)
    flow = mnist_glow(**CONFIG).to(device)
    lesson.init_actnorm(flow, train)  # ActNorm's data-dependent init on a first batch of 512
    opt = torch.optim.Adam(flow.parameters(), lr=args.lr)
    warmup = 200
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    t0 = time.time()
    if not args.export_only:
        fit(lesson.bpd_loss(flow, train, args.batch, distributed=dist), flow, opt, args.until or args.steps,
            checkpoint=args.run,
            scheduler=sched, clip_grad_norm=50.0, checkpoint_every=100, desc="glow mnist", distributed=dist)
    if not dist.is_main:
        return
    run = checkpoints.load(args.run, kind="fit", device=device)
    flow.load_state_dict(run.state["model"])
    train_seconds = time.time() - t0
    bpd = lesson.evaluate_bpd(flow, held_out)
    history = History.from_dict(run.meta["history"])
    meta = {
        "n_steps": run.meta["step"],
        "batch": args.batch,
        "train_seconds_this_call": round(train_seconds, 1),
        "processes_this_call": dist.world_size,
        "trained_on": ("MNIST test split images 0-7,999" if data.carved
                       else "MNIST official train split (60,000)"),
        "evaluated_on": ("MNIST test split images 8,000-9,999 (never trained on)" if data.carved
                         else "MNIST official test split (10,000)"),
        "source": data.source,
        "heldout_bits_per_dim": round(bpd, 4),
        "train_bpd_last100": round(sum(last := history["bpd"][-100:]) / len(last), 4),
        "torch": str(torch.__version__),
        "commands": args.commands,  # every call that trained it, in order
        "history": History(history.steps, {"bpd": history["bpd"]}).to_dict(),  # the curve notebook 03 plots
    }
    lesson.save_model(args.out, flow, CONFIG, meta)
    print({k: v for k, v in meta.items() if k != "history"})
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
