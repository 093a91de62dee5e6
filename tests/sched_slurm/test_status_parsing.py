"""Status from recorded squeue and sacct outputs and exit records (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

from psyrun.scheduler.base import JobState
from psyrun_sched_slurm.batch_script import ExitRecord, read_exit_records
from psyrun_sched_slurm.cluster import parse_config
from psyrun_sched_slurm.status import (
    array_status,
    element_status,
    expand_tasks,
    parse_sacct,
    parse_squeue,
)

# Recorded on the test cluster (Slurm 22.05): a running array with a pending
# tail, a job cancelled because its dependency failed, and that dependency.
SQUEUE = """\
21_5|PENDING|Resources
21_4|RUNNING|None
38|CANCELLED|DependencyNeverSatisfied
37|FAILED|NonZeroExitCode
"""
# sacct after the array 21 was cancelled: its pending tail is one line "21".
SACCT = """\
21_0|COMPLETED|0:0|None
21_1|FAILED|2:0|None
21_2|CANCELLED by 0|0:15|None
21|CANCELLED by 0|0:0|None
50_[3-4]|PENDING|0:0|None
51|TIMEOUT|0:15|None
1273|CANCELLED|0:0|Dependency
"""


def status_of(slurm_id, task=None, *, squeue="", sacct="", exit_code=None, submitted=True,
              answered=True):
    return element_status("x", slurm_id=slurm_id, task=task, name="t:j", log=Path("/l"),
                          squeue=parse_squeue(squeue), sacct=parse_sacct(sacct),
                          exit_code=exit_code, submitted=submitted, squeue_answered=answered)


def test_squeue_states_are_normalised_and_pending_reason_kept():
    pending = status_of("21", 5, squeue=SQUEUE)
    assert pending.state is JobState.QUEUED and pending.reason == "Resources"
    assert status_of("21", 4, squeue=SQUEUE).state is JobState.RUNNING


def test_job_cancelled_by_a_failed_dependency_says_so():
    status = status_of("38", squeue=SQUEUE)
    assert status.state is JobState.CANCELLED
    assert "dependency failed" in status.reason and "DependencyNeverSatisfied" in status.reason


def test_failed_job_takes_its_exit_code_from_the_exit_record():
    status = status_of("37", squeue=SQUEUE, exit_code=3)
    assert (status.state, status.exit_code, status.reason) == (JobState.FAILED, 3, "exit code 3")


def test_sacct_says_so_too_when_a_dependency_failed():
    status = status_of("1273", sacct=SACCT)
    assert status.state is JobState.CANCELLED and "dependency failed" in status.reason


def test_sacct_covers_jobs_that_left_squeue():
    assert status_of("21", 0, sacct=SACCT).state is JobState.COMPLETED
    failed = status_of("21", 1, sacct=SACCT)
    assert (failed.state, failed.exit_code) == (JobState.FAILED, 2)
    assert status_of("21", 2, sacct=SACCT).state is JobState.CANCELLED
    timeout = status_of("51", sacct=SACCT)
    assert (timeout.state, timeout.reason) == (JobState.FAILED, "TIMEOUT")


def test_array_line_of_sacct_stands_for_elements_that_never_ran():
    assert status_of("21", 9, sacct=SACCT).state is JobState.CANCELLED
    assert status_of("50", 4, sacct=SACCT).state is JobState.QUEUED


def test_exit_record_answers_when_slurm_forgot_the_job():
    assert status_of("99", exit_code=0).state is JobState.COMPLETED
    status = status_of("99", exit_code=5)
    assert (status.state, status.exit_code) == (JobState.FAILED, 5)


def test_submitted_job_nobody_knows_was_cancelled_but_a_foreign_one_is_unknown():
    assert status_of("99").state is JobState.CANCELLED
    assert status_of("99", submitted=False).state is JobState.UNKNOWN
    # If squeue did not answer, absence proves nothing.
    assert status_of("99", answered=False).state is JobState.UNKNOWN


def test_array_status_reports_failed_elements_with_their_indices():
    elements = [status_of("21", 0, sacct=SACCT), status_of("21", 1, sacct=SACCT),
                status_of("21", 4, squeue=SQUEUE)]
    status = array_status("21", "t:p", elements)
    assert status.state is JobState.RUNNING  # not finished while an element runs
    assert status.reason == "1 of 3 elements failed (indices 1)"
    elements[2] = status_of("21", 2, sacct=SACCT)
    status = array_status("21", "t:p", elements)
    assert status.state is JobState.FAILED
    assert status.exit_code == 2


def test_expand_tasks_reads_slurm_ranges():
    assert expand_tasks("[0-3,7,9-10%2]") == [0, 1, 2, 3, 7, 9, 10]


def test_exit_record_ignores_a_torn_last_line(tmp_path):
    exits = tmp_path / "x.exits"
    exits.write_text("0 0 \n1 2\n1 0\n2 143 TERM\n3")
    assert read_exit_records(exits) == {0: ExitRecord(0), 1: ExitRecord(0),
                                        2: ExitRecord(143, stopped=True)}
    assert read_exit_records(tmp_path / "missing") == {}


def test_job_stopped_by_slurm_is_cancelled_even_when_only_the_exit_record_is_left():
    status = element_status("x", slurm_id="99", task=None, name="t:j", log=None, squeue={},
                            sacct={}, exit_code=143, stopped=True, submitted=True)
    assert (status.state, status.exit_code) == (JobState.CANCELLED, None)
    assert "scancel" in status.reason


def test_cluster_config_from_scontrol_output():
    config = parse_config("MaxArraySize            = 11\nMinJobAge               = 300 sec\n"
                          "AccountingStorageType   = accounting_storage/slurmdbd\n")
    assert (config.max_array_size, config.min_job_age, config.accounting) == (11, 300, True)
    assert parse_config("AccountingStorageType = accounting_storage/none\n").accounting is False
