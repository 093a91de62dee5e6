"""The parameter space algebra: ``Param`` and the spaces ``*``, ``+``, ``-`` make.

Every space is a lazy description: nothing is expanded until ``build()``,
``iterate()`` or ``len()`` asks for it.  Rows are produced in a fixed order
(the first factor of a product varies slowest), so ``build()`` and
``iterate()`` always agree.

Each space can also stream its rows as *chunks* (``chunks(size)``): dicts of
columns of at most ``size`` rows.  Differences use them to hash and filter
many rows at a time without materialising the space; the mapper uses them to
write results in pieces.
"""

from __future__ import annotations

import abc
import itertools
import math
import reprlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from psyrun.exceptions import AmbiguousOperationError
from psyrun.pspace.columns import NAN, make_columns
from psyrun.pspace.rowkeys import row_keys

Columns = dict[str, list[Any]]

#: rows per chunk when a space is streamed column-wise
CHUNK_ROWS = 8192
#: inner factors of a product with at most this many rows are kept as row
#: dicts while iterating (else they are re-iterated for each outer row)
CACHE_ROWS = 100_000


class ParameterSpace(abc.ABC):
    """A sequence of parameter assignments (rows), each a dict of values.

    Combine spaces with ``*`` (all combinations), ``+`` (concatenation) and
    ``-`` (removal of matching rows); see also :func:`missing`.
    """

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys: tuple[str, ...] = tuple(keys)

    def keys(self) -> list[str]:
        """The parameter names, in the order of the columns of ``build()``."""
        return list(self._keys)

    @abc.abstractmethod
    def __len__(self) -> int:
        """The number of rows."""

    @abc.abstractmethod
    def iterate(self) -> Iterator[dict[str, Any]]:
        """Yield one dict per row without building the whole space."""

    @abc.abstractmethod
    def chunks(self, size: int) -> Iterator[Columns]:
        """Yield the rows as dicts of lists (like ``build()``) of at most ``size`` rows each.

        No chunk is empty; together they hold the rows in ``iterate()`` order.
        """

    def build(self) -> dict[str, list[Any]]:
        """All rows as a dict of lists, one list per parameter."""
        result: Columns = {key: [] for key in self._keys}
        for chunk in self.chunks(CHUNK_ROWS * 8):
            for key, column in result.items():
                column.extend(chunk[key])
        return result

    def build_arrays(self) -> dict[str, Any]:
        """All rows as a dict of numpy arrays.

        A parameter given as a numpy array keeps its dtype where no ``nan``
        had to be filled in; others get the dtype numpy infers.
        """
        import numpy as np

        dtypes = self._dtypes()
        result = {}
        for key, column in self.build().items():
            dtype = dtypes.get(key)
            try:
                result[key] = np.asarray(column, dtype=dtype)
            except (TypeError, ValueError):
                result[key] = np.asarray(column)
        return result

    def _dtypes(self) -> dict[str, Any]:
        """The numpy dtype of each key that came from arrays of a single dtype."""
        return {}

    def __mul__(self, other: object) -> ParameterSpace:
        if not isinstance(other, ParameterSpace):
            return NotImplemented
        return Product(self, other)

    def __add__(self, other: object) -> ParameterSpace:
        if not isinstance(other, ParameterSpace):
            return NotImplemented
        return Sum(self, other)

    def __sub__(self, other: object) -> ParameterSpace:
        if not isinstance(other, ParameterSpace):
            return NotImplemented
        return Difference(self, other)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __str__(self) -> str:
        return repr(self)


def rows_of(keys: Sequence[str], columns: Columns) -> Iterator[dict[str, Any]]:
    """One dict per row of ``columns`` (a dict of equally long lists), over ``keys``."""
    if len(keys) == 1:
        key = keys[0]
        return ({key: value} for value in columns[key])
    return map(dict, map(zip, itertools.repeat(keys), zip(*(columns[k] for k in keys))))


def _object_array(column: Sequence[Any]) -> Any:
    """A numpy object array holding exactly the objects of ``column``."""
    import numpy as np

    return np.fromiter(column, dtype=object, count=len(column))


