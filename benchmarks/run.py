"""Run the benchmarks and write benchmarks/RESULTS.md (one command: ``make bench``).

    python benchmarks/run.py                    # every bench_*.py
    python benchmarks/run.py --only notebooks   # just bench_notebooks.py
    python benchmarks/run.py --quick            # smaller sizes (a smoke run)
    python benchmarks/run.py --quick --results /tmp/R.md   # write elsewhere (RESULTS.md untouched)

Each ``bench_<name>.py`` defines ``run(quick: bool) -> str`` returning a Markdown section.
Sections of benchmarks that were not run this time are kept from the previous file, each
with the date it was measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import os
import platform
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
MARK = re.compile(r"<!-- bench:(\w+) -->\n(.*?)<!-- /bench:\1 -->\n", re.S)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """What a timing depends on: CPU, cores, thread settings, library versions (PyTorch's
    threads as this process has them; TensorFlow's are in its own sections)."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env = ", ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS")
                    if k in os.environ)
    libs = []
    for name in ("numpy", "tensorflow", "keras"):
        try:
            libs.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return (f"{cpu_model()} ({platform.machine()}), {cores} cores usable of {os.cpu_count()}, "
            f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            + ", ".join(libs) + (f"; {env}" if env else ""))


def load_average() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="bench names (bench_<name>.py)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the file to update (default RESULTS.md)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(1, str(HERE))  # helpers shared by the bench_*.py files (toy_density)
    old = dict(MARK.findall(RESULTS.read_text())) if RESULTS.exists() else {}
    paths = sorted(HERE.glob("bench_*.py"))
    names = [p.stem.removeprefix("bench_") for p in paths]
    chosen = args.only if args.only else names
    unknown = set(chosen) - set(names)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; available: {names}")
    sections = dict(old)
    for path, name in zip(paths, names):
        if name not in chosen:
            continue
        print(f"== {name}", flush=True)
        t0, load_before = time.perf_counter(), load_average()
        body = load(path).run(quick=args.quick)
        stamp = (f"_Measured {dt.date.today()} in {time.perf_counter() - t0:.0f} s on {machine()}; "
                 f"load average (1/5/15 min) {load_before} before, {load_average()} after")
        stamp += ", quick sizes_" if args.quick else "_"
        sections[name] = body.rstrip() + "\n\n" + stamp + "\n"
        print(body)
    order = [n for n in names if n in sections] + [n for n in sections if n not in names]
    text = ("# Benchmark results\n\nWritten by `make bench` (`python benchmarks/run.py`). Each section ends with "
            "the machine it was measured on (CPU, usable cores, thread settings, library versions) and the "
            "load average before and after: compare a figure with a rerun only on a like machine.\n\n")
    text += "".join(f"<!-- bench:{n} -->\n{sections[n]}<!-- /bench:{n} -->\n" for n in order)
    args.results.write_text(text)
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
