"""Slider playgrounds that update one figure in place.

The figure is built once; a slider change calls ``draw(params)``, which updates artists
(``set_data``, ``set_array``). Artists created with ``animated=True`` are the moving
parts: the static background (axes, ticks, titles) is rendered once and cached, and each
update only blits the moving artists over it (Agg), encodes the pixels as PNG and shows
them in a single ``ipywidgets.Image``. No new figure per move (Colab's ``interact`` stacks plots), no
ipympl, no custom widgets: it works in JupyterLab and Colab as they come.

Values set from code stay where the code puts them. With ipywidgets 8 the browser answers
every value a ``FloatSlider`` receives from the kernel with the value its slider computed
(rounded to the step, with float noise), and those answers reach the kernel after the cell
that set the values has finished: the answer to an earlier value would overwrite the last
one. ``Playground`` drops such stale answers and sends the last value again;
:func:`measure_latency` times a playground without moving its controls at all.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import numbers
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg

# the smallest text a playground figure may show, in screen pixels (at 1:1 display)
MIN_FONT_PX = 10.0
# width of the figure on screen: JupyterLab's output column at a 1400-px-wide window is
# ~1000 px; narrower figures are never scaled down by the browser
MAX_FIGURE_PX = 960


# compact lines in the status box (ipywidgets' HTML sets a 28-px line height), so that its
# fixed height holds them
STATUS_CSS = ("<style>.coursekit-status .widget-html-content {line-height: 1.35; margin-top: 4px;}"
              "</style>")


@dataclass
class Latency:
    """Update latency in milliseconds over ``n`` updates: what the kernel spends per move
    (``draw`` + blit + PNG encoding). The browser adds sending and painting the PNG
    (``tests/test_browser_playground.py`` measures key press → new image)."""

    median_ms: float
    p95_ms: float
    n: int

    def __str__(self) -> str:
        return (f"mediana {self.median_ms:.1f} ms, p95 {self.p95_ms:.1f} ms ({self.n} actualizaciones;"
                " en Python: cálculo + dibujo + PNG, sin contar el navegador)")


def _label(name: str, ctrl) -> str:
    desc = getattr(ctrl, "description", "")
    return f"control {name!r}" + (f" ({desc!r})" if desc and desc != name else "")


def _is_numeric_slider(ctrl) -> bool:
    """A linear numeric control (min, max, step); a log slider's min/max are exponents."""
    return (all(hasattr(ctrl, a) for a in ("min", "max", "step")) and not hasattr(ctrl, "_options_values")
            and not isinstance(ctrl, W.FloatLogSlider))


def _grid_tol(ctrl) -> float:
    return 1e-6 * float(ctrl.step or 1.0)


def check_control_value(name: str, ctrl, value):
    """The value ``ctrl`` will hold if set to ``value`` from code, or a clear error.

    Numeric sliders: a finite real number in ``[min, max]`` on the slider's grid
    ``min + k·step`` (returned exactly on the grid); selections: one of the option values;
    check boxes and toggles: a bool."""
    label = _label(name, ctrl)
    if hasattr(ctrl, "_options_values"):  # ToggleButtons, Dropdown, SelectionSlider, ...
        options = list(ctrl._options_values)
        for option in options:
            if type(option) is type(value) or isinstance(option, numbers.Real) and isinstance(value, numbers.Real):
                if option == value:
                    return option
        raise ValueError(f"{label}: {value!r} is not one of its options {options}")
    if isinstance(ctrl, (W.Checkbox, W.ToggleButton)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{label}: expected True or False, got {value!r} ({type(value).__name__})")
        return bool(value)
    if _is_numeric_slider(ctrl):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{label}: expected a number, got {value!r} ({type(value).__name__})")
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"{label}: the value must be finite, got {v}")
        lo, hi, step = float(ctrl.min), float(ctrl.max), float(ctrl.step or 1.0)
        tol = _grid_tol(ctrl)
        if not lo - tol <= v <= hi + tol:
            raise ValueError(f"{label}: {v} is outside the slider's range [{lo:g}, {hi:g}]")
        k = round((v - lo) / step)
        on_grid = lo + k * step
        if abs(v - on_grid) > tol:
            raise ValueError(f"{label}: {v} is not on the slider's grid (min {lo:g} + k·{step:g}); "
                             f"the nearest values are {lo + math.floor((v - lo) / step) * step:.6g} "
                             f"and {lo + math.ceil((v - lo) / step) * step:.6g}")
        if isinstance(ctrl.value, numbers.Integral) and not isinstance(ctrl.value, bool):
            return int(round(on_grid))
        return min(max(round(on_grid, 12), lo), hi)
    return value


def _same(a, b, tol: float) -> bool:
    if isinstance(a, numbers.Real) and isinstance(b, numbers.Real) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= tol
    return a == b


