"""Wall time of every notebook in QUICK and FULL mode (budgets: 120 s and 10 min on 2 cores).

Each cell gives the wall seconds and, in brackets, the CPU seconds the kernel used (all its
threads): on a shared machine the wall time grows with the others' load, the CPU time much less.

Select with environment variables: ``BENCH_NOTEBOOKS=01,03`` (default: all) and
``BENCH_MODES=quick,full`` (default: both). FULL runs of all nine notebooks take long.
"""

from __future__ import annotations

import os
import re
import resource
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
BUDGET = {"quick": 120.0, "full": 600.0}


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)  # kernels that have exited (shut down and waited for)
    return r.ru_utime + r.ru_stime


def time_notebook(path: Path, quick: bool) -> tuple[float, float, str]:
    """Wall seconds, the kernel's CPU seconds, and "ok" or the error, for one fresh-kernel run."""
    env_before = os.environ.get("COURSEKIT_QUICK")
    os.environ["COURSEKIT_QUICK"] = "1" if quick else "0"
    try:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=1800, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        t0, c0 = time.perf_counter(), _children_cpu()
        try:
            client.execute()  # starts a fresh kernel and shuts it down at the end
            status = "ok"
        except Exception as exc:  # report the failure in the table, keep timing the others
            status = f"error: {type(exc).__name__}"
        return time.perf_counter() - t0, _children_cpu() - c0, status
    finally:
        if env_before is None:
            os.environ.pop("COURSEKIT_QUICK", None)
        else:
            os.environ["COURSEKIT_QUICK"] = env_before


def _previous_rows() -> dict[str, str]:
    """Rows of notebooks measured in an earlier run (kept when this run measures a subset)."""
    results = ROOT / "benchmarks" / "RESULTS.md"
    if not results.exists():
        return {}
    rows = {}
    for line in results.read_text().splitlines():
        m = re.match(r"\| (\d\d_\w+\.ipynb) \|", line)
        if m:
            rows[m.group(1)] = line
    return rows


def run(quick: bool = False) -> str:
    wanted = os.environ.get("BENCH_NOTEBOOKS")
    modes = os.environ.get("BENCH_MODES", "quick" if quick else "quick,full").split(",")
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if wanted:
        keep = set(wanted.split(","))
        paths = [p for p in paths if p.name[:2] in keep]
    rows = _previous_rows() if wanted else {}
    lines = ["### Notebook wall time", "",
             "| notebook | " + " | ".join(f"{m.upper()} (s)" for m in modes) + " | within budget |",
             "|---|" + "---|" * len(modes) + "---|"]
    for path in paths:
        cells, ok = [], True
        for mode in modes:
            runs = path.parent / "runs" / path.name[:2]  # FULL runs resume from here: then nothing is trained
            if mode == "full" and runs.exists():
                cells.append(f"not measured: {runs.relative_to(ROOT)} exists (move it away)")
                ok = False
                continue
            seconds, cpu, status = time_notebook(path, quick=(mode == "quick"))
            ok &= status == "ok" and seconds <= BUDGET[mode]
            cells.append(f"{seconds:.0f} [CPU {cpu:.0f}]" + ("" if status == "ok" else f" ({status})"))
            print(f"{path.name} {mode}: {seconds:.1f} s (CPU {cpu:.1f} s) {status}", flush=True)
        rows[path.name] = f"| {path.name} | " + " | ".join(cells) + f" | {'yes' if ok else 'NO'} |"
    lines += [rows[name] for name in sorted(rows)]
    lines += ["", "Budgets: QUICK ≤ 120 s, FULL ≤ 600 s (2 CPU cores). Includes kernel start-up. "
              "[CPU n]: the kernel's CPU seconds (on an idle machine, wall ≈ CPU / cores used). FULL is "
              "timed only without `notebooks/runs/NN` (checkpoints a FULL run would resume from).",
              "Rows of notebooks not selected by BENCH_NOTEBOOKS are kept from the previous run."]
    return "\n".join(lines)
