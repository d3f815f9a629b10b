"""Slider playgrounds that update one figure in place.

The figure is built once; a slider change calls ``draw(params)``, which updates artists
(``set_data``, ``set_array``). Artists created with ``animated=True`` are the moving
parts: the static background (axes, ticks, titles) is rendered once and cached, and each
update only blits the moving artists over it (Agg), encodes the pixels as PNG and shows
them in a single ``ipywidgets.Image``. No new figure per move (Colab's ``interact`` stacks plots), no
ipympl, no custom widgets: it works in JupyterLab and Colab as they come.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg


@dataclass
class Latency:
    """Update latency in milliseconds over ``n`` updates (figure render included)."""

    median_ms: float
    p95_ms: float
    n: int

    def __str__(self) -> str:
        return f"mediana {self.median_ms:.1f} ms, p95 {self.p95_ms:.1f} ms ({self.n} actualizaciones)"


class Playground:
    """``controls`` (name → widget) drive ``draw(params)``; ``update()`` is the measured step.

    ``draw`` updates the figure's artists in place and may return an HTML status line
    (e.g. a live numerical check) shown beside the sliders.
    """

    def __init__(self, fig, controls: Mapping[str, W.ValueWidget], draw: Callable[[dict], str | None],
                 dpi: float = 80):
        self.fig, self.controls, self.draw = fig, dict(controls), draw
        plt.close(fig)  # keep the inline backend from showing a second, static copy ...
        self.canvas = FigureCanvasAgg(fig)  # ... and render it ourselves with Agg
        fig.set_dpi(dpi)
        self._background = None
        self.image = W.Image(format="png", layout=W.Layout(width=f"{fig.get_figwidth() * dpi:.0f}px"))
        self.status = W.HTML()
        self._muted = False
        for ctrl in self.controls.values():
            ctrl.observe(self._on_change, names="value")
        box = W.VBox(list(self.controls.values()), layout=W.Layout(min_width="300px"))
        self.widget = W.VBox([W.HBox([box, self.status]), self.image])
        self.update()

    @property
    def params(self) -> dict:
        return {name: ctrl.value for name, ctrl in self.controls.items()}

    @contextlib.contextmanager
    def muted(self):
        """Move controls inside ``with playground.muted():`` without a redraw per move."""
        previous, self._muted = self._muted, True
        try:
            yield
        finally:
            self._muted = previous

    def _on_change(self, _change) -> None:
        if not self._muted:
            self.update()

    def update(self, **overrides) -> None:
        """Redraw with the current slider values (``overrides`` move the sliders first)."""
        unknown = set(overrides) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown control(s) {sorted(unknown)}; expected some of {sorted(self.controls)}")
        with self.muted():  # one redraw for all overrides, not one per slider
            for name, value in overrides.items():
                self.controls[name].value = value
        status = self.draw(self.params)
        if status is not None:
            self.status.value = status
        self.image.value = self.render()

    def render(self) -> bytes:
        """Blit the animated artists over the cached background; return PNG bytes."""
        if self._background is None:
            self.canvas.draw()  # animated artists are skipped here
            self._background = self.canvas.copy_from_bbox(self.fig.bbox)
        self.canvas.restore_region(self._background)
        for artist in self.fig.findobj(lambda a: a.get_animated()):
            self.fig.draw_artist(artist)
        pixels = np.asarray(self.canvas.buffer_rgba())[..., :3]
        buf = io.BytesIO()
        PIL.Image.fromarray(pixels).save(buf, format="png", compress_level=1)
        return buf.getvalue()

    def redraw_background(self) -> None:
        """Call after changing a static part (limits, titles): the next render redraws it."""
        self._background = None

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def measure_latency(update: Callable[..., None], settings: Iterable[Mapping], warmup: int = 2) -> Latency:
    """Time ``update(**s)`` for each setting ``s`` (after ``warmup`` untimed calls)."""
    settings = list(settings)
    for s in settings[:warmup]:
        update(**s)
    times = []
    for s in settings:
        t0 = time.perf_counter()
        update(**s)
        times.append(1000 * (time.perf_counter() - t0))
    times.sort()
    return Latency(statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))], len(times))
