"""Framework-free pieces shared by the PyTorch (``coursekit.training.loop``) and TensorFlow
(``coursekit.training.tf_run``) training loops: the history of logged scalars and the error
raised when training produces NaN/Inf. Importing this module imports neither framework."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


class NonFiniteError(FloatingPointError):
    """Training produced NaN or Inf; the message names the step and the quantity."""


@dataclass
class History:
    """Logged scalars: ``history["loss"]`` is a list of floats aligned with ``history.steps``."""

    steps: list[int] = field(default_factory=list)
    values: dict[str, list[float]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> list[float]:
        return self.values[name]

    def append(self, step: int, scalars: Mapping[str, float]) -> None:
        self.steps.append(step)
        for k, v in scalars.items():
            self.values.setdefault(k, []).append(v)

    def to_dict(self) -> dict:
        """Plain lists and dicts (what a checkpoint stores)."""
        return {"steps": list(self.steps), "values": {k: list(v) for k, v in self.values.items()}}

    @classmethod
    def from_dict(cls, d: Mapping) -> History:
        return cls(list(d["steps"]), {k: list(v) for k, v in d["values"].items()})

    def truncate(self, n_steps: int) -> History:
        """Only the entries of steps < ``n_steps`` (what a checkpoint at ``n_steps`` covers)."""
        keep = [i for i, s in enumerate(self.steps) if s < n_steps]
        values = {k: [v[i] for i in keep] for k, v in self.values.items()}
        return History([self.steps[i] for i in keep], values)
