"""The scheduler section ``psy new-task --scheduler slurm`` writes into a task file."""

from __future__ import annotations

from psyrun_sched_slurm.sbatch_options import describe

_EXAMPLES = {
    "timelimit": '"1:00:00"',
    "memory": '"4G"',
    "memory_per_cpu": '"1G"',
    "n_cpus": "1",
    "n_nodes": "1",
    "cores_per_socket": "4",
    "sockets_per_node": "1",
    "partition": '"compute"',
    "account": '"def-mylab"',
    "qos": '"normal"',
    "gres": '"gpu:1"',
    "constraint": '"skylake"',
    "max_running": "100",
    "sbatch_args": '["--exclusive"]',
}


def task_template() -> str:
    """Commented Python: every scheduler_args key with its sbatch option and an example."""
    lines = [
        'scheduler = "slurm"',
        "# Each job is submitted with sbatch; uncomment what your cluster needs.",
        "# A value may also be a function of the job name, e.g.",
        '#     "memory": lambda name: "8G" if name.endswith(":merge") else "2G",',
        "scheduler_args = {",
    ]
    for key, option, meaning in describe():
        lines.append(f"    # {key!r}: {_EXAMPLES[key]},  # {option}: {meaning}")
    lines.append("}")
    return "\n".join(lines) + "\n"
