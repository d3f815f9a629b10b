"""Slider playgrounds (core ipywidgets + matplotlib, updated in place)."""

from .change_of_variables import change_of_variables_playground
from .core import Latency, Playground, measure_latency

__all__ = ["Latency", "Playground", "change_of_variables_playground", "measure_latency"]
