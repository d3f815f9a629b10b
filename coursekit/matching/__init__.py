"""Flow matching: probability paths, CFM losses, minibatch-OT couplings and few-step samplers.

    from coursekit.matching import GaussianPath, LinearPath, cfm_loss, ot_coupling, euler_sample

Convention: noise at t = 0, data at t = 1; fields have torchdiffeq's signature ``f(t, x)``
with ``t`` of shape (batch,). Taught in: notebook 07 (and reused in notebook 09).
"""

from .couplings import independent_coupling, ot_coupling, ot_permutation, squared_cost, transport_cost
from .losses import cfm_loss, fm_loss
from .marginal import MixtureTarget
from .metrics import energy_distance, sliced_wasserstein, straightness
from .paths import AffinePath, GaussianPath, LinearPath, PathSample, expand_time
from .sampling import CountNFE, euler_sample, midpoint_sample, ode_sample

__all__ = [
    "AffinePath",
    "CountNFE",
    "GaussianPath",
    "LinearPath",
    "MixtureTarget",
    "PathSample",
    "cfm_loss",
    "energy_distance",
    "euler_sample",
    "expand_time",
    "fm_loss",
    "independent_coupling",
    "midpoint_sample",
    "ode_sample",
    "ot_coupling",
    "ot_permutation",
    "sliced_wasserstein",
    "squared_cost",
    "straightness",
    "transport_cost",
]
