"""Every committed notebook follows docs/architecture.md's notebook rules (executed separately by nbval)."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import sync_notebooks  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ids = [p.name for p in NOTEBOOKS]


def test_there_are_notebooks_and_names_follow_the_scheme():
    assert NOTEBOOKS, "no notebooks found"
    numbers = []
    for path in NOTEBOOKS:
        m = re.fullmatch(r"(\d\d)_[a-z0-9_]+\.ipynb", path.name)
        assert m, f"{path.name}: expected NN_nombre.ipynb"
        numbers.append(m.group(1))
    assert len(numbers) == len(set(numbers)), "two notebooks share a lesson number"


@pytest.fixture(params=NOTEBOOKS, ids=ids)
def nb(request):
    notebook = nbformat.read(request.param, as_version=4)
    nbformat.validate(notebook)
    return request.param, notebook


def test_no_outputs_stored(nb):
    path, notebook = nb
    for i, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} cell {i} has stored outputs"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"


def test_header_badge_setup_and_kernel(nb):
    path, notebook = nb
    title = notebook.cells[0]
    assert title.cell_type == "markdown"
    assert title.source.startswith(f"# Lección {path.name[:2]} — "), "cell 0: '# Lección NN — título'"
    assert sync_notebooks.badge(path) in title.source, "Colab badge missing or stale (make sync)"
    setup = notebook.cells[1]
    assert "setup" in setup.metadata.get("tags", []) and setup.source == sync_notebooks.setup_source(path)
    assert notebook.metadata["kernelspec"]["name"] == "python3"


def test_quick_mode_imports_and_verification(nb):
    path, notebook = nb
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert "QUICK = ck.quick_mode()" in code
    assert "import coursekit" in code
    assert re.search(r"^\s*assert ", code, re.M), "no check cell (a visible assert) found"
    assert "interact(" not in code, "use coursekit.widgets.Playground, not interact (Colab stacks plots)"
    prose = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    assert "## Ejercicios" in prose


def test_sync_tool_reports_nothing_to_change():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "sync_notebooks.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_readme_course_map_links_every_notebook():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        assert sync_notebooks.colab_url(path) in readme, f"README lacks the Colab link of {path.name}"


def _imports(notebook) -> list[tuple[str, str]]:
    """``(module, name)`` of every ``from coursekit... import name`` in the code cells."""
    import ast

    found = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        src = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("coursekit"):
                found += [(node.module, alias.name) for alias in node.names]
    return found


def test_each_name_comes_from_one_place(nb):
    path, notebook = nb
    origin: dict[str, set[str]] = {}
    for module, name in _imports(notebook):
        origin.setdefault(name, set()).add(module)
    twice = {name: sorted(mods) for name, mods in origin.items() if len(mods) > 1}
    assert not twice, f"{path.name}: names imported from several modules: {twice}"


def test_recipes_come_from_the_lesson_module(nb):
    path, notebook = nb
    modules = {module for module, _ in _imports(notebook)}
    stale = modules & {"coursekit.train", "coursekit.checkpoints", "coursekit.vi", "coursekit.history"}
    assert not stale, f"{path.name} imports removed modules {sorted(stale)}"
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert "coursekit.lessons" in code, f"{path.name}: reach the lesson's recipes through coursekit.lessons"


def test_strip_solutions_turns_marked_blocks_into_todos():
    src = ("def f(x):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n"
           "    ### END SOLUTION\n\nf")
    out = sync_notebooks.strip_solutions(src, code=True, where="t")
    assert out == "def f(x):\n    \"\"\"doc\"\"\"\n    # TU CÓDIGO AQUÍ\n    raise NotImplementedError\n\nf"
    md = sync_notebooks.strip_solutions("Respuesta:\n### BEGIN SOLUTION\nes 2\n### END SOLUTION", False, "t")
    assert md == "Respuesta:\n*(Escribe aquí tu respuesta.)*"
    for bad in ("### BEGIN SOLUTION\nx", "x\n### END SOLUTION", "### BEGIN SOLUTION\n### BEGIN SOLUTION"):
        with pytest.raises(SystemExit):
            sync_notebooks.strip_solutions(bad, True, "t")


SOLUTIONS = sorted(sync_notebooks.SOLUTIONS_DIR.glob("*.ipynb"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.name for p in SOLUTIONS])
def test_student_version_has_no_solution_code(path):
    student = nbformat.read(ROOT / "notebooks" / path.name, as_version=4)
    for i, cell in enumerate(student.cells):
        assert "BEGIN SOLUTION" not in cell.source and "END SOLUTION" not in cell.source, f"cell {i}"
        assert sync_notebooks.SOLUTION_TAG not in cell.metadata.get("tags", []), f"cell {i}"
    solutions = nbformat.read(path, as_version=4)
    assert any("### BEGIN SOLUTION" in c.source for c in solutions.cells), "no cell for the student to write"
    assert "soluciones" in solutions.cells[0].source.split("\n")[0] or "soluciones" in solutions.cells[0].source


# One vocabulary (notebooks/glosario.md): the variants the glossary rejects, in prose only
# (formulas, inline code, code blocks and links are stripped; Glow's *split* layer is a name).
REJECTED_VARIANTS = {
    r"\blibretas?\b": "cuaderno",
    r"\bnotebooks?\b": "cuaderno",
    r"\bplaygrounds?\b": "panel interactivo",
    r"\bresolvedor(es)?\b": "integrador (solver)",
    r"\btemplad[oa]s?\b": "recocido (annealing)",
    r"\berror(es)? est[aá]ndar\b": "error típico",
    r"\bhonest[oa]s?\b": "(otra palabra)",
    r"\bMSE\b": "ECM",
    r"(?<!\*)\bsplits?\b(?!\*)": "partición",
    r"\bflujos? normalizantes?\b": "flujo normalizador",
    r"(?<!Neural )\bODEs?\b": "EDO",
}


def _prose(markdown: str) -> str:
    for pattern in (r"```.*?```", r"\$\$.*?\$\$", r"\$[^$\n]*\$", r"`[^`\n]*`", r"https?://\S+", r"\]\([^)]*\)"):
        markdown = re.sub(pattern, " ", markdown, flags=re.S)
    return markdown


def _vocabulary_slips(text: str) -> list[str]:
    prose = _prose(text)
    return [f"{m.group(0)!r} (use: {use})" for pattern, use in REJECTED_VARIANTS.items()
            for m in re.finditer(pattern, prose, re.I)]


SOURCES = sorted((ROOT / "notebooks" / "soluciones").glob("*.ipynb")) + NOTEBOOKS


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT / "notebooks")) for p in SOURCES])
def test_prose_follows_the_glossary(path):
    notebook = nbformat.read(path, as_version=4)
    slips = [f"cell {i}: {s}" for i, c in enumerate(notebook.cells) if c.cell_type == "markdown"
             for s in _vocabulary_slips(c.source)]
    assert not slips, f"{path.name}: words the glossary replaces:\n" + "\n".join(slips)


def test_readme_follows_the_glossary_and_the_check_catches_slips():
    assert _vocabulary_slips("Abre el notebook y mira el playground; el resolvedor de la ODE") == [
        "'notebook' (use: cuaderno)", "'playground' (use: panel interactivo)",
        "'resolvedor' (use: integrador (solver))", "'ODE' (use: EDO)"]
    assert not _vocabulary_slips("La capa *split* de Glow; la Neural ODE; `mse_loss`; $\\mathrm{MSE}$")
    # the README is bilingual in places (commands, file names): check its Spanish prose lines only
    readme = (ROOT / "README.md").read_text()
    assert (ROOT / "notebooks" / "glosario.md").name in readme, "README should link the glossary"
    slips = _vocabulary_slips(readme)
    assert not slips, "README: " + "; ".join(slips)
