"""The LoadBalancing locking: how worker processes claim items without races.

Every process of every LoadBalancing worker pulls items from one shared queue
until none is left.  The queue of one round is a directory::

    meta.json           number of items and of processes (written by ``pspace``)
    tickets/00000000    the first claim: "start stop host pid started token"
    tickets/00000001    the next claim, starting where the previous one stopped
    ...
    tmp/                where a claim is written before it is published

The tickets form a chain of contiguous, disjoint ranges of item positions.
To claim items, a process writes its ticket to a private temporary file and
publishes it with ``os.link(tmp, tickets/<t>)``.  ``link`` creates the name
atomically or fails with ``EEXIST``: exactly one process wins ticket ``t``;
the losers read the winner's ticket (its ``stop`` is where ticket ``t + 1``
starts) and try ``t + 1``.  A ticket is complete the moment its name exists
(the content was written and closed before the link), so readers never see a
half-written claim.

Why ``link`` and not a lock:

* ``fcntl.lockf``/``flock`` behave differently on NFS (``flock`` is emulated
  with byte-range locks on Linux clients, older servers and clients without a
  running ``lockd`` do not lock at all, and a lock held by a dead node lingers
  until its lease expires).  A lock file made with ``O_CREAT|O_EXCL`` would
  work on NFSv3+, but a process killed while holding it leaves it behind and
  every other process must then guess when it is stale.
* ``link`` is atomic on every POSIX file system, NFS included, and needs no
  clean-up: a claim is a fact that stays true after its owner dies.  There is
  nothing to unlock, so a ``kill -9`` can never block the queue.  The one NFS
  trap, a lost reply to a ``link`` that did succeed (the retransmission then
  reports ``EEXIST``), is caught the way ``open(2)`` recommends: after
  ``EEXIST`` the temporary file's link count tells whether the link was ours.

A claim records its owner: host, pid, the process start time from ``/proc``
and a random token.  On the same host a claim whose pid is gone, is a
zombie, or now belongs to a process started at another time is stale; on
another host the pid says nothing, so the LoadBalancing backend looks at the
heartbeat its process leaves on its result log instead
(:func:`psyrun.backend.load_balancing.claim_is_live`).  ``psy run -c`` starts
a new round with every item that has no result, so a dead worker's unfinished
claims are computed again, once.

Claims are made for small batches whose size adapts to the measured item
duration (:class:`BatchSizer`): a claim creates a file (0.1 to 1 ms on a local
disk, several milliseconds on NFS), so trivial items are claimed many
at a time, while long items are claimed one by one; near the end batches
shrink so that all processes finish together.
"""

from __future__ import annotations

import errno
import json
import math
import os
import secrets
import socket
import time
from collections.abc import Iterator
from enum import Enum
from pathlib import Path

import attrs

from psyrun.exceptions import PsyrunError

TICKET_DIGITS = 8


class QueueError(PsyrunError):
    """The shared item queue of a LoadBalancing round is missing or damaged."""


class Liveness(str, Enum):
    """Whether the owner of a claim still runs, as far as this host can tell."""

    ALIVE = "alive"
    DEAD = "dead"
    UNKNOWN = "unknown"  # another host: we cannot look


