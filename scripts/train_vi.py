"""Train the lesson-02 VI flows (U1–U4 × K = 2, 8, 32 × planar/radial) and save one small file.

    .venv/bin/python scripts/train_vi.py                      # every model in one process
    .venv/bin/python scripts/train_vi.py --steps 200 --out /tmp/vi.pt   # a smoke run

    # what data/checkpoints/ holds (its meta["commands"]): two processes, then one file
    .venv/bin/python scripts/train_vi.py --kinds planar --out /tmp/vi_planar.pt &
    .venv/bin/python scripts/train_vi.py --kinds radial --out /tmp/vi_radial.pt
    .venv/bin/python scripts/train_vi.py --merge /tmp/vi_planar.pt /tmp/vi_radial.pt
    .venv/bin/python -m coursekit.training.checkpoints --update   # record the new SHA-256

Each file records the calls that made it in ``meta["commands"]``: a training call its own
command (spelled out with every default), ``--merge`` the parts' commands and then its own
(whose training options, written out like every option, are unused by the merge).

The output is a ``"vi"`` checkpoint (:func:`coursekit.lessons.planar_radial.save_models`)
holding, per model ``"{kind}-{U}-K{K}"``, the flow's weights, its score (reverse KL and ELBO
on fresh samples) and the training curve subsampled; notebook 02 and
``benchmarks/bench_planar_radial.py`` load it with
``coursekit.lessons.load_model("vi_planar_radial.pt")``. The file is rewritten after every
model, so an interrupted run keeps what it finished (and is resumed: finished models are
skipped).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coursekit.lessons import load_model  # noqa: E402
from coursekit.lessons import planar_radial as lesson  # noqa: E402
from coursekit.training import checkpoints  # noqa: E402
from coursekit.training.checkpoints import ChecksumError  # noqa: E402

DEFAULT_OUT = ROOT / "data" / "checkpoints" / "vi_planar_radial.pt"


def _load(path: Path) -> tuple[dict, dict]:
    """``(models, meta)`` of a ``"vi"`` checkpoint written by this script."""
    try:
        ckpt = load_model(path)
    except ChecksumError as err:  # the shipped name, half rewritten by an interrupted run
        raise SystemExit(f"{err}\nTo resume the interrupted run, accept the file first with "
                         "`python -m coursekit.training.checkpoints --update`; to start over, delete it.") from err
    meta = {k: v for k, v in ckpt.meta.items() if k != "models"}
    return ckpt.model, meta


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
        parts = [_load(p) for p in args.merge]
        models = {key: m for part_models, _ in parts for key, m in part_models.items()}
        merge = checkpoints.command_line(parser, args, "scripts/train_vi.py")  # the training options unused here
        meta = {k: v for k, v in parts[0][1].items() if k != "command"}
        meta["commands"] = [c for _, part_meta in parts for c in part_meta.get("commands", [])] + [merge]
        lesson.save_models(args.out, models, meta)
        print(f"wrote {args.out} with {len(models)} models")
        return 0
    torch.set_num_threads(1)  # tiny 2-D models: threads cost more than they give
    models = _load(args.out)[0] if args.out.exists() else {}
    meta = {
        "target": "coursekit.flows.vi.target(U): the paper's energy + soft wall at |x1| = 4",
        "commands": [checkpoints.command_line(parser, args, "scripts/train_vi.py")],
        "steps": args.steps, "anneal": args.anneal, "lr": args.lr, "batch": args.batch,
        "optimizer": "Adam + cosine decay", "seed": "0 (make_flow) and 0 (training)",
    }
    for kind in args.kinds:
        for U in args.energies:
            for K in args.layers:
                key = lesson.model_key(kind, U, K)
                if key in models:
                    print(f"{key}: already trained, skipped", flush=True)
                    continue
                models[key] = lesson.train_model(kind, U, K, args.steps, anneal_steps=args.anneal or None,
                                                 lr=args.lr, batch=args.batch, seed=0)
                lesson.save_models(args.out, models, meta)
                print(f"{key}: {models[key].score} ({models[key].seconds:.0f} s)", flush=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
