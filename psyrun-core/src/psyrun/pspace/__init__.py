"""Parameter spaces: describe many parameter assignments with a small algebra.

``Param(a=[1, 2]) * Param(b=[3, 4])`` is the space of all four combinations;
``+`` concatenates spaces, ``-`` removes matching rows and :func:`missing`
finds the rows that are not yet in another space (e.g. in a result file).
Spaces are lazy: ``build()`` expands them into a dict of lists,
``iterate()`` yields one dict per row without expanding the whole space.
"""

from __future__ import annotations

from psyrun.exceptions import AmbiguousOperationError
from psyrun.pspace.columns import dict_concat
from psyrun.pspace.spaces import (
    Difference,
    Missing,
    Param,
    ParameterSpace,
    Product,
    Sum,
    missing,
)

__all__ = [
    "AmbiguousOperationError",
    "Difference",
    "Missing",
    "Param",
    "ParameterSpace",
    "Product",
    "Sum",
    "dict_concat",
    "missing",
]
