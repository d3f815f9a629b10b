"""Keep every notebook's Colab badge, Colab set-up cell and kernelspec in sync with
``coursekit.REPO_URL``, and strip outputs.

    python tools/sync_notebooks.py          # rewrite notebooks in place
    python tools/sync_notebooks.py --check  # exit 1 and list what would change

Conventions (docs/architecture.md): cell 0 is Markdown with the title and the badge; cell 1 is the
set-up code cell (tag ``setup``), generated here; it installs coursekit only on Colab.
Lesson 08 (TensorFlow) installs plain ``coursekit``; the others ``coursekit[torch]``,
whose ranges Colab's preinstalled torch already satisfies (nothing gets upgraded).
"""

from __future__ import annotations

import argparse
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


def colab_url(path: Path) -> str:
    repo = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{path.name}"


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report, do not write")
    parser.add_argument("paths", nargs="*", type=Path)
    args = parser.parse_args()
    paths = args.paths or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    dirty = []
    for path in paths:
        if args.check:
            import shutil
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / path.name
                shutil.copy(path, copy)
                changes = sync(copy)
        else:
            changes = sync(path)
        if changes:
            dirty.append(f"{path.name}: {', '.join(changes)}")
    for line in dirty:
        print(line)
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":
    raise SystemExit(main())
