"""Train the lesson-02 VI flows (U1–U4 × K = 2, 8, 32 × planar/radial) and save one small file.

    .venv/bin/python scripts/train_vi.py                      # what data/checkpoints/ holds
    .venv/bin/python scripts/train_vi.py --steps 200 --out /tmp/vi.pt   # a smoke run

    # what was actually run (two processes, then one file):
    .venv/bin/python scripts/train_vi.py --kinds planar --out /tmp/vi_planar.pt &
    .venv/bin/python scripts/train_vi.py --kinds radial --out /tmp/vi_radial.pt
    .venv/bin/python scripts/train_vi.py --merge /tmp/vi_planar.pt /tmp/vi_radial.pt

The output holds, per model ``"{kind}-{U}-K{K}"``, the flow's ``state_dict``, its score
(reverse KL and ELBO on fresh samples) and the training curve subsampled; notebook 02 and
``benchmarks/bench_planar_radial.py`` load it with :func:`load_vi_checkpoint`. The file is
rewritten after every model, so an interrupted run keeps what it finished (and is resumed:
finished models are skipped).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coursekit import seed_everything, vi  # noqa: E402
from coursekit.train import load_checkpoint, save_checkpoint  # noqa: E402

DEFAULT_OUT = ROOT / "data" / "checkpoints" / "vi_planar_radial.pt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--anneal", type=int, default=800, help="steps of β_t annealing (0: none)")
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--energies", nargs="*", default=["U1", "U2", "U3", "U4"])
    parser.add_argument("--layers", nargs="*", type=int, default=[2, 8, 32])
    parser.add_argument("--kinds", nargs="*", default=["planar", "radial"])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--merge", nargs="*", type=Path, default=None, help="join the models of these files")
    args = parser.parse_args()
    if args.merge:
        parts = [load_checkpoint(p) for p in args.merge]
        merged = {"meta": {**parts[0]["meta"], "command": "python scripts/train_vi.py --kinds ... (one process per"
                           " kind), then --merge " + " ".join(p.name for p in args.merge)}, "models": {}}
        for part in parts:
            merged["models"].update(part["models"])
        save_checkpoint(args.out, **merged)
        print(f"wrote {args.out} with {len(merged['models'])} models")
        return 0
    torch.set_num_threads(1)  # tiny 2-D models: threads cost more than they give
    state = load_checkpoint(args.out) if args.out.exists() else {"models": {}}
    state["meta"] = {
        "target": "coursekit.vi.target(U): the paper's energy + soft wall at |x1| = 4",
        "command": "python scripts/train_vi.py " + " ".join(sys.argv[1:]),
        "steps": args.steps, "anneal": args.anneal, "lr": args.lr, "batch": args.batch,
        "optimizer": "Adam + cosine decay", "seed": "0 (make_flow) and 0 (training)",
    }
    for kind in args.kinds:
        for U in args.energies:
            for K in args.layers:
                key = f"{kind}-{U}-K{K}"
                if key in state["models"]:
                    print(f"{key}: already trained, skipped", flush=True)
                    continue
                seed_everything(0)
                flow = vi.make_flow(kind, K, seed=0)
                t0 = time.perf_counter()
                hist = vi.fit_reverse_kl(flow, U, args.steps, batch=args.batch, lr=args.lr,
                                         anneal_steps=args.anneal or None, cosine=True, progress=False)
                seconds = time.perf_counter() - t0
                score = vi.score_reverse_kl(flow, U, n=20_000)
                curve = hist["neg_elbo"][:: max(1, args.steps // 200)]
                state["models"][key] = {"state_dict": flow.state_dict(), "kind": kind, "energy": U, "K": K,
                                        "kl": score.kl, "elbo": score.elbo, "log_z": score.log_z,
                                        "stderr": score.stderr, "seconds": seconds, "curve": curve}
                save_checkpoint(args.out, **state)
                print(f"{key}: {score} ({seconds:.0f} s)", flush=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
