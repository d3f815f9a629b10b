"""Slider playgrounds (core ipywidgets + matplotlib, updated in place), one per lesson.

The lesson playgrounds load on first access, so ``coursekit.widgets`` stays light.
"""

import importlib

from .core import Latency, Playground, measure_latency

_PLAYGROUNDS = {
    "change_of_variables_playground": "change_of_variables",  # lesson 01
    "planar_radial_playground": "planar_radial",  # lesson 02
    "glow_steps_playground": "glow_steps",  # lesson 03
    "temperature_playground": "glow_steps",  # lesson 03
    "draw_architecture": "glow_steps",  # lesson 03
    "fixed_point_playground": "iresnet_playground",  # lesson 04
    "flow_matching_playground": "flow_matching",  # lesson 07
    "vae_latent_playground": "autoencoders",  # lesson 08
    "flow_playground": "video",  # lesson 09
}


def __getattr__(name: str):
    if name in _PLAYGROUNDS:
        return getattr(importlib.import_module(f"{__name__}.{_PLAYGROUNDS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Latency", "Playground", "measure_latency", *_PLAYGROUNDS]
