"""`make lab`'s server answers: JupyterLab starts headless on a free port and serves /lab."""

import shutil
import urllib.request
from pathlib import Path

from lab_server import running_lab

ROOT = Path(__file__).resolve().parents[1]


def test_jupyterlab_serves_lab_page(tmp_path):
    # a copy: JupyterLab may write into what it serves
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("*.log"))
    with running_lab(tmp_path / "notebooks") as base:
        with urllib.request.urlopen(base + "/lab", timeout=30) as resp:
            assert resp.status == 200
            assert b"JupyterLab" in resp.read()
        with urllib.request.urlopen(base + "/api/contents", timeout=30) as resp:
            assert b"01_cambio_de_variable.ipynb" in resp.read()
