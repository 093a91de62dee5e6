"""Loading task files: settings, psy-conf.py, plugins by name, and clear errors."""

from __future__ import annotations

import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from psyrun.exceptions import TaskDefinitionError, TaskWarning
from psyrun.tasks import Config, TaskDef, load_tasks, validate_task_name

BASIC = """\
from psyrun import Param
pspace = Param(x=[1, 2, 3])
def execute(x):
    return {"y": x}
"""


def write(taskdir: Path, name: str, body: str) -> Path:
    taskdir.mkdir(exist_ok=True)
    path = taskdir / f"task_{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.fixture
def taskdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path / "psy-tasks"


def test_defaults(taskdir, tmp_path):
    task = TaskDef(write(taskdir, "basic", BASIC))
    assert task.name == "basic"
    assert (task.max_jobs, task.min_items, task.pool_size) == (100, 1, 1)
    assert task.workdir == tmp_path / "psy-work"
    assert task.resultfile == tmp_path / "psy-work" / "basic" / "result.pkl"
    assert task.python == sys.executable
    assert task.setup is None and task.file_dep == [] and task.exclude_from_result == []
    assert task.overwrite_dirty is True
    assert task.execute(x=2) == {"y": 2}
    assert len(task.pspace) == 3
    from psyrun.backend.distribute import DistributeBackend
    from psyrun.store.pickle import PickleStore

    assert task.backend is DistributeBackend
    assert isinstance(task.store, PickleStore)
    assert task.scheduler.in_process


def test_plugins_by_name_and_result_extension(taskdir):
    task = TaskDef(write(taskdir, "n", BASIC + "store = 'npz'\nbackend = 'load-balancing'\n"))
    from psyrun.backend.load_balancing import LoadBalancingBackend
    from psyrun.store.npz import NpzStore

    assert isinstance(task.store, NpzStore)
    assert task.resultfile.name == "result.npz"
    assert task.backend is LoadBalancingBackend


def test_task_file_over_psy_conf_over_defaults(taskdir, tmp_path):
    write(taskdir, "a", BASIC + "max_jobs = 7\n")
    write(taskdir, "b", BASIC)
    (taskdir / "psy-conf.py").write_text("max_jobs = 3\npool_size = 2\nworkdir = 'w'\n")
    a, b = load_tasks(taskdir)
    assert (a.max_jobs, a.pool_size) == (7, 2)
    assert (b.max_jobs, b.pool_size) == (3, 2)
    assert b.taskworkdir == tmp_path / "w" / "b"
    assert Config.load_from_file(taskdir / "psy-conf.py").max_jobs == 3


def test_file_dep_is_relative_to_the_task_dir_and_part_of_the_dependencies(taskdir):
    task = TaskDef(write(taskdir, "d", BASIC + "file_dep = 'data.csv'\n"))
    assert task.file_dep == [taskdir / "data.csv"]
    assert task.dependencies == [task.path, taskdir / "data.csv"]


def test_other_module_names_are_reachable(taskdir):
    task = TaskDef(write(taskdir, "m", BASIC + "helper_constant = 42\n"))
    assert task.helper_constant == 42
    with pytest.raises(AttributeError):
        task.no_such_thing  # noqa: B018


