"""Fixtures for the sqsub tests: the emulator of sqsub, sqjobs and sqkill.

``sqsub_emulator`` puts ``tests/sched_sqsub/emulator`` first on PATH, gives
the emulator a fresh state directory (``SQSUB_EMULATOR_STATE``) and, at
teardown, kills every job of the test that is still queued or running, so no
process outlives its test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
from pathlib import Path

import attrs
import pytest

EMULATOR = Path(__file__).parent / "emulator"
TOOLS = ("sqsub", "sqjobs", "sqkill")


@attrs.frozen
class Emulator:
    """Handle on the emulator's state for assertions."""

    state: Path
    bin: Path = EMULATOR

    def jobs(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted((self.state / "jobs").glob("*.json"))]

    def job(self, job_id: str) -> dict:
        return json.loads((self.state / "jobs" / f"{job_id}.json").read_text())


def _kill_leftovers(state: Path) -> None:
    for path in (state / "jobs").glob("*.json"):
        try:
            job = json.loads(path.read_text())
        except ValueError:
            continue
        if job.get("state") not in ("D", "C") and job.get("pgid"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job["pgid"], signal.SIGKILL)


@pytest.fixture
def sqsub_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for tool in TOOLS:  # an unpacked sdist may lose the executable bit
        path = EMULATOR / tool
        if not os.access(path, os.X_OK):
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    state = tmp_path / "sqsub-state"
    (state / "jobs").mkdir(parents=True)
    monkeypatch.setenv("PATH", f"{EMULATOR}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("SQSUB_EMULATOR_STATE", str(state))
    monkeypatch.setenv("SQSUB_EMULATOR_LINGER", "2")
    try:
        yield Emulator(state)
    finally:
        _kill_leftovers(state)
