"""Input checks shared by every layer: a clear ``TypeError``/``ValueError`` naming what was
expected and what came, raised before any state changes.

Importing this module does not import PyTorch (the TensorFlow lesson uses it too)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor

_VALIDATE = True


def set_validation(enabled: bool) -> None:
    """Switch tensor input checks on or off (they cost one device sync per call)."""
    global _VALIDATE
    _VALIDATE = bool(enabled)


def positive_int(value: object, name: str) -> int:
    """``int(value)`` if it is an integer ≥ 1 (Python or NumPy, not a bool), else ``ValueError`` naming ``name``."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:  # np.bool_ is no Integral
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)



def event_shape_of(dim: object, name: str = "dim") -> tuple[int, ...]:
    """The event shape of a layer: an int ``D`` gives ``(D,)``; a shape ``(C, H, W)`` is kept.

    Raises ``ValueError`` naming ``name`` unless every entry is a positive int (not a bool)."""
    shape = (dim,) if isinstance(dim, int) else tuple(dim) if isinstance(dim, Sequence) else None
    if shape is None or len(shape) not in (1, 3) or any(
            not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in shape):
        raise ValueError(f"{name} must be an int D or a shape (C, H, W) of positive ints, got {dim!r}")
    return shape


def one_of(value: object, choices: Collection, name: str) -> object:
    """``value`` if it is one of ``choices``, else ``ValueError`` listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_input(x: object, name: str, event_shape: Sequence[int] | None = None, *,
                like: object = None) -> Tensor:
    """Raise a clear ``TypeError``/``ValueError`` unless ``x`` is a finite, non-empty float batch.

    ``event_shape`` is the expected shape of one sample (``None``: any, at least 1-D).
    ``like`` (a ``torch.dtype``, a tensor, or ``None``: no check) is the floating dtype ``x``
    must have, e.g. that of the layer's parameters: a float64 batch into a float32 layer is
    rejected naming both dtypes (no silent cast), except under ``torch.autocast``, where
    mixed dtypes are the point.
    """
    import torch  # here, not at the top: the module stays importable without PyTorch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not _VALIDATE:
        return x
    if not x.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype (float32/float64), got {x.dtype}")
    expected = like.dtype if isinstance(like, torch.Tensor) else like
    if expected is not None and x.dtype != expected and not torch.is_autocast_enabled(x.device.type):
        raise ValueError(
            f"{name} has dtype {x.dtype} but the layer's parameters are {expected}; convert one of them, "
            f"e.g. {name}.to({expected}) or layer.to({x.dtype})"
        )
    if event_shape is not None:
        event_shape = tuple(event_shape)
        k = len(event_shape)
        if x.dim() != k + 1 or tuple(x.shape[1:]) != event_shape:
            raise ValueError(
                f"{name} must have shape (batch, {', '.join(map(str, event_shape))}), "
                f"got {tuple(x.shape)}"
            )
    elif x.dim() < 2:
        raise ValueError(f"{name} must have shape (batch, ...) with a batch dimension, got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(x.shape)}); pass at least one sample")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    return x


def finite_float(value: object, name: str) -> float:
    """``float(value)`` if it is a finite real number, else ``ValueError`` naming ``name``.

    Python and NumPy numbers and one-element arrays/tensors qualify; bools and strings do not."""
    numpy_bool = type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")
    bad = isinstance(value, (bool, str, bytes)) or numpy_bool or not hasattr(value, "__float__")
    try:
        out = float(value) if not bad else math.nan
    except (TypeError, ValueError, RuntimeError):
        bad = True
    if bad or not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return out


__all__ = ["check_input", "event_shape_of", "finite_float", "one_of", "positive_int", "set_validation"]
