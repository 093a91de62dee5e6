"""The batch script runs the argv unchanged by the shell (run with bash, no cluster needed)."""

from __future__ import annotations

import os
import subprocess
import sys

from psyrun.scheduler.base import ARRAY_INDEX
from psyrun_sched_slurm.batch_script import read_exit_codes, render


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
    assert read_exit_codes(exits) == {13: 4}
