"""The Lyapunov exponent of the logistic map x -> r x (1 - x) over a grid of r.

Negative exponents mark stable cycles, positive ones chaos.  Numeric results
suit the NumPy store: the result is ``psy-work/logistic/result.npz``.
"""

import math

from psyrun import Param

pspace = Param(r=[2.5 + 1.5 * i / 99 for i in range(100)])
store = "npz"
min_items = 25


def execute(r, n_steps=2_000, burn_in=500):
    x, total = 0.4, 0.0
    for step in range(n_steps):
        x = r * x * (1.0 - x)
        if step >= burn_in:
            total += math.log(abs(r * (1.0 - 2.0 * x)) + 1e-300)
    return {"lyapunov": total / (n_steps - burn_in)}
