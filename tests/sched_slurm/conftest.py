"""Fixtures for the Slurm tests: a usable Slurm or a skip (a failure under PSYRUN_REQUIRE_SLURM=1).

The tests run against a real Slurm: start the single-node test cluster with
``bash tools/slurm/start-slurm.sh`` (CI does, with MaxArraySize 11).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

import pytest

NO_SLURM = "no running Slurm: start one with bash tools/slurm/start-slurm.sh"


@functools.lru_cache(maxsize=1)
def slurm_problem() -> str | None:
    """Why Slurm cannot be used here, or None when sbatch exists and the controller is up."""
    if shutil.which("sbatch") is None:
        return "sbatch is not on PATH"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"scontrol ping failed: {error}"
    if "UP" not in ping.stdout:
        return f"scontrol ping says: {(ping.stdout + ping.stderr).strip()[:200]}"
    return None


@pytest.fixture
def slurm_cluster() -> None:
    """Skip (or fail, with PSYRUN_REQUIRE_SLURM=1) unless a Slurm cluster answers."""
    problem = slurm_problem()
    if problem is None:
        return
    if os.environ.get("PSYRUN_REQUIRE_SLURM") == "1":
        pytest.fail(f"PSYRUN_REQUIRE_SLURM=1 but {problem}; {NO_SLURM}")
    pytest.skip(f"{NO_SLURM} ({problem})")


@pytest.fixture
def slurm_tmp(tmp_path, slurm_cluster):
    """A tmp dir the Slurm daemons (root, or the slurm user) can read and write in."""
    for path in (tmp_path, *tmp_path.parents):
        if str(path) in ("/", "/tmp"):
            break
        path.chmod(path.stat().st_mode | 0o755)
    return tmp_path


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "sched_slurm" in str(item.fspath) and "slurm_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slurm)
