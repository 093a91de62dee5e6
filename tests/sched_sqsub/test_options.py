"""scheduler_args -> sqsub options, and the checks made before submission."""

from __future__ import annotations

import datetime

import pytest
from psyrun.exceptions import SchedulerArgumentError
from psyrun_sched_sqsub.options import check_values, format_memory, format_timelimit, sqsub_options
from psyrun_sched_sqsub.scheduler import Sqsub


def test_required_options_and_default_cpu_count():
    assert sqsub_options({"timelimit": "1h", "memory": "1G"}) == [
        "-r", "1h", "--mpp=1G", "-n", "1"]


def test_every_option_maps_to_its_sqsub_flag():
    options = sqsub_options({"timelimit": "90", "memory": "2.5g", "n_cpus": 4, "n_nodes": 2,
                             "queue": "threaded"})
    assert options == ["-r", "90", "--mpp=2.5g", "-n", "4", "-N", "2", "-q", "threaded"]


@pytest.mark.parametrize("value, expected", [
    ("30m", "30m"), ("1.5h", "1.5h"), ("7d", "7d"), (45, "45"),
    (datetime.timedelta(minutes=90), "90"), (datetime.timedelta(seconds=61), "2"),
])
def test_timelimit_formats(value, expected):
    assert format_timelimit(value) == expected


@pytest.mark.parametrize("value", ["1 hour", "1:00:00", "-5", "0", "h", 1.5, None, True])
def test_bad_timelimit_is_refused_naming_the_option(value):
    with pytest.raises(SchedulerArgumentError, match="timelimit"):
        format_timelimit(value)


@pytest.mark.parametrize("value, expected", [("1G", "1G"), ("500M", "500M"), (512, "512M"),
                                             ("2gb", "2gb")])
def test_memory_formats(value, expected):
    assert format_memory(value) == expected


@pytest.mark.parametrize("value", ["lots", "1 G", "0M", -1, 2.5, None])
def test_bad_memory_is_refused_naming_the_option(value):
    with pytest.raises(SchedulerArgumentError, match="memory"):
        format_memory(value)


@pytest.mark.parametrize("key, value", [("n_cpus", 0), ("n_cpus", "2"), ("n_nodes", -1),
                                        ("queue", "a b")])
def test_bad_counts_and_queues_are_refused(key, value):
    with pytest.raises(SchedulerArgumentError, match=key):
        check_values({key: value})


@pytest.mark.parametrize("missing", ["timelimit", "memory"])
def test_missing_required_argument_is_named(missing):
    args = {"timelimit": "1h", "memory": "1G"}
    del args[missing]
    with pytest.raises(SchedulerArgumentError, match=missing):
        Sqsub().validate_args(args, "task:job")
    with pytest.raises(SchedulerArgumentError, match=missing):
        sqsub_options(args)


def test_unknown_argument_is_refused_naming_the_known_ones():
    with pytest.raises(SchedulerArgumentError) as info:
        Sqsub().validate_args({"timelimit": "1h", "memory": "1G", "walltime": "1h"})
    assert "walltime" in str(info.value) and "timelimit" in str(info.value)


def test_callables_of_the_job_name_are_checked_with_the_name():
    args = {"timelimit": lambda name: "6h" if name.endswith(":merge") else "soon",
            "memory": "1G"}
    Sqsub().validate_args(args, "task:merge")
    with pytest.raises(SchedulerArgumentError, match="timelimit"):
        Sqsub().validate_args(args, "task:split")
    Sqsub().validate_args(args)  # without a name the callable is not called


def test_a_callable_that_raises_is_reported_with_the_job_name():
    args = {"timelimit": lambda name: 1 / 0, "memory": "1G"}
    with pytest.raises(SchedulerArgumentError, match="task:split"):
        Sqsub().validate_args(args, "task:split")
