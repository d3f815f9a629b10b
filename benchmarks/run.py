"""Run the benchmarks and write benchmarks/RESULTS.md (one command: ``make bench``).

    python benchmarks/run.py                    # every bench_*.py
    python benchmarks/run.py --only notebooks   # just bench_notebooks.py
    python benchmarks/run.py --quick            # smaller sizes (a smoke run)

Each ``bench_<name>.py`` defines ``run(quick: bool) -> str`` returning a Markdown section.
Sections of benchmarks that were not run this time are kept from the previous file, each
with the date it was measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
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


def machine() -> str:
    import torch

    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads)")


def load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="bench names (bench_<name>.py)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
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
        t0 = time.perf_counter()
        body = load(path).run(quick=args.quick)
        stamp = f"_Measured {dt.date.today()} in {time.perf_counter() - t0:.0f} s on {machine()}"
        stamp += ", quick sizes_" if args.quick else "_"
        sections[name] = body.rstrip() + "\n\n" + stamp + "\n"
        print(body)
    order = [n for n in names if n in sections] + [n for n in sections if n not in names]
    text = "# Benchmark results\n\nWritten by `make bench` (`python benchmarks/run.py`).\n\n"
    text += "".join(f"<!-- bench:{n} -->\n{sections[n]}<!-- /bench:{n} -->\n" for n in order)
    RESULTS.write_text(text)
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
