"""The lock that keeps two ``psy run`` of one task from running at once.

The lock is the file ``<workdir>/<task>/psy.lock``, created exclusively and
holding the pid and host of the ``psy`` process that owns it.  A lock whose
owner is a dead process on this host (``psy run`` was killed) is stale and
is taken over; a lock of another host cannot be checked from here, so the
message says how to remove it by hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from psyrun.exceptions import PsyrunError

LOCK_NAME = "psy.lock"
#: Seconds after which an unreadable lock (its owner died while writing it) is stale.
_UNREADABLE_GRACE = 10.0


class TaskLockedError(PsyrunError):
    """Another ``psy`` process is working on the task."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class TaskLock:
    """An exclusive, stale-aware lock on one task's work directory."""

    def __init__(self, taskworkdir: Path, task_name: str, command: str = "psy run") -> None:
        self.path = Path(taskworkdir) / LOCK_NAME
        self.task_name = task_name
        self.command = command
        self._held = False
        self._made_dir = False

    def _read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def _is_stale(self, holder: dict[str, Any] | None) -> bool:
        if holder is None:
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return True
            return age > _UNREADABLE_GRACE
        if holder.get("host") != socket.gethostname():
            return False
        pid = holder.get("pid")
        return not isinstance(pid, int) or not _pid_alive(pid)

    def acquire(self) -> None:
        """Take the lock or raise :class:`TaskLockedError` saying who holds it."""
        self._made_dir = not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read()
                if self._is_stale(holder):
                    # Remove it only if it is still the stale lock we judged.
                    if self._read() == holder:
                        with contextlib.suppress(FileNotFoundError):
                            self.path.unlink()
                    continue
                raise TaskLockedError(self._locked_message(holder)) from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self._held = True
            return
        raise TaskLockedError(self._locked_message(self._read()))

    def _locked_message(self, holder: dict[str, Any] | None) -> str:
        if holder is None:
            return (f"Task {self.task_name} is locked by {self.path} (being written). "
                    "Try again in a few seconds.")
        who = (f"{holder.get('command', 'psy')} (pid {holder.get('pid')} on "
               f"{holder.get('host')}, since {holder.get('started')})")
        message = f"Task {self.task_name} is already being run by {who}. Wait for it to finish"
        if holder.get("host") != socket.gethostname():
            message += (f"; if that process is gone, delete {self.path} and try again")
        return message + "."

    def release(self) -> None:
        if not self._held:
            return
        holder = self._read()
        if holder is not None and holder.get("pid") == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            if self._made_dir:  # leave no empty work directory behind a refused run
                with contextlib.suppress(OSError):
                    self.path.parent.rmdir()
        self._held = False

    def __enter__(self) -> TaskLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def lock_holder(taskworkdir: Path) -> dict[str, Any] | None:
    """Who holds the task's lock (``pid``, ``host``, ``command``, ``started``), if anyone."""
    try:
        holder = json.loads((Path(taskworkdir) / LOCK_NAME).read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None