def test_misspelt_setting_warns_with_the_closest_name(taskdir):
    with pytest.warns(TaskWarning, match="did you mean 'max_jobs'"):
        TaskDef(write(taskdir, "w", BASIC + "max_job = 4\n"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TaskDef(write(taskdir, "ok", BASIC + "import os\nsamples = 3\n"))


@pytest.mark.parametrize("body, fragment", [
    ("x = (\n", "task_bad.py, line 1"),
    ("import no_such_module_xyz\n", "No module named 'no_such_module_xyz'"),
    ("\n\n1 / 0\n", "line 3: loading it raised ZeroDivisionError"),
    ("def execute(x):\n    return {}\n", "defines no 'pspace'"),
    ("from psyrun import Param\npspace = Param(x=[1])\n", "defines no 'execute'"),
    ("from psyrun import Param\npspace = Param(x=[1])\nexecute = 3\n", "'execute' must be"),
    (BASIC + "max_jobs = 0\n", "'max_jobs' must be a positive integer"),
    (BASIC + "pool_size = 1.5\n", "'pool_size' must be a positive integer"),
    (BASIC + "min_items = True\n", "'min_items' must be a positive integer"),
    (BASIC + "store = 'nope'\n", "Unknown store 'nope'"),
    (BASIC + "scheduler = 'nope'\n", "Unknown scheduler 'nope'"),
    (BASIC + "backend = 'nope'\n", "Unknown backend 'nope'"),
    (BASIC + "scheduler_args = [1]\n", "'scheduler_args' must be a dict"),
    (BASIC + "setup = 5\n", "'setup' must be a function"),
    (BASIC + "name = '../x'\n", "Invalid task name"),
])
def test_broken_task_files_raise_one_clear_error(taskdir, body, fragment):
    path = write(taskdir, "bad", body)
    with pytest.raises(TaskDefinitionError) as info:
        TaskDef(path)
    message = str(info.value)
    assert fragment in message
    assert "task_bad.py" in message
    assert "\n" not in message


@pytest.mark.parametrize("name", ["../up", "a/b", "a\\b", "..", "", "x..y"])
def test_names_that_could_escape_are_refused(name):
    with pytest.raises(TaskDefinitionError, match="Invalid task name"):
        validate_task_name(name)


def test_load_tasks_names_the_alternatives(taskdir):
    write(taskdir, "alpha", BASIC)
    with pytest.raises(TaskDefinitionError, match="Did you mean 'alpha'"):
        load_tasks(taskdir, ["alpah"])
    with pytest.raises(TaskDefinitionError, match="does not exist"):
        load_tasks(taskdir.parent / "nowhere")


def test_scheduler_instance_from_the_task_file_is_used_as_is(taskdir):
    task = TaskDef(write(taskdir, "i", BASIC + textwrap.dedent("""\
        from psyrun.scheduler import ImmediateRun
        scheduler = ImmediateRun(cores=1)
    """)))
    assert task.scheduler.cores == 1


def test_task_files_may_import_modules_next_to_them(taskdir):
    taskdir.mkdir()
    (taskdir / "helpers_for_test_tasks.py").write_text("FACTOR = 5\n")
    task = TaskDef(write(taskdir, "h", BASIC.replace(
        "def execute", "from helpers_for_test_tasks import FACTOR\ndef execute")))
    assert task.namespace["FACTOR"] == 5


def test_plugin_paths_let_the_worker_skip_the_plugin_manager(taskdir):
    task = TaskDef(write(taskdir, "p", BASIC + "store = 'npz'\n"))
    paths = task.plugin_paths()
    assert paths == {"store": "psyrun.store.npz:NpzStore",
                     "backend": "psyrun.backend.distribute:DistributeBackend",
                     "scheduler": "psyrun.scheduler.immediate:ImmediateRun"}
    again = TaskDef(task.path, plugins=paths)
    assert type(again.store) is type(task.store) and again.backend is task.backend


def test_plugin_paths_leave_out_what_the_task_file_made(taskdir):
    task = TaskDef(write(taskdir, "q", BASIC + "from psyrun.store import NpzStore\n"
                                              "store = NpzStore()\n"))
    assert "store" not in task.plugin_paths()


def test_local_runs_get_one_job_per_core_unless_max_jobs_is_set(taskdir):
    from psyrun.runner import limit_jobs_to_local_cores

    class Local:
        in_process = True
        cores = 3

    class Cluster:
        in_process = False
        cores = 3

    default = TaskDef(write(taskdir, "dflt", BASIC))
    assert "max_jobs" not in default.given
    limit_jobs_to_local_cores(default, Cluster())
    assert default.max_jobs == 100
    limit_jobs_to_local_cores(default, Local())
    assert default.max_jobs == 3
    chosen = TaskDef(write(taskdir, "chosen", BASIC + "max_jobs = 50\n"))
    limit_jobs_to_local_cores(chosen, Local())
    assert chosen.max_jobs == 50


@pytest.mark.parametrize("settings", [
    "resultfile = 'res.pkl'",
    "resultfile = 'res.pickle'",  # another extension of the same store
    "resultfile = 'res.dat'",  # no store claims it: nothing would misread it
    "store = 'npz'\nresultfile = 'res.npz'",
    "from psyrun.store import AutodetectStore\nstore = AutodetectStore()\n"
    "resultfile = 'res.npz'",  # writes by extension
])
def test_result_file_names_that_the_store_can_write(taskdir, tmp_path, settings):
    task = TaskDef(write(taskdir, "r", BASIC + settings + "\n"))
    assert task.resultfile.parent == tmp_path


def test_result_file_of_another_store_is_refused(taskdir):
    with pytest.raises(TaskDefinitionError, match=r"Name it res\.npz, or set store = 'pickle'"):
        TaskDef(write(taskdir, "r", BASIC + "store = 'npz'\nresultfile = 'res.pkl'\n"))


def test_a_bad_value_from_psy_conf_names_psy_conf(taskdir):
    write(taskdir, "a", BASIC)
    (taskdir / "psy-conf.py").write_text("max_jobs = -1\n")
    with pytest.raises(TaskDefinitionError, match=r"^psy-tasks/psy-conf\.py: 'max_jobs'"):
        load_tasks(taskdir)
    (taskdir / "psy-conf.py").write_text("store = 'nosuch'\n")
    with pytest.raises(TaskDefinitionError, match=r"^psy-tasks/psy-conf\.py: 'store'"):
        load_tasks(taskdir)
    # the task file's own value is its own error
    write(taskdir, "a", BASIC + "max_jobs = 0\n")
    (taskdir / "psy-conf.py").write_text("max_jobs = 2\n")
    with pytest.raises(TaskDefinitionError, match=r"^psy-tasks/task_a\.py: 'max_jobs'"):
        load_tasks(taskdir)


def test_a_task_named_twice_is_loaded_once(taskdir):
    write(taskdir, "a", BASIC)
    assert [t.name for t in load_tasks(taskdir, ["a", "a"])] == ["a"]


def test_two_task_files_with_the_same_name_are_refused(taskdir):
    write(taskdir, "a", BASIC + "name = 'same'\n")
    write(taskdir, "b", BASIC + "name = 'same'\n")
    with pytest.raises(TaskDefinitionError, match=r"task_a\.py and .*task_b\.py both name "
                                                  r"their task 'same'"):
        load_tasks(taskdir)


def test_a_task_is_found_by_its_name_setting(taskdir):
    """psy prints the 'name' in its hints (psy run -c NAME); that must work."""
    write(taskdir, "a", BASIC + "name = 'renamed'\n")
    write(taskdir, "b", BASIC)
    assert [t.path.name for t in load_tasks(taskdir, ["renamed", "b"])] == ["task_a.py",
                                                                            "task_b.py"]
    with pytest.raises(TaskDefinitionError, match="No task 'other'"):
        load_tasks(taskdir, ["other"])
    assert [t.name for t in load_tasks(taskdir, ["a", "renamed"])] == ["renamed"]
