"""The ``immediate`` scheduler: runs psyrun's jobs on this machine, no cluster needed.

Submitting only records a job and returns its id; a background thread (the
dispatcher) starts each job as a subprocess as soon as its dependencies have
completed and enough of the machine's cores are free, and cancels it if a
dependency failed or was cancelled.  The jobs belong to the process that
submitted them: ``psy run`` waits for them (:attr:`ImmediateRun.in_process`),
and when that process exits or is interrupted, its running jobs are
terminated.

Every job runs in a session of its own, so killing a job kills the processes
it started too, and a Ctrl-C in the terminal reaches only ``psy``, which then
stops the jobs in order.  SIGTERM and SIGHUP (a closed terminal) make the
process exit normally, so that it stops its jobs too, unless the program
installed handlers of its own for them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from psyrun.exceptions import SchedulerArgumentError, SchedulerError
from psyrun.scheduler.base import (
    ARRAY_INDEX,
    JobState,
    JobStatus,
    Scheduler,
    combine_states,
    evaluate_scheduler_args,
)

#: Arguments of cluster schedulers that ``immediate`` accepts and ignores, so a
#: task written for a cluster runs here without editing its scheduler_args.
#: The arguments of every installed scheduler plugin are accepted as well.
CLUSTER_ARGS = frozenset({
    "timelimit", "memory", "memory_per_cpu", "n_nodes", "cores_per_socket",
    "sockets_per_node", "partition", "account", "qos", "constraint", "gres",
    "exclusive", "mail_user", "mail_type", "queue", "max_running", "sbatch_args",
})

# Windows has no SIGKILL; there, terminating is already final.
_SIGKILL = getattr(signal, "SIGKILL", signal.SIGTERM)

# Exit codes a shell reports for a command it cannot run; used for the same cases.
_EXIT_NOT_FOUND = 127
_EXIT_NOT_EXECUTABLE = 126


def available_cores() -> int:
    """The number of cores this process may use (its CPU affinity, else the count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


class _Element:
    """One process to run: a single job or one element of an array.

    Mutable; every access goes through the scheduler's lock.
    """

    __slots__ = ("argv", "cwd", "exit_code", "id", "kill_deadline", "killed", "n_cpus",
                 "output", "process", "reason", "sigkilled", "state", "submission")

    def __init__(self, submission: _Submission, element_id: str, argv: list[str],
                 output: Path, n_cpus: int, cwd: Path) -> None:
        self.submission = submission
        self.id = element_id
        self.argv = argv
        self.output = output
        self.n_cpus = n_cpus
        self.cwd = cwd
        self.state = JobState.QUEUED
        self.exit_code: int | None = None
        self.reason: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.killed = False
        self.sigkilled = False
        self.kill_deadline = 0.0

    def status(self) -> JobStatus:
        reason = self.reason
        if reason is None and self.state is JobState.QUEUED:
            reason = self.submission.wait_reason
        return JobStatus(self.id, self.state, name=self.submission.name,
                         exit_code=self.exit_code, log=self.output, reason=reason)


class _Submission:
    """What one call of ``submit`` or ``submit_array`` asked for."""

    __slots__ = ("depends_on", "elements", "first_bad", "id", "is_array", "name", "pending",
                 "unfinished", "wait_reason")

    def __init__(self, job_id: str, name: str, depends_on: list[str], is_array: bool) -> None:
        self.id = job_id
        self.name = name
        self.depends_on = depends_on
        self.is_array = is_array
        self.elements: list[_Element] = []
        #: Queued elements in index order; they start from the left.
        self.pending: deque[_Element] = deque()
        #: Why the queued elements wait (shared, so a pass over the queue is
        #: cheap however many elements wait).
        self.wait_reason: str | None = None
        # Kept up to date by the scheduler, so dependencies are checked in O(1).
        self.unfinished = 0
        self.first_bad: _Element | None = None  # the first element failed or cancelled

    @property
    def finished(self) -> bool:
        return self.unfinished == 0

    def status(self) -> JobStatus:
        if not self.is_array:
            return self.elements[0].status()
        elements = tuple(e.status() for e in self.elements)
        if not elements:  # an empty array has nothing to do
            return JobStatus(self.id, JobState.COMPLETED, name=self.name, exit_code=0)
        if all(e.state.finished for e in elements):
            state = combine_states(e.state for e in elements)
        else:
            # A failed element must not make the array look finished while
            # others still run: wait() would return too early.
            state = combine_states(e.state for e in elements
                                   if e.state not in (JobState.FAILED, JobState.CANCELLED))
        failed = [e for e in elements if e.state is JobState.FAILED]
        cancelled = [e for e in elements if e.state is JobState.CANCELLED]
        exit_code = log = reason = None
        if failed:
            exit_code, log = failed[0].exit_code, failed[0].log
            reason = f"{len(failed)} of {len(elements)} elements failed"
        elif cancelled:
            reason = f"{len(cancelled)} of {len(elements)} elements cancelled"
        elif state is JobState.COMPLETED:
            exit_code = 0
        return JobStatus(self.id, state, name=self.name, exit_code=exit_code, log=log,
                         reason=reason, elements=elements)


def _watch(process: subprocess.Popen[bytes], wake: threading.Condition) -> None:
    """Reap ``process`` as soon as it ends, then wake the dispatcher."""
    process.wait()
    with wake:
        wake.notify_all()


class ImmediateRun(Scheduler):
    """Runs jobs on this machine while the submitting process lives.

    ``cores`` caps the number of cores busy at once (default: the cores this
    process may use).  A job occupies ``scheduler_args["n_cpus"]`` cores
    (default 1); a job that needs more cores than there are runs alone.
    Jobs start in the order they were submitted once their dependencies
    completed; a job that does not fit waits and later jobs wait behind it,
    so a large job is never starved by small ones.

    ``kill_grace`` is how many seconds a killed job gets between SIGTERM and
    SIGKILL.
    """

    known_args = frozenset({"n_cpus"}) | CLUSTER_ARGS
    blocking = False
    in_process = True

    def __init__(self, workdir: str | os.PathLike[str] | None = None, *,
                 cores: int | None = None, kill_grace: float = 3.0) -> None:
        super().__init__(workdir)
        if cores is not None and (isinstance(cores, bool) or not isinstance(cores, int)
                                  or cores < 1):
            raise SchedulerArgumentError(
                f"ImmediateRun(cores={cores!r}): cores must be a positive whole number "
                f"(or None to use all {available_cores()} cores of this machine).")
        self.cores = available_cores() if cores is None else cores
        self.kill_grace = kill_grace
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)     # wakes the dispatcher
        self._changed = threading.Condition(self._lock)  # wakes wait()
        self._submissions: dict[str, _Submission] = {}
        self._queue: list[_Submission] = []  # those with queued elements, in submission order
        self._running: list[_Element] = []
        self._busy = 0                       # cores held by running elements
        self._next_id = 1
        self._thread: threading.Thread | None = None
        _instances.add(self)

    # ------------------------------------------------------------ submission
    def submit(
        self,
        argv: Sequence[str],
        *,
        name: str,
        output: str | os.PathLike[str],
        depends_on: Sequence[str] = (),
        scheduler_args: Mapping[str, Any] | None = None,
    ) -> str:
        return self._submit(None, argv, name, output, depends_on, scheduler_args)

    def submit_array(
        self,
        n: int,
        argv: Sequence[str],
        *,
        name: str,
        output: str | os.PathLike[str],
        depends_on: Sequence[str] = (),
        scheduler_args: Mapping[str, Any] | None = None,
    ) -> str:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise SchedulerError(
                f"submit_array({n!r}, ...) for {name!r}: the number of elements must be "
                "a whole number of at least 0.")
        return self._submit(n, argv, name, output, depends_on, scheduler_args)

    def _submit(self, n: int | None, argv: Sequence[str], name: str,
                output: str | os.PathLike[str], depends_on: Sequence[str],
                scheduler_args: Mapping[str, Any] | None) -> str:
        args = evaluate_scheduler_args(scheduler_args, name)
        self.validate_args(args, name)
        n_cpus = args.get("n_cpus", 1)
        argv = [os.fspath(a) for a in argv]
        if not argv:
            raise SchedulerError(f"Job {name!r} has an empty argument list; give the "
                                 "program to run and its arguments.")
        # Like sbatch, run the job where it was submitted, even if psy moves on.
        cwd = Path.cwd()
        output_template = os.fspath(cwd / output)
        with self._lock:
            unknown = [d for d in depends_on if self._lookup(d) is None]
            if unknown:
                raise SchedulerError(
                    f"Job {name!r} depends on {', '.join(map(repr, unknown))}, which this "
                    "immediate scheduler never returned; pass ids from its submit() or "
                    "submit_array().")
            job_id = str(self._next_id)
            self._next_id += 1
            sub = _Submission(job_id, name, list(depends_on), is_array=n is not None)
            if n is None:
                sub.elements.append(_Element(sub, job_id, argv, Path(output_template), n_cpus,
                                             cwd))
            for i in range(n or 0):
                sub.elements.append(_Element(
                    sub, f"{job_id}_{i}", [a.replace(ARRAY_INDEX, str(i)) for a in argv],
                    Path(output_template.replace(ARRAY_INDEX, str(i))), n_cpus, cwd))
            self._submissions[job_id] = sub
            sub.pending.extend(sub.elements)
            sub.unfinished = len(sub.elements)
            if sub.pending:
                self._queue.append(sub)
            self._ensure_dispatcher()
            self._work.notify_all()
            self._changed.notify_all()
        _exit_on_termination_signals()
        return job_id

    def validate_args(self, scheduler_args: Mapping[str, Any] | None, name: str = "") -> None:
        """Accept ``n_cpus`` and, ignoring them, the arguments of cluster schedulers.

        Any other key is refused, since it is most likely a typo.
        """
        given = dict(scheduler_args or {})
        unknown = sorted(set(given) - self.known_args - _plugin_args())
        if unknown:
            raise SchedulerArgumentError(
                f"Unknown scheduler_args for the immediate scheduler: {', '.join(unknown)}. "
                f"It uses n_cpus and accepts (and ignores) the arguments of cluster "
                f"schedulers; known: {', '.join(sorted(self.known_args))}. "
                "Check the spelling or remove the key from the task file.")
        n_cpus = given.get("n_cpus", 1)
        if callable(n_cpus):
            if not name:
                return  # resolved per job at submission
            n_cpus = n_cpus(name)
        if isinstance(n_cpus, bool) or not isinstance(n_cpus, int) or n_cpus < 1:
            raise SchedulerArgumentError(
                f"scheduler_args['n_cpus'] = {n_cpus!r}{' for ' + repr(name) if name else ''}"
                ": n_cpus must be a whole number of at least 1 (the cores one job uses).")

    # ------------------------------------------------------------ queries and control
    def status(self, ids: Iterable[str]) -> dict[str, JobStatus]:
        result = {}
        with self._lock:
            for job_id in ids:
                sub = self._submissions.get(job_id)
                if sub is not None:
                    result[job_id] = sub.status()
                    continue
                elements = self._lookup(job_id)
                if elements:
                    result[job_id] = elements[0].status()
                else:
                    result[job_id] = JobStatus(
                        job_id, JobState.UNKNOWN,
                        reason="not submitted through this scheduler; immediate jobs exist "
                               "only inside the psy process that submitted them")
        return result

    def jobs(self) -> list[str]:
        with self._lock:
            return [i for i, sub in self._submissions.items() if not sub.finished]

    def kill(self, ids: Iterable[str]) -> None:
        with self._lock:
            for job_id in ids:
                for element in self._lookup(job_id) or ():
                    if element.state is JobState.QUEUED:
                        self._settle_queued(element, JobState.CANCELLED,
                                            "killed before it started")
                    elif element.state is JobState.RUNNING:
                        self._terminate(element)
            self._work.notify_all()
            self._changed.notify_all()

    def wait(
        self,
        ids: Iterable[str],
        timeout: float | None = None,
        poll_interval: float = 0.5,
        on_poll: Callable[[dict[str, JobStatus]], None] | None = None,
    ) -> dict[str, JobStatus]:
        """Wait until the jobs finished; returns as soon as the last one did.

        ``on_poll`` is called with fresh statuses every ``poll_interval``
        seconds and once more at the end.  A Ctrl-C while waiting stops every
        job of this scheduler before it propagates.
        """
        ids = list(ids)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                statuses = self.status(ids)
                if on_poll is not None:
                    on_poll(statuses)
                if all(s.state.finished for s in statuses.values()):
                    return statuses
                pause = poll_interval
                if deadline is not None:
                    pause = min(pause, deadline - time.monotonic())
                    if pause <= 0:
                        return statuses
                # Sleep until every job finished or the pause is over: building
                # statuses on every change would cost O(elements) each time.
                with self._lock:
                    self._changed.wait_for(lambda: self._all_finished(ids), pause)
        except KeyboardInterrupt:
            self.shutdown()
            raise

    def _all_finished(self, ids: list[str]) -> bool:
        """True if every id in ``ids`` has finished; never for an unknown id (lock held)."""
        for job_id in ids:
            sub = self._submissions.get(job_id)
            if sub is not None:
                if sub.unfinished:
                    return False
                continue
            elements = self._lookup(job_id)
            if elements is None or not elements[0].state.finished:
                return False
        return True

    def shutdown(self, grace: float | None = None) -> None:
        """Cancel the queued jobs and stop the running ones; return when they are gone.

        Running jobs get SIGTERM, then SIGKILL after ``grace`` seconds
        (default :attr:`kill_grace`).  Called at interpreter exit.
        """
        with self._lock:
            self._cancel_all_queued("psyrun stopped before the job started")
            running = list(self._running)
            for element in running:
                self._terminate(element, grace)
            self._work.notify_all()
        for element in running:
            assert element.process is not None
            try:
                element.process.wait(max(0.0, element.kill_deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal(element, _SIGKILL)
                element.process.wait()
        with self._lock:
            self._reap()
            self._changed.notify_all()

    def __enter__(self) -> ImmediateRun:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    @classmethod
    def task_template(cls) -> str:
        return (
            "# The immediate scheduler runs the jobs on this machine while `psy run`\n"
            "# waits for them, using at most as many cores as the machine has.\n"
            "# n_cpus: cores one job occupies (the backends set it to pool_size).\n"
            "# Arguments for cluster schedulers (timelimit, memory, ...) are accepted\n"
            "# and ignored, so this task can move to a cluster without edits.\n"
            "scheduler_args = {\n"
            "    # 'n_cpus': 1,\n"
            "}\n"
        )

    # ------------------------------------------------------------ internals (lock held)
    def _lookup(self, job_id: str) -> list[_Element] | None:
        """The elements an id stands for: a whole submission or ``<array id>_<index>``."""
        sub = self._submissions.get(job_id)
        if sub is not None:
            return sub.elements
        array_id, _, index = str(job_id).partition("_")
        sub = self._submissions.get(array_id)
        if sub is not None and sub.is_array and index.isdigit() and int(index) < len(
                sub.elements):
            return [sub.elements[int(index)]]
        return None

    def _ensure_dispatcher(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._dispatch, daemon=True,
                                            name="psyrun-immediate-dispatcher")
            self._thread.start()

    def _dispatch(self) -> None:
        """Start, reap and cancel jobs until none is queued or running, then end."""
        with self._lock:
            while True:
                try:
                    self._reap()
                    self._escalate_kills()
                    while self._advance_queue():
                        pass  # a job that failed to start may cancel its dependents
                except Exception as exc:  # never die with jobs left: fail them instead
                    self._cancel_all_queued(f"psyrun's dispatcher failed: {exc!r}",
                                            JobState.FAILED)
                self._changed.notify_all()
                if not self._queue and not self._running:
                    self._thread = None
                    return
                self._work.wait(self._next_timeout())

    def _next_timeout(self) -> float:
        # Watchers wake us when a job ends; the timeout only drives SIGKILL
        # escalation and guards against a missed wake-up.
        timeout = 1.0
        now = time.monotonic()
        for element in self._running:
            if element.killed and not element.sigkilled:
                timeout = min(timeout, max(0.01, element.kill_deadline - now))
        return timeout

    def _reap(self) -> None:
        for element in list(self._running):
            assert element.process is not None
            code = element.process.poll()
            if code is not None:
                self._finish(element, code)

    def _finish(self, element: _Element, code: int) -> None:
        self._running.remove(element)
        self._busy -= element.n_cpus
        # Like a cluster at the end of a job: nothing the job started outlives it.
        self._signal_group(element, _SIGKILL)
        element.exit_code = code if code >= 0 else 128 - code
        if element.killed:
            self._settle(element, JobState.CANCELLED, "killed")
        elif code == 0:
            self._settle(element, JobState.COMPLETED, None)
        else:
            self._settle(element, JobState.FAILED,
                         f"exit code {code}" if code > 0 else
                         f"terminated by signal {_signal_name(-code)}")

    def _escalate_kills(self) -> None:
        now = time.monotonic()
        for element in self._running:
            if element.killed and not element.sigkilled and now >= element.kill_deadline:
                element.sigkilled = True
                self._signal(element, _SIGKILL)

    def _advance_queue(self) -> bool:
        """Start or cancel what can be; True if a job finished without running."""
        ended = False
        cores_reason = None  # set once a ready job does not fit: no overtaking after it
        for sub in list(self._queue):
            verdict = self._dependency_verdict(sub)
            if verdict == "wait":
                sub.wait_reason = "waiting for dependencies"
                continue
            if verdict is not None:
                while sub.pending:
                    self._settle_queued(sub.pending[0], JobState.CANCELLED, verdict)
                ended = True
                continue
            while sub.pending and cores_reason is None:
                element = sub.pending[0]
                if self._busy and self._busy + element.n_cpus > self.cores:
                    cores_reason = f"waiting for cores ({self._busy} of {self.cores} busy)"
                    break
                sub.pending.popleft()
                self._start(element)
                ended = ended or element.state.finished
            if sub.pending:
                sub.wait_reason = cores_reason
            else:
                self._queue.remove(sub)
        return ended

    def _dependency_verdict(self, sub: _Submission) -> str | None:
        """None if every dependency completed, "wait", or why the job cannot run."""
        waiting = False
        for dep_id in sub.depends_on:
            dep = self._submissions.get(dep_id)
            if dep is not None:
                bad, unfinished = dep.first_bad, dep.unfinished
            else:  # one element of an array
                element = (self._lookup(dep_id) or [None])[0]
                assert element is not None  # checked at submission
                bad = element if element.state in _BAD else None
                unfinished = not element.state.finished
            if bad is not None:
                return f"dependency {bad.id} {bad.state.value}"
            waiting = waiting or bool(unfinished)
        return "wait" if waiting else None

    def _start(self, element: _Element) -> None:
        name = element.submission.name
        try:
            element.output.parent.mkdir(parents=True, exist_ok=True)
            log = open(element.output, "wb")  # noqa: SIM115 - closed below, once the child has it
        except OSError as exc:
            self._settle(element, JobState.FAILED,
                         f"cannot open the output file {element.output}: {exc}")
            return
        with log:
            try:
                process = subprocess.Popen(
                    element.argv, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, cwd=element.cwd, start_new_session=True)
            except Exception as exc:  # FileNotFoundError, PermissionError, bad arguments
                message = f"psyrun: cannot start job {name!r} ({element.argv[0]}): {exc}"
                log.write(message.encode() + b"\n")
                if isinstance(exc, FileNotFoundError):
                    element.exit_code = _EXIT_NOT_FOUND
                elif isinstance(exc, PermissionError):
                    element.exit_code = _EXIT_NOT_EXECUTABLE
                self._settle(element, JobState.FAILED, message)
                return
        element.process = process
        element.state, element.reason = JobState.RUNNING, None
        self._busy += element.n_cpus
        self._running.append(element)
        threading.Thread(target=_watch, args=(process, self._work), daemon=True,
                         name=f"psyrun-immediate-watch-{element.id}").start()

    def _settle(self, element: _Element, state: JobState, reason: str | None) -> None:
        """Give ``element`` its final state; the one way a job finishes."""
        element.state, element.reason = state, reason
        sub = element.submission
        sub.unfinished -= 1
        if state in _BAD and sub.first_bad is None:
            sub.first_bad = element

    def _settle_queued(self, element: _Element, state: JobState, reason: str) -> None:
        sub = element.submission
        sub.pending.remove(element)
        if not sub.pending and sub in self._queue:
            self._queue.remove(sub)
        self._settle(element, state, reason)

    def _cancel_all_queued(self, reason: str, state: JobState = JobState.CANCELLED) -> None:
        for sub in list(self._queue):
            while sub.pending:
                self._settle_queued(sub.pending[0], state, reason)

    def _terminate(self, element: _Element, grace: float | None = None) -> None:
        if element.killed:
            return
        element.killed = True
        element.kill_deadline = time.monotonic() + (self.kill_grace if grace is None else grace)
        element.reason = "cancelling (SIGTERM sent)"
        self._signal(element, signal.SIGTERM)

    def _signal(self, element: _Element, sig: int) -> None:
        """Signal the job's whole process group, and the job itself if it left it."""
        self._signal_group(element, sig)
        assert element.process is not None
        with contextlib.suppress(OSError):
            element.process.send_signal(sig)  # a no-op once the process was reaped

    @staticmethod
    def _signal_group(element: _Element, sig: int) -> None:
        assert element.process is not None
        if not hasattr(os, "killpg"):  # Windows: no process groups to signal
            return
        # The job leads its own session, so its pid is the group's id; the
        # group may be gone already.
        with contextlib.suppress(OSError):
            os.killpg(element.process.pid, sig)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _plugin_args() -> frozenset[str]:
    """The arguments every installed scheduler plugin knows, accepted and ignored here."""
    try:
        from psyrun.plugins.manager import get_plugin_manager

        names: set[str] = set()
        for record in get_plugin_manager().records("scheduler"):
            names.update(getattr(record.scheduler, "known_args", ()) or ())
        return frozenset(names)
    except Exception:  # a broken plugin must not stop a local run
        return frozenset()


_BAD = (JobState.FAILED, JobState.CANCELLED)


def _exit_on_termination_signals() -> None:
    """Turn SIGTERM and SIGHUP into a normal exit, so atexit stops the jobs.

    By default these signals end Python at once, leaving the jobs (which run
    in sessions of their own) as orphans.  Only signals still at their
    default are taken over, and only from the main thread (where Python
    runs signal handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is signal.SIG_DFL:
            signal.signal(number, _raise_system_exit)


def _raise_system_exit(number: int, frame: object) -> None:
    raise SystemExit(128 + number)

_instances: weakref.WeakSet[ImmediateRun] = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    """Jobs die with this process: stop them rather than leave orphans behind."""
    for scheduler in list(_instances):
        scheduler.shutdown()