def min_font_px(fig, dpi: float | None = None) -> float:
    """The smallest font size among the figure's visible texts, in pixels at ``dpi``."""
    dpi = dpi or fig.get_dpi()
    sizes = [t.get_fontsize() for t in fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))
             if t.get_visible() and t.get_text()]
    return min(sizes) * dpi / 72 if sizes else math.inf


def enlarge_small_fonts(fig, dpi: float, min_px: float = MIN_FONT_PX) -> bool:
    """Raise every text smaller than ``min_px`` (at ``dpi``) to ``min_px``; True if one changed."""
    min_pt = min_px * 72 / dpi
    changed = False
    for t in fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "set_fontsize")):
        if t.get_fontsize() < min_pt - 1e-9:
            t.set_fontsize(min_pt)
            changed = True
    return changed


class Playground:
    """``controls`` (name → widget) drive ``draw(params)``; ``update()`` is the measured step.

    ``draw`` updates the figure's artists in place and may return an HTML status line
    (e.g. a live numerical check) shown beside the controls. ``draw`` must not move the
    controls (a control that changes others, e.g. "which layer", does so in its own
    observer, registered before the playground is built).

    Layout: the figure is shown 1:1 (``dpi`` chosen so that it is at most
    ``MAX_FIGURE_PX`` wide, and texts smaller than ``MIN_FONT_PX`` enlarged), the controls
    in a column of fixed width with room for every label, the status in a box of fixed
    height, so that nothing moves the figure when the status changes.

    ``memory``: a dict the controls' own observers write (e.g. the values of every layer);
    an ``update`` whose overrides fail puts it back as it was, with the controls.
    """

    def __init__(self, fig, controls: Mapping[str, W.ValueWidget], draw: Callable[[dict], str | None],
                 dpi: float | None = None, status_lines: int = 4, memory: dict | None = None):
        self.fig, self.controls, self.draw = fig, dict(controls), draw
        self._memory = memory  # what the controls' own observers write (e.g. each layer's values)
        plt.close(fig)  # keep the inline backend from showing a second, static copy ...
        self.canvas = FigureCanvasAgg(fig)  # ... and render it ourselves with Agg
        dpi = dpi or min(100.0, MAX_FIGURE_PX / fig.get_figwidth())
        fig.set_dpi(dpi)
        if enlarge_small_fonts(fig, dpi):
            with contextlib.suppress(Exception):
                fig.tight_layout()
        self._background = None
        self._muted = self._putting_back = False
        self._sent: dict[str, list[float]] = {name: [] for name in self.controls}
        width_px = round(fig.get_figwidth() * dpi)
        self.image = W.Image(format="png", layout=W.Layout(width=f"{width_px}px", min_width=f"{width_px}px"))
        self.status = W.HTML(layout=W.Layout(width="440px", min_width="440px", margin="0 0 0 16px",
                                             height=f"{1.35 * status_lines + 0.8:.2f}em", overflow="hidden auto"))
        # a check box shows its description after the box, not in the label column
        label_chars = max([len(getattr(c, "description", "")) for c in self.controls.values()
                           if not isinstance(c, W.Checkbox)] + [4])
        desc_width = f"{label_chars * 0.62 + 1.2:.1f}em"
        for ctrl in self.controls.values():
            if hasattr(ctrl, "style") and hasattr(ctrl.style, "description_width"):
                ctrl.style.description_width = desc_width
            if isinstance(ctrl, W.ToggleButtons):
                ctrl.style.button_width = "auto"
            elif _is_numeric_slider(ctrl) or isinstance(ctrl, (W.SelectionSlider, W.Checkbox)):
                ctrl.layout.width = "100%"  # the whole column: a long track, room for the label
            ctrl.observe(self._on_change, names="value")
        rows = sum(c.layout.display != "none" for c in self.controls.values())
        box = W.VBox(list(self.controls.values()),
                     layout=W.Layout(width="460px", min_width="460px", min_height=f"{rows * 40}px"))
        self.status.add_class("coursekit-status")
        self.widget = W.VBox([W.HTML(STATUS_CSS, layout=W.Layout(height="0px", margin="0")),
                              W.HBox([box, self.status], layout=W.Layout(flex_flow="row nowrap",
                                                                          align_items="flex-start")),
                              self.image])
        self.update()

    @property
    def params(self) -> dict:
        return {name: ctrl.value for name, ctrl in self.controls.items()}

    @property
    def min_font_px(self) -> float:
        """The smallest text of the figure in screen pixels (shown 1:1)."""
        return min_font_px(self.fig)

    @contextlib.contextmanager
    def muted(self):
        """Move controls inside ``with playground.muted():`` without a redraw per move."""
        previous, self._muted = self._muted, True
        try:
            yield
        finally:
            self._muted = previous

    def _on_change(self, change) -> None:
        ctrl, new = change["owner"], change["new"]
        name = next(n for n, c in self.controls.items() if c is ctrl)
        if isinstance(ctrl, (W.FloatSlider, W.FloatLogSlider)):
            if self._putting_back:  # our own correction below (ipywidgets still holds the browser's lock)
                self._sent[name].append(float(new))
                return
            lock = getattr(ctrl, "_property_lock", {})
            from_browser = "value" in lock and isinstance(lock["value"], numbers.Real) and lock["value"] == new
            if not from_browser:
                self._sent[name].append(float(new))  # set from code: the browser will answer it
            elif self._stale_answer(name, ctrl, float(new)):
                self._putting_back = True
                try:
                    ctrl.value = self._sent[name][-1]  # put back (and resend) the last value set from code
                finally:
                    self._putting_back = False
                return
        if not self._muted:
            self.update()

    def _stale_answer(self, name: str, ctrl, value: float) -> bool:
        """Whether a value from the browser answers a value set from code that is no longer
        the last one (the browser answers in order; a value matching none is a real move)."""
        sent, tol = self._sent[name], _grid_tol(ctrl)
        idx = next((i for i, v in enumerate(sent) if abs(v - value) <= tol), None)
        if idx is None:
            sent.clear()
            return False
        stale = abs(sent[idx] - sent[-1]) > tol
        del sent[: idx + 1]
        return stale

    def update(self, **overrides) -> None:
        """Redraw with the current control values; ``overrides`` move controls first.

        Every override is checked before anything changes (name, type, finite, range,
        grid: :func:`check_control_value`); they are applied in the order of ``controls``
        (a selector before the sliders it reloads), and afterwards each control must hold
        its requested value, else the controls are put back and a ``ValueError`` names the
        control, the value requested and the value it took."""
        unknown = set(overrides) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown control(s) {sorted(unknown)}; expected some of {sorted(self.controls)}")
        targets = {name: check_control_value(name, self.controls[name], v) for name, v in overrides.items()}
        if targets:
            before = self.params
            saved = copy.deepcopy(self._memory)
            with self.muted():  # one redraw for all overrides, not one per control
                for name, ctrl in self.controls.items():
                    if name in targets:
                        ctrl.value = targets[name]
                wrong = [(n, overrides[n], self.controls[n].value) for n in targets
                         if not _same(self.controls[n].value, targets[n], _grid_tol(self.controls[n])
                                      if _is_numeric_slider(self.controls[n]) else 0.0)]
                if wrong:
                    for name, ctrl in self.controls.items():
                        if ctrl.value != before[name]:
                            ctrl.value = before[name]
                    if self._memory is not None:
                        self._memory.clear()
                        self._memory.update(saved)
                    raise ValueError("; ".join(f"{_label(n, self.controls[n])}: requested {want!r} but it took {got!r}"
                                               " (another control changed it)" for n, want, got in wrong))
        self._show(self.params)

    def _show(self, params: dict) -> None:
        status = self.draw(params)
        if status is not None:
            self.status.value = status
        self.image.value = self.render()

    def preview(self, **overrides) -> bytes:
        """PNG bytes of the figure drawn with ``overrides`` without moving any control
        (what :func:`measure_latency` times). Call ``update()`` afterwards to show the
        controls' state again."""
        unknown = set(overrides) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown control(s) {sorted(unknown)}; expected some of {sorted(self.controls)}")
        self.draw({**self.params, **overrides})
        return self.render()

    def snapshot(self, **overrides) -> np.ndarray:
        """The figure drawn with ``overrides`` as an RGB array (e.g. GIF frames), animated
        artists included, without moving any control; the shown image is left as it was."""
        png = self.preview(**overrides)
        self.draw(self.params)  # the artists back to the controls' state (the shown PNG did not change)
        return np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGB"))

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


def measure_latency(update, settings: Iterable[Mapping], warmup: int = 2) -> Latency:
    """Time one update per setting ``s`` (after ``warmup`` untimed ones).

    ``update`` is a :class:`Playground` or its bound ``update`` method: then each setting is
    drawn and rendered with :meth:`Playground.preview`, so the controls on screen never
    move, and the playground is redrawn for its controls at the end. Any other callable is
    timed as ``update(**s)``."""
    settings = list(settings)
    pg = update if isinstance(update, Playground) else getattr(update, "__self__", None)
    if isinstance(pg, Playground) and (update is pg or getattr(update, "__func__", None) is Playground.update):
        def step(**s):
            pg.preview(**s)
    elif callable(update):
        step, pg = update, None
    else:
        raise TypeError(f"update must be a Playground or a callable, got {type(update).__name__}")
    try:
        for s in settings[:warmup]:
            step(**s)
        times = []
        for s in settings:
            t0 = time.perf_counter()
            step(**s)
            times.append(1000 * (time.perf_counter() - t0))
    finally:
        if pg is not None:
            pg.update()
    if not times:
        raise ValueError("settings is empty: nothing to measure")
    times.sort()
    return Latency(statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))], len(times))
