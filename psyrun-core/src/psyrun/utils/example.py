"""A picklable example function for the documentation and tests."""

from __future__ import annotations

from typing import Any


def square(x: Any) -> dict[str, Any]:
    """Return ``{'y': x ** 2}``."""
    return {"y": x**2}
