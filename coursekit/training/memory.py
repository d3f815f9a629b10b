"""Peak tensor memory of a computation (e.g. one training step), on any device.

An instrument, next to the training loop: lesson 05 measures with it what the adjoint saves
(``coursekit.lessons.neural_ode.adjoint_memory_table``); model packages never import it.

On CUDA, ``torch.cuda.max_memory_allocated`` is the allocator's own peak. On CPU there is
no allocator counter (and ``tracemalloc`` does not see PyTorch's buffers), so
:class:`TensorMemoryTracker` follows every tensor storage created by an operator (a
``TorchDispatchMode`` sees forward *and* backward ops) and frees it when its storage dies:
its peak is the most tensor memory alive at once — activations kept for backward included.

Taught in: notebook 05.
"""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class TensorMemoryTracker(TorchDispatchMode):
    """Count bytes of tensor storages created inside the ``with`` block; keep the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self._alive: dict[int, int] = {}  # storage data_ptr -> bytes

    def _free(self, key: int) -> None:
        self.current -= self._alive.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key == 0 or key in self._alive:
                    continue  # an empty tensor, or a view of a storage already counted
                self._alive[key] = storage.nbytes()
                self.current += storage.nbytes()
                self.peak = max(self.peak, self.current)
                weakref.finalize(storage, self._free, key)
        return out


@dataclass
class MemoryTime:
    """Peak memory (bytes above what existed before) and wall time of one call."""

    peak_bytes: int
    seconds: float
    how: str  # "cuda allocator" or "tensor tracker"


def measure_peak_memory(fn: Callable[[], object], device: torch.device | str = "cpu") -> MemoryTime:
    """Run ``fn()`` once; return its peak extra tensor memory and its wall time."""
    device = torch.device(device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize(device)
        return MemoryTime(torch.cuda.max_memory_allocated(device) - base, time.perf_counter() - t0, "cuda allocator")
    tracker = TensorMemoryTracker()
    t0 = time.perf_counter()
    with tracker:
        fn()
    return MemoryTime(tracker.peak, time.perf_counter() - t0, "tensor tracker")


__all__ = ["MemoryTime", "TensorMemoryTracker", "measure_peak_memory"]
