"""Keep every notebook's Colab badge, Colab set-up cell and kernelspec in sync with
``coursekit.REPO_URL``, strip outputs, and generate the student notebooks from the solutions.

    python tools/sync_notebooks.py          # rewrite notebooks in place
    python tools/sync_notebooks.py --check  # exit 1 and list what would change

Two versions of each lesson come from one source. ``notebooks/soluciones/NN_nombre.ipynb``
is the source: it holds the solutions between nbgrader's markers (``### BEGIN SOLUTION`` /
``### END SOLUTION``, also read by otter-grader) and cells tagged ``solucion`` (worked
solutions of the exercises). The student notebook ``notebooks/NN_nombre.ipynb`` is generated
from it: a marked block in code becomes ``# TU CÓDIGO AQUÍ`` + ``raise NotImplementedError``
(so solution blocks live inside function bodies, which ``coursekit.exercises.check`` calls),
a marked block in Markdown becomes a placeholder, and ``solucion`` cells are left out.
Never edit a student notebook by hand when its solutions version exists.

Conventions (docs/architecture.md): cell 0 is Markdown with the title and the badge; cell 1 is the
set-up code cell (tag ``setup``), generated here; it installs coursekit only on Colab.
Lesson 08 (TensorFlow) installs plain ``coursekit``; the others ``coursekit[torch]``,
whose ranges Colab's preinstalled torch already satisfies (nothing gets upgraded).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from coursekit import REPO_URL  # noqa: E402

BADGE_RE = re.compile(r"\[!\[[^\]]*\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]\([^)]*\)")
TF_LESSONS = {"08"}
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


SOLUTIONS_DIR = ROOT / "notebooks" / "soluciones"
BEGIN = re.compile(r"^(\s*)### BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
SOLUTION_TAG = "solucion"


def colab_url(path: Path) -> str:
    repo = REPO_URL.removeprefix("https://github.com/")
    folder = "notebooks/soluciones" if path.parent.name == "soluciones" else "notebooks"
    return f"https://colab.research.google.com/github/{repo}/blob/main/{folder}/{path.name}"


def strip_solutions(source: str, code: bool, where: str) -> str:
    """The student's view of one cell's source: each marked block replaced by a TODO."""
    out, indent = [], None
    for line in source.split("\n"):
        if (m := BEGIN.match(line)) is not None:
            if indent is not None:
                raise SystemExit(f"{where}: nested ### BEGIN SOLUTION")
            indent = m.group(1)
            out += ([f"{indent}# TU CÓDIGO AQUÍ", f"{indent}raise NotImplementedError"] if code
                    else [f"{indent}*(Escribe aquí tu respuesta.)*"])
        elif END.match(line):
            if indent is None:
                raise SystemExit(f"{where}: ### END SOLUTION without BEGIN")
            indent = None
        elif indent is None:
            out.append(line)
    if indent is not None:
        raise SystemExit(f"{where}: ### BEGIN SOLUTION without END")
    return "\n".join(out)


def student_version(solutions: nbformat.NotebookNode, student_path: Path) -> nbformat.NotebookNode:
    """The student notebook generated from a (synced) solutions notebook."""
    nb = nbformat.from_dict(json.loads(json.dumps(solutions)))  # a deep copy
    cells = []
    for i, cell in enumerate(nb.cells):
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            continue
        cell.source = strip_solutions(cell.source, cell.cell_type == "code", f"{student_path.name} cell {i}")
        cells.append(cell)
    nb.cells = cells
    nb.cells[0].source = BADGE_RE.sub(badge(student_path), nb.cells[0].source)
    return nb


def badge(path: Path) -> str:
    return f"[![Abrir en Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(path)})"


def setup_source(path: Path) -> str:
    extra = "" if path.name[:2] in TF_LESSONS else "[torch]"
    return (
        "# Preparación: en Colab instala coursekit desde el repositorio; en local ya está instalado.\n"
        "import os\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        f'    spec = "coursekit{extra} @ git+{REPO_URL}"\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", spec], check=True)\n'
        '    os.environ.setdefault("COURSEKIT_ALLOW_DOWNLOAD", "1")  # MNIST, con checksum'
    )


def sync(path: Path) -> list[str]:
    """Bring one notebook in line; return the list of changes made."""
    nb = nbformat.read(path, as_version=4)
    changes = []
    first = nb.cells[0] if nb.cells else None
    if first is None or first.cell_type != "markdown":
        raise SystemExit(f"{path}: cell 0 must be the Markdown title with the Colab badge")
    new_src, n = BADGE_RE.subn(badge(path), first.source)
    if n == 0:
        lines = first.source.split("\n", 1)
        new_src = lines[0] + "\n\n" + badge(path) + ("\n" + lines[1] if len(lines) > 1 else "")
    if new_src != first.source:
        first.source = new_src
        changes.append("badge")
    setup = nb.cells[1] if len(nb.cells) > 1 else None
    if setup is None or "setup" not in setup.metadata.get("tags", []):
        setup = nbformat.v4.new_code_cell(metadata={"tags": ["setup"]})
        nb.cells.insert(1, setup)
        changes.append("setup cell added")
    if setup.source != setup_source(path):
        setup.source = setup_source(path)
        changes.append("setup cell")
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            cell.outputs, cell.execution_count = [], None
            changes.append("outputs")
    if nb.metadata.get("kernelspec") != KERNELSPEC:
        nb.metadata["kernelspec"] = KERNELSPEC
        changes.append("kernelspec")
    nb.metadata.setdefault("language_info", {"name": "python"})
    if changes:
        nbformat.write(nb, path)
    return sorted(set(changes))


def generate_student(solutions_path: Path, write: bool) -> list[str]:
    """Write (or, with ``write=False``, compare) the student notebook of a solutions notebook."""
    student_path = ROOT / "notebooks" / solutions_path.name
    wanted = student_version(nbformat.read(solutions_path, as_version=4), student_path)
    current = nbformat.read(student_path, as_version=4) if student_path.exists() else None
    if current is not None and nbformat.writes(current) == nbformat.writes(wanted):
        return []
    if write:
        nbformat.write(wanted, student_path)
    return ["student version regenerated from soluciones/"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report, do not write")
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args()
    paths = [p.resolve() for p in args.paths] or (sorted(SOLUTIONS_DIR.glob("[0-9][0-9]_*.ipynb"))
                                                  + sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    solved = {p.name for p in SOLUTIONS_DIR.glob("[0-9][0-9]_*.ipynb")}
    dirty = []
    for path in paths:
        if path.parent != SOLUTIONS_DIR and path.name in solved:
            continue  # generated below from its solutions version
        if args.check:
            import shutil
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / ("soluciones" if path.parent == SOLUTIONS_DIR else "notebooks") / path.name
                copy.parent.mkdir()
                shutil.copy(path, copy)
                changes = sync(copy)
                if path.parent == SOLUTIONS_DIR:
                    synced = nbformat.read(copy, as_version=4)
                    wanted = student_version(synced, ROOT / "notebooks" / path.name)
                    student = ROOT / "notebooks" / path.name
                    if not student.exists() or nbformat.writes(nbformat.read(student, as_version=4)) \
                            != nbformat.writes(wanted):
                        changes.append("student version out of date (make sync)")
        else:
            changes = sync(path)
            if path.parent == SOLUTIONS_DIR:
                changes += generate_student(path, write=True)
        if changes:
            label = f"soluciones/{path.name}" if path.parent == SOLUTIONS_DIR else path.name
            dirty.append(f"{label}: {', '.join(changes)}")
    for line in dirty:
        print(line)
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":
    raise SystemExit(main())
