"""Train the lesson-09 toy video generator and write ``data/checkpoints/video_toy.pt``.

    COURSEKIT_DATA=../shared/data python scripts/train_video.py            # the shipped checkpoint
    COURSEKIT_DATA=../shared/data python scripts/train_video.py --tae-steps 50 --flow-steps 50 \
        --n-clips 256 --out /tmp/video_smoke.pt --runs /tmp/video_smoke    # a smoke run
    torchrun --nproc_per_node 2 scripts/train_video.py --out /tmp/video_toy.pt   # 2 processes (GPUs, or CPU)

The shipped file took about 15 min (TAE) + 30 min (flow) on one thread of a shared 2-core CPU
(first 1,800 flow steps, then resumed to 5,000). Its ``meta["commands"]`` holds the command that
rebuilds it; each call appends itself there (a call that repeats the last one, after an
interruption, continues the same run and is not added).

Stages: (1) the temporal autoencoder on moving-digit clips whose digits come only from the
training part of MNIST (with only the test split at hand: images 0–7,999); (2) the latents
of those clips, normalised per channel; (3) the latent transformer with the rectified-flow
loss; (4) TAE PSNR on held-out clips (digits from images 8,000–9,999 only). Intermediate
checkpoints in ``runs/`` let an interrupted run resume (also with another number of
processes), or a finished one continue with a larger ``--flow-steps`` (wall times add up in
``runs/video/times.json``). Under ``torchrun`` (``coursekit.training.distributed``) the batch
sizes are global, split over the processes; rank 0 logs, evaluates and writes the files.
The metadata records the data,
the steps, the wall times and the machine. The file is a ``"video"`` checkpoint of
:mod:`coursekit.training.checkpoints` (:func:`coursekit.lessons.video.save_model`, float16 weights);
``coursekit.lessons.load_model("video_toy.pt").model`` rebuilds the generator. After retraining:
``python -m coursekit.training.checkpoints --update``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coursekit import seed_everything  # noqa: E402
from coursekit.data.clips import moving_digits  # noqa: E402
from coursekit.lessons import video as lesson  # noqa: E402
from coursekit.training import checkpoints, distributed  # noqa: E402
from coursekit.video.dit import LatentDiT  # noqa: E402
from coursekit.video.latent import LatentNormalizer, VideoModel  # noqa: E402
from coursekit.video.tae import TemporalAutoencoder, psnr  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tae-steps", type=int, default=1000)
    p.add_argument("--flow-steps", type=int, default=5000)
    p.add_argument("--n-clips", type=int, default=3000, help="training clips (16 frames, 32×32)")
    p.add_argument("--tae-batch", type=int, default=16, help="global batch (split over torchrun's processes)")
    p.add_argument("--flow-batch", type=int, default=32, help="global batch (split over torchrun's processes)")
    p.add_argument("--width", type=int, default=64, help="token width of the latent transformer")
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--patch-t", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 avoids oversubscription)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=lesson.CHECKPOINT)
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "video")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.commands = checkpoints.resumed_commands(args.out, args.runs / "dit.pt",
                                                 checkpoints.command_line(p, args, "scripts/train_video.py"))
    with distributed.init() as dist:  # torchrun's processes, or this one alone
        return run(args, dist)


def run(args, dist: distributed.Distributed) -> int:
    seed_everything(args.seed)
    train = moving_digits(args.n_clips, seed=args.seed, part="train")
    held = moving_digits(256, seed=args.seed + 10_000, part="eval")
    dist.print(f"{len(train.clips)} training clips; digits from: {train.source}; "
               f"{dist.world_size} process(es) on {dist.device}")

    # Wall time per stage, summed over resumed runs (fit resumes from the runs/ checkpoints).
    times_path = args.runs / "times.json"
    times = json.loads(times_path.read_text()) if times_path.exists() else {"tae": 0.0, "flow": 0.0}

    def add_time(stage: str, seconds: float) -> float:
        times[stage] += seconds
        if dist.is_main:
            args.runs.mkdir(parents=True, exist_ok=True)
            times_path.write_text(json.dumps(times))
        return times[stage]

    tae = TemporalAutoencoder(latent_channels=4, width=32).to(dist.device)
    t0 = time.perf_counter()
    h_tae = lesson.train_tae(tae, train.clips, args.tae_steps, batch_size=args.tae_batch,
                             checkpoint=args.runs / "tae.pt", seed=args.seed, distributed=dist)
    tae_time = add_time("tae", time.perf_counter() - t0)

    z = lesson.encode_clips(tae, train.clips)  # every rank encodes every clip: the same latents everywhere
    norm = LatentNormalizer.fit(z)
    latents = norm.normalize(z)
    dit = LatentDiT(latent_channels=4, spatial=8, max_frames=8, patch=2, patch_t=args.patch_t,
                    width=args.width, depth=args.depth, heads=4).to(dist.device)
    t0 = time.perf_counter()
    h_flow = lesson.train_flow(dit, latents, args.flow_steps, batch_size=args.flow_batch,
                               checkpoint=args.runs / "dit.pt", seed=args.seed, distributed=dist)
    flow_time = add_time("flow", time.perf_counter() - t0)
    if not dist.is_main:
        return 0

    x = torch.from_numpy(held.clips).to(dist.device)
    held_psnr = float(psnr(lesson.reconstruct(tae, x), x).mean())
    meta = {
        "data": ("moving-digit clips, 16 frames of 32×32, 1 digit each; training clips use only "
                 f"digits from {train.source} (for the carved test split: MNIST test images "
                 "0–7,999); held-out clips only images 8,000–9,999"),
        "train_clips": {"n": args.n_clips, "seed": args.seed, "part": "train"},
        "heldout_clips": {"n": 256, "seed": args.seed + 10_000, "part": "eval"},
        "tae_steps": args.tae_steps, "flow_steps": args.flow_steps,
        "tae_train_seconds": round(tae_time, 1), "flow_train_seconds": round(flow_time, 1),
        "tae_final_mse": h_tae["mse"][-1] if h_tae.steps else None,
        "flow_final_loss": sum(h_flow["loss"][-50:]) / max(1, len(h_flow["loss"][-50:])) if h_flow.steps else None,
        "heldout_psnr_db": round(held_psnr, 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                   f"{args.threads} thread(s), shared machine",
        "processes_last_session": dist.world_size, "device_last_session": str(dist.device),
        "commands": args.commands,  # every call that trained it, in order
    }
    path = lesson.save_model(VideoModel(tae, dit, norm), args.out, meta=meta, half=True)
    print(f"held-out TAE PSNR {held_psnr:.2f} dB; TAE {tae_time:.0f} s, flow {flow_time:.0f} s; "
          f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
