"""evaluate_items: the loop that calls execute for each assignment of a job."""

from __future__ import annotations

import math

import numpy as np
from psyrun.backend.base import evaluate_items


def test_an_output_that_replaces_a_parameter_fails_that_item():
    items = [{"x": 1}, {"x": 2}]
    rows, failures = evaluate_items(lambda x: {"x": x * 10, "y": x}, items)
    assert rows == []
    assert [f.params for f in failures] == items
    assert "execute returned x=10 for the parameter x=1" in failures[0].error
    assert "Give that output another name" in failures[0].error


def test_returning_the_parameters_unchanged_is_fine():
    items = [{"x": 1.0, "v": np.arange(2.0), "n": math.nan, "s": "a"}]
    rows, failures = evaluate_items(lambda **p: dict(p, y=1), items)
    assert failures == []
    assert rows[0]["y"] == 1 and rows[0]["s"] == "a"
    # the same value in another type (an int for a float, a list for an array)
    rows, failures = evaluate_items(lambda **p: {"x": 1, "v": [0.0, 1.0]}, items)
    assert failures == [] and len(rows) == 1
