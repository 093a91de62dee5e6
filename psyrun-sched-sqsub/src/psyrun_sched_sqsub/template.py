"""The scheduler section that ``psy new-task --scheduler sqsub`` writes."""

from __future__ import annotations

TASK_TEMPLATE = '''\
# Jobs go to Sharcnet's sqsub, one sqsub job per job of the task (sqsub has no
# job arrays).  Every value may also be a function of the job's name, which is
# "<task>:<job>", for example
#     "timelimit": lambda name: "6h" if name.endswith(":merge") else "1h",
scheduler_args = {
    # sqsub -r, required: the run time of each job, in minutes or with the
    # unit m, h or d ("30m", "2h", "1d").
    "timelimit": "1h",
    # sqsub --mpp, required: the memory of each process ("500M", "2G").
    "memory": "1G",
    # sqsub -n: CPUs per job (default: the task's pool_size).
    # "n_cpus": 1,
    # sqsub -N: the number of nodes the CPUs are spread over.
    # "n_nodes": 1,
    # sqsub -q: the queue ("serial", "threaded", "mpi" or a dedicated queue).
    # "queue": "serial",
}
'''


def task_template() -> str:
    """The commented ``scheduler_args`` for a new task file."""
    return TASK_TEMPLATE