def _process_start_time(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot, or "" if unknown.

    Together with the pid it names one process lifetime: pids are reused,
    start times on one host are not (for the same pid).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return ""
    # The command name in parentheses may itself contain spaces or parentheses.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[-1].split()
    return bool(fields) and fields[0] in ("Z", "X")


@attrs.frozen
class Owner:
    """One process lifetime: who made a claim or wrote a result log."""

    host: str
    pid: int
    started: str
    token: str

    @classmethod
    def current(cls) -> Owner:
        """The calling process, with a fresh random token."""
        pid = os.getpid()
        return cls(socket.gethostname(), pid, _process_start_time(pid) or "-",
                   secrets.token_hex(6))

    @property
    def label(self) -> str:
        """A file-name-safe name of this owner: ``host-pid-token``."""
        host = "".join(c if c.isalnum() or c in "._" else "_" for c in self.host)
        return f"{host}-{self.pid}-{self.token}"

    def liveness(self) -> Liveness:
        """Whether this process still runs (only decidable on its own host)."""
        if self.host != socket.gethostname():
            return Liveness.UNKNOWN
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return Liveness.DEAD
        except PermissionError:
            pass  # someone else's process now has this pid: the start time decides
        if _is_zombie(self.pid):
            return Liveness.DEAD
        started = _process_start_time(self.pid)
        if self.started not in ("", "-") and started and started != self.started:
            return Liveness.DEAD  # the pid was reused
        return Liveness.ALIVE


@attrs.frozen
class Claim:
    """Ticket ``ticket``: positions ``start`` to ``stop - 1`` belong to ``owner``."""

    ticket: int
    start: int
    stop: int
    owner: Owner

    def __len__(self) -> int:
        return self.stop - self.start

    def positions(self) -> range:
        return range(self.start, self.stop)

    def to_text(self) -> str:
        o = self.owner
        return f"{self.start} {self.stop} {o.host} {o.pid} {o.started} {o.token}\n"

    @classmethod
    def from_text(cls, ticket: int, text: str) -> Claim:
        start, stop, host, pid, started, token = text.split()
        return cls(ticket, int(start), int(stop), Owner(host, int(pid), started, token))


@attrs.frozen
class QueueMeta:
    """What ``pspace`` writes: how many items and how many processes share them."""

    n_items: int
    n_processes: int


class ItemQueue:
    """The shared queue of one round: positions ``0 .. n_items - 1``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.tickets = self.directory / "tickets"
        self.tmp = self.directory / "tmp"
        try:
            meta = json.loads((self.directory / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise QueueError(
                f"Cannot read the item queue in {self.directory}: {exc}. Run "
                f"'psy run' (or 'psy run -c') so that the pspace job creates it."
            ) from None
        self.meta = QueueMeta(int(meta["n_items"]), int(meta["n_processes"]))
        # Where this client believes the chain ends; only ever moves forward.
        self._next_ticket = 0
        self._next_start = 0

    @classmethod
    def create(cls, directory: str | os.PathLike[str], n_items: int,
               n_processes: int) -> ItemQueue:
        """Make an empty queue (the directory must not hold one already)."""
        directory = Path(directory)
        (directory / "tickets").mkdir(parents=True, exist_ok=True)
        (directory / "tmp").mkdir(exist_ok=True)
        if any((directory / "tickets").iterdir()):
            raise QueueError(f"{directory} already holds claims; use a new directory per round.")
        tmp = directory / f"meta.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"n_items": n_items, "n_processes": max(1, n_processes)}))
        os.replace(tmp, directory / "meta.json")
        return cls(directory)

    @property
    def n_items(self) -> int:
        return self.meta.n_items

    def _ticket_path(self, ticket: int) -> Path:
        return self.tickets / f"{ticket:0{TICKET_DIGITS}d}"

    def read_ticket(self, ticket: int, retries: int = 50) -> Claim | None:
        """The claim ``ticket``, or None if nobody has made it."""
        path = self._ticket_path(ticket)
        for _ in range(retries):
            try:
                text = path.read_text()
            except FileNotFoundError:
                return None
            if text.endswith("\n"):
                return Claim.from_text(ticket, text)
            # Only possible if something other than link() wrote the file
            # (a copy, an NFS client showing stale data): wait for the rest.
            time.sleep(0.01)
        raise QueueError(f"The claim {path} is incomplete; remove the queue and run 'psy run -c'.")

    def _follow(self) -> None:
        """Advance the cursor past every claim made so far."""
        while True:
            claim = self.read_ticket(self._next_ticket)
            if claim is None:
                return
            self._next_ticket = claim.ticket + 1
            self._next_start = claim.stop

    @property
    def unclaimed(self) -> int:
        """Items not claimed yet, as far as this client has seen."""
        return max(0, self.meta.n_items - self._next_start)

    def claim(self, owner: Owner, size: int) -> Claim | None:
        """Claim up to ``size`` of the next unclaimed items; None when all are claimed."""
        size = max(1, int(size))
        tmp = self.tmp / f"{owner.label}.claim"
        pause = 0.001
        while True:
            if self._next_start >= self.meta.n_items:
                return None  # the cursor comes from real claims: everything is taken
            claim = Claim(self._next_ticket, self._next_start,
                          min(self._next_start + size, self.meta.n_items), owner)
            with open(tmp, "w") as f:
                f.write(claim.to_text())
            try:
                won = self._publish(tmp, self._ticket_path(claim.ticket))
            finally:
                tmp.unlink(missing_ok=True)
            if won:
                self._next_ticket = claim.ticket + 1
                self._next_start = claim.stop
                return claim
            self._follow()
            if self._next_ticket == claim.ticket:
                # The ticket exists but cannot be read yet (an NFS client's
                # cached "no such file"): wait for the cache instead of spinning.
                time.sleep(pause)
                pause = min(pause * 2, 0.1)

    @staticmethod
    def _publish(tmp: Path, target: Path) -> bool:
        try:
            os.link(tmp, target)
        except FileExistsError:
            # On NFS a retransmitted link whose first reply was lost fails
            # with EEXIST although it succeeded: then tmp has two links.
            return os.stat(tmp).st_nlink == 2
        except OSError as exc:
            if exc.errno == errno.EMLINK:
                raise QueueError(f"Too many links to {tmp}: the file system refuses "
                                 f"hard links; put psy-work on a POSIX file system.") from exc
            raise
        return True

    def claims(self) -> Iterator[Claim]:
        """Every claim made so far, in ticket order."""
        ticket = 0
        while True:
            claim = self.read_ticket(ticket)
            if claim is None:
                return
            yield claim
            ticket += 1


class BatchSizer:
    """How many items to claim at once.

    A claim should cover about ``target_seconds`` of work, so that its cost
    (a few file operations) stays small next to the work, but never more than
    ``1 / (2 * n_processes)`` of what is left unclaimed, so that the last
    batches are small and all processes finish at about the same time.  The
    first claim of a process is a single item: nothing is known yet.
    """

    def __init__(self, n_processes: int, target_seconds: float = 0.05,
                 max_size: int = 10_000) -> None:
        self.n_processes = max(1, n_processes)
        self.target_seconds = target_seconds
        self.max_size = max_size
        self._items = 0
        self._seconds = 0.0

    def record(self, n_items: int, seconds: float) -> None:
        """Report that ``n_items`` took ``seconds`` (claiming and saving included)."""
        self._items += n_items
        self._seconds += seconds

    def next_size(self, unclaimed: int) -> int:
        if self._items == 0:
            return 1
        per_item = self._seconds / self._items
        by_time = self.max_size if per_item <= 0 else math.ceil(self.target_seconds / per_item)
        by_share = math.ceil(unclaimed / (2 * self.n_processes))
        return max(1, min(by_time, by_share, self.max_size))
