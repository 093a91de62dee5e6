"""Evaluate a function on every row of a parameter space.

The function takes the parameters as keyword arguments and returns a dict of
outputs.  The result is a dict of lists holding the parameters and the
outputs side by side, one entry per row; an output that some rows lack is
``nan`` there.  :func:`map_pspace` runs serially, :func:`map_pspace_parallel`
through joblib, and :func:`map_pspace_hdd_backed` appends the results to a
file as it goes so that an interrupted run can be resumed.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psyrun.exceptions import (
    AmbiguousOperationError,
    IneffectiveExcludeWarning,
    InvalidResultError,
)

if TYPE_CHECKING:
    from psyrun.pspace import ParameterSpace
    from psyrun.store.base import Store

Result = dict[str, list[Any]]
NAN = float("nan")


class _Collector:
    """Appends rows of parameters and outputs to columns, filling gaps with nan."""

    def __init__(self, exclude: Iterable[str] | None = None) -> None:
        self.columns: Result = {}
        self.n_rows = 0
        self._exclude = frozenset(exclude or ())
        self._excluded_seen: set[str] = set()
        # While every row has these parameter and output keys (disjoint, none
        # excluded), values are appended without building a merged dict.
        self._fast_params: Any = None
        self._fast_outputs: Any = None

    def add(self, params: Mapping[str, Any], outputs: Any) -> None:
        columns = self.columns
        if (
            self._fast_params is not None
            and type(outputs) is dict
            and params.keys() == self._fast_params
            and outputs.keys() == self._fast_outputs
        ):
            for key, value in params.items():
                columns[key].append(value)
            for key, value in outputs.items():
                columns[key].append(value)
            self.n_rows += 1
            return
        if not isinstance(outputs, Mapping):
            raise InvalidResultError(
                f"The mapped function returned a {type(outputs).__name__}, not a dict, for "
                f"the parameters {dict(params)!r}. Return a dict of output names to values, "
                "e.g. `return {'y': y}`."
            )
        row = {**params, **outputs}  # an output named like a parameter wins
        for key in self._exclude.intersection(row):
            self._excluded_seen.add(key)
            del row[key]
        for key in row.keys() - columns.keys():
            columns[key] = [NAN] * self.n_rows
        for key, column in columns.items():
            column.append(row.get(key, NAN))
        self.n_rows += 1
        if (
            not self._exclude.intersection(params.keys() | outputs.keys())
            and params.keys().isdisjoint(outputs.keys())
            and len(params) + len(outputs) == len(columns)
        ):
            self._fast_params = set(params.keys())
            self._fast_outputs = set(outputs.keys())
        else:
            self._fast_params = self._fast_outputs = None

    def take(self) -> Result:
        """Return the columns collected so far and start afresh."""
        columns = self.columns
        self.columns = {}
        self.n_rows = 0
        self._fast_params = self._fast_outputs = None
        return columns

    def warn_ineffective_exclude(self) -> None:
        for key in sorted(self._exclude - self._excluded_seen):
            warnings.warn(
                IneffectiveExcludeWarning(
                    f"exclude names `{key}`, which is neither a parameter nor an output; "
                    "check the spelling or remove it from exclude."
                ),
                stacklevel=3,
            )


def map_pspace(
    fn: Callable[..., Mapping[str, Any]],
    pspace: ParameterSpace,
    exclude: Iterable[str] | None = None,
) -> Result:
    """Evaluate ``fn`` on every row of ``pspace``, one after the other.

    Returns a dict of lists with the parameters and the outputs of ``fn``;
    keys in ``exclude`` are left out (a warning names those that occur
    nowhere).  An output with the name of a parameter replaces its value.
    """
    collector = _Collector(exclude)
    for params in pspace.iterate():
        collector.add(params, fn(**params))
    collector.warn_ineffective_exclude()
    return _with_keys(collector.take(), pspace, exclude)


def map_pspace_parallel(
    fn: Callable[..., Mapping[str, Any]],
    pspace: ParameterSpace,
    n_jobs: int = -1,
    backend: str | None = None,
    exclude: Iterable[str] | None = None,
) -> Result:
    """Like :func:`map_pspace`, but evaluates rows in parallel with joblib.

    ``fn`` must be picklable (defined in an importable module) for process
    based backends.  ``n_jobs=-1`` uses every core; ``backend`` is any joblib
    backend name (None: joblib's default, loky).
    """
    collector = _Collector(exclude)
    for params, outputs in _parallel_results(fn, pspace.iterate(), n_jobs, backend):
        collector.add(params, outputs)
    collector.warn_ineffective_exclude()
    return _with_keys(collector.take(), pspace, exclude)


def _parallel_results(
    fn: Callable[..., Mapping[str, Any]],
    rows: Iterator[dict[str, Any]],
    n_jobs: int,
    backend: str | None,
) -> Iterator[tuple[dict[str, Any], Any]]:
    """Pairs of (parameters, outputs) in row order, computed by joblib."""
    import joblib

    # joblib reads ahead only pre_dispatch tasks, so the tee buffer stays small.
    to_workers, to_caller = itertools.tee(rows)
    parallel = joblib.Parallel(n_jobs=n_jobs, backend=backend, return_as="generator")
    outputs = parallel(joblib.delayed(_call)(fn, params) for params in to_workers)
    return zip(to_caller, outputs)


def _call(fn: Callable[..., Mapping[str, Any]], params: dict[str, Any]) -> Any:
    return fn(**params)


def map_pspace_hdd_backed(
    fn: Callable[..., Mapping[str, Any]],
    pspace: ParameterSpace,
    filename: str | os.PathLike[str],
    store: Store | None = None,
    return_data: bool = True,
    pool_size: int = 1,
    exclude: Iterable[str] | None = None,
    chunk_size: int = 64,
) -> Result | None:
    """Evaluate ``fn`` on ``pspace`` and append the results to ``filename``.

    Results are appended every ``chunk_size`` rows (and when an error or an
    interrupt stops the run), so a crash loses at most one chunk.  If
    ``filename`` already holds results, only the rows of ``pspace`` missing
    from it are evaluated: running the same call again resumes the work.
    ``store`` defaults to the store that matches the file extension.
    ``pool_size > 1`` evaluates rows in that many processes (joblib).

    Returns the whole file's content (earlier rows included) unless
    ``return_data`` is false.
    """
    from psyrun.pspace import Param, missing

    if store is None:
        store = _default_store()
    path = Path(filename)
    todo: ParameterSpace = pspace
    if path.exists():
        done = store.load(path)
        absent = [key for key in pspace.keys() if key not in done]
        if absent:
            raise AmbiguousOperationError(
                f"{path} holds results without the parameter(s) "
                f"{', '.join(f'`{k}`' for k in absent)}, so it belongs to another parameter "
                "space. Pass another filename, or move the file away to start afresh."
            )
        todo = missing(pspace, Param(**{key: done[key] for key in pspace.keys()}))

    collector = _Collector(exclude)
    if pool_size > 1:
        results: Iterable[tuple[dict[str, Any], Any]] = _parallel_results(
            fn, todo.iterate(), pool_size, None
        )
    else:
        results = ((params, fn(**params)) for params in todo.iterate())
    try:
        for params, outputs in results:
            collector.add(params, outputs)
            if collector.n_rows >= chunk_size:
                store.append(path, collector.take())
    finally:
        # Keep what was finished even when fn raised or the run was interrupted.
        if collector.n_rows:
            store.append(path, collector.take())
    collector.warn_ineffective_exclude()
    if not return_data:
        return None
    if not path.exists():
        return _with_keys({}, pspace, exclude)
    return store.load(path)


def _default_store() -> Store:
    from psyrun import store as stores

    chooser = getattr(stores, "AutodetectStore", None) or stores.DefaultStore
    return chooser()


def _with_keys(result: Result, pspace: ParameterSpace, exclude: Iterable[str] | None) -> Result:
    """Give an empty result the parameter columns, so it is never just ``{}``."""
    if result:
        return result
    skipped = set(exclude or ())
    return {key: [] for key in pspace.keys() if key not in skipped}
