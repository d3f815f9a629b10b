"""Real browser: every playground of the course, as a student meets it after running the lesson.

One JupyterLab (what ``make lab`` starts) serves a copy of ``notebooks/`` (the student
versions) and Debian's headless Chromium (Playwright, never a downloaded browser) opens
each lesson in turn. For every playground in ``PLAYGROUNDS`` it runs the notebook in QUICK
mode up to the last cell that touches the playground, waits for the browser's answers to
reach the kernel, and checks:

- each control shows the value the notebook left it at (ipywidgets 8 sliders answer every
  value the kernel sends; a stale answer used to leave 01, 04, 05, 06 and 07 elsewhere);
- no label is cut, the figure is shown 1:1 (not shrunk by the output column) and does not
  move when the status line or the visible controls change;
- moving each listed control (keyboard on sliders, clicks on buttons) changes the image,
  with no error on the page or in the outputs.

It also times key press → new image loaded in the page (``tests/artifacts/playground_latency.json``)
and saves a screenshot of every playground to ``tests/artifacts/``.
Adding a playground is one line in ``PLAYGROUNDS``. ``COURSEKIT_BROWSER_ONLY=01,04`` runs a
subset (by id).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from lab_server import running_lab

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@dataclass(frozen=True)
class Case:
    """One playground: the notebook, a text of the cell that shows it, a text of the last
    cell that touches it (run up to there), the readouts it must show afterwards
    (control label → text) and the controls to move, in order ("label" moves a slider one
    step, "label*N" N steps, "label:=button" clicks that button of a toggle, "label!" clicks a check box)."""

    id: str
    notebook: str
    cell: str
    last: str
    expect: dict = field(default_factory=dict)
    moves: tuple = ()


PLAYGROUNDS = [
    Case("01", "01_cambio_de_variable.ipynb", "change_of_variables_playground(", "measure_latency(playground.update",
         {"ángulo": "0.00", "escala x": "1.00", "escala y": "1.00", "cizalla": "0.00", "deformación a": "0.00"},
         ("ángulo", "escala x", "escala y", "cizalla", "deformación a")),
    Case("02", "02_flujos_planares_y_radiales.ipynb", "planar_radial_playground(", "K = 8 capas",
         {"nº de capas K": "2", "capa editada": "1", "u₁": "1.20", "w₁": "2.00"},
         ("u₁", "w₂", "b", "capa editada", "nº de capas K", "parámetros:=u, β crudos", "tipo de capa:=radial", "α")),
    Case("03-capas", "03_glow.ipynb", "glow_steps_playground(", "pg2d.update(layer=0)", {"capa": "0"}, ("capa",)),
    Case("03-temperatura", "03_glow.ipynb", "temperature_playground(", "pg_t.update(temperature=", {"T": "1.0"},
         ("T",)),
    Case("04", "04_iresnet.ipynb", "fixed_point_playground(", "lo dejamos como estaba",
         {"λ": "0.90", "giro θ": "1.00"}, ("λ", "giro θ")),
    Case("05", "05_neural_ode_y_adjunto.ipynb", "Playground(fig", "play.update(t=0.0)", {"t": "0.00"}, ("t",)),
    Case("06", "06_cnf_y_ffjord.ipynb", "evolution = Playground(", "evolution.update(t=1.0)", {"t": "1.00"}, ("t",)),
    Case("07", "07_flow_matching.ipynb", "flow_matching_playground(", "measure_latency(pg.update",
         {"t": "0.50", "x₁ = centro": "0"}, ("t", "campo:=condicional", "x₁ = centro", "parejas OT (minibatch)!")),
    Case("09", "09_flow_matching_video.ipynb", "flow_playground(", "playground.update(step=", {"paso k": "16",
         "fotograma": "0"}, ("paso k", "fotograma")),
    # lesson 08's VAE latent panel (coursekit.widgets.autoencoders)
    Case("08-vae", "08_autoencoders_vae_gan.ipynb", "panel = vae_latent_playground(", "panel = vae_latent_playground(",
         {"z₁": "0.0", "z₂": "0.0"}, ("z₁*3", "z₂*3")),
]
ONLY = {s.strip() for s in os.environ.get("COURSEKIT_BROWSER_ONLY", "").split(",") if s.strip()}
SELECTED = [c for c in PLAYGROUNDS if not ONLY or c.id in ONLY or c.id.split("-")[0] in ONLY]

RUN_UP_TO = """
async ([cellText, lastText, from]) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  await panel.context.ready;
  await panel.sessionContext.ready;
  const cells = panel.content.widgets;
  const src = i => cells[i].model.sharedModel.getSource();
  const idx = cells.findIndex((c, i) => src(i).includes(cellText));
  if (idx < 0) { throw new Error('playground cell not found: ' + cellText); }
  let last = -1;
  for (let i = idx; i < cells.length; i++) { if (src(i).includes(lastText)) { last = i; break; } }
  if (last < 0) { throw new Error('last cell not found after the playground: ' + lastText); }
  if (from >= 0) {  // the notebook already ran up to from - 1 (an earlier playground of it)
    for (let i = from; i <= last; i++) {
      panel.content.activeCellIndex = i;
      await app.commands.execute('notebook:run-cell');
    }
  } else {
    panel.content.activeCellIndex = last;
    await app.commands.execute('notebook:run-all-above');
    panel.content.activeCellIndex = last;
    await app.commands.execute('notebook:run-cell');
  }
  return [idx, last];
}
"""

KERNEL_IDLE = """
() => { const s = window.jupyterapp.shell.currentWidget.sessionContext;
        return s.session && s.session.kernel && s.session.kernel.status === 'idle'; }
