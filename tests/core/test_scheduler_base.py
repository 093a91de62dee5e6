"""Tests of the scheduler interface's shared helpers."""

from __future__ import annotations

import pytest
from psyrun.exceptions import SchedulerArgumentError
from psyrun.scheduler.base import (
    ARRAY_INDEX,
    JobState,
    check_known_args,
    combine_states,
    evaluate_scheduler_args,
    substitute_index,
)

Q, R, C, F, X, U = (JobState.QUEUED, JobState.RUNNING, JobState.COMPLETED, JobState.FAILED,
                    JobState.CANCELLED, JobState.UNKNOWN)


@pytest.mark.parametrize(
    ("elements", "expected"),
    [
        ([C, C], C),
        ([Q, Q], Q),
        ([Q, C], R),
        # An early failure must not make an array look finished: wait() would return
        # while other elements still run.
        ([F, R], R),
        ([F, Q], R),
        ([F, C, X], F),
        ([X, C], X),
        ([U, C], U),
        ([], U),
    ],
)
def test_array_state_from_elements(elements, expected):
    assert combine_states(elements) is expected


def test_only_finished_states_are_final():
    assert {s for s in JobState if s.finished} == {C, F, X}


def test_index_placeholder_is_replaced_in_every_argument():
    assert substitute_index(["a", f"x{ARRAY_INDEX}", ARRAY_INDEX], 7) == ["a", "x7", "7"]


def test_callable_scheduler_args_get_the_job_name():
    args = evaluate_scheduler_args({"timelimit": lambda name: f"{len(name)}:00", "n": 2}, "t:job")
    assert args == {"timelimit": "5:00", "n": 2}


def test_callable_scheduler_arg_that_raises_is_reported_with_key_and_job():
    by_job = {"t:split": 5}
    with pytest.raises(SchedulerArgumentError,
                       match=r"'timelimit'.*'t:merge'.*KeyError") as raised:
        evaluate_scheduler_args({"timelimit": lambda name: by_job[name]}, "t:merge")
    assert isinstance(raised.value.__cause__, KeyError)


def test_unknown_and_missing_scheduler_args_are_named():
    with pytest.raises(SchedulerArgumentError, match=r"bogus.*Known: memory, timelimit"):
        check_known_args({"bogus": 1}, ["timelimit", "memory"], "Test")
    with pytest.raises(SchedulerArgumentError, match="'memory'"):
        check_known_args({"timelimit": 1}, ["timelimit", "memory"], "Test", required=["memory"])
