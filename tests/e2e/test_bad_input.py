"""Broken task files and bad usage: exit code 2, one line, nothing deleted."""

from __future__ import annotations

import shutil

import pytest

from .conftest import Project

GOOD = """\
from psyrun import Param
pspace = Param(x=range(3))
def execute(x):
    return {"y": x}
"""

BROKEN = {
    "syntax": ("from psyrun import Param\npspace = Param(x=[1, 2)\n", "line 2"),
    "import": ("import no_such_module_here\n", "No module named 'no_such_module_here'"),
    "raises": ("from psyrun import Param\n\nraise RuntimeError('boom')\n", "line 3"),
    "no-pspace": ("def execute(x):\n    return {}\n", "defines no 'pspace'"),
    "no-execute": ("from psyrun import Param\npspace = Param(x=[1])\n", "defines no 'execute'"),
    "unknown-store": (GOOD + "store = 'nosuchstore'\n", "Unknown store 'nosuchstore'"),
    "unknown-scheduler": (GOOD + "scheduler = 'nosuchsched'\n", "Unknown scheduler"),
    "unknown-backend": (GOOD + "backend = 'nosuchbackend'\n", "Unknown backend"),
    "negative-max-jobs": (GOOD + "max_jobs = -1\n", "'max_jobs' must be a positive integer"),
    "bad-scheduler-args": (GOOD + "scheduler_args = {'n_cpuz': 2}\n", "n_cpuz"),
    "bad-pspace": ("pspace = [1, 2]\ndef execute(x):\n    return {}\n", "'pspace' must be"),
    "store-not-a-store": (GOOD + "store = 42\n", "'store' must be a store name"),
    "backend-not-a-class": (GOOD + "backend = 3\n", "'backend' must be a backend name"),
    "workdir-not-a-path": (GOOD + "workdir = 5\n", "'workdir' must be a path"),
    # a pickle file named .h5 could not be read back by load_result or psy merge
    "resultfile-of-another-store": (GOOD + "resultfile = 'res.h5'\n",
                                    "Name it res.pkl, or set store = 'h5'"),
    # every assignment would fail with the same TypeError
    "execute-lacks-a-parameter": ("from psyrun import Param\npspace = Param(x=[1], y=[2])\n"
                                  "def execute(x):\n    return {}\n",
                                  "execute(x) does not take the parameter 'y'"),
    # rows without their parameters would all count as missing
    "exclude-a-parameter": (GOOD + "exclude_from_result = ['x']\n",
                            "'exclude_from_result' names the parameter 'x'"),
    # a missing dependency would rerun the task on every psy run, silently
    "missing-file-dep": (GOOD + "file_dep = ['data.txt']\n",
                         "file_dep psy-tasks/data.txt does not exist"),
}


@pytest.fixture(scope="module")
def finished_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    done = Project(root)
    done.write_task("good", GOOD)
    done.psy("run", "good")
    return root


@pytest.fixture
def earlier_result(project, finished_project):
    """A finished task whose files must survive every error below (copied, mtimes kept)."""
    shutil.copytree(finished_project / "psy-tasks", project.tasks, dirs_exist_ok=True)
    shutil.copytree(finished_project / "psy-work", project.work)
    return project.snapshot()


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_task_file_is_one_line_exit_2_and_deletes_nothing(project, earlier_result, case):
    body, expected = BROKEN[case]
    project.tasks.joinpath("task_bad.py").write_text(body)
    proc = project.psy("run", check=False)  # all tasks: nothing may run, not even 'good'
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: ")
    assert expected in lines[0]
    assert "Traceback" not in proc.stderr
    if case != "bad-scheduler-args":
        assert "task_bad.py" in lines[0]
    assert ". good" not in proc.stdout
    assert project.snapshot() == earlier_result
    assert not (project.work / "bad").exists()


def test_debug_shows_the_traceback(project):
    project.tasks.joinpath("task_bad.py").write_text("def execute(x):\n    return {}\n")
    proc = project.psy("--debug", "run", check=False)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr


@pytest.mark.parametrize("args, expected", [
    (("run", "../escape"), "Invalid task name"),
    (("run", "a/b"), "Invalid task name"),
    (("run", "nosuch"), "No task 'nosuch'"),
    (("status", "nosuch"), "No task 'nosuch'"),
    (("run", "--taskdir", "missing-dir"), "does not exist"),
    (("new-task", "../x"), "Invalid task name"),
])
def test_bad_usage_is_exit_2(project, earlier_result, args, expected):
    proc = project.psy(*args, check=False)
    assert proc.returncode == 2
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert project.snapshot() == earlier_result


def test_misspelt_setting_warns_with_the_right_name(project):
    project.write_task("w", GOOD + "max_job = 4\n")
    proc = project.psy("run")
    assert "'max_job' is not a psyrun setting; did you mean 'max_jobs'?" in proc.stderr