_repr = reprlib.Repr()
_repr.maxlist = 6
_repr.maxtuple = 6
_repr.maxother = 40


class Param(ParameterSpace):
    """Parameter assignments given as equally long sequences of values.

    ``Param(a=[1, 2, 3], b=[4, 5, 6], c=7)`` has three rows; the scalar ``c``
    is repeated.  Values may be lists, tuples, ranges or numpy arrays (whose
    first axis indexes the rows); strings and other non-sequences are
    scalars.  With scalars only there is one row; ``Param()`` is empty.
    Sets, dicts and generators are refused because their row order is not
    defined or they can be read only once.

    >>> Param(a=[1, 2], b="x").build()
    {'a': [1, 2], 'b': ['x', 'x']}
    """

    def __init__(self, **params: Any) -> None:
        columns, dtypes, length = make_columns(params)
        super().__init__(columns)
        self._columns = columns
        self._dtype_of = dtypes
        self._length = length
        self._given = params
        self._object_columns: dict[str, Any] | None = None

    def __len__(self) -> int:
        return self._length

    def iterate(self) -> Iterator[dict[str, Any]]:
        if not self._keys:
            return iter(())
        return rows_of(self._keys, self._columns)

    def build(self) -> dict[str, list[Any]]:
        return {key: list(column) for key, column in self._columns.items()}

    def chunks(self, size: int) -> Iterator[Columns]:
        for start in range(0, self._length, size):
            yield {key: column[start : start + size] for key, column in self._columns.items()}

    def _as_object_arrays(self) -> dict[str, Any]:
        if self._object_columns is None:
            self._object_columns = {k: _object_array(c) for k, c in self._columns.items()}
        return self._object_columns

    def _dtypes(self) -> dict[str, Any]:
        return dict(self._dtype_of)

    def __repr__(self) -> str:
        parts = []
        for key, value in self._given.items():
            if type(value).__module__ == "numpy" and getattr(value, "ndim", 0) > 0:
                text = f"<array shape={value.shape} dtype={value.dtype}>"
            else:
                text = _repr.repr(value)
            parts.append(f"{key}={text}")
        return f"Param({', '.join(parts)})"


def _factor_arrays(space: ParameterSpace) -> dict[str, Any]:
    if isinstance(space, Param):
        return space._as_object_arrays()
    return {key: _object_array(column) for key, column in space.build().items()}


