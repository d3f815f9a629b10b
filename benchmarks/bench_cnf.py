"""Lesson 06 (CNF, FFJORD): exact vs Hutchinson divergence time per dimension with fitted
log-log slopes, and FFJORD on 2-D toy data (test NLL, training time, NFE) — the baseline
that lesson 07 (flow matching) compares against.

FFJORD numbers come from the checkpoints that ``scripts/train_ffjord.py`` wrote into
``data/checkpoints/`` (training time and NFE as logged by that run, the model rebuilt by
``coursekit.lessons.load_model``); the test NLL is re-measured here on 5,000 fresh samples
(exact trace, dopri5 rtol = atol = 1e-5), beside the true density's NLL of the same samples
and the gap between them (the sample estimate of KL(p‖q)). Recipes: ``coursekit.lessons.cnf``.
"""

from __future__ import annotations

import time

import torch
from toy_density import true_nll  # benchmarks/toy_density.py

from coursekit.data import sample_toy
from coursekit.lessons import load_model
from coursekit.lessons.cnf import evaluate_nll, loglog_slope, nfe, trace_cost, train_ffjord

DATASETS = ("8gaussians", "checkerboard")


def _gauss_nll(name: str, x_test: torch.Tensor) -> float:
    ref = sample_toy(name, 20_000, torch.Generator().manual_seed(999))
    gauss = torch.distributions.MultivariateNormal(ref.mean(0), torch.cov(ref.T))
    return -gauss.log_prob(x_test).mean().item()


def _shipped(name: str):
    """The shipped FFJORD checkpoint with its model, or None when absent (never downloads)."""
    try:
        return load_model(f"ffjord_{name}.pt", allow_download=False)
    except FileNotFoundError:
        return None


def run(quick: bool) -> str:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is faster, and fair on a shared machine
    try:
        dims = (2, 8, 32, 128) if quick else (2, 8, 32, 128, 512, 1024)
        cost = trace_cost(dims, batch=64, hidden=64, repeats=3 if quick else 5, fit_from=32)
        ffjord = []
        for name in DATASETS:
            x_test = sample_toy(name, 1000 if quick else 5000, torch.Generator().manual_seed(12345))
            ckpt = None if quick else _shipped(name)
            if ckpt is None:  # a smoke run: a few steps of the same recipe
                res = train_ffjord(name, n_steps=20, batch_size=256, n_test=500, progress=False)
                model, m = res.model, res.summary()
                src = "fresh 20-step smoke run"
                nll, nfe_test = evaluate_nll(model, x_test)
            else:
                model, meta = ckpt.model, ckpt.meta
                nll, nfe_test = evaluate_nll(model, x_test)  # the shipped checkpoint, before the timing steps
                m = meta["metrics"]
                src = f"`{ckpt.path.name}` ({meta['steps']} steps of batch {meta['batch']})"
                # the logged training time depends on the machine's load then: time 30 steps now too
                cont = train_ffjord(name, n_steps=30, batch_size=meta["batch"], lr=1e-4, model=model, n_test=200,
                                    seed=5, progress=False)
                m = dict(m, step_s_now=cont.train_time_s / 30)
            t0 = time.perf_counter()
            with torch.no_grad():
                model.sample(5000)
            step_s = m.get("step_s_now", m["train_time_s"] / max(m["steps"], 1))
            ffjord.append((name, src, nll, true_nll(name, x_test), _gauss_nll(name, x_test), m["train_time_s"], step_s,
                           m["mean_nfe_forward"], m["mean_nfe_backward"], nfe_test, nfe(model),
                           time.perf_counter() - t0))
    finally:
        torch.set_num_threads(threads)
    ratio_slope = loglog_slope(cost.dims, cost.ratios)
    out = ["### Lesson 06 — CNF and FFJORD", "",
           "Divergence tr(∂f/∂x) of an MLP field (hidden 64, batch 64), median seconds per evaluation "
           "(evaluation setting, no backward); shared loaded 2-core CPU, 1 thread.", "",
           "| D | exact | Hutchinson | exact / Hutchinson |", "|---:|---:|---:|---:|"]
    out += [f"| {d} | {1e3 * e:.2f} ms | {1e3 * h:.3f} ms | {r:.0f} |"
            for d, e, h, r in zip(cost.dims, cost.exact_s, cost.hutchinson_s, cost.ratios)]
    out += ["", f"Fitted log-log slopes for D ≥ {cost.fit_from}: exact **{cost.slope_exact:.2f}**, Hutchinson "
            f"**{cost.slope_hutchinson:.2f}**; ratio over all D: **{ratio_slope:.2f}** (theory: exact = D × "
            "Hutchinson; with a fixed hidden width the exact slope approaches 2 only for D ≫ 64).", "",
            "FFJORD (MLPField 2→64→64→64→2 tanh, exact trace, dopri5 rtol = atol = 1e-3 for training, adjoint; "
            f"test NLL in nats on {len(x_test):,} fresh samples, exact trace, tol 1e-5). *True NLL* is −log p of the "
            "data's own density on the same samples (benchmarks/toy_density.py) and *gap* = test NLL − true NLL, "
            "the sample estimate of KL(data ‖ model) (a test NLL can fall below the data's entropy by sampling "
            "error; the gap on the same samples is what measures the model). *Gaussian NLL*: the best single "
            "Gaussian, for scale. *Train time* is the logged time of the checkpoint's run (on a shared, heavily "
            "loaded 2-core machine whose load was not recorded); *s/step now* times 30 more steps of the trained "
            "model in this run; *NFE sample* and *5000 samples* are `Flow.sample`, one base → data solve that "
            "carries the "
            "log-det along:", "",
            "| data | model | test NLL | true NLL | gap | Gaussian NLL | train time | s/step now | "
            "mean NFE fwd / bwd per step | NFE log_prob | NFE sample | 5000 samples |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, src, nll, true, g, tt, st, nf, nb, nt, ns, ts in ffjord:
        out.append(f"| {name} | {src} | {nll:.3f} | {true:.3f} | {nll - true:.3f} | {g:.3f} | {tt:.0f} s | {st:.2f} | "
                   f"{nf:.0f} / {nb:.0f} | {nt} | {ns} | {ts:.2f} s |")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    import sys

    print(run("--quick" in sys.argv))
