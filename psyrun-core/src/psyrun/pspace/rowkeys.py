"""Hashable keys for parameter rows, so rows can be compared by value.

``missing`` and ``-`` find equal rows with a hash set, which needs one
hashable key per row.  Python's own hashing gets two things wrong for
parameter spaces: every ``nan`` object is unequal to every other (yet a nan
written by ``+`` must match a nan), and lists and numpy arrays are not
hashable at all (yet multi-dimensional parameters must match by value).  The
functions here map each value to a key that is equal exactly when the values
should count as the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from psyrun.exceptions import UnhashableValueError


class _Tag:
    """A private marker that no user value can be equal to."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


NAN_KEY = _Tag("nan")
_SEQUENCE = _Tag("sequence")
_SET = _Tag("set")
_MAPPING = _Tag("mapping")

# Values of these exact types are their own key (nan cannot occur in them).
_SELF_KEYED = frozenset({int, str, bool, bytes, type(None)})
_REAL = frozenset({int, bool, float})


def value_key(value: Any, key: str) -> Any:
    """The hashable stand-in of one parameter value.

    ``key`` is the parameter's name, used only in the error message.
    """
    kind = type(value)
    if kind in _SELF_KEYED:
        return value
    if isinstance(value, float):  # also numpy.float64, a float subclass
        return NAN_KEY if value != value else float(value)
    if isinstance(value, (list, tuple)):
        return (_SEQUENCE, tuple(value_key(item, key) for item in value))
    module = kind.__module__
    if module == "numpy":
        # ndarray.tolist() turns any array (or numpy scalar) into nested lists
        # of Python scalars, so an array matches the list of the same values.
        return value_key(value.tolist(), key)
    if isinstance(value, complex):
        return NAN_KEY if value != value else value
    if isinstance(value, (set, frozenset)):
        return (_SET, frozenset(value_key(item, key) for item in value))
    if isinstance(value, Mapping):
        return (_MAPPING, frozenset((value_key(k, key), value_key(v, key)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        raise UnhashableValueError(
            f"A value of parameter `{key}` cannot be compared by value: "
            f"{type(value).__name__} objects are not hashable ({_short_repr(value)}). "
            "missing() and `-` need numbers, strings, lists, tuples, numpy arrays or "
            "other hashable values; convert the value, e.g. to a tuple or a string."
        ) from None
    return value


def column_keys(column: Sequence[Any], key: str, *, store_fills: bool = False) -> Sequence[Any]:
    """The keys of all values of one column (the column itself if it can be).

    With ``store_fills``, the values npz and h5 files hold where a parameter
    space had nan (``""`` in a column of strings, arrays of nan in a column
    of arrays) get the key of nan, so rows read back from such files match
    the rows of the space.  (Rows differing only in ``""`` against nan then
    count as the same.)
    """
    kinds = set(map(type, column))
    if store_fills and not kinds <= _REAL:
        column = [_fill_as_nan(value) for value in column]
        kinds = set(map(type, column))
    if kinds <= _SELF_KEYED:
        return column
    if kinds <= _REAL:
        return [NAN_KEY if value != value else value for value in column]
    return [value_key(value, key) for value in column]


def row_keys(
    columns: Mapping[str, Sequence[Any]], keys: Sequence[str], *, store_fills: bool = False
) -> Iterable[Any]:
    """One hashable key per row of ``columns``, made of the columns ``keys``.

    Both sides of a comparison must use the same ``keys`` in the same order
    (and the same ``store_fills``, see :func:`column_keys`).
    """
    if len(keys) == 1:
        return column_keys(columns[keys[0]], keys[0], store_fills=store_fills)
    return zip(*(column_keys(columns[k], k, store_fills=store_fills) for k in keys))


_NAN = float("nan")


def _fill_as_nan(value: Any) -> Any:
    if isinstance(value, (str, bytes)):
        return value if value else _NAN
    if isinstance(value, (list, tuple)) or (
        type(value).__module__ == "numpy" and getattr(value, "ndim", 0) >= 1
    ):
        return _NAN if _all_nan(value) else value
    return value


def _all_nan(value: Any) -> bool:
    """``value`` (a nested sequence or an array) has elements, all float nan."""
    if type(value).__module__ == "numpy" and getattr(value, "ndim", 0) >= 1:
        if value.dtype.kind not in "fc" or not value.size:
            return False
        import numpy as np

        return bool(np.isnan(value).all())
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_all_nan(item) for item in value)
    return isinstance(value, float) and value != value


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
