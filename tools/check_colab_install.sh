#!/usr/bin/env bash
# Checks the Colab install path as far as it can be checked offline-from-Colab:
# a fresh venv that already has torch, TensorFlow, matplotlib and Colab's ipywidgets 7
# installs coursekit[torch] from a clone of this repository (what the set-up cell does)
# and must not upgrade any of them; then coursekit and its widgets import and run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-$(mktemp -d)}
git clone -q "$ROOT" "$WORK/clone"
python3 -m venv "$WORK/venv"
PIP="$WORK/venv/bin/python -m pip"
$PIP install -q --upgrade pip  # Colab ships a recent pip; 23.x rejects "name[extra] @ git+file://"
$PIP install -q torch==2.13.0 tensorflow matplotlib ipywidgets==7.7.1 ipykernel
$WORK/venv/bin/python -m pip freeze | grep -iE '^(torch|tensorflow|matplotlib|ipywidgets|numpy)==' | sort > "$WORK/before.txt"
$PIP install -q "coursekit[torch] @ git+file://$WORK/clone"
$WORK/venv/bin/python -m pip freeze | grep -iE '^(torch|tensorflow|matplotlib|ipywidgets|numpy)==' | sort > "$WORK/after.txt"
if ! diff -u "$WORK/before.txt" "$WORK/after.txt"; then
  echo "FAIL: installing coursekit changed preinstalled packages"; exit 1
fi
cd "$WORK"
$WORK/venv/bin/python - <<'PY'
import coursekit as ck, torch
from coursekit.widgets import change_of_variables_playground
pg = change_of_variables_playground(grid_size=40)
pg.update(angle=0.5)
assert pg.image.value[:4] == b"\x89PNG"
import ipywidgets, torchdiffeq
print("ok: coursekit", ck.__version__, "with torch", torch.__version__, "ipywidgets", ipywidgets.__version__)
PY
echo "unchanged by the install:"; cat "$WORK/before.txt"
