"""Checking columns and joining chunks of rows: the rules every store shares.

A chunk of data is a dict of equally long columns.  This module checks that
(:func:`count_rows`), turns a column into a NumPy array for the stores that
need one (:func:`to_array`), and joins chunks whose columns differ
(:func:`concatenate`), filling the rows of a column that a chunk lacks:

========================  ===========================================
column holds              missing rows become
========================  ===========================================
numbers (bool, int, ...)  ``nan`` (bool and int columns become float64)
arrays of numbers         arrays of ``nan`` with the same shape
strings                   ``""`` (an empty string)
bytes                     ``b""``
========================  ===========================================

The pickle store does not use these rules for lists: it can hold anything and
fills with ``nan`` (see :mod:`psyrun.store.pickle`).

NumPy is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from psyrun.exceptions import ColumnLengthError, UnsupportedDataError

#: What a store says when it cannot hold a column.
PICKLE_HINT = "Use the pickle store (a .pkl file), which holds any picklable data."


def count_rows(data: Mapping[str, Any]) -> int:
    """The number of rows of ``data``, after checking that it is well formed.

    >>> count_rows({"a": [1, 2], "b": [3.0, 4.0]})
    2
    >>> count_rows({"a": [1, 2], "b": [3.0]})
    Traceback (most recent call last):
        ...
    psyrun.exceptions.ColumnLengthError: Columns of unequal length: 'a' has 2 rows, 'b' has 1. Give every column one value per row.
    """
    if not isinstance(data, Mapping):
        raise UnsupportedDataError(
            f"Store data must be a dict of columns, got {type(data).__name__}. "
            "Pass {'column': [value per row], ...}."
        )
    lengths: dict[str, int] = {}
    for name, values in data.items():
        if not isinstance(name, str):
            raise UnsupportedDataError(
                f"Column names must be strings, got {name!r} ({type(name).__name__}). "
                "Rename the column."
            )
        try:
            lengths[name] = len(values)
        except TypeError:
            raise UnsupportedDataError(
                f"Column {name!r} is a single {type(values).__name__}, not a sequence of rows. "
                "Give every column as a list or array with one value per row."
            ) from None
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name!r} has {n} row{'s' * (n != 1)}" for name, n in lengths.items())
        raise ColumnLengthError(
            f"Columns of unequal length: {described}. Give every column one value per row."
        )
    return next(iter(lengths.values()), 0)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def to_array(name: str, values: Any, store: str, *, ragged: bool = False) -> Any:
    """``values`` as a NumPy array a store without pickling can write.

    Lists of numbers, of equally shaped arrays, of strings and of bytes are
    supported.  In a list of strings, ``nan`` (the fill of a parameter space
    built with ``+``) becomes ``""``; in a list of numeric arrays, ``nan``
    (an output the mapped function returned for some rows only) becomes a
    row of nan shaped like the others.  Rows of numeric arrays with different
    shapes are returned as a list of arrays if ``ragged`` is true; anything
    else raises :class:`~psyrun.exceptions.UnsupportedDataError` naming the
    column.
    """
    import numpy as np

    if isinstance(values, np.ndarray) and values.dtype.kind != "O":
        return _check_dtype(name, values, store)
    values = list(values)
    if not values:
        return np.zeros(0)
    if any(isinstance(v, str) for v in values) and all(
        isinstance(v, str) or _is_nan(v) for v in values
    ):
        _refuse_trailing_nul(name, values, "\x00", store)
        return np.array(["" if _is_nan(v) else v for v in values], dtype=str)
    if all(isinstance(v, bytes) for v in values):
        _refuse_trailing_nul(name, values, b"\x00", store)
        return np.array(values, dtype=bytes)
    try:
        array = np.asarray(values)
    except ValueError:  # NumPy refuses rows of different shapes
        array = None
    if array is not None and array.dtype.kind in "biufcmM":
        return _check_dtype(name, array, store)
    if array is not None and array.dtype.kind in "US":
        raise UnsupportedDataError(
            f"Column {name!r} mixes strings with other values, which the {store} store "
            f"cannot hold without turning them all into strings (it stores a missing string "
            f"as \"\", and nan in a column of strings becomes \"\" too). {PICKLE_HINT}"
        )
    rows = [np.asarray(v) for v in values]
    arrays = [r for r in rows if r.ndim >= 1]
    if arrays and len(arrays) < len(rows) and all(
        r.ndim >= 1 or _is_nan(v) for r, v in zip(rows, values)
    ):
        # nan rows among arrays: an output the mapped function returned for
        # some rows only (map_pspace fills the others with nan).  They become
        # rows of nan shaped like the others (empty where rows are ragged),
        # as when a whole chunk lacks the column.
        shapes = {r.shape for r in arrays}
        shape = next(iter(shapes)) if len(shapes) == 1 else (0,)
        rows = [r if r.ndim >= 1 else np.full(shape, np.nan) for r in rows]
        if len(shapes) == 1 and all(r.dtype.kind in "biufc" for r in rows):
            return np.stack(rows)
    if all(r.dtype.kind in "biufc" and r.ndim >= 1 for r in rows):
        if ragged:
            return rows
        shapes = sorted({r.shape for r in rows})
        raise UnsupportedDataError(
            f"Column {name!r} has rows of different shapes ({', '.join(map(str, shapes[:3]))}"
            f"{', ...' if len(shapes) > 3 else ''}), which the {store} store cannot hold. "
            f"{PICKLE_HINT}"
        )
    if all(isinstance(v, int) for v in values):  # NumPy fell back to objects
        raise UnsupportedDataError(
            f"Column {name!r} holds integers outside the 64-bit range, which the {store} store "
            "cannot hold. Convert them to float (losing precision) or use the pickle store "
            "(a .pkl file), which holds Python integers of any size."
        )
    kinds = sorted({type(v).__name__ for v in values})
    raise UnsupportedDataError(
        f"Column {name!r} holds values the {store} store cannot hold "
        f"({', '.join(kinds[:5])}). {PICKLE_HINT}"
    )


def _refuse_trailing_nul(name: str, values: list[Any], nul: Any, store: str) -> None:
    # NumPy's fixed-width strings and bytes are padded with NUL, so a value
    # ending in NUL would silently come back shorter.
    if any(isinstance(v, (str, bytes)) and v.endswith(nul) for v in values):
        raise UnsupportedDataError(
            f"Column {name!r} holds a value ending in a NUL character, which the {store} store "
            f"would drop (it pads values with NUL). {PICKLE_HINT}"
        )


def _check_dtype(name: str, array: Any, store: str) -> Any:
    if array.dtype.kind not in "biufcUSmM" or array.dtype.fields is not None:
        raise UnsupportedDataError(
            f"Column {name!r} has dtype {array.dtype}, which the {store} store cannot hold. "
            f"{PICKLE_HINT}"
        )
    return array


def fill_array(array: Any, n: int) -> Any:
    """``n`` missing rows for a column shaped like ``array`` (see the table above)."""
    import numpy as np

    shape = (n, *array.shape[1:])
    kind = array.dtype.kind
    if kind in "fc":
        return np.full(shape, np.nan, dtype=array.dtype)
    if kind in "biu":
        return np.full(shape, np.nan)
    if kind in "US":
        return np.zeros(shape, dtype=array.dtype.kind + "1")
    if kind in "mM":
        return np.full(shape, np.datetime64("NaT") if kind == "M" else np.timedelta64("NaT"),
                       dtype=array.dtype)
    raise UnsupportedDataError(f"Cannot fill missing rows of a column of dtype {array.dtype}.")


def concatenate(chunks: Iterable[tuple[int, Mapping[str, Any]]], store: str) -> dict[str, Any]:
    """Join chunks of NumPy columns, given as ``(rows, columns)`` pairs.

    A column a chunk lacks gets filled rows (see the table above); columns
    keep the order in which they first appear.
    """
    import numpy as np

    chunks = list(chunks)
    names: dict[str, None] = {}
    for _, columns in chunks:
        names.update(dict.fromkeys(columns))
    result = {}
    for name in names:
        given = [columns[name] for _, columns in chunks if name in columns]
        # A chunk whose rows of an array or string column are all nan (a
        # parameter filled by `+`, an output no row of that chunk returned)
        # lacks the column: its rows are filled like the others' missing rows.
        shaped = [p for p in given if p.ndim > 1 or p.dtype.kind in "US"]
        template = shaped[0] if shaped else given[0]
        pieces = []
        for n, columns in chunks:
            if name in columns and not (shaped and is_nan_rows(columns[name])):
                pieces.append(columns[name])
            elif n:
                pieces.append(fill_array(template, n))
        pieces = [p for p in pieces if len(p)] or [template[:0]]
        shapes = {p.shape[1:] for p in pieces}
        if len(shapes) > 1:
            raise UnsupportedDataError(
                f"Column {name!r} has rows of shape {' and '.join(map(str, sorted(shapes)))} in "
                f"different chunks, which the {store} store cannot hold. {PICKLE_HINT}"
            )
        kinds = {"text" if p.dtype.kind in "US" else "number" for p in pieces}
        if len(kinds) > 1:
            raise UnsupportedDataError(
                f"Column {name!r} holds strings in some chunks and numbers in others, which the "
                f"{store} store cannot hold. {PICKLE_HINT}"
            )
        result[name] = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    return result


def is_nan_rows(array: Any) -> bool:
    """``array`` is a column of scalar nan rows only (and has rows)."""
    import numpy as np

    return (array.ndim == 1 and array.dtype.kind == "f" and len(array) > 0
            and bool(np.isnan(array).all()))


def select_rows(n: int, row: int | slice, filename: object) -> range:
    """The rows ``row`` selects from a file of ``n`` rows, as a range.

    An int selects one row (negative ints count from the end, as in Python)
    and must exist; a slice selects what slicing a list would.
    """
    if isinstance(row, slice):
        return range(*row.indices(n))
    if isinstance(row, bool) or not isinstance(row, int):
        try:
            row = int(row.__index__())  # NumPy integers
        except (AttributeError, TypeError):
            raise TypeError(f"row must be an int, a slice or None, got {row!r}") from None
    index = row + n if row < 0 else row
    if not 0 <= index < n:
        raise IndexError(f"Row {row} is out of range: {filename} has {n} rows.")
    return range(index, index + 1)
