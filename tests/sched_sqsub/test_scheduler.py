"""What the sqsub scheduler does beyond the contract: the sqsub command it
builds, arrays as single jobs, status from disk once sqjobs forgot a job,
killing only its own jobs, the task template and the 0.8 import paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from psyrun.exceptions import SchedulerArgumentError, SchedulerError
from psyrun.scheduler.base import ARRAY_INDEX, JobState
from psyrun_sched_sqsub.scheduler import Sqsub

ARGS = {"timelimit": "1h", "memory": "1G"}


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


@pytest.fixture
def scheduler(tmp_path, sqsub_emulator) -> Sqsub:
    return Sqsub(tmp_path / "work")


def finished(scheduler: Sqsub, *ids: str):
    statuses = scheduler.wait(list(ids), timeout=60, poll_interval=0.1)
    assert all(s.state.finished for s in statuses.values()), statuses
    return statuses


def test_submit_passes_the_options_name_and_output_to_sqsub(scheduler, sqsub_emulator, tmp_path):
    args = {"timelimit": lambda name: "2h" if name.endswith(":merge") else "1h",
            "memory": 2048, "n_cpus": 2, "n_nodes": 1, "queue": "threaded"}
    job_id = scheduler.submit(py("pass"), name="task:merge", output=tmp_path / "m.log",
                              scheduler_args=args)
    job = sqsub_emulator.job(job_id)
    assert (job["runtime"], job["mpp"], job["ncpus"], job["nodes"], job["queue"]) == (
        "2h", "2048M", 2, 1, "threaded")
    assert job["name"] == "task:merge"
    assert job["outfile"] == str(tmp_path / "m.log")
    # The command is the wrapper around the job's own argv.
    assert job["command"][1:3] == ["-m", "psyrun_sched_sqsub.wrap"]
    assert job["command"][-3:] == py("pass")
    finished(scheduler, job_id)


def test_missing_memory_is_refused_before_anything_is_submitted(scheduler, sqsub_emulator,
                                                                 tmp_path):
    with pytest.raises(SchedulerArgumentError, match="memory"):
        scheduler.submit(py("pass"), name="t:a", output=tmp_path / "a.log",
                         scheduler_args={"timelimit": "1h"})
    with pytest.raises(SchedulerArgumentError, match="timelimit"):
        scheduler.submit_array(2, py("pass"), name="t:a", output=tmp_path / "a.log",
                               scheduler_args={"memory": "1G"})
    assert sqsub_emulator.jobs() == []


def test_array_is_one_job_per_element_and_dependents_wait_for_all(scheduler, sqsub_emulator,
                                                                   tmp_path):
    array = scheduler.submit_array(3, py("import time; time.sleep(0.3)") + [ARRAY_INDEX],
                                   name="t:process", output=tmp_path / f"p{ARRAY_INDEX}.log",
                                   scheduler_args=ARGS)
    elements = array.split(",")
    assert len(elements) == 3
    assert [sqsub_emulator.job(e)["name"] for e in elements] == [
        "t:process-0", "t:process-1", "t:process-2"]
    assert [sqsub_emulator.job(e)["command"][-1] for e in elements] == ["0", "1", "2"]
    after = scheduler.submit(py("pass"), name="t:merge", output=tmp_path / "m.log",
                             depends_on=[array], scheduler_args=ARGS)
    assert sqsub_emulator.job(after)["waitfor"] == elements
    statuses = finished(scheduler, array, after)
    assert statuses[array].state is JobState.COMPLETED
    assert statuses[array].name == "t:process"
    assert [e.id for e in statuses[array].elements] == elements
    assert statuses[after].state is JobState.COMPLETED


def test_one_element_array_has_an_array_id(scheduler, tmp_path):
    array = scheduler.submit_array(1, py("pass"), name="t:one", output=tmp_path / "o.log",
                                   scheduler_args=ARGS)
    assert array.endswith(",")
    status = finished(scheduler, array)[array]
    assert status.state is JobState.COMPLETED and len(status.elements) == 1


def test_finished_dependency_is_not_given_to_w_and_its_outcome_still_counts(
        scheduler, sqsub_emulator, tmp_path):
    good = scheduler.submit(py("pass"), name="t:good", output=tmp_path / "g.log",
                            scheduler_args=ARGS)
    bad = scheduler.submit(py("raise SystemExit(5)"), name="t:bad", output=tmp_path / "b.log",
                           scheduler_args=ARGS)
    finished(scheduler, good, bad)
    after_good = scheduler.submit(py("pass"), name="t:g2", output=tmp_path / "g2.log",
                                  depends_on=[good], scheduler_args=ARGS)
    after_bad = scheduler.submit(py("pass"), name="t:b2", output=tmp_path / "b2.log",
                                 depends_on=[bad], scheduler_args=ARGS)
    assert sqsub_emulator.job(after_good)["waitfor"] == []
    assert sqsub_emulator.job(after_bad)["waitfor"] == []
    statuses = finished(scheduler, after_good, after_bad)
    assert statuses[after_good].state is JobState.COMPLETED
    assert statuses[after_bad].state is JobState.CANCELLED
    assert "failed with exit code 5" in statuses[after_bad].reason
    assert "cancelled" in (tmp_path / "b2.log").read_text()


def test_cancellation_travels_down_a_chain(scheduler, tmp_path):
    a = scheduler.submit(py("raise SystemExit(1)"), name="t:a", output=tmp_path / "a.log",
                         scheduler_args=ARGS)
    b = scheduler.submit(py("pass"), name="t:b", output=tmp_path / "b.log", depends_on=[a],
                         scheduler_args=ARGS)
    c = scheduler.submit(py("pass"), name="t:c", output=tmp_path / "c.log", depends_on=[b],
                         scheduler_args=ARGS)
    statuses = finished(scheduler, a, b, c)
    assert [statuses[i].state for i in (a, b, c)] == [
        JobState.FAILED, JobState.CANCELLED, JobState.CANCELLED]


def test_status_comes_from_disk_once_sqjobs_forgot_the_job(tmp_path, sqsub_emulator,
                                                          monkeypatch):
    monkeypatch.setenv("SQSUB_EMULATOR_LINGER", "0")
    scheduler = Sqsub(tmp_path / "work")
    ok = scheduler.submit(py("pass"), name="t:ok", output=tmp_path / "ok.log",
                          scheduler_args=ARGS)
    bad = scheduler.submit(py("raise SystemExit(7)"), name="t:bad",
                           output=tmp_path / "bad.log", scheduler_args=ARGS)
    finished(scheduler, ok, bad)
    listing = subprocess.run(["sqjobs"], capture_output=True, text=True).stdout
    assert ok not in listing and bad not in listing
    # A new scheduler on the same directory: what `psy status` does in a new process.
    again = Sqsub(tmp_path / "work").status([ok, bad])
    assert again[ok].state is JobState.COMPLETED
    assert (again[bad].state, again[bad].exit_code) == (JobState.FAILED, 7)
    assert again[bad].log == tmp_path / "bad.log"


def test_a_job_that_ended_without_an_exit_record_is_failed(tmp_path, sqsub_emulator,
                                                          monkeypatch):
    """Killed by the cluster (time or memory limit), the wrapper records nothing."""
    monkeypatch.setenv("SQSUB_EMULATOR_LINGER", "0")
    scheduler = Sqsub(tmp_path / "work")
    job_id = scheduler.submit(py("import os, signal; os.kill(os.getppid(), signal.SIGKILL)"),
                              name="t:oom", output=tmp_path / "oom.log", scheduler_args=ARGS)
    deadline = time.monotonic() + 30
    while sqsub_emulator.job(job_id)["state"] != "D":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.05)
    # Its log changed a moment ago: the record may still be on its way (NFS).
    log = tmp_path / "oom.log"
    log.write_text("")
    waiting = scheduler.status([job_id])[job_id]
    assert waiting.state is JobState.RUNNING and "not visible yet" in waiting.reason
    # Long after the log last changed, no record means the job failed.
    old = time.time() - 2 * scheduler.listing_grace
    record_path = tmp_path / "work" / "sqsub" / "jobs" / f"{job_id}.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "submitted": old - 10}))
    os.utime(log, (old, old))
    status = scheduler.status([job_id])[job_id]
    assert status.state is JobState.FAILED
    assert "without recording" in status.reason


def test_kill_leaves_jobs_of_other_tasks_alone(tmp_path, sqsub_emulator):
    mine = Sqsub(tmp_path / "mine")
    other = Sqsub(tmp_path / "other")
    theirs = other.submit(py("import time; time.sleep(1)"), name="o:job",
                          output=tmp_path / "o.log", scheduler_args=ARGS)
    ours = mine.submit(py("import time; time.sleep(300)"), name="m:job",
                       output=tmp_path / "m.log", scheduler_args=ARGS)
    assert mine.jobs() == [ours]
    mine.kill([theirs, ours])
    assert finished(other, theirs)[theirs].state is JobState.COMPLETED
    assert finished(mine, ours)[ours].state is JobState.CANCELLED
    assert mine.jobs() == []


def test_kill_of_a_waiting_dependent_cancels_it(scheduler, tmp_path):
    a = scheduler.submit(py("import time; time.sleep(0.5)"), name="t:a",
                         output=tmp_path / "a.log", scheduler_args=ARGS)
    b = scheduler.submit(py("pass"), name="t:b", output=tmp_path / "b.log", depends_on=[a],
                         scheduler_args=ARGS)
    assert scheduler.status([b])[b].state is JobState.QUEUED
    scheduler.kill([b])
    statuses = finished(scheduler, a, b)
    assert statuses[a].state is JobState.COMPLETED
    assert statuses[b].state is JobState.CANCELLED


def test_records_live_under_the_workdir(scheduler, tmp_path):
    job_id = scheduler.submit(py("pass"), name="t:a", output=tmp_path / "a.log",
                              scheduler_args=ARGS)
    finished(scheduler, job_id)
    record = json.loads((tmp_path / "work" / "sqsub" / "jobs" / f"{job_id}.json").read_text())
    assert record["name"] == "t:a"
    assert (tmp_path / "work" / "sqsub" / "run" / f"{record['token']}.exit.json").exists()


def test_missing_tools_are_reported_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SchedulerError, match="sqsub was not found on PATH"):
        Sqsub(tmp_path).submit(["true"], name="t:a", output=tmp_path / "a.log",
                               scheduler_args=ARGS)


def test_task_template_sets_the_required_options_and_comments_the_others():
    template = Sqsub.task_template()
    namespace: dict = {}
    exec(compile(template, "<template>", "exec"), namespace)
    assert namespace["scheduler_args"] == {"timelimit": "1h", "memory": "1G"}
    Sqsub().validate_args(namespace["scheduler_args"], "task:job")
    for option in ("n_cpus", "n_nodes", "queue"):
        assert f'# "{option}"' in template


def test_the_plugin_is_registered_under_sqsub():
    from psyrun.plugins.manager import get_plugin_manager

    assert get_plugin_manager().get("scheduler", "sqsub").scheduler is Sqsub


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)


def test_08_import_paths_and_signature(tmp_path):
    result = run_python(
        "from psyrun import Sqsub\n"
        "from psyrun.scheduler import Sqsub as S2\n"
        "import psyrun_sched_sqsub\n"
        "assert Sqsub is S2 is psyrun_sched_sqsub.Sqsub\n"
        f"s = Sqsub({str(tmp_path)!r})\n"
        "print(s.workdir)\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path)


@pytest.mark.parametrize("statement", ["from psyrun import Sqsub",
                                       "from psyrun.scheduler import Sqsub"])
def test_08_import_without_the_plugin_names_the_install_command(statement):
    result = run_python(f"import sys\nsys.modules['psyrun_sched_sqsub'] = None\n{statement}\n")
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "pip install 'psyrun[sqsub]'" in result.stderr


def test_array_whose_submission_fails_half_way_leaves_no_job_behind(
        scheduler, sqsub_emulator, tmp_path, monkeypatch):
    # An sqsub that refuses its third call and passes the others to the emulator.
    fake = tmp_path / "fakebin"
    fake.mkdir()
    counter = tmp_path / "calls"
    script = fake / "sqsub"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import os, pathlib, sys\n"
        f"counter = pathlib.Path({str(counter)!r})\n"
        "n = int(counter.read_text()) + 1 if counter.exists() else 1\n"
        "counter.write_text(str(n))\n"
        "if n == 3:\n"
        "    sys.exit(print('sqsub: error: queue is full', file=sys.stderr) or 1)\n"
        f"os.execv({str(sqsub_emulator.bin / 'sqsub')!r}, ['sqsub', *sys.argv[1:]])\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    scheduler.parallel_submissions = 1
    with pytest.raises(SchedulerError, match="queue is full"):
        scheduler.submit_array(5, py("import time; time.sleep(60)"), name="t:arr",
                               output=tmp_path / f"a{ARRAY_INDEX}.log", scheduler_args=ARGS)
    jobs = sqsub_emulator.jobs()
    assert 2 <= len(jobs) < 5  # elements already on their way may still be submitted
    assert {job["state"] for job in jobs} == {"C"}  # and are killed


def test_sqjobs_that_fails_once_is_asked_again(scheduler, tmp_path, monkeypatch):
    started, go = tmp_path / "started", tmp_path / "go"
    job = scheduler.submit(
        [sys.executable, "-c", f"import os, time; open({str(started)!r}, 'w')\n"
                               f"while not os.path.exists({str(go)!r}): time.sleep(0.1)"],
        name="t:busy", output=tmp_path / "busy.log",
        scheduler_args={"timelimit": "10m", "memory": "1G"})
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert time.monotonic() < deadline, "job never started"
            time.sleep(0.1)
        shim = tmp_path / "shim"
        shim.mkdir()
        failed_once = tmp_path / "failed-once"
        real = subprocess.run(["which", "sqjobs"], capture_output=True, text=True).stdout.strip()
        (shim / "sqjobs").write_text(
            f"#!/bin/sh\nif [ ! -e {failed_once} ]; then touch {failed_once}\n"
            f"echo 'sqjobs: cannot reach the scheduler' >&2; exit 1; fi\n"
            f'exec {real} "$@"\n')
        (shim / "sqjobs").chmod(0o755)
        monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
        status = scheduler.status([job])[job]
        assert failed_once.exists()
        assert status.state is JobState.RUNNING, status
    finally:
        go.touch()
    assert finished(scheduler, job)[job].state is JobState.COMPLETED
