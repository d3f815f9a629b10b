"""Continuous-time models over torchdiffeq: Neural ODEs (lesson 05) and CNF / FFJORD (lesson 06).

Vector fields share torchdiffeq's signature ``f(t, x) -> dx/dt``; lesson 07 trains the same
``MLPField`` with flow matching and compares against :func:`train_ffjord`.
"""

from .cnf import CNF, AugmentedDynamics, divergence_exact, divergence_hutchinson, sample_noise
from .fields import LinearField, MLPField, ODEFunc, ResNetField, SpiralField, time_column
from .neural_ode import NeuralODE, NFECounter, euler_resnet, odeint_any
from .training import FFJORDResult, evaluate_nll, load_ffjord, make_ffjord, train_ffjord

__all__ = [
    "CNF",
    "AugmentedDynamics",
    "FFJORDResult",
    "LinearField",
    "MLPField",
    "NFECounter",
    "NeuralODE",
    "ODEFunc",
    "ResNetField",
    "SpiralField",
    "divergence_exact",
    "divergence_hutchinson",
    "euler_resnet",
    "evaluate_nll",
    "load_ffjord",
    "make_ffjord",
    "odeint_any",
    "sample_noise",
    "time_column",
    "train_ffjord",
]
