"""Plots for the notebooks (Spanish titles and labels; English code).

* :mod:`coursekit.viz.images` — mosaics, figure pixels, GIFs (NumPy only; lesson 08 uses it too);
* :mod:`coursekit.viz.densities` — densities on grids, lattices, samples, |det J_f| (PyTorch).

``viz.make_grid`` etc. resolve lazily, so ``coursekit.viz.images`` never imports PyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

_IMAGES = {"figure_to_array", "figure_to_png", "gif_bytes", "save_gif", "tile_images", "to_uint8"}


def __getattr__(name: str) -> Any:
    if name in {"images", "densities"}:
        return importlib.import_module(f"{__name__}.{name}")
    module = importlib.import_module(f"{__name__}.{'images' if name in _IMAGES else 'densities'}")
    try:
        return getattr(module, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
