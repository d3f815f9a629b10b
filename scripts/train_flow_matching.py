"""Train the small MNIST flow-matching field that notebook 07 loads (``data/checkpoints/fm_mnist.pt``).

Reproduce the shipped checkpoint (about 20 min on one CPU core of a shared 2-core box)::

    COURSEKIT_DATA=/path/to/data .venv/bin/python scripts/train_flow_matching.py \
        --steps 10000 --threads 1 --out data/checkpoints/fm_mnist.pt

The same command runs on several processes (GPUs, or CPU cores with gloo) under ``torchrun``;
``--batch`` is the global batch, split over the processes, so the run means the same at any
world size (``coursekit.training.distributed``)::

    torchrun --nproc_per_node 2 scripts/train_flow_matching.py --steps 10000 --out /tmp/fm_mnist.pt

Data: ``coursekit.data.mnist_splits()``. Offline, with only the MNIST *test* split at hand,
it trains on test-split images 0–7,999 and reports the held-out CFM loss on images
8,000–9,999, which it never trained on; the checkpoint's metadata says so (``carved``). Model:
I-CFM (``LinearPath``) with ``MLPImageField(hidden=512, n_layers=3)``. The full training
state goes to ``--run`` so an interrupted run resumes (``coursekit.training.fit``, also with
another number of processes); ``--out``
gets the small model-only checkpoint (kind ``"fm_image_field"``, float16, < 5 MB) that
``coursekit.lessons.load_model("fm_mnist.pt")`` reads. After retraining the shipped file, run
``python -m coursekit.training.checkpoints --update``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from coursekit.data import mnist_splits
from coursekit.lessons.flow_matching import KIND, as_signed_tensor, heldout_cfm, mnist_loss
from coursekit.matching import MLPImageField
from coursekit.training import checkpoints, distributed, fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=128, help="global batch (split over the torchrun processes)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run", default="runs/fm_mnist_run.pt")
    ap.add_argument("--out", default="data/checkpoints/fm_mnist.pt")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # every call that trained the model, in order (a resumed run with other options appends its own)
    commands = checkpoints.resumed_commands(args.out, args.run,
                                            checkpoints.command_line(ap, args, "scripts/train_flow_matching.py"))
    with distributed.init() as dist:  # torchrun's processes, or this one alone
        torch.manual_seed(args.seed)
        splits = mnist_splits()
        x_train, x_eval = as_signed_tensor(splits.train_images), as_signed_tensor(splits.eval_images)
        field = MLPImageField((1, 28, 28), hidden=args.hidden).to(dist.device)
        opt = torch.optim.Adam(field.parameters(), lr=args.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.steps, eta_min=args.lr / 10)
        gen = torch.Generator().manual_seed(args.seed)  # batch order, checkpointed with the run
        dist.print(f"{dist.world_size} process(es) on {dist.device}, global batch {args.batch}")
        t0 = time.perf_counter()
        history = fit(mnist_loss(field, x_train, args.batch, generator=gen, distributed=dist), field, opt,
                      args.steps, checkpoint=args.run, checkpoint_every=500, scheduler=sched, desc="FM MNIST",
                      generators=[gen], distributed=dist)
        elapsed = time.perf_counter() - t0
        if not dist.is_main:
            return
        score = heldout_cfm(field.eval(), x_eval)
        last = history["loss"][-100:]
        meta = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "data": splits.source,
                "carved": splits.carved, "heldout_cfm": score, "train_time_s_last_session": elapsed,
                "processes_last_session": dist.world_size, "final_train_loss": sum(last) / max(len(last), 1),
                "commands": commands}
        state = {k: v.cpu() for k, v in field.state_dict().items()}
        checkpoints.save(args.out, KIND, {"model": state}, config=field.config(), meta=meta, half=True)
        print(f"held-out CFM loss (per pixel) on {len(x_eval)} images: {score:.4f}; wrote {Path(args.out)}")


if __name__ == "__main__":
    main()
