"""Items of very uneven duration, shared out by the load-balancing backend.

Each assignment waits for a time drawn from an exponential distribution (a
few long items among many short ones), the situation in which equal batches
leave most workers idle while one grinds through its long items.  Here two
workers with two processes each keep taking the next unprocessed item until
none is left.  ``setup`` receives a distinct ``proc_id`` in every process
(0 to 3), which the result records in the ``worker`` column.

Run it with ``psy run uneven``; ``psy status uneven`` shows how many items
are done, in progress and missing while it runs.
"""

import random
import time

from psyrun import Param

pspace = Param(seed=range(40)) * Param(scale=[0.01, 0.05])
backend = "load-balancing"
max_jobs = 2
pool_size = 2


def setup(proc_id):
    return {"worker": proc_id}


def execute(seed, scale, worker):
    duration = random.Random(seed).expovariate(1.0 / scale)
    time.sleep(duration)
    return {"duration": duration, "worker": worker}
