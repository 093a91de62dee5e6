"""``psy run -c`` after a complete run computes nothing again, whatever the store.

npz and h5 files hold "" and arrays of nan where a space built with ``+``
has nan; those rows must still count as done.
"""

from __future__ import annotations

import importlib.util

TASK = """\
from pathlib import Path
import numpy as np
from psyrun import Param

pspace = Param(k=[1.0, 3.0], w=[np.ones(2), np.zeros(2)]) + Param(k=[2.0], s=["ab"])
store = "{store}"
max_jobs = 1
CALLS = Path(__file__).parent.parent / "calls-{store}.txt"

def execute(k, w, s):
    with CALLS.open("a") as f:
        f.write(f"{{k}}\\n")
    return {{"y": 2 * k}}
"""


def test_continue_after_a_complete_run_computes_nothing(project):
    stores = ["pickle", "npz"]
    if importlib.util.find_spec("psyrun_store_h5") is not None:
        stores.append("h5")
    for store in stores:  # one psy run for all, to keep the test short
        project.write_task(f"r{store}", TASK.format(store=store))
    project.psy("run")
    project.psy("run", "-c")
    for store in stores:
        calls = (project.root / f"calls-{store}.txt").read_text().split()
        assert sorted(calls) == ["1.0", "2.0", "3.0"], store
