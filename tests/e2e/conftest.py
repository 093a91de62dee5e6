"""Helpers for whole ``psy`` runs: each test works in its own tmp directory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TIMEOUT = 120


def psy_command() -> list[str]:
    script = Path(sys.executable).parent / "psy"
    return [str(script)] if script.exists() else [sys.executable, "-m", "psyrun"]


class Project:
    """A directory with psy-tasks/ in which ``psy`` is run as a user would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tasks = root / "psy-tasks"
        self.tasks.mkdir()
        self.work = root / "psy-work"

    def write_task(self, name: str, body: str) -> Path:
        path = self.tasks / f"task_{name}.py"
        text = textwrap.dedent(body)
        if path.exists():  # make sure the change is seen even on coarse clocks
            old = path.stat().st_mtime_ns
            path.write_text(text)
            while path.stat().st_mtime_ns <= old:
                time.sleep(0.01)
                path.write_text(text)
        else:
            path.write_text(text)
        return path

    def psy(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("PSYRUN_DISABLED_PLUGINS", None)
        proc = subprocess.run([*psy_command(), *args], cwd=self.root, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT)
        if check:
            assert proc.returncode == 0, f"psy {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def start(self, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        return subprocess.Popen([*psy_command(), *args], cwd=self.root, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self, name: str, filename: str = "result.pkl") -> dict:
        from psyrun.store import load_result

        return load_result(self.work / name / filename)

    def rows(self, name: str, filename: str = "result.pkl") -> list[tuple]:
        data = self.result(name, filename)
        keys = sorted(data)
        return sorted(zip(*([_plain(v) for v in data[k]] for k in keys)))

    def snapshot(self) -> dict[str, bytes]:
        """Every file under psy-work with its content (to prove nothing changed)."""
        if not self.work.exists():
            return {}
        return {str(p.relative_to(self.work)): p.read_bytes()
                for p in sorted(self.work.rglob("*")) if p.is_file()}


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def wait_for(predicate, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)