class Product(ParameterSpace):
    """The Cartesian product of spaces; the first factor varies slowest."""

    def __init__(self, left: ParameterSpace, right: ParameterSpace) -> None:
        factors: list[ParameterSpace] = []
        for space in (left, right):
            # (a * b) * c is stored as one product of three factors.
            factors.extend(space._factors if isinstance(space, Product) else [space])
        seen: set[str] = set()
        for space in factors:
            for key in space._keys:
                if key in seen:
                    raise AmbiguousOperationError(
                        f"Key `{key}` appears in more than one factor of a product. "
                        "Rename one of the parameters, or combine the values into "
                        "a single Param."
                    )
                seen.add(key)
        super().__init__(key for space in factors for key in space._keys)
        self._factors = factors

    def __len__(self) -> int:
        return math.prod(len(space) for space in self._factors)

    def iterate(self) -> Iterator[dict[str, Any]]:
        factors = self._factors
        if len(self) == 0:
            return iter(())
        # The first factor is read once and streams; inner factors are read
        # once per outer row, so small ones are kept as row dicts.
        sources: list[Callable[[], Iterable[dict[str, Any]]]] = [factors[0].iterate]
        for space in factors[1:]:
            if len(space) <= CACHE_ROWS:
                sources.append(_replay(list(space.iterate())))
            else:
                sources.append(space.iterate)
        last = len(sources) - 1

        def rows_under(level: int, base: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if level == last:
                return map(base.__or__, sources[level]())
            return itertools.chain.from_iterable(
                rows_under(level + 1, base | row) for row in sources[level]()
            )

        return rows_under(0, {})

    def build(self) -> dict[str, list[Any]]:
        import numpy as np

        total = len(self)
        if total == 0:
            return {key: [] for key in self._keys}
        result: Columns = {}
        outer = 1
        inner = total
        for space in self._factors:
            n = len(space)
            inner //= n
            for key, array in _factor_arrays(space).items():
                result[key] = np.tile(np.repeat(array, inner), outer).tolist()
            outer *= n
        return result

    def chunks(self, size: int) -> Iterator[Columns]:
        import numpy as np

        total = len(self)
        if total == 0:
            return
        lengths = [len(space) for space in self._factors]
        strides = [math.prod(lengths[i + 1 :]) for i in range(len(lengths))]
        arrays = [_factor_arrays(space) for space in self._factors]
        for start in range(0, total, size):
            rows = np.arange(start, min(start + size, total))
            chunk: Columns = {}
            for factor_arrays, stride, n in zip(arrays, strides, lengths):
                index = (rows // stride) % n
                for key, array in factor_arrays.items():
                    chunk[key] = array[index].tolist()
            yield chunk

    def _dtypes(self) -> dict[str, Any]:
        result = {}
        for space in self._factors:
            result.update(space._dtypes())
        return result

    def __repr__(self) -> str:
        return "(" + " * ".join(repr(space) for space in self._factors) + ")"


def _replay(rows: list[dict[str, Any]]) -> Callable[[], Iterable[dict[str, Any]]]:
    return lambda: rows


class Sum(ParameterSpace):
    """The concatenation of spaces; keys missing in a part are filled with nan."""

    def __init__(self, left: ParameterSpace, right: ParameterSpace) -> None:
        parts: list[ParameterSpace] = []
        for space in (left, right):
            parts.extend(space._parts if isinstance(space, Sum) else [space])
        keys: dict[str, None] = {}
        for space in parts:
            keys.update(dict.fromkeys(space.keys()))
        super().__init__(keys)
        self._parts = parts

    def __len__(self) -> int:
        return sum(len(space) for space in self._parts)

    def iterate(self) -> Iterator[dict[str, Any]]:
        template = dict.fromkeys(self._keys, NAN)
        for space in self._parts:
            if len(space.keys()) == len(self._keys):
                yield from space.iterate()
            else:
                yield from map(template.__or__, space.iterate())

    def build(self) -> dict[str, list[Any]]:
        result: Columns = {key: [] for key in self._keys}
        for space in self._parts:
            self._extend(result, space.build(), len(space))
        return result

    def chunks(self, size: int) -> Iterator[Columns]:
        for space in self._parts:
            for chunk in space.chunks(size):
                n = len(next(iter(chunk.values()))) if chunk else 0
                yield {key: chunk[key] if key in chunk else [NAN] * n for key in self._keys}

    @staticmethod
    def _extend(result: Columns, part: Columns, n: int) -> None:
        for key, column in result.items():
            column.extend(part[key] if key in part else [NAN] * n)

    def _dtypes(self) -> dict[str, Any]:
        # A key keeps its dtype only if every part has it with that dtype.
        per_part = [space._dtypes() for space in self._parts]
        result = {}
        for key in self._keys:
            found = {dtypes.get(key) for dtypes in per_part}
            if len(found) == 1 and None not in found:
                result[key] = found.pop()
        return result

    def __repr__(self) -> str:
        return "(" + " + ".join(repr(space) for space in self._parts) + ")"


class _Filtered(ParameterSpace):
    """Rows of ``kept`` whose values on ``match_keys`` equal no row of ``removed``.

    Linear in the sizes: the smaller side is put into a hash set and the
    other side is streamed.  Nothing is computed until the rows are asked for.
    """

    def __init__(
        self, kept: ParameterSpace, removed: ParameterSpace, match_keys: Sequence[str]
    ) -> None:
        super().__init__(kept.keys())
        self._kept = kept
        self._removed = removed
        self._match_keys = tuple(match_keys)
        self._length: int | None = None

    def _keys_of(self, chunk: Columns) -> Iterable[Any]:
        if not self._match_keys:  # every row matches the empty key
            n = len(next(iter(chunk.values()))) if chunk else 0
            return [()] * n
        return row_keys(chunk, self._match_keys)

    def _drop_set(self) -> set[Any]:
        """The keys whose rows of ``kept`` are to be dropped."""
        n_kept = len(self._kept)
        n_removed = len(self._removed)
        if n_kept == 0 or n_removed == 0:
            return set()
        if n_removed <= n_kept:
            drop: set[Any] = set()
            for chunk in self._removed.chunks(CHUNK_ROWS):
                drop.update(self._keys_of(chunk))
            return drop
        # The kept side is smaller: hash it and keep only what also occurs
        # in the removed side, so memory stays bounded by the smaller side.
        mine: set[Any] = set()
        for chunk in self._kept.chunks(CHUNK_ROWS):
            mine.update(self._keys_of(chunk))
        found: set[Any] = set()
        for chunk in self._removed.chunks(CHUNK_ROWS):
            found.update(mine.intersection(self._keys_of(chunk)))
            if len(found) == len(mine):
                break
        return found

    def chunks(self, size: int) -> Iterator[Columns]:
        drop = self._drop_set()
        count = 0
        for chunk in self._kept.chunks(size):
            if drop:
                keep = [key not in drop for key in self._keys_of(chunk)]
                if not all(keep):
                    chunk = {k: list(itertools.compress(c, keep)) for k, c in chunk.items()}
            n = len(next(iter(chunk.values()))) if chunk else 0
            count += n
            if n:
                yield chunk
        self._length = count

    def __len__(self) -> int:
        if self._length is None:
            self._length = sum(len(next(iter(c.values()))) for c in self.chunks(CHUNK_ROWS))
        return self._length

    def iterate(self) -> Iterator[dict[str, Any]]:
        for chunk in self.chunks(CHUNK_ROWS):
            yield from rows_of(self._keys, chunk)

    def _dtypes(self) -> dict[str, Any]:
        return self._kept._dtypes()


class Difference(_Filtered):
    """``minuend - subtrahend``: the rows of the minuend matching no subtrahend row.

    Rows match when they agree on every key of the subtrahend, which must all
    be keys of the minuend.
    """

    def __init__(self, minuend: ParameterSpace, subtrahend: ParameterSpace) -> None:
        minuend_keys = set(minuend.keys())
        for key in subtrahend._keys:
            if key not in minuend_keys:
                # psyrun 0.8 used this message; the user guide shows it.
                raise AmbiguousOperationError(f"Key `{key}` not existent in minuend.")
        super().__init__(minuend, subtrahend, subtrahend.keys())

    def __repr__(self) -> str:
        return f"({self._kept!r} - {self._removed!r})"


class Missing(_Filtered):
    """The rows of ``space`` that occur in no row of ``present`` (see :func:`missing`)."""

    def __init__(self, space: ParameterSpace, present: ParameterSpace) -> None:
        present_keys = set(present.keys())
        for key in space._keys:
            # A space without keys has no rows (e.g. the columns of an
            # empty result file): nothing to compare, everything is missing.
            if key not in present_keys and present_keys:
                raise AmbiguousOperationError(
                    f"Key `{key}` of the first space is not existent in the second space. "
                    "missing(a, b) compares rows on all keys of a, so b needs them all; "
                    "use `a - b` to compare on the keys of b only."
                )
        super().__init__(space, present, space.keys())

    def __repr__(self) -> str:
        return f"missing({self._kept!r}, {self._removed!r})"


def missing(minuend: ParameterSpace, subtrahend: ParameterSpace) -> ParameterSpace:
    """The rows of ``minuend`` that do not occur in ``subtrahend``.

    Rows are compared on all keys of ``minuend`` (which must all be keys of
    ``subtrahend``); further keys of ``subtrahend``, such as results, are
    ignored.  A typical use is finding the parameter assignments that have
    no result yet.  The result is lazy like every space.

    >>> done = Param(a=[2, 3], result=[0.5, 0.7])
    >>> missing(Param(a=[1, 2, 3, 4]), done).build()
    {'a': [1, 4]}
    """
    return Missing(minuend, subtrahend)
