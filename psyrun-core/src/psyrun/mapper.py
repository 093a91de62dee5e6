"""Evaluate a function on every row of a parameter space.

The function takes the parameters as keyword arguments and returns a dict of
outputs.  The result is a dict of lists holding the parameters and the
outputs side by side, one entry per row; an output that some rows lack is
``nan`` there.  :func:`map_pspace` runs serially, :func:`map_pspace_parallel`
through joblib, and :func:`map_pspace_hdd_backed` appends the results to a
file as it goes so that an interrupted run can be resumed.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import keyword
import os
import types
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


_ABSENT = object()  # fill of an output column that shares its name with a parameter


class _Outputs:
    """The outputs of the mapped function, collected column by column.

    Rows that lack an output get ``nan`` there.  While every row returns the
    same keys, values are appended in a tight loop (see :func:`_collect`).
    """

    def __init__(self, param_keys: Iterable[str]) -> None:
        self.param_keys = frozenset(param_keys)
        self.columns: Result = {}
        self.fills: dict[str, Any] = {}
        self.n_rows = 0
        #: the key set of the last row, if it equals the set of all columns
        self.fast_keys: Any = None

    def add(self, outputs: Any) -> None:
        """Append one row (any keys), checking that it is a dict."""
        if not isinstance(outputs, Mapping):
            raise InvalidResultError(
                f"The mapped function returned a {type(outputs).__name__}, not a dict, for "
                f"row {self.n_rows} of the parameter space. Return a dict of output names "
                "to values, e.g. `return {'y': y}`."
            )
        columns = self.columns
        for key in outputs.keys() - columns.keys():
            fill = _ABSENT if key in self.param_keys else NAN
            self.fills[key] = fill
            columns[key] = [fill] * self.n_rows
        for key, column in columns.items():
            column.append(outputs[key] if key in outputs else self.fills[key])
        self.n_rows += 1
        self.fast_keys = set(outputs.keys()) if len(outputs) == len(columns) else None

    def merge(self, params: Result, exclude: Iterable[str] | None) -> Result:
        """Parameters and outputs side by side; an output replaces a parameter it names."""
        result = dict(params)
        for key, column in self.columns.items():
            if key in result and self.fills[key] is _ABSENT:
                result[key] = [p if o is _ABSENT else o for o, p in zip(column, result[key])]
            else:
                result[key] = column
        for key in exclude or ():
            result.pop(key, None)
        return result


def _warn_ineffective(exclude: Iterable[str] | None, present: Iterable[str]) -> None:
    """Warn about each key of ``exclude`` that is in no row of the result."""
    for key in sorted(set(exclude or ()) - set(present)):
        warnings.warn(
            IneffectiveExcludeWarning(
                f"exclude names `{key}`, which is neither a parameter nor an output; "
                "check the spelling or remove it from exclude."
            ),
            stacklevel=3,
        )


def _collect(outputs: Iterable[Any], collected: _Outputs) -> None:
    """Append every dict of ``outputs`` to ``collected``.

    If ``outputs`` raises (the mapped function failed), the rows before
    stay collected.
    """
    columns = collected.columns

    def width() -> int:
        # -1 disables the fast path (also for rows without any output,
        # whose count could not be read from the column lengths).
        fast = collected.fast_keys
        return len(fast) if fast else -1

    def sync() -> None:
        if columns and collected.fast_keys:
            collected.n_rows = len(next(iter(columns.values())))

    current = width()
    try:
        for row in outputs:
            # A row as wide as the columns whose keys are all columns has
            # exactly their keys: no set comparison needed per row.
            try:
                if len(row) == current:
                    for key, value in row.items():
                        columns[key].append(value)
                    continue
            except (KeyError, AttributeError, TypeError):  # new key or not a dict
                if current > 0:  # undo this row's appends
                    before = min(len(column) for column in columns.values())
                    for column in columns.values():
                        del column[before:]
            sync()
            collected.add(row)
            current = width()
    finally:
        sync()


def _calls(fn: Callable[..., Any], keys: list[str], params: Result) -> Iterator[Any]:
    """``fn(**row)`` for every row of the columns ``params``, lazily.

    For a plain Python function whose first positional parameters are
    exactly ``keys``, the rows are passed positionally through
    ``itertools.starmap``: the same call, without a dict per row.
    """
    order = _positional_order(fn, keys)
    if order is not None:
        return itertools.starmap(fn, zip(*(params[key] for key in order)))
    return _keyword_calls(fn, keys, params)


def _keyword_calls(fn: Callable[..., Any], keys: list[str], params: Result) -> Iterator[Any]:
    caller = _keyword_caller(tuple(keys))
    if caller is not None:
        return map(caller(fn), *(params[key] for key in keys))
    return _dict_calls(fn, keys, params)


@functools.lru_cache(maxsize=64)
def _keyword_caller(keys: tuple[str, ...]) -> Callable[[Callable[..., Any]], Any] | None:
    """A factory of ``lambda v0, v1: fn(a=v0, b=v1)`` for the names ``keys``.

    Passing literal keywords is about twice as fast per row as refilling a
    dict for ``fn(**row)`` (the dict update and the ``**`` unpacking cost
    more than the call), and the C loop of ``map`` needs no generator.
    Only plain ASCII identifiers are written into the source, so nothing
    but a keyword name can end up in it (non-ASCII names would be NFKC
    normalised by the parser); any other key set returns None and goes
    through a dict.
    """
    if not keys or not all(
        key.isascii() and key.isidentifier() and not keyword.iskeyword(key) for key in keys
    ):
        return None
    values = ", ".join(f"_v{i}" for i in range(len(keys)))
    arguments = ", ".join(f"{key}=_v{i}" for i, key in enumerate(keys))
    source = f"def make(_fn):\n    return lambda {values}: _fn({arguments})\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, "<psyrun.mapper keyword call>", "exec"), namespace)  # noqa: S102
    return namespace["make"]


def _dict_calls(fn: Callable[..., Any], keys: list[str], params: Result) -> Iterator[Any]:
    # `fn(**row)` hands fn a copy of row, so one dict can be refilled for
    # every row instead of making a new one.
    row: dict[str, Any] = dict.fromkeys(keys)
    if len(keys) == 1:
        key = keys[0]
        for value in params[key]:
            row[key] = value
            yield fn(**row)
    else:
        for values in zip(*(params[key] for key in keys)):
            row.update(zip(keys, values))
            yield fn(**row)


def _positional_order(fn: Callable[..., Any], keys: list[str]) -> tuple[str, ...] | None:
    if type(fn) is not types.FunctionType or hasattr(fn, "__wrapped__") or not keys:
        return None
    code = fn.__code__
    if code.co_posonlyargcount:
        return None
    names = code.co_varnames[: code.co_argcount][: len(keys)]
    if len(names) != len(keys) or set(names) != set(keys):
        return None
    return names


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
    # The result holds every parameter anyway, so the space is built once
    # and the rows are read from the built columns.
    params = pspace.build()
    outputs = _Outputs(params)
    _collect(_calls(fn, pspace.keys(), params), outputs)
    _warn_ineffective(exclude, [*params, *outputs.columns])
    return outputs.merge(params, exclude)


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
    import joblib

    from psyrun.pspace.spaces import rows_of

    params = pspace.build()
    outputs = _Outputs(params)
    with joblib.Parallel(n_jobs=n_jobs, backend=backend, return_as="generator") as parallel:
        _collect(_evaluate_in(parallel, fn, rows_of(pspace.keys(), params)), outputs)
    _warn_ineffective(exclude, [*params, *outputs.columns])
    return outputs.merge(params, exclude)


def _evaluate_in(parallel: Any, fn: Callable[..., Any], rows: Iterable[dict[str, Any]]) -> Any:
    import joblib

    return parallel(joblib.delayed(_call)(fn, row) for row in rows)


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

    Results are appended every ``chunk_size`` rows (and, for the rows
    finished so far, when an error or an interrupt stops the run), so a
    crash loses at most the row being evaluated.  If ``filename`` already
    holds results, only the rows of ``pspace`` missing from it are evaluated:
    running the same call again resumes the work.  ``store`` defaults to the
    store that matches the file extension.  ``pool_size > 1`` evaluates rows
    in that many processes (joblib; ``fn`` must be picklable).

    Returns the whole file's content (earlier rows included) unless
    ``return_data`` is false.
    """
    from psyrun.pspace.spaces import rows_of

    if store is None:
        store = _default_store()
    path = Path(filename)
    keys = pspace.keys()
    todo: Iterable[Result] = pspace.chunks(chunk_size)
    if path.exists():
        done = store.load(path)
        absent = [key for key in keys if key not in done]
        # A file without rows (an empty save) holds nothing of any space.
        if absent and any(len(column) for column in done.values()):
            names = ", ".join(f"`{k}`" for k in absent)
            if set(absent) <= set(exclude or ()):
                raise AmbiguousOperationError(
                    f"{path} holds results without the parameter(s) {names}, which exclude "
                    "leaves out, so the finished rows cannot be told apart. Do not exclude "
                    "parameters when resuming into a file (drop the columns after loading), "
                    "or move the file away to start afresh."
                )
            raise AmbiguousOperationError(
                f"{path} holds results without the parameter(s) {names}, so it belongs to "
                "another parameter space. Pass another filename, or move the file away to "
                "start afresh."
            )
        if not absent:
            todo = _missing_chunks(pspace, done, keys, chunk_size)

    present = set(keys)
    with contextlib.ExitStack() as stack:
        if pool_size > 1:
            import joblib

            parallel = stack.enter_context(joblib.Parallel(n_jobs=pool_size, return_as="generator"))
        for params in todo:
            outputs = _Outputs(params)
            evaluated = (
                _evaluate_in(parallel, fn, rows_of(keys, params))
                if pool_size > 1
                else _calls(fn, keys, params)
            )
            try:
                _collect(evaluated, outputs)
            finally:
                # Keep what was finished even when fn raised or the run was
                # interrupted.
                if outputs.n_rows:
                    finished = {k: column[: outputs.n_rows] for k, column in params.items()}
                    store.append(path, outputs.merge(finished, exclude))
            present.update(outputs.columns)
    _warn_ineffective(exclude, present)
    if not return_data:
        return None
    if not path.exists():
        skipped = set(exclude or ())
        return {key: [] for key in keys if key not in skipped}
    return store.load(path)


def _missing_chunks(
    pspace: ParameterSpace, done: Mapping[str, Any], keys: list[str], size: int
) -> Iterator[Result]:
    """The chunks of ``pspace`` without the rows whose parameters are in ``done``.

    Like :func:`~psyrun.pspace.missing`, but a value the store wrote in place
    of a missing one (``""`` in a column of strings, an array of nan in a
    column of arrays, where ``+`` had put nan) matches that nan, so rows of
    a space built with ``+`` are found in npz and h5 files too.
    """
    from psyrun.pspace.rowkeys import row_keys

    seen = set(row_keys(done, keys, store_fills=True))
    for chunk in pspace.chunks(size):
        keep = [k not in seen for k in row_keys(chunk, keys, store_fills=True)]
        if all(keep):
            yield chunk
        elif any(keep):
            yield {k: list(itertools.compress(column, keep)) for k, column in chunk.items()}


def _default_store() -> Store:
    from psyrun import store as stores

    chooser = getattr(stores, "AutodetectStore", None) or stores.DefaultStore
    return chooser()
