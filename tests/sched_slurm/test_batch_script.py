"""The batch script runs the argv unchanged by the shell (run with bash, no cluster needed)."""

from __future__ import annotations

import os
import subprocess
import sys

from psyrun.scheduler.base import ARRAY_INDEX
from psyrun_sched_slurm.batch_script import ExitRecord, read_exit_records, render


def test_script_passes_awkward_arguments_verbatim_and_records_exit(tmp_path):
    awkward = ["$HOME", "a b", "it's", "`x`", "*", f"pre-{ARRAY_INDEX}-post", ""]
    code = "import sys, json; print(json.dumps(sys.argv[1:])); raise SystemExit(4)"
    script = tmp_path / "job.sh"
    exits = tmp_path / "job.exits"
    script.write_text(render([sys.executable, "-c", code, *awkward], name="t:p", exits=exits,
                             output=tmp_path / f"log-{ARRAY_INDEX}.txt"))
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "2"}
    proc = subprocess.run(["bash", str(script), "11"], env=env, cwd=tmp_path)
    assert proc.returncode == 4
    import json
    printed = json.loads((tmp_path / "log-13.txt").read_text())
    assert printed == ["$HOME", "a b", "it's", "`x`", "*", "pre-13-post", ""]
    assert read_exit_records(exits) == {13: ExitRecord(4)}


def test_script_notes_a_sigterm_from_slurm_in_the_exit_record(tmp_path):
    import signal
    import time

    started = tmp_path / "started"
    code = f"import time; open({str(started)!r}, 'w'); time.sleep(60)"
    script = tmp_path / "job.sh"
    exits = tmp_path / "job.exits"
    script.write_text(render([sys.executable, "-c", code], name="t:s", exits=exits, output=None))
    # Slurm signals every process of the job, as killpg does here.
    proc = subprocess.Popen(["bash", str(script)], start_new_session=True)
    deadline = time.monotonic() + 30
    while not started.exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert read_exit_records(exits) == {0: ExitRecord(128 + signal.SIGTERM, stopped=True)}
