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
import subprocess
import sys
import textwrap
import time
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

    def kill_leftovers(self) -> None:
        """SIGKILL the process group of every job still queued or running."""
        for job in self.jobs():
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
    emulator = Emulator(state)
    try:
        yield emulator
    finally:
        emulator.kill_leftovers()


# ------------------------------------------------------------------ whole psy runs
def _psy_command() -> list[str]:
    script = Path(sys.executable).parent / "psy"
    return [str(script)] if script.exists() else [sys.executable, "-m", "psyrun"]


class SqsubProject:
    """A directory with psy-tasks/ whose tasks go to the emulated sqsub."""

    def __init__(self, root: Path, emulator: Emulator) -> None:
        self.root = root
        self.emulator = emulator
        self.tasks = root / "psy-tasks"
        self.tasks.mkdir()
        self.work = root / "psy-work"

    def write_task(self, name: str, body: str) -> Path:
        path = self.tasks / f"task_{name}.py"
        path.write_text(textwrap.dedent(body))
        return path

    def psy(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*_psy_command(), *args], cwd=self.root, capture_output=True,
                              text=True, timeout=180, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if check:
            assert proc.returncode == 0, f"psy {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def status(self, task: str) -> dict:
        (report,) = json.loads(self.psy("status", "--json", task).stdout)
        return report

    def wait_idle(self, task: str, timeout: float = 120) -> dict:
        """Poll ``psy status`` until no job of the task is queued or running."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.status(task)
            if report["queued"] == 0 and report["running"] == 0:
                return report
            assert time.monotonic() < deadline, f"jobs of {task} still busy: {report}"
            time.sleep(0.3)


@pytest.fixture
def sqsub_project(tmp_path: Path, sqsub_emulator: Emulator) -> SqsubProject:
    root = tmp_path / "project"
    root.mkdir()
    return SqsubProject(root, sqsub_emulator)
