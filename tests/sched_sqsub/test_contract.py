"""The sqsub scheduler passes psyrun's scheduler contract against the emulator."""

from __future__ import annotations

import pytest
from psyrun.testing.scheduler import SchedulerContract
from psyrun_sched_sqsub.scheduler import Sqsub


class TestSqsubContract(SchedulerContract):
    scheduler_args = {"timelimit": "1h", "memory": "1G"}
    timeout = 60.0

    @pytest.fixture
    def scheduler(self, tmp_path, sqsub_emulator):
        return Sqsub(tmp_path / "work")
