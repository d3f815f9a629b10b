"""Train the small FFJORD models that notebook 06 loads (``data/checkpoints/ffjord_<set>.pt``).

Reproduce the shipped checkpoints (one process per data set; the recipe is
``coursekit.lessons.cnf.train_ffjord``: ``Flow(StandardNormal(2), CNF(MLPField 2→64→64→64→2 tanh))``,
exact trace, dopri5 with rtol = atol = 1e-3, adjoint, Adam + cosine schedule, fresh batches of 512)::

    python scripts/train_ffjord.py --dataset 8gaussians --steps 1200 --batch 512 --lr 0.003 --hidden 64 --threads 1
    python scripts/train_ffjord.py --dataset checkerboard --steps 1200 --batch 512 --lr 0.003 --hidden 64 --threads 1

(the commands stored in each file's ``meta["commands"]``, every option written out; these
rebuild the shipped weights: rerun with today's code, they retrace the shipped loss curves
bit for bit over the first 120 steps of the checkerboard, within 3.1e-4 nats over the first
240 of the 8 gaussians). Each call appends itself to ``meta["commands"]`` when it resumes a
run with other options; the file also records the machine and its load average.

On several processes (GPUs, or CPU cores with gloo), ``--batch`` being the global batch split
over them, so the run is the same at any world size (``coursekit.training.distributed``; the
``--`` keeps torchrun from reading ``--run`` as its own ``--run-path``)::

    torchrun --nproc_per_node 2 -- scripts/train_ffjord.py --dataset 8gaussians --steps 1200 --out /tmp/ffjord.pt

Data: ``coursekit.data.sample_toy`` (generated in code, infinite): every step draws a fresh
batch; the test NLL is measured on 5,000 samples from a separate generator, never trained
on. The full training state goes to ``--run`` (``coursekit.training.fit``: an interrupted run
resumes, also with another number of processes); ``--out`` gets the small model-only
checkpoint (kind ``"ffjord"``: the field's weights,
the config that rebuilds the model, the metrics and curves), read back by
``coursekit.lessons.load_model("ffjord_<set>.pt")``. After retraining, run
``python -m coursekit.training.checkpoints --update``.
"""

from __future__ import annotations

import argparse
import os
import platform

import torch

from coursekit.lessons.cnf import train_ffjord
from coursekit.training import checkpoints, distributed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="8gaussians")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=512, help="global batch (split over torchrun's processes)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--run", default=None, help="resumable training state (default runs/ffjord_<set>_run.pt)")
    ap.add_argument("--out", default=None, help="model file (default data/checkpoints/ffjord_<set>.pt)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = args.run or f"runs/ffjord_{args.dataset}_run.pt"
    out = args.out or f"data/checkpoints/ffjord_{args.dataset}.pt"
    # Every call that trained this model, in order (a resumed run appends its own).
    commands = checkpoints.resumed_commands(out, run, checkpoints.command_line(ap, args, "scripts/train_ffjord.py"))
    load_start = os.getloadavg()
    config = dict(hidden=args.hidden, n_layers=3, activation="tanh", divergence="exact", rtol=1e-3, atol=1e-3,
                  adjoint=True)
    with distributed.init() as dist:  # torchrun's processes, or this one alone
        res = train_ffjord(args.dataset, n_steps=args.steps, batch_size=args.batch, lr=args.lr, checkpoint=run,
                           device=dist.device, distributed=dist, **config)
    if not dist.is_main:
        return
    summary = res.summary()
    summary["train_time_s_note"] = "time of the last (possibly resumed) session only"
    field = {k: v.to("cpu", torch.float32) for k, v in res.model.transform.field.state_dict().items()}
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} thread(s), "
               f"load average {load_start[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    meta = dict(dataset=args.dataset, steps=args.steps, batch=args.batch, metrics=summary, commands=commands,
                machine=machine,
                loss=res.history["loss"], nfe_forward=res.nfe_forward, nfe_backward=res.nfe_backward,
                data_note="sample_toy(dataset) fresh batches; test NLL on 5000 held-out samples (seed 1)")
    checkpoints.save(out, "ffjord", {"field": field}, config=config, meta=meta)
    print(summary)


if __name__ == "__main__":
    main()
