"""The emulator behaves like Sharcnet's sqsub, sqjobs and sqkill on the command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from psyrun_sched_sqsub.sqjobs import parse_sqjobs

PY = sys.executable


def tool(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, cwd=cwd, timeout=60)


def submit(*argv: str, cwd: Path | None = None) -> str:
    result = tool("sqsub", *argv, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("submitted as jobid ")
    return result.stdout.split()[-1]


def wait_for_state(emulator, job_id: str, states: tuple[str, ...], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = emulator.job(job_id)
        if job["state"] in states:
            return job
        assert time.monotonic() < deadline, f"job {job_id} stayed {job['state']}"
        time.sleep(0.05)


@pytest.mark.parametrize("argv, complaint", [
    (["--mpp=1G", "-o", "x.log", "true"], "-r"),
    (["-r", "1h", "-o", "x.log", "true"], "--mpp"),
    (["-r", "1h", "--mpp=1G", "--bogus", "true"], "--bogus"),
    (["-r", "1h", "--mpp=1G", "-x", "true"], "-x"),
    (["-r", "1 hour", "--mpp=1G", "true"], "-r"),
    (["-r", "1h", "--mpp=lots", "true"], "--mpp"),
    (["-r", "1h", "--mpp=1G", "-n", "0", "true"], "-n"),
    (["-r", "1h", "--mpp=1G", "-w", "999999", "true"], "999999"),
    (["-r", "1h", "--mpp=1G", "-o", "x.log"], "command"),
    (["-r", "1h", "--mpp=1G", "-o"], "-o"),
])
def test_sqsub_refuses_bad_options_with_exit_status_1(sqsub_emulator, tmp_path, argv, complaint):
    result = tool("sqsub", *argv, cwd=tmp_path)
    assert result.returncode == 1
    assert "error" in result.stderr and complaint in result.stderr
    assert result.stdout == ""
    assert sqsub_emulator.jobs() == []


def test_sqsub_writes_the_idfile_and_runs_the_command_with_output_appended(
        sqsub_emulator, tmp_path):
    log = tmp_path / "job.log"
    log.write_text("before\n")
    idfile = tmp_path / "id"
    job_id = submit("-r", "10m", "--mpp=500M", "-o", str(log), "-j", "t:echo",
                    f"--idfile={idfile}", PY, "-c",
                    "import os, sys; print('out', os.getcwd()); print('err', file=sys.stderr)",
                    cwd=tmp_path)
    assert idfile.read_text().strip() == job_id
    job = wait_for_state(sqsub_emulator, job_id, ("D",))
    assert job["exit_code"] == 0 and job["name"] == "t:echo"
    assert log.read_text().splitlines() == ["before", f"out {tmp_path}", "err"]


def test_short_options_with_attached_values_and_long_forms(sqsub_emulator, tmp_path):
    first = submit("-r30m", "--mpp", "1G", "-N2", "-n4", "-q", "threaded", "-o",
                   str(tmp_path / "a.log"), "true")
    second = submit("--runtime=1h", "--mpp=1G", f"--waitfor={first}", "-o",
                    str(tmp_path / "b.log"), "--", "true")
    job = sqsub_emulator.job(first)
    assert (job["ncpus"], job["nodes"], job["queue"], job["runtime"]) == (4, 2, "threaded", "30m")
    assert sqsub_emulator.job(second)["waitfor"] == [first]
    wait_for_state(sqsub_emulator, second, ("D",))


def test_sqjobs_prints_two_header_lines_then_one_row_per_job(sqsub_emulator, tmp_path):
    running = submit("-r", "1h", "--mpp=1G", "-o", str(tmp_path / "r.log"), "-j", "t:sleep",
                     PY, "-c", "import time; time.sleep(60)")
    waiting = submit("-r", "1h", "--mpp=1G", "-o", str(tmp_path / "w.log"), "-w", running,
                     "true")
    wait_for_state(sqsub_emulator, running, ("R",))
    result = tool("sqjobs")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["jobid", "user", "queue", "state", "ncpus", "nodes", "time",
                                "command"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    # Each state sits under the dashes of the state column.
    state_rule = list(re.finditer(r"-+", lines[1]))[3]
    for line in lines[2:]:
        cell = line[state_rule.start():state_rule.end()].strip()
        assert cell in ("R", "*Q")
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows[running][3] == "R" and rows[running][-1] == "t:sleep"
    assert rows[waiting][3] == "*Q" and rows[waiting][-1] == "true"
    assert {i: r.state for i, r in parse_sqjobs(result.stdout).items()} == {
        running: "R", waiting: "*Q"}


def test_sqjobs_of_an_id_exits_1_once_the_job_is_not_pending_running_or_suspended(
        sqsub_emulator, tmp_path):
    job_id = submit("-r", "1h", "--mpp=1G", "-o", str(tmp_path / "a.log"),
                    PY, "-c", "import time; time.sleep(1)")
    wait_for_state(sqsub_emulator, job_id, ("R",))
    assert tool("sqjobs", job_id).returncode == 0
    wait_for_state(sqsub_emulator, job_id, ("D",))
    finished = tool("sqjobs", job_id)
    assert finished.returncode == 1
    assert parse_sqjobs(finished.stdout)[job_id].state == "D"  # still listed for a while
    assert tool("sqjobs", "424242").returncode == 1
    assert "ERROR" in tool("sqjobs", "424242").stderr


def test_finished_jobs_are_forgotten_after_the_linger_time(sqsub_emulator, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv("SQSUB_EMULATOR_LINGER", "0")
    job_id = submit("-r", "1h", "--mpp=1G", "-o", str(tmp_path / "a.log"), "true")
    wait_for_state(sqsub_emulator, job_id, ("D",))
    time.sleep(0.05)
    assert job_id not in parse_sqjobs(tool("sqjobs").stdout)
    assert tool("sqjobs", job_id).returncode == 1


def test_sqjobs_refuses_unknown_options(sqsub_emulator):
    result = tool("sqjobs", "--bogus")
    assert result.returncode == 1 and "--bogus" in result.stderr


def test_w_waits_for_a_dependency_that_failed_and_then_runs(sqsub_emulator, tmp_path):
    """The real sqsub started a job once its -w jobs were done, however they ended."""
    marker = tmp_path / "ran"
    first = submit("-r", "1h", "--mpp=1G", "-o", str(tmp_path / "a.log"),
                   PY, "-c", "import time; time.sleep(0.5); raise SystemExit(4)")
    second = submit("-r", "1h", "--mpp=1G", "-o", str(tmp_path / "b.log"), "-w", first,
                    PY, "-c", f"open({str(marker)!r}, 'w')")
    assert sqsub_emulator.job(second)["state"] == "*Q"
    assert wait_for_state(sqsub_emulator, first, ("D",))["exit_code"] == 4
    assert wait_for_state(sqsub_emulator, second, ("D",))["exit_code"] == 0
    assert marker.exists()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def test_sqkill_ends_the_job_and_the_processes_it_started(sqsub_emulator, tmp_path):
    pidfile = tmp_path / "pid"
    code = ("import os, subprocess, sys, time; "
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)']); "
            f"open({str(pidfile)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}'); "
            "time.sleep(300)")
    job_id = submit("-r", "1h", "--mpp=1G", "-o", str(tmp_path / "a.log"), PY, "-c", code)
    deadline = time.monotonic() + 30
    while not pidfile.exists() or len(pidfile.read_text().split()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pids = [int(p) for p in pidfile.read_text().split()]
    result = tool("sqkill", job_id)
    assert result.returncode == 0 and "being terminated" in result.stdout
    assert sqsub_emulator.job(job_id)["state"] == "C"
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids):
        assert time.monotonic() < deadline, "the job's processes survived sqkill"
        time.sleep(0.05)
    again = tool("sqkill", job_id)
    assert again.returncode == 1 and "ended" in again.stderr


def test_sqkill_of_a_queued_job_means_it_never_runs(sqsub_emulator, tmp_path):
    marker = tmp_path / "ran"
    first = submit("-r", "1h", "--mpp=1G", "-o", str(tmp_path / "a.log"),
                   PY, "-c", "import time; time.sleep(1)")
    second = submit("-r", "1h", "--mpp=1G", "-o", str(tmp_path / "b.log"), "-w", first,
                    PY, "-c", f"open({str(marker)!r}, 'w')")
    assert tool("sqkill", second).returncode == 0
    wait_for_state(sqsub_emulator, first, ("D",))
    time.sleep(0.5)
    assert sqsub_emulator.job(second)["state"] == "C"
    assert not marker.exists()


def test_sqkill_of_an_unknown_job_fails(sqsub_emulator):
    result = tool("sqkill", "424242")
    assert result.returncode == 1 and "424242" in result.stderr


def test_tools_need_the_state_directory(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SQSUB_EMULATOR_STATE"}
    emulator = Path(__file__).parent / "emulator"
    result = subprocess.run([str(emulator / "sqjobs")], capture_output=True, text=True, env=env)
    assert result.returncode == 1 and "SQSUB_EMULATOR_STATE" in result.stderr


def test_teardown_kills_jobs_left_running(sqsub_emulator, tmp_path):
    pidfile = tmp_path / "pid"
    code = f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(300)"
    job_id = submit("-r", "1h", "--mpp=1G", "-o", str(tmp_path / "a.log"), PY, "-c", code)
    waiting = submit("-r", "1h", "--mpp=1G", "-o", str(tmp_path / "b.log"), "-w", job_id, "true")
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    runners = [sqsub_emulator.job(i)["pid"] for i in (job_id, waiting)]
    sqsub_emulator.kill_leftovers()  # what the fixture does after each test
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in [int(pidfile.read_text()), *runners]):
        assert time.monotonic() < deadline, "a job's process outlived the teardown"
        time.sleep(0.05)


def test_e_separates_stderr_and_i_feeds_stdin(sqsub_emulator, tmp_path):
    (tmp_path / "in.txt").write_text("fed\n")
    code = "import sys; print(sys.stdin.read().strip()); print('oops', file=sys.stderr)"
    job_id = submit("-r", "5m", "--mpp=1G", "-o", str(tmp_path / "out"), "-e",
                    str(tmp_path / "err"), "-i", str(tmp_path / "in.txt"), PY, "-c", code)
    wait_for_state(sqsub_emulator, job_id, ("D",))
    assert (tmp_path / "out").read_text() == "fed\n"
    assert (tmp_path / "err").read_text() == "oops\n"
