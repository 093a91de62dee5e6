"""Reading sqjobs' table."""

from __future__ import annotations

import pytest
from psyrun.scheduler.base import JobState
from psyrun_sched_sqsub.sqjobs import interpret_state, parse_sqjobs

EMULATOR_STYLE = """\
jobid  user  queue state ncpus nodes time command
----- ----- ------ ----- ----- ----- ---- -------
 1001 alice serial     R     1 node3  42s psyrun:process-0
 1002 alice serial    *Q     1     -    - psyrun:merge
 1003 alice serial     D     1 node3   3s python -c print('a b')
"""

# A real cluster's listing: an empty column (prio) and a summary line after the jobs.
WITH_EMPTY_CELLS = """\
 jobid queue state ncpus prio  nodes time command
------ ----- ----- ----- ---- ------ ---- ------------
169799 nrap1     R     1      wha309 615s ~prioux/x.sh
169800 nrap1     Q     4                 ~prioux/y.sh
2460 CPUs total, 837 idle, 1623 busy; 1251 jobs running; 0 suspended, 11515 queued.
0 reserved cpus
"""


def test_rows_states_users_and_names():
    rows = parse_sqjobs(EMULATOR_STYLE)
    assert {i: r.state for i, r in rows.items()} == {"1001": "R", "1002": "*Q", "1003": "D"}
    assert rows["1001"].user == "alice"
    assert rows["1001"].name == "psyrun:process-0"
    assert rows["1003"].name == "python -c print('a b')"


def test_empty_cells_and_summary_lines():
    rows = parse_sqjobs(WITH_EMPTY_CELLS)
    assert {i: r.state for i, r in rows.items()} == {"169799": "R", "169800": "Q"}
    assert rows["169800"].name == "~prioux/y.sh"
    assert rows["169799"].user is None


@pytest.mark.parametrize("text", ["", "no jobs\n", "sqjobs: error: something\n"])
def test_output_without_a_table_has_no_rows(text):
    assert parse_sqjobs(text) == {}


def test_header_only_has_no_rows():
    assert parse_sqjobs("\n".join(EMULATOR_STYLE.splitlines()[:2])) == {}


@pytest.mark.parametrize("code, state", [
    ("R", JobState.RUNNING), ("Q", JobState.QUEUED), ("*Q", JobState.QUEUED),
    ("Z", JobState.RUNNING), ("D", None), ("C", None), ("??", JobState.UNKNOWN),
])
def test_state_codes(code, state):
    assert interpret_state(code)[0] is state


def test_waiting_and_suspended_jobs_say_why():
    assert "depend" in interpret_state("*Q")[1]
    assert "suspended" in interpret_state("Z")[1]
