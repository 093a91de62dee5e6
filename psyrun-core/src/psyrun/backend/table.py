"""Tables as backends handle them: dicts of equally long columns.

Stores return columns as lists (pickle) or numpy arrays (npz, h5); these
helpers join, slice and compare such tables without caring which.  Rows are
compared by the values of the parameter columns as a whole (a row is a
tuple), with nan equal to nan and arrays compared by value, so that
``psy run -c`` finds exactly the assignments that have no result yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from psyrun.exceptions import UnhashableValueError
from psyrun.pspace import rowkeys

Table = dict[str, Any]

def table_len(table: Mapping[str, Any]) -> int:
    for column in table.values():
        return len(column)
    return 0


def value_key(value: Any, key: str = "") -> Any:
    """A hashable stand-in for a parameter value that compares by value.

    The same keys as ``missing`` uses (:mod:`psyrun.pspace.rowkeys`), except
    that a value that cannot be hashed is compared by its ``repr`` instead
    of refused: a result file must stay readable whatever it holds.
    """
    try:
        return rowkeys.value_key(value, key)
    except UnhashableValueError:
        return ("psyrun-repr", repr(value))


def _column_keys(column: Sequence[Any], key: str) -> Sequence[Any]:
    if hasattr(column, "tolist"):  # one numpy call instead of one per value
        column = column.tolist()
    try:
        # store_fills: a result file in npz or h5 holds "" or nan arrays
        # where the space has nan (from `+`); those rows are done too.
        return rowkeys.column_keys(column, key, store_fills=True)
    except UnhashableValueError:
        return [value_key(v, key) for v in column]


def row_keys(table: Mapping[str, Any], keys: Sequence[str]) -> list[tuple[Any, ...]]:
    """The key of each row of ``table``, made of the columns ``keys`` (absent ones: nan)."""
    n = table_len(table)
    if not keys:
        return [()] * n
    nan = float("nan")
    columns = [_column_keys(table[k] if k in table else [nan] * n, k) for k in keys]
    return list(zip(*columns))


def take(table: Mapping[str, Any], indices: Sequence[int]) -> Table:
    """The rows ``indices`` of ``table``, in that order."""
    result = {}
    for key, column in table.items():
        if hasattr(column, "dtype"):  # numpy array: fancy indexing keeps the dtype
            import numpy as np

            result[key] = column[np.asarray(indices, dtype=np.intp)]
        else:
            result[key] = [column[i] for i in indices]
    return result


def slice_table(table: Mapping[str, Any], start: int, stop: int) -> Table:
    return {key: column[start:stop] for key, column in table.items()}


def concat(tables: Iterable[Mapping[str, Any]]) -> Table:
    """Rows of all tables one after the other; absent columns filled with nan."""
    tables = [t for t in tables if table_len(t) > 0]
    if not tables:
        return {}
    if len(tables) == 1:
        return dict(tables[0])
    keys: dict[str, None] = {}
    for t in tables:
        for k in t:
            keys.setdefault(k, None)
    result: Table = {}
    for key in keys:
        parts = [t.get(key) for t in tables]
        if all(hasattr(p, "dtype") for p in parts):
            import numpy as np

            try:
                result[key] = np.concatenate(parts)
                continue
            except ValueError:  # differing shapes of array cells: fall back to lists
                pass
        column: list[Any] = []
        for t, part in zip(tables, parts):
            if part is None:
                column.extend([float("nan")] * table_len(t))
            else:
                column.extend(list(part))
        result[key] = column
    return result


def unique_rows_in(table: Mapping[str, Any], keys: Sequence[str],
                   allowed: set[tuple[Any, ...]] | None = None) -> Table:
    """The rows of ``table`` whose key is in ``allowed`` (if given), each key once.

    The first row with a key wins, so rows computed earlier are kept.
    """
    seen: set[tuple[Any, ...]] = set()
    indices = []
    for i, key in enumerate(row_keys(table, keys)):
        if key in seen or (allowed is not None and key not in allowed):
            continue
        seen.add(key)
        indices.append(i)
    if len(indices) == table_len(table):
        return dict(table)
    return take(table, indices)
