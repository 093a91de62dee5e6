"""A store that keeps one JSON object per line: one row per line."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from psyrun.store import Store


class JsonLinesStore(Store):
    """Rows of JSON scalars; columns missing from a row read back as nan."""

    ext = ".jsonl"

    def save(self, filename, data) -> None:
        path = Path(filename)
        temp = path.with_name(path.name + ".tmp")
        temp.write_text("".join(self._lines(data)), encoding="utf-8")
        os.replace(temp, path)  # atomic: a crash leaves the old file

    def append(self, filename, data) -> None:
        with Path(filename).open("a", encoding="utf-8") as f:
            f.writelines(self._lines(data))

    def load(self, filename, row=None):
        rows = [json.loads(line) for line in Path(filename).read_text("utf-8").splitlines()]
        keys = list(dict.fromkeys(k for r in rows for k in r))  # columns of the whole file
        if row is not None:
            rows = rows[row] if isinstance(row, slice) else [rows[row]]
        return {k: [r.get(k, math.nan) for r in rows] for k in keys}

    def count(self, filename) -> int:
        with Path(filename).open(encoding="utf-8") as f:
            return sum(1 for _ in f)

    @staticmethod
    def _lines(data):
        columns = {k: list(v) for k, v in data.items()}
        length = max((len(v) for v in columns.values()), default=0)
        for i in range(length):
            yield json.dumps({k: v[i] for k, v in columns.items()}) + "\n"
