"""Estimate pi by throwing random points at a square, for several sample sizes.

The fraction of points inside the quarter circle approaches pi / 4; the
trials show how the spread of the estimate shrinks with the sample size.
Load the result with ``psyrun.load_result("psy-work/pi/result.pkl")``.
"""

import random

from psyrun import Param

pspace = Param(n_samples=[100, 1_000, 10_000, 100_000]) * Param(trial=range(5))

# A handful of assignments per job: starting a job costs more than one item.
min_items = 4


def execute(n_samples, trial):
    rng = random.Random(1_000 * n_samples + trial)  # reproducible per assignment
    inside = sum(1 for _ in range(n_samples) if rng.random() ** 2 + rng.random() ** 2 <= 1.0)
    estimate = 4.0 * inside / n_samples
    return {"pi": estimate, "error": abs(estimate - 3.141592653589793)}
