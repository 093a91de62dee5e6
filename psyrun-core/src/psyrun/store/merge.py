"""Merging many output files into one result file (``psy merge``).

:func:`merge_files` reads every output file of a directory (or a given list
of files) with the store its extension selects and writes all rows to one
file whose extension selects the output store, so merging also converts
between formats.  It is linear in the total number of rows: the inputs are
streamed into :meth:`~psyrun.store.Store.save_many`, which the pickle and h5
stores write chunk by chunk and the npz store joins once; the growing result
is never reloaded.

What it promises:

* Order: files of a directory are taken in natural order of their names
  (``out-2`` before ``out-10``); a list of files is taken as given.
* Nothing half done: the result is written to a temporary file that replaces
  ``merged`` only when every row is in it.
* Nothing overwritten unasked: an existing ``merged`` is an error unless
  ``overwrite=True`` (``psy merge --force``).
* Unreadable inputs stop the merge with an error naming the file, and
  nothing is written; with ``skip_unreadable=True`` they are left out and
  listed in :attr:`MergeResult.skipped`.

In a directory, hidden files, subdirectories, files whose extension no
store claims (``.tmp`` files of interrupted writers among them) and the
output file itself are not inputs.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs

from psyrun.exceptions import (
    PluginError,
    ResultExistsError,
    StoreError,
    StoreFileNotFoundError,
    UnsupportedDataError,
)
from psyrun.store.base import Data, PathLike

_DIGITS = re.compile(r"(\d+)")


@attrs.frozen
class MergeResult:
    """What :func:`merge_files` did."""

    #: The file written.
    merged: Path
    #: The inputs whose rows are in ``merged``, in order.
    files: tuple[Path, ...]
    #: Inputs left out because they could not be read: (file, reason).
    skipped: tuple[tuple[Path, str], ...]
    #: Rows written.
    rows: int


def natural_key(path: PathLike) -> tuple[object, ...]:
    """Sort key that orders numbers in names by value.

    >>> sorted(["out-10.pkl", "out-2.pkl", "out-1.pkl"], key=natural_key)
    ['out-1.pkl', 'out-2.pkl', 'out-10.pkl']
    """
    parts = _DIGITS.split(Path(path).name)
    # re.split with a group alternates text and digits, so every position
    # compares like with like.
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts)), str(path)


def output_files(directory: PathLike, exclude: Iterable[PathLike] = ()) -> list[Path]:
    """The files in ``directory`` that some store reads, in natural order."""
    from psyrun.plugins.manager import get_plugin_manager

    directory = Path(directory)
    if not directory.is_dir():
        if directory.exists():
            raise StoreError(f"{directory} is not a directory. Give the directory that holds "
                             "the output files.")
        raise StoreFileNotFoundError(f"No such directory: {directory}. Give the directory "
                                     "that holds the output files.")
    from psyrun.plugins.manager import FIRST_PARTY_EXTENSIONS

    # Files of a first-party store that is not installed are inputs too: they
    # fail to load with an error saying what to install, instead of being
    # left out of the result without a word.
    extensions = {e for r in get_plugin_manager().records("store") for e in r.extensions}
    extensions |= set(FIRST_PARTY_EXTENSIONS)
    excluded = {Path(p).resolve() for p in exclude}
    files = [
        p for p in directory.iterdir()
        if not p.name.startswith(".")
        and p.suffix.lower() in extensions
        and p.is_file()
        and p.resolve() not in excluded
    ]
    return sorted(files, key=natural_key)


def _read(path: Path) -> Data:
    from psyrun.store.autodetect import store_for

    return store_for(path).load(path)


def merge_files(
    inputs: PathLike | Iterable[PathLike],
    merged: PathLike,
    *,
    skip_unreadable: bool = False,
    overwrite: bool = False,
) -> MergeResult:
    """Write the rows of all ``inputs`` into the one file ``merged``.

    ``inputs`` is a directory (all output files in it, see
    :func:`output_files`) or an iterable of files.  ``merged``'s extension
    selects the store that writes it.  Columns missing from some inputs are
    filled as the output store fills missing rows.

    Raises :class:`~psyrun.exceptions.ResultExistsError` if ``merged``
    exists and ``overwrite`` is false, and
    :class:`~psyrun.exceptions.CorruptFileError` (naming the file) if an
    input cannot be read and ``skip_unreadable`` is false; in both cases
    nothing is written.
    """
    from psyrun.exceptions import CorruptFileError
    from psyrun.store.autodetect import store_for

    merged = Path(merged)
    store = store_for(merged)  # an unknown extension fails before any work
    if merged.exists() and not overwrite:
        raise ResultExistsError(
            f"{merged} exists already. Use --force (overwrite=True) to replace it, or choose "
            "another file name."
        )
    if not merged.parent.is_dir():
        raise StoreFileNotFoundError(f"No such directory: {merged.parent}. Create it first.")
    if isinstance(inputs, (str, os.PathLike)):
        files = output_files(inputs, exclude=[merged])
        if not files:
            raise StoreError(f"No output files in {inputs}: nothing to merge. Check the directory "
                             "(file extensions that stores read, such as .pkl, .npz, .h5).")
    else:
        files = [Path(p) for p in inputs]
        if any(p.resolve() == merged.resolve() for p in files if p.exists()):
            raise StoreError(f"{merged} is one of the inputs; merge into another file.")

    merged_files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    rows = 0
    read_all: list[bool] = []  # set when every input has been handed to the store

    def chunks() -> Iterator[Data]:
        nonlocal rows
        for path in files:
            try:
                data = _read(path)
            except (StoreError, PluginError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if not skip_unreadable:
                    raise CorruptFileError(
                        f"Cannot read {path} ({reason}). Nothing was written to {merged}. Fix or "
                        "remove that file, or skip unreadable files (psy merge "
                        "--skip-unreadable)."
                    ) from exc
                skipped.append((path, reason))
                continue
            merged_files.append(path)
            rows += _length(data)
            yield data
        read_all.append(True)

    readable = chunks()
    first = next(readable, None)  # read before writing: all inputs may be unreadable
    if first is None and files:
        raise CorruptFileError(f"None of the {len(files)} input files could be read; nothing "
                               f"was written. First problem: {skipped[0][0]}: {skipped[0][1]}")
    try:
        store.save_many(merged, itertools.chain([first] if first is not None else [], readable))
    except UnsupportedDataError as exc:
        # The store names the column; which input brought the rows it refused
        # is known only here: the last one read, unless the store refused
        # only when joining all of them (as the npz store does).
        source = (f"the rows of {merged_files[-1]}" if merged_files and not read_all
                  else f"{len(merged_files)} files")
        raise UnsupportedDataError(
            f"Cannot merge {source} into {merged}: {exc} Nothing was written."
        ) from exc
    return MergeResult(merged, tuple(merged_files), tuple(skipped), rows)


def _length(data: Data) -> int:
    from psyrun.store.columns import count_rows

    return count_rows(data)
