"""``kill -9`` of ``psy run`` at various moments, then ``psy run -c``: every row once."""

from __future__ import annotations

import os
import signal

import pytest

from .conftest import wait_for

N = 40
TASK = f"""\
import time
from psyrun import Param
pspace = Param(x=range({N}))
max_jobs = 8

def execute(x):
    time.sleep(0.03)
    return {{"y": 3 * x + 1, "half": x / 2}}
"""


def _outputs(project) -> list:
    out = project.work / "r" / "out"
    return list(out.iterdir()) if out.is_dir() else []


MOMENTS = {
    "at-start": lambda project: (project.work / "r" / "psy.lock").exists(),
    "after-split": lambda project: (project.work / "r" / "in").is_dir()
    and any((project.work / "r" / "in").iterdir()),
    "during-process": lambda project: len(_outputs(project)) >= 2,
    "during-merge": lambda project: (project.work / "r" / "r:merge.log").exists(),
}


def _kill9_when(project, moment, *args):
    proc = project.start("run", *args, "r")
    try:
        wait_for(lambda: MOMENTS[moment](project) or proc.poll() is not None, moment)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()


def _check_complete(project):
    rows = project.rows("r")  # (half, x, y)
    assert [r[1] for r in rows] == list(range(N)), "each row exactly once"
    assert all(r[2] == 3 * r[1] + 1 and r[0] == r[1] / 2 for r in rows)


@pytest.mark.parametrize("moment", sorted(MOMENTS))
def test_continue_after_kill9_has_every_row_once(project, moment):
    project.write_task("r", TASK)
    _kill9_when(project, moment)
    proc = project.psy("run", "-c", "r")
    assert "results in psy-work/r/result.pkl" in proc.stdout
    _check_complete(project)
    status = project.psy("status", "r").stdout
    assert f"{N} total, {N} done" in status and "0 missing" in status


def test_kill9_of_a_continuing_run_then_continue_again(project):
    project.write_task("r", TASK)
    _kill9_when(project, "during-process")
    _kill9_when(project, "during-process", "-c")
    project.psy("run", "-c", "r")
    _check_complete(project)
