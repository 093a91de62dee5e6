"""The Slurm scheduler against the core's scheduler contract, on the real cluster."""

from __future__ import annotations

import pytest
from psyrun.testing.scheduler import SchedulerContract
from psyrun_sched_slurm import Slurm


class TestSlurmContract(SchedulerContract):
    timeout = 120.0

    @pytest.fixture
    def jobdir(self, slurm_tmp):
        return slurm_tmp

    @pytest.fixture
    def scheduler(self, slurm_tmp):
        return Slurm(workdir=slurm_tmp / "psy-work")
