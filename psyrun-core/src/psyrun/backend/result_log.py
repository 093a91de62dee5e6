"""The LoadBalancing result logs: one append-only file per worker process.

Each process of a LoadBalancing worker writes the outcome of every item to
its own file, so no two processes ever write to the same file and recording a
result needs no lock.  ``finalize`` merges the logs into the result file
through the task's store; ``psy status`` and ``psy run -c`` read them to know
which items are done.

A log is a sequence of frames: an 8-byte header (payload length and CRC-32,
little endian) followed by a pickled record.  The first record describes the
writer (round, owner, proc_id); each later record is either
``{"position": i, "row": {...}}`` for a result or ``{"position": i,
"failed": {...}}`` for an item whose ``execute`` raised.

Durability versus speed: each frame is handed to the kernel with one
``os.write`` on a file opened with ``O_APPEND``, right after the item
finished.  That survives the writing process being killed (``kill -9``, a
time limit): the data is in the page cache and the kernel writes it out.  It
does not survive the node losing power before the kernel flushed it; an
``fsync`` per item would cost milliseconds (much more on NFS) and make
trivial items dominated by it, so the log is synced only when it is closed.
A frame cut short by a crash fails its length or CRC check and is ignored
together with anything after it: at worst the items being written at that
instant are missing, and ``psy run -c`` computes them again.
"""

from __future__ import annotations

import os
import pickle
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

_HEADER = struct.Struct("<II")
#: Refuse absurd lengths from a damaged header instead of allocating them.
_MAX_FRAME = 1 << 31


class ResultLog:
    """The log of one process, open for appending."""

    def __init__(self, path: str | os.PathLike[str], header: dict[str, Any]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: a log belongs to exactly one process lifetime.
        self._fd: int | None = os.open(
            self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644
        )
        self._write(header)

    def _write(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            raise ValueError(f"The result log {self.path} is closed.")
        payload = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        frame = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        written = os.write(self._fd, frame)
        while written < len(frame):  # only for huge frames or signals
            written += os.write(self._fd, frame[written:])

    def add_result(self, position: int, row: dict[str, Any]) -> None:
        """Record that item ``position`` produced ``row`` (parameters and outputs)."""
        self._write({"position": position, "row": row})

    def add_failure(self, position: int, failure: dict[str, Any]) -> None:
        """Record that item ``position`` raised: its ``params``, ``error`` and ``traceback``."""
        self._write({"position": position, "failed": failure})

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> ResultLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@attrs.frozen
class LogContents:
    """What a log holds: its header, results and failures by position."""

    path: Path
    header: dict[str, Any]
    results: dict[int, dict[str, Any]]
    failures: dict[int, dict[str, Any]]
    #: True if the log ends in a damaged or cut-short frame (its writer crashed).
    truncated: bool


def _frames(data: bytes) -> Iterator[tuple[bytes | None, int]]:
    """The payloads in ``data``; a final None marks a damaged tail."""
    offset = 0
    while offset < len(data):
        if offset + _HEADER.size > len(data):
            yield None, offset
            return
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        end = start + length
        if length > _MAX_FRAME or end > len(data) or zlib.crc32(data[start:end]) != crc:
            yield None, offset
            return
        yield data[start:end], offset
        offset = end


def read_log(path: str | os.PathLike[str]) -> LogContents:
    """Read a log, also one whose writer is still appending or was killed."""
    path = Path(path)
    data = path.read_bytes()
    header: dict[str, Any] = {}
    results: dict[int, dict[str, Any]] = {}
    failures: dict[int, dict[str, Any]] = {}
    truncated = False
    for payload, _ in _frames(data):
        if payload is None:
            truncated = True
            break
        record = pickle.loads(payload)
        if not header and "position" not in record:
            header = record
        elif "row" in record:
            results[record["position"]] = record["row"]
            failures.pop(record["position"], None)
        else:
            failures[record["position"]] = record["failed"]
    return LogContents(path, header, results, failures, truncated)
