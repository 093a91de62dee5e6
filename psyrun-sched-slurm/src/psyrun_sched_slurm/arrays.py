"""Splitting a psyrun array into Slurm arrays the cluster accepts.

Slurm refuses array indices at or above ``MaxArraySize``.  A psyrun array of
``n`` elements therefore becomes consecutive chunks of at most
``MaxArraySize`` elements; chunk ``k`` runs Slurm indices ``0..count-1`` and
its batch script adds the chunk's ``offset`` to get psyrun's index.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Chunk:
    """One Slurm array (or a single job) covering psyrun indices offset..offset+count-1."""

    offset: int
    count: int

    @property
    def stop(self) -> int:
        return self.offset + self.count


def split(n: int, max_array_size: int) -> list[Chunk]:
    """Chunks covering ``0..n-1``; ``max_array_size`` 0 (arrays disabled) gives one job each."""
    if n < 1:
        raise ValueError(f"an array needs at least one element, got n={n}")
    size = max(max_array_size, 1)
    return [Chunk(offset, min(size, n - offset)) for offset in range(0, n, size)]


def array_spec(chunk: Chunk, max_running: int | None = None) -> str:
    """The value of sbatch's ``--array`` for a chunk, with the ``%N`` throttle if given."""
    spec = f"0-{chunk.count - 1}"
    return f"{spec}%{max_running}" if max_running else spec
