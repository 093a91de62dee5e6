"""``psy run``/``status``/``kill`` with a scheduler whose jobs outlive ``psy``.

The scheduler here is a stand-in for a busy cluster: it records submissions
in a JSON file next to the task files and never runs them, so the jobs stay
queued until ``psy kill`` cancels them.
"""

from __future__ import annotations

import json

PARKING = '''\
"""A scheduler that only queues: a cluster with no free node."""
import json
from pathlib import Path

from psyrun.scheduler.base import JobState, JobStatus, Scheduler

DB = Path(__file__).with_name("parked.json")


def _load():
    return json.loads(DB.read_text()) if DB.exists() else {"jobs": {}, "kills": []}


def _save(db):
    DB.write_text(json.dumps(db))


class Parking(Scheduler):
    known_args = frozenset({"n_cpus", "timelimit"})

    def _add(self, name, n, depends_on):
        db = _load()
        job_id = str(100 + len(db["jobs"]))
        db["jobs"][job_id] = {"name": name, "n": n, "state": "queued",
                              "depends_on": list(depends_on)}
        _save(db)
        return job_id

    def submit(self, argv, *, name, output, depends_on=(), scheduler_args=None):
        return self._add(name, None, depends_on)

    def submit_array(self, n, argv, *, name, output, depends_on=(), scheduler_args=None):
        return self._add(name, n, depends_on)

    def kill(self, ids):
        db = _load()
        for job_id in ids:
            db["kills"].append(job_id)
            if job_id in db["jobs"]:
                db["jobs"][job_id]["state"] = "cancelled"
        _save(db)

    def status(self, ids):
        jobs = _load()["jobs"]
        result = {}
        for job_id in ids:
            job = jobs.get(job_id)
            if job is None:
                result[job_id] = JobStatus(job_id, JobState.UNKNOWN)
                continue
            state = JobState(job["state"])
            end = {"exit_code": job.get("exit_code"), "log": job.get("log")}
            elements = tuple(JobStatus(f"{job_id}_{i}", state, name=f"{job['name']}:{i}", **end)
                             for i in range(job["n"] or 0))
            result[job_id] = JobStatus(job_id, state, name=job["name"], elements=elements, **end)
        return result
'''

TASK = """\
from psyrun import Param
from parking import Parking

pspace = Param(x=range(6))
scheduler = Parking()
scheduler_args = {"timelimit": "1:00:00"}
max_jobs = 3

def execute(x):
    return {"y": x}
"""


def test_queued_jobs_are_counted_refused_killed_and_rerun(project):
    (project.tasks / "parking.py").write_text(PARKING)
    project.write_task("c", TASK)
    db = project.tasks / "parked.json"

    out = project.psy("run").stdout
    assert ". c:split" in out and "submitted 3 job(s)" in out
    jobs = json.loads(db.read_text())["jobs"]
    assert [j["name"] for j in jobs.values()] == ["c:split", "c:process", "c:merge"]
    assert [j["depends_on"] for j in jobs.values()] == [[], ["100"], ["101"]]
    assert jobs["101"]["n"] == 3

    status = project.psy("status", "--json").stdout
    assert json.loads(status)[0]["queued"] == 5  # split, 3 elements, merge

    again = project.psy("run", check=False)
    assert again.returncode == 2 and "still has queued or running jobs" in again.stderr
    assert len(json.loads(db.read_text())["jobs"]) == 3  # nothing more submitted

    # one job finished meanwhile: psy kill leaves it out and does not claim it
    parked = json.loads(db.read_text())
    parked["jobs"]["100"]["state"] = "completed"
    db.write_text(json.dumps(parked))
    killed = project.psy("kill", "c").stdout
    assert "cancelled c:process (101), c:merge (102)" in killed
    parked = json.loads(db.read_text())
    assert sorted(parked["kills"]) == ["101", "102"]
    assert "0 queued, 0 running" in project.psy("status").stdout
    assert "c: no queued or running jobs" in project.psy("kill", "c").stdout
    assert sorted(json.loads(db.read_text())["kills"]) == ["101", "102"]

    project.psy("run")  # the cancelled jobs no longer block the task
    assert len(json.loads(db.read_text())["jobs"]) == 6


def test_status_names_failed_jobs_with_exit_code_and_log(project):
    (project.tasks / "parking.py").write_text(PARKING)
    project.write_task("c", TASK)
    db = project.tasks / "parked.json"
    project.psy("run")
    parked = json.loads(db.read_text())
    parked["jobs"]["100"]["state"] = "completed"
    log = str(project.work / "c" / "c:process:1.log")
    parked["jobs"]["101"].update(state="failed", exit_code=3, log=log)
    parked["jobs"]["102"]["state"] = "cancelled"
    db.write_text(json.dumps(parked))

    out = project.psy("status").stdout
    assert "failed job c:process:1 (id 101_1, exit code 3, log: psy-work/c/c:process:1.log)" in out
    assert "c:merge" not in out  # cancelled after the failure: not a failure of its own
    report = json.loads(project.psy("status", "--json").stdout)[0]
    assert [j["exit_code"] for j in report["failed_jobs"]] == [3, 3, 3]
