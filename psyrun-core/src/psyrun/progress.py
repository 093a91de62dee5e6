"""Waiting for submitted jobs, with a progress bar on a terminal.

``psy run`` waits here for the jobs of in-process schedulers (``immediate``),
and for any scheduler's jobs with ``psy run --wait``.  The bar counts
finished job units: a single job is one unit, an array one per element.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from psyrun.scheduler.base import JobStatus


def _units(statuses: dict[str, JobStatus]) -> tuple[int, int]:
    total = done = 0
    for status in statuses.values():
        parts = status.elements or (status,)
        total += len(parts)
        done += sum(1 for p in parts if p.state.finished)
    return done, total


def wait_for_jobs(scheduler: Any, ids: Sequence[str], label: str = "running",
                  poll_interval: float | None = None,
                  show: bool | None = None) -> dict[str, JobStatus]:
    """Wait until every job in ``ids`` finished; return their last statuses.

    ``show`` (default: stderr is a terminal) draws a click progress bar.
    """
    ids = list(ids)
    if not ids:
        return {}
    if poll_interval is None:
        poll_interval = 0.5 if getattr(scheduler, "in_process", False) else 10.0
    if show is None:
        show = sys.stderr.isatty()
    if not show:
        return scheduler.wait(ids, poll_interval=poll_interval)
    first = scheduler.status(ids)
    _, total = _units(first)
    with click.progressbar(length=max(total, 1), label=label, file=sys.stderr,
                           show_pos=True) as bar:
        shown = [0]

        def on_poll(statuses: dict[str, JobStatus]) -> None:
            done, _ = _units(statuses)
            if done > shown[0]:
                bar.update(done - shown[0])
                shown[0] = done

        return scheduler.wait(ids, poll_interval=poll_interval, on_poll=on_poll)
