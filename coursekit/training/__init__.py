"""Above the models: the training loop and the checkpoint format.

* :mod:`coursekit.training.loop` — ``fit()`` (tqdm, atomic checkpoints, exact resume, NaN guard), ``smooth``;
* :mod:`coursekit.training.checkpoints` — ``save`` / ``load`` (one format, SHA-256-verified shipped files);
* :mod:`coursekit.training.distributed` — ``init()`` for ``torchrun`` (DDP, gloo/nccl): ``fit(distributed=...)``
  trains on several processes, each on its share of the same global batch;
* :mod:`coursekit.training.tf_run` — ``TrainingRun``, the TensorFlow counterpart of ``fit`` (lesson 08);
* :mod:`coursekit.training.memory` — peak memory of a training step (lesson 05's adjoint comparison).

``fit`` and ``smooth`` (PyTorch) are imported on first use (PEP 562), so that lesson 08
(TensorFlow) can use ``coursekit.training.tf_run`` without loading PyTorch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..core.history import History, NonFiniteError

if TYPE_CHECKING:
    from .loop import fit, smooth

_LAZY = {"fit": "loop", "smooth": "loop"}


def __getattr__(name: str) -> Any:  # PEP 562: PyTorch's training loop loads PyTorch only when asked for
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["History", "NonFiniteError", "fit", "smooth"]
