"""Real browser: JupyterLab + Debian's headless Chromium (Playwright) move a slider of the
lesson-02 playground and see its image change, with no error on the page.

Runs the notebook up to the playground cell in QUICK mode on a copy of notebooks/, saves
screenshots to tests/artifacts/ (gitignored). Never downloads a browser.
"""

import io
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from lab_server import running_lab

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = "02_flujos_planares_y_radiales.ipynb"
ARTIFACTS = ROOT / "tests" / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RUN_UP_TO_PLAYGROUND = """
async () => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  await panel.context.ready;
  await panel.sessionContext.ready;
  const cells = panel.content.widgets;
  const idx = cells.findIndex(c => c.model.sharedModel.getSource().includes('planar_radial_playground('));
  if (idx < 0) { throw new Error('playground cell not found'); }
  panel.content.activeCellIndex = idx;
  await app.commands.execute('notebook:run-all-above');
  panel.content.activeCellIndex = idx;
  await app.commands.execute('notebook:run-cell');
  return idx;
}
"""


def _pixels(png: bytes) -> np.ndarray:
    import PIL.Image

    return np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_slider_changes_playground_image(tmp_path, monkeypatch):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed at /usr/bin/chromium (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    # the kernel inherits the server's environment: QUICK sizes, and the inline backend a
    # student gets (conftest's MPLBACKEND=Agg would make plt.show() a no-op with a warning)
    monkeypatch.setenv("COURSEKIT_QUICK", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # a copy: JupyterLab writes checkpoints and the kernel may write next to the notebook
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("*.log"))
    page_errors: list[str] = []
    with running_lab(tmp_path / "notebooks") as base, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda exc: page_errors.append(str(exc)))
            page.goto(f"{base}/lab/tree/{NOTEBOOK}", timeout=90_000)
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.content"
                " && window.jupyterapp.shell.currentWidget.content.widgets.length > 10",
                timeout=90_000,
            )
            idx = page.evaluate(RUN_UP_TO_PLAYGROUND)
            cell = page.locator(".jp-Notebook .jp-Cell").nth(idx)
            image = cell.locator("img.widget-image")
            image.wait_for(state="visible", timeout=120_000)
            cell.scroll_into_view_if_needed()
            time.sleep(1.0)  # let the first PNG finish rendering
            before = image.screenshot()
            page.screenshot(path=str(ARTIFACTS / "browser_playground_before.png"))

            slider = cell.locator(".widget-slider").filter(has_text="u₁")
            handle = slider.locator(".noUi-handle").first
            handle.focus()
            for _ in range(8):  # u₁ from 1.2 down to 0.4, one step per key press
                page.keyboard.press("ArrowLeft")
                time.sleep(0.15)
            readout = slider.locator(".widget-readout").first

            deadline, diff = time.monotonic() + 60, 0.0
            while time.monotonic() < deadline:
                after = image.screenshot()
                a, b = _pixels(before), _pixels(after)
                if a.shape == b.shape:
                    diff = float((np.abs(a - b).sum(-1) > 30).mean())
                if diff > 0.005:
                    break
                time.sleep(0.5)
            page.screenshot(path=str(ARTIFACTS / "browser_playground.png"))
            (ARTIFACTS / "browser_playground_image_before.png").write_bytes(before)
            (ARTIFACTS / "browser_playground_image_after.png").write_bytes(after)

            assert diff > 0.005, f"the playground image did not change after moving u₁ ({diff:.2%} pixels)"
            assert readout.inner_text().strip() != "1.20", "the slider did not move"
            errors = page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'],"
                " .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']"
            )
            texts = [t for t in errors.all_inner_texts() if "Error" in t or "Traceback" in t]
            assert not texts, f"error output in the notebook: {texts[:1]}"
            status = cell.locator(".widget-html").first.inner_text()
            assert "Comprobación" in status
            assert not page_errors, f"JavaScript errors on the page: {page_errors[:3]}"
        finally:
            browser.close()
