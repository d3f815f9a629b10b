"""One module per notebook: the lesson's recipes, above the models and the training loop.

A recipe is what a notebook does with the models: train them for the lesson, run its
experiments and comparisons, and rebuild its shipped checkpoints. The formulas stay in the
model packages (``coursekit.flows``, ``continuous``, ``matching``, ``video``, ``tf``).

=====  =========================  ======================================
 nb     module                      shipped checkpoint kinds
=====  =========================  ======================================
 01     ``change_of_variables``
 02     ``planar_radial``           ``vi``
 03     ``glow``                    ``glow``
 04     ``iresnet``
 05     ``neural_ode``
 06     ``cnf``                     ``ffjord``
 07     ``flow_matching``           ``fm_image_field``
 08     ``autoencoders`` (TF)
 09     ``video``                   ``video``
 –      ``coursekit.evaluation``    ``mnist_classifier`` (the metric's classifier)
=====  =========================  ======================================

:func:`load_model` reads any checkpoint (:func:`coursekit.training.checkpoints.load`) and
rebuilds its model with the lesson module that owns its ``kind``.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the checkpoint format is PyTorch's: imported on first use, so lesson 08 stays without it
    from ..training.checkpoints import Checkpoint

LESSONS = ("change_of_variables", "planar_radial", "glow", "iresnet", "neural_ode", "cnf", "flow_matching",
           "autoencoders", "video")

#: checkpoint kind -> the lesson module whose ``from_checkpoint(ckpt, device)`` rebuilds the model
BUILDERS = {"vi": "planar_radial", "glow": "glow", "ffjord": "cnf", "fm_image_field": "flow_matching",
            "video": "video", "mnist_classifier": "coursekit.evaluation.classifier"}  # dotted: a full module name


def __getattr__(name: str) -> Any:  # lazy: lesson 08 imports TensorFlow, the others PyTorch
    if name in LESSONS:
        return importlib.import_module(f"{__name__}.{name}")
    if name in ("Checkpoint", "load"):  # kept as names of this module (PyTorch, loaded when asked for)
        return getattr(importlib.import_module("..training.checkpoints", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_model(name_or_path: str | os.PathLike, *, device=None, allow_download: bool | None = None) -> Checkpoint:
    """A shipped checkpoint (``"glow_mnist.pt"``) or your own file, with its model rebuilt.

    Returns the :class:`~coursekit.training.checkpoints.Checkpoint` with ``.model`` set (in
    eval mode, on ``device``, default CPU) next to ``.config`` and ``.meta``.
    """
    from ..training.checkpoints import load

    ckpt = load(name_or_path, allow_download=allow_download)
    if ckpt.kind not in BUILDERS:
        raise ValueError(f"{ckpt.path} holds a {ckpt.kind!r} checkpoint; models can be rebuilt for the kinds "
                         f"{sorted(BUILDERS)}")
    module = BUILDERS[ckpt.kind]
    lesson = importlib.import_module(module if "." in module else f"{__name__}.{module}")
    ckpt.model = lesson.from_checkpoint(ckpt, device or "cpu")
    return ckpt


__all__ = ["BUILDERS", "LESSONS", "load_model"]
