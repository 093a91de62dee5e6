"""merge_files: joining output files into one result file."""

from __future__ import annotations

import math

import numpy as np
import pytest
from psyrun.exceptions import CorruptFileError, ResultExistsError, StoreError
from psyrun.store import NpzStore, PickleStore, load_result
from psyrun.store.merge import merge_files, natural_key, output_files
from psyrun.testing.store import assert_data_equal


def write_outputs(directory, n, ext=".pkl", rows=2):
    store = {".pkl": PickleStore(), ".npz": NpzStore()}[ext]
    for i in range(n):
        store.save(directory / f"out-{i}{ext}",
                   {"i": [i] * rows, "k": list(range(rows)), "x": [i + k / 10 for k in range(rows)]})


def test_merges_in_natural_order(tmp_path):
    write_outputs(tmp_path, 12)
    result = merge_files(tmp_path, tmp_path / "merged.pkl")
    assert [p.name for p in result.files] == [f"out-{i}.pkl" for i in range(12)]
    assert result.rows == 24 and result.skipped == ()
    loaded = load_result(tmp_path / "merged.pkl")
    assert list(loaded["i"]) == [i for i in range(12) for _ in range(2)]


@pytest.mark.parametrize("out_ext", [".pkl", ".npz"])
def test_merging_converts_formats_and_fills_missing_columns(tmp_path, out_ext):
    PickleStore().save(tmp_path / "out-1.pkl", {"a": [1, 2], "s": ["x", "y"]})
    NpzStore().save(tmp_path / "out-2.npz", {"a": [3], "b": [0.5]})
    merged = tmp_path / "result" / f"merged{out_ext}"
    merged.parent.mkdir()
    merge_files(tmp_path, merged)
    fill = math.nan if out_ext == ".pkl" else ""
    assert_data_equal(load_result(merged), {"a": [1, 2, 3], "s": ["x", "y", fill],
                                            "b": [math.nan, math.nan, 0.5]})


def test_an_existing_result_is_kept_unless_overwrite(tmp_path):
    write_outputs(tmp_path, 2)
    merged = tmp_path / "merged.pkl"
    PickleStore().save(merged, {"old": [1]})
    with pytest.raises(ResultExistsError, match="merged.pkl.*--force"):
        merge_files(tmp_path, merged)
    assert load_result(merged) == {"old": [1]}
    # With overwrite the old result is replaced, and not read as an input.
    result = merge_files(tmp_path, merged, overwrite=True)
    assert [p.name for p in result.files] == ["out-0.pkl", "out-1.pkl"]
    assert sorted(load_result(merged)) == ["i", "k", "x"]


def test_an_unreadable_file_stops_the_merge_and_nothing_is_written(tmp_path):
    write_outputs(tmp_path, 3)
    (tmp_path / "out-1.pkl").write_bytes(b"not a pickle")
    merged = tmp_path / "merged.npz"
    with pytest.raises(CorruptFileError, match="out-1.pkl.*--skip-unreadable"):
        merge_files(tmp_path, merged)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out-0.pkl", "out-1.pkl", "out-2.pkl"]


def test_unreadable_files_are_skipped_and_reported_on_request(tmp_path):
    write_outputs(tmp_path, 3)
    (tmp_path / "out-1.pkl").write_bytes(b"")
    result = merge_files(tmp_path, tmp_path / "merged.pkl", skip_unreadable=True)
    assert [p.name for p, _ in result.skipped] == ["out-1.pkl"]
    assert [p.name for p in result.files] == ["out-0.pkl", "out-2.pkl"]
    assert list(load_result(tmp_path / "merged.pkl")["i"]) == [0, 0, 2, 2]


def test_all_files_unreadable_writes_nothing(tmp_path):
    (tmp_path / "out-1.pkl").write_bytes(b"x")
    with pytest.raises(CorruptFileError, match="None of the 1"):
        merge_files(tmp_path, tmp_path / "merged.pkl", skip_unreadable=True)
    assert not (tmp_path / "merged.pkl").exists()


def test_hidden_temporary_and_foreign_files_are_not_inputs(tmp_path):
    write_outputs(tmp_path, 2)
    (tmp_path / ".out-9.pkl").write_bytes(b"hidden")
    (tmp_path / ".out-3.pkl.abc123.tmp").write_bytes(b"interrupted writer")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "sub.pkl").mkdir()
    assert [p.name for p in output_files(tmp_path)] == ["out-0.pkl", "out-1.pkl"]


def test_an_empty_directory_is_an_error(tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(StoreError, match="nothing to merge"):
        merge_files(tmp_path / "in", tmp_path / "merged.pkl")
    assert not (tmp_path / "merged.pkl").exists()


def test_a_missing_directory_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such directory"):
        merge_files(tmp_path / "nope", tmp_path / "merged.pkl")


def test_a_list_of_files_is_merged_in_the_given_order(tmp_path):
    write_outputs(tmp_path, 3)
    files = [tmp_path / "out-2.pkl", tmp_path / "out-0.pkl"]
    result = merge_files(files, tmp_path / "merged.npz")
    assert result.files == tuple(files)
    assert load_result(tmp_path / "merged.npz")["i"].tolist() == [2, 2, 0, 0]


def test_multidimensional_columns_survive_a_merge(tmp_path):
    for i in range(3):
        NpzStore().save(tmp_path / f"o{i}.npz", {"v": np.full((2, 3, 2), i)})
    merge_files(tmp_path, tmp_path / "m.pkl")
    loaded = load_result(tmp_path / "m.pkl")["v"]
    assert loaded.shape == (6, 3, 2) and loaded[5, 0, 0] == 2


def test_natural_key_orders_numbers_by_value():
    names = ["out-10.npz", "out-9.pkl", "b", "a2", "a10", "out-1.h5"]
    assert sorted(names, key=natural_key) == ["a2", "a10", "b", "out-1.h5", "out-9.pkl",
                                              "out-10.npz"]


def test_files_of_an_unavailable_store_are_reported_not_ignored(tmp_path, monkeypatch):
    # Blocking the plugin makes it unavailable the way uninstalling would; the
    # message then says it is blocked (an uninstalled one gets the pip command,
    # see test_plugins.py).
    monkeypatch.setenv("PSYRUN_DISABLED_PLUGINS", "h5")
    from psyrun.plugins.manager import get_plugin_manager

    get_plugin_manager.cache_clear()
    try:
        write_outputs(tmp_path, 1)
        (tmp_path / "out-1.h5").write_bytes(b"written where psyrun[h5] was installed")
        with pytest.raises(CorruptFileError, match=r"out-1\.h5.*h5 store is blocked by PSYRUN_DISABLED_PLUGINS"):
            merge_files(tmp_path, tmp_path / "merged.pkl")
    finally:
        get_plugin_manager.cache_clear()
