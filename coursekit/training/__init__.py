"""Above the models: the training loop and the checkpoint format.

* :mod:`coursekit.training.loop` — ``fit()`` (tqdm, atomic checkpoints, exact resume, NaN guard), ``smooth``;
* :mod:`coursekit.training.checkpoints` — ``save`` / ``load`` (one format, SHA-256-verified shipped files);
* :mod:`coursekit.training.distributed` — ``init()`` for ``torchrun`` (DDP, gloo/nccl): ``fit(distributed=...)``
  trains on several processes, each on its share of the same global batch;
* :mod:`coursekit.training.tf_run` — ``TrainingRun``, the TensorFlow counterpart of ``fit`` (lesson 08);
* :mod:`coursekit.training.memory` — peak memory of a training step (lesson 05's adjoint comparison).
"""

from ..core.history import History, NonFiniteError
from .loop import fit, smooth

__all__ = ["History", "NonFiniteError", "fit", "smooth"]
