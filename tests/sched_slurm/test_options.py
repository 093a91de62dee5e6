"""scheduler_args -> sbatch options, validation and the task template (no cluster needed)."""

from __future__ import annotations

import datetime

import pytest
from psyrun.exceptions import SchedulerArgumentError
from psyrun_sched_slurm import Slurm
from psyrun_sched_slurm.arrays import Chunk, array_spec, split
from psyrun_sched_slurm.sbatch_options import (
    KNOWN_ARGS,
    depends_option,
    max_running,
    sbatch_options,
)


def test_every_documented_key_becomes_its_sbatch_option():
    args = {
        "timelimit": "1:30:00", "memory": "4G", "memory_per_cpu": 500, "n_cpus": 4,
        "n_nodes": 2, "cores_per_socket": 8, "sockets_per_node": 2, "partition": "gpu",
        "account": "def-lab", "qos": "high", "gres": "gpu:1", "constraint": "skylake",
        "sbatch_args": ["--exclusive", "--mail-type=END"],
    }
    assert sbatch_options(args, "task:process") == [
        "--time=1:30:00", "--mem=4G", "--mem-per-cpu=500", "--cpus-per-task=4", "--nodes=2",
        "--cores-per-socket=8", "--sockets-per-node=2", "--partition=gpu", "--account=def-lab",
        "--qos=high", "--gres=gpu:1", "--constraint=skylake", "--exclusive", "--mail-type=END",
    ]


def test_values_may_be_functions_of_the_job_name():
    args = {"memory": lambda name: "8G" if name.endswith(":merge") else "1G",
            "max_running": lambda name: 3}
    assert sbatch_options(args, "t:merge") == ["--mem=8G"]
    assert sbatch_options(args, "t:process") == ["--mem=1G"]
    assert max_running(args, "t:process") == 3


def test_a_function_that_raises_is_refused_naming_the_key_and_the_job():
    args = {"memory": lambda name: {"t:split": "1G"}[name]}
    Slurm().validate_args(args, "t:split")
    with pytest.raises(SchedulerArgumentError, match=r"'memory'.*'t:merge'"):
        Slurm().validate_args(args, "t:merge")


def test_timedelta_timelimit_and_none_values():
    args = {"timelimit": datetime.timedelta(days=1, hours=2, minutes=3, seconds=4), "qos": None}
    assert sbatch_options(args, "t:j") == ["--time=1-02:03:04"]


def test_unknown_key_is_refused_naming_every_known_key():
    with pytest.raises(SchedulerArgumentError) as info:
        Slurm().validate_args({"walltime": "1:00:00"})
    message = str(info.value)
    assert "walltime" in message
    for key in KNOWN_ARGS:
        assert key in message


@pytest.mark.parametrize("args, words", [
    ({"sbatch_args": "--exclusive"}, "list of strings"),
    ({"n_cpus": "four"}, "positive integer"),
    ({"max_running": 0}, "positive integer"),
    ({"memory": True}, "memory per node"),
])
def test_malformed_values_are_refused_with_what_to_give(args, words):
    with pytest.raises(SchedulerArgumentError, match=words):
        Slurm().validate_args(args)


def test_callable_values_are_checked_once_resolved_for_a_job():
    scheduler = Slurm()
    scheduler.validate_args({"n_cpus": lambda name: 0})  # cannot know without a job name
    with pytest.raises(SchedulerArgumentError, match="n_cpus"):
        scheduler.validate_args({"n_cpus": lambda name: 0}, name="t:process")


def test_dependencies_cancel_the_job_when_one_fails():
    assert depends_option([]) == []
    assert depends_option(["12", "13"]) == ["--dependency=afterok:12:13",
                                            "--kill-on-invalid-dep=yes"]
    assert depends_option(["12"], after_any=["20"]) == [
        "--dependency=afterok:12,afterany:20", "--kill-on-invalid-dep=yes"]


def test_arrays_are_split_at_max_array_size_with_offsets():
    assert split(25, 11) == [Chunk(0, 11), Chunk(11, 11), Chunk(22, 3)]
    assert split(11, 11) == [Chunk(0, 11)]
    assert split(3, 0) == [Chunk(0, 1), Chunk(1, 1), Chunk(2, 1)]
    chunks = split(10_000, 1001)
    assert sum(c.count for c in chunks) == 10_000
    assert [c.offset for c in chunks] == list(range(0, 10_000, 1001))
    assert array_spec(Chunk(22, 3)) == "0-2"
    assert array_spec(Chunk(0, 11), max_running=4) == "0-10%4"


def test_task_template_is_python_that_names_every_key_and_option():
    text = Slurm.task_template()
    namespace: dict = {}
    exec(compile(text, "<template>", "exec"), namespace)
    assert namespace["scheduler"] == "slurm"
    assert namespace["scheduler_args"] == {}  # everything commented out
    for key in KNOWN_ARGS:
        assert f"'{key}'" in text
    assert "--mem-per-cpu" in text and "--time" in text
