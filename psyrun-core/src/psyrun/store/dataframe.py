"""Turning loaded results into a pandas DataFrame.

pandas is optional (``pip install 'psyrun[pandas]'``) and imported only here.
"""

from __future__ import annotations

from typing import Any

from psyrun.exceptions import StoreError
from psyrun.store.base import Data


def to_dataframe(data: Data) -> Any:
    """``data`` (a dict of columns) as a :class:`pandas.DataFrame`.

    Columns holding one array per row (2-d and higher NumPy arrays, or lists
    of arrays) become *object* columns whose cells are those arrays, since a
    DataFrame cell holds one value.  Scalars keep their dtype.
    """
    try:
        import pandas as pd
    except ImportError:
        raise StoreError(
            "to_dataframe needs pandas. Install it with: pip install 'psyrun[pandas]'"
        ) from None
    from psyrun.store.columns import count_rows

    count_rows(data)
    columns = {}
    for name, values in data.items():
        if getattr(values, "ndim", 1) > 1:
            cells = list(values)  # one array per row
            column = pd.Series([None] * len(cells), dtype=object)
            for i, cell in enumerate(cells):
                column.iat[i] = cell  # assigning one by one stops pandas from unpacking arrays
            columns[name] = column
        else:
            columns[name] = values
    return pd.DataFrame(columns)
