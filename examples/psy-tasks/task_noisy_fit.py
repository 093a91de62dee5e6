"""Fit polynomials of several degrees to one noisy data set; compare their errors.

``setup`` runs once in each worker process: it builds the data set, which
every ``execute`` call in that process then receives as the keyword argument
``data`` instead of rebuilding it.  Two processes per job (``pool_size``).
"""

from psyrun import Param

pspace = Param(degree=range(1, 9)) * Param(noise=[0.05, 0.2])
pool_size = 2
max_jobs = 2
exclude_from_result = ["coefficients"]  # computed, but too bulky to keep


def setup(proc_id):
    import numpy as np

    x = np.linspace(-1.0, 1.0, 200)
    return {"data": (x, np.sin(3.0 * x))}


def execute(degree, noise, data):
    import numpy as np

    x, clean = data
    rng = np.random.default_rng(degree)
    train = clean + rng.normal(scale=noise, size=x.shape)
    coefficients = np.polynomial.polynomial.polyfit(x[::2], train[::2], degree)
    predicted = np.polynomial.polynomial.polyval(x[1::2], coefficients)
    return {
        "test_error": float(np.sqrt(np.mean((predicted - clean[1::2]) ** 2))),
        "coefficients": coefficients,
    }
