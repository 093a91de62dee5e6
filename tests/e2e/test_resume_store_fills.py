"""``psy run -c`` after a complete run computes nothing again, whatever the store.

npz and h5 files hold "" and arrays of nan where a space built with ``+``
has nan; those rows must still count as done.
"""

from __future__ import annotations

import pytest

TASK = """\
from pathlib import Path
import numpy as np
from psyrun import Param

pspace = Param(k=[1.0, 3.0], w=[np.ones(2), np.zeros(2)]) + Param(k=[2.0], s=["ab"])
store = "{store}"
max_jobs = 1
CALLS = Path(__file__).parent.parent / "calls.txt"

def execute(k, w, s):
    with CALLS.open("a") as f:
        f.write(f"{{k}}\\n")
    return {{"y": 2 * k}}
"""


@pytest.mark.parametrize("store", ["pickle", "npz", "h5"])
def test_continue_after_a_complete_run_computes_nothing(project, store):
    if store == "h5":
        pytest.importorskip("psyrun_store_h5")
    project.write_task("r", TASK.format(store=store))
    project.psy("run", "r")
    calls = project.root / "calls.txt"
    assert sorted(calls.read_text().split()) == ["1.0", "2.0", "3.0"]
    project.psy("run", "-c", "r")
    assert sorted(calls.read_text().split()) == ["1.0", "2.0", "3.0"]