"""

# key press → the playground's <img> has loaded a new PNG, in the page's own clock
WATCH_LATENCY = """
(img) => {
  const w = window.__playgroundLatency = {t0: null, samples: []};
  document.addEventListener('keydown', () => { w.t0 = performance.now(); }, true);
  img.addEventListener('load', () => {
    if (w.t0 !== null) { w.samples.push(performance.now() - w.t0); w.t0 = null; }
  });
}
"""

# every label or button whose text is cut (ellipsis or overflow)
CUT_LABELS = """
(root) => [...root.querySelectorAll('.widget-label, .widget-toggle-button, .widget-label-basic')]
  .filter(e => e.offsetParent !== null && e.textContent.trim() && e.scrollWidth > e.clientWidth + 1)
  .map(e => e.textContent.trim())
"""

LATENCY: dict[str, dict] = {}
_OPEN: dict = {}  # the page of a lesson with another playground still to test


def _pixels(png: bytes) -> np.ndarray:
    import PIL.Image

    return np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def _changed(a: bytes, b: bytes) -> float:
    pa, pb = _pixels(a), _pixels(b)
    if pa.shape != pb.shape:
        return 1.0
    return float((np.abs(pa - pb).sum(-1) > 30).mean())


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed at /usr/bin/chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    # the kernels inherit the server's environment: QUICK sizes, and the inline backend a
    # student gets (conftest's MPLBACKEND=Agg would make plt.show() a no-op with a warning)
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSEKIT_QUICK", "1")
    mp.delenv("MPLBACKEND", raising=False)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # a copy: JupyterLab writes checkpoints and the kernels write runs/ next to the notebooks
    work = tmp_path_factory.mktemp("lab") / "notebooks"
    shutil.copytree(ROOT / "notebooks", work, ignore=shutil.ignore_patterns("*.log", "runs", "soluciones"))
    t0 = time.monotonic()
    try:
        with running_lab(work) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            try:
                yield base, browser
            finally:
                browser.close()
    finally:
        mp.undo()
        if LATENCY:
            (ARTIFACTS / "playground_latency.json").write_text(json.dumps(LATENCY, indent=1, ensure_ascii=False))
            print(f"\nbrowser playground test: {time.monotonic() - t0:.0f} s;"
                  " key press → new image (median ms):",
                  {k: v["browser_median_ms"] for k, v in LATENCY.items()})


def _control(cell, label: str):
    """The widget box of the control whose description is exactly ``label``."""
    exact = re.compile(f"^\\s*{re.escape(label)}\\s*$")
    box = cell.locator(".widget-slider, .widget-toggle-buttons, .widget-checkbox").filter(
        has=cell.page.locator(".widget-label, .widget-label-basic", has_text=exact)).first
    assert box.count(), f"no control labelled {label!r}"
    return box


def _latency_samples(page) -> int:
    return page.evaluate("() => window.__playgroundLatency.samples.length")


def _press_slider(page, box, presses: int) -> None:
    """Move a slider by keyboard (right, or left at its end), ``presses`` times, each time
    waiting for the new image to load (the latency watcher records the time)."""
    readout = box.locator(".widget-readout").first
    handle = box.locator(".noUi-handle").first
    handle.focus()
    key = "ArrowRight"
    for i in range(presses):
        n, r0 = _latency_samples(page), readout.inner_text()
        page.keyboard.press(key)
        if i == 0:
            deadline = time.monotonic() + 2
            while readout.inner_text() == r0 and time.monotonic() < deadline:
                time.sleep(0.05)
            if readout.inner_text() == r0:  # at its right end
                key = "ArrowLeft"
                n = _latency_samples(page)
                page.keyboard.press(key)
        page.wait_for_function(f"() => window.__playgroundLatency.samples.length > {n}", timeout=60_000,
                               polling=50)


def _readouts(cell) -> dict[str, str]:
    return cell.evaluate("""(c) => Object.fromEntries([...c.querySelectorAll('.widget-slider, .widget-hslider')]
        .filter(s => s.offsetParent !== null)
        .map(s => [s.querySelector('.widget-label').textContent.trim(),
                   (s.querySelector('.widget-readout') || {}).textContent?.trim()]))""")


@pytest.mark.parametrize("case", SELECTED, ids=[c.id for c in SELECTED])
def test_playground_in_the_browser(lab, case: Case):
    from playwright.sync_api import Error as PlaywrightError

    base, browser = lab
    if _OPEN.get("notebook") == case.notebook:  # the next playground of the same lesson: go on from there
        page, page_errors, start = _OPEN["page"], _OPEN["errors"], _OPEN["last"] + 1
    else:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page_errors, start = [], -1
        page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    _OPEN.clear()
    keep = False
    try:
        if start < 0:
            page.goto(f"{base}/lab/tree/{case.notebook}?reset", timeout=90_000)
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.content"
                " && window.jupyterapp.shell.currentWidget.content.widgets.length > 10",
                timeout=90_000,
            )
        t_run = time.monotonic()
        idx, last = page.evaluate(RUN_UP_TO, [case.cell, case.last, start])
        page.wait_for_function(KERNEL_IDLE, timeout=300_000, polling=500)
        run_s = time.monotonic() - t_run
        cell = page.locator(".jp-Notebook .jp-Cell").nth(idx)
        image = cell.locator("img.widget-image").first
        image.wait_for(state="visible", timeout=60_000)
        cell.scroll_into_view_if_needed()
        time.sleep(2.0)  # the browser's answers to the kernel's last values, and their echo back
        page.wait_for_function(KERNEL_IDLE, timeout=60_000, polling=500)
        time.sleep(1.0)

        # 1. each control where the notebook left it
        shown = _readouts(cell)
        wrong = {k: (shown.get(k), v) for k, v in case.expect.items() if shown.get(k) != v}
        cell.screenshot(path=str(ARTIFACTS / f"playground_{case.id}.png"))
        problems = []  # all of them reported at the end (and the latency saved in any case)
        if wrong:
            problems.append(f"controls moved after the notebook set them (shown, expected): {wrong}")

        # 2. legible and fixed: no cut label, the figure at 1:1
        cut = cell.evaluate(CUT_LABELS)
        if cut:
            problems.append(f"labels cut: {cut}")
        natural, client = image.evaluate("(i) => [i.naturalWidth, i.clientWidth]")
        if client < natural - 1:
            problems.append(f"figure shrunk to {client}/{natural} px")

        # 3. every listed control changes the image, and the figure does not jump
        image.evaluate(WATCH_LATENCY)
        y0 = image.bounding_box()["y"]
        for move in case.moves:
            before = image.screenshot()
            try:
                if move.endswith("!"):
                    _control(cell, move[:-1]).locator("input").first.click()
                elif ":=" in move:
                    label, button = move.split(":=", 1)
                    _control(cell, label).locator(".widget-toggle-button", has_text=button).first.click()
                else:  # "label*N": N steps (a small step may move too few pixels to tell)
                    label, _, presses = move.partition("*")
                    _press_slider(page, _control(cell, label), int(presses or (3 if move == case.moves[0] else 1)))
            except (AssertionError, PlaywrightError) as exc:
                problems.append(f"could not move '{move}': {str(exc).splitlines()[0]}")
                continue
            deadline, diff = time.monotonic() + 30, 0.0
            while time.monotonic() < deadline:
                diff = _changed(before, image.screenshot())
                if diff > 0.001:
                    break
                time.sleep(0.3)
            if diff <= 0.001:
                problems.append(f"moving '{move}' did not change the image")
            y = image.bounding_box()["y"]
            if abs(y - y0) >= 1:
                problems.append(f"the figure jumped {y - y0:+.0f} px after '{move}'")
        cell.screenshot(path=str(ARTIFACTS / f"playground_{case.id}_moved.png"))
        samples = page.evaluate("() => window.__playgroundLatency.samples")
        last_cell = page.locator(".jp-Notebook .jp-Cell").nth(last)
        printed = last_cell.locator(".jp-OutputArea-output").all_inner_texts()
        LATENCY[case.id] = {"browser_median_ms": round(statistics.median(samples), 1) if samples else None,
                            "browser_samples_ms": [round(s, 1) for s in samples],
                            "kernel_printed": [t for t in printed if "latencia" in t or "ms" in t][:2],
                            "notebook_run_s": round(run_s, 1)}

        # 4. no error anywhere
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
        texts = errors.all_inner_texts()
        stderr = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        texts += [t for t in stderr.all_inner_texts() if "Error" in t or "Traceback" in t]
        if texts:
            problems.append(f"error output in the notebook: {texts[:1]}")
        if page_errors:
            problems.append(f"JavaScript errors on the page: {page_errors[:3]}")
        LATENCY[case.id]["problems"] = problems
        assert not problems, f"{case.id}: " + "; ".join(problems)
        following = SELECTED[SELECTED.index(case) + 1:]
        if following and following[0].notebook == case.notebook:
            _OPEN.update(notebook=case.notebook, page=page, errors=page_errors, last=last)
            keep = True
    finally:
        if not keep:
            with_session = "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.shutdown()"
            try:
                page.evaluate(with_session)  # free the kernel's CPU and memory for the next lesson
            except Exception:  # noqa: BLE001 - best effort
                pass
            page.close()
