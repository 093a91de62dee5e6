"""Turning user-given parameter values into columns of rows.

``Param(a=..., b=...)`` accepts lists, tuples, ranges, numpy arrays (the
first axis indexes rows) and scalars.  This module decides which is which,
checks the lengths and stores every column as a plain list whose items are
Python scalars (numpy scalars are converted) or, for multi-dimensional arrays,
the rows of the array (which keep their dtype).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence, Set
from typing import Any

from psyrun.exceptions import InvalidParameterValueError, ParameterLengthError

#: The value written where a row has no value for a key.
NAN = math.nan


def _is_numpy(value: Any) -> bool:
    return type(value).__module__ == "numpy"


def _scalar(value: Any) -> Any:
    """A Python scalar for a numpy scalar or 0-d array, else the value."""
    if _is_numpy(value) and getattr(value, "ndim", 1) == 0 and value.dtype.kind not in "mM":
        return value.item()
    return value


def as_column(key: str, value: Any) -> tuple[list[Any] | None, Any]:
    """Split ``value`` into ``(rows, dtype)``; ``rows`` is None for a scalar.

    ``dtype`` is the numpy dtype of an array value (kept so that stores and
    :meth:`ParameterSpace.build_arrays` can restore it), else None.
    """
    if isinstance(value, (str, bytes, bytearray)):
        return None, None
    if _is_numpy(value) or hasattr(value, "__array__") and hasattr(value, "__len__"):
        import numpy as np

        array = np.asarray(value)
        if array.ndim == 0:
            return None, None
        # 1-d: tolist() gives Python scalars; n-d: each row stays an array.
        # Dates and durations stay numpy scalars: tolist() would turn them
        # into datetime objects or, at nanosecond resolution, plain ints.
        rows = array.tolist() if array.ndim == 1 and array.dtype.kind not in "mM" else list(array)
        return rows, array.dtype
    if isinstance(value, (Mapping, Set, Iterator)):
        raise InvalidParameterValueError(
            f"Parameter `{key}` is a {type(value).__name__}, which has no fixed row order "
            "or can be read only once. Pass a list (e.g. `sorted(...)` or `list(...)`) "
            "for one row per value, or wrap it in a list for one row holding it."
        )
    if isinstance(value, Sequence):
        rows = list(value)
        if any(_is_numpy(item) for item in rows):
            rows = [_scalar(item) for item in rows]
        return rows, None
    if hasattr(value, "__iter__") and not hasattr(value, "__len__"):
        raise InvalidParameterValueError(
            f"Parameter `{key}` is an iterable of type {type(value).__name__} that is not a "
            "sequence. Pass a list of its values instead, e.g. `list(...)`."
        )
    if hasattr(value, "__iter__"):
        raise InvalidParameterValueError(
            f"Parameter `{key}` is a {type(value).__name__}, which is not a sequence with a "
            "defined order. Pass a list of its values instead."
        )
    return None, None


def make_columns(params: Mapping[str, Any]) -> tuple[dict[str, list[Any]], dict[str, Any], int]:
    """Columns of equal length from ``Param`` keyword arguments.

    Returns ``(columns, dtypes, length)``.  Scalars are repeated to the
    length of the sequences; with no sequence at all there is one row.
    """
    sequences: dict[str, list[Any]] = {}
    dtypes: dict[str, Any] = {}
    scalars: dict[str, Any] = {}
    for key, value in params.items():
        rows, dtype = as_column(key, value)
        if rows is None:
            scalars[key] = _scalar(value)
        else:
            sequences[key] = rows
            if dtype is not None:
                dtypes[key] = dtype
    lengths = {key: len(rows) for key, rows in sequences.items()}
    if len(set(lengths.values())) > 1:
        listing = ", ".join(f"{key}: {n}" for key, n in lengths.items())
        raise ParameterLengthError(
            f"The sequences given to one Param must have equal lengths, got {listing}. "
            "Give each the same number of values, or combine separate Params with `*` "
            "to get all combinations."
        )
    # With scalars only there is one row; with no parameters at all, none.
    length = next(iter(lengths.values())) if lengths else int(bool(scalars))
    columns = {
        key: sequences[key] if key in sequences else [scalars[key]] * length for key in params
    }
    return columns, dtypes, length


def dict_concat(args: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Concatenate dicts of columns into one dict of lists.

    Each dict maps keys to sequences of rows (all of one length); a dict
    whose values are all scalars counts as one row.  Keys missing from a dict
    are filled with ``nan`` for its rows.

    >>> from pprint import pprint
    >>> pprint(dict_concat([{'a': [1, 2], 'b': [3, 4]}, {'a': [5]}, {'b': 6}]))
    {'a': [1, 2, 5, nan], 'b': [3, 4, nan, 6]}
    """
    keys: dict[str, None] = {}
    parts = []
    for part in args:
        keys.update(dict.fromkeys(part))
        columns: dict[str, list[Any]] = {}
        lengths = {}
        for key, value in part.items():
            rows, _ = as_column(key, value)
            columns[key] = rows if rows is not None else [_scalar(value)]
            lengths[key] = len(columns[key]) if rows is not None else None
        row_counts = {n for n in lengths.values() if n is not None}
        if len(row_counts) > 1 or (row_counts and None in lengths.values()):
            listing = ", ".join(
                f"{key}: {'scalar' if n is None else n}" for key, n in lengths.items()
            )
            raise ParameterLengthError(
                f"The values of one dict passed to dict_concat must be sequences of equal "
                f"length (or all scalars for one row), got {listing}."
            )
        parts.append((columns, row_counts.pop() if row_counts else (1 if columns else 0)))
    result: dict[str, list[Any]] = {key: [] for key in keys}
    for columns, n in parts:
        for key, column in result.items():
            column.extend(columns[key] if key in columns else [NAN] * n)
    return result
