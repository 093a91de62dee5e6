"""Tables as backends handle them: dicts of equally long columns.

Stores return columns as lists (pickle) or numpy arrays (npz, h5); these
helpers join, slice and compare such tables without caring which.  Rows are
compared by the values of the parameter columns as a whole (a row is a
tuple), with nan equal to nan and arrays compared by value, so that
``psy run -c`` finds exactly the assignments that have no result yet.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Table = dict[str, Any]

_NAN_KEY = ("psyrun-nan",)


def table_len(table: Mapping[str, Any]) -> int:
    for column in table.values():
        return len(column)
    return 0


def value_key(value: Any) -> Any:
    """A hashable stand-in for a parameter value that compares by value."""
    if isinstance(value, float):
        return _NAN_KEY if math.isnan(value) else value
    if isinstance(value, (str, int)):
        return value
    if isinstance(value, bytes):  # h5 gives strings back as bytes
        try:
            return value.decode()
        except UnicodeDecodeError:
            return value
    tolist = getattr(value, "tolist", None)
    if tolist is not None:  # numpy scalars and arrays
        return value_key(tolist())
    if isinstance(value, (list, tuple)):
        return ("psyrun-seq",) + tuple(value_key(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return ("psyrun-repr", repr(value))
    return value


def row_keys(table: Mapping[str, Any], keys: Sequence[str]) -> list[tuple[Any, ...]]:
    """The key of each row of ``table``, made of the columns ``keys``."""
    n = table_len(table)
    nan = float("nan")
    columns = [table[k] if k in table else [nan] * n for k in keys]
    if not columns:
        return [()] * n
    return [tuple(value_key(v) for v in row) for row in zip(*columns)]


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
