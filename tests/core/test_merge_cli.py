"""``psy merge`` run as a real command in a temporary directory."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from psyrun.store import NpzStore, PickleStore, load_result
from psyrun.testing.store import assert_data_equal

# The console script of the environment running the tests.
_SCRIPT = Path(sys.executable).with_name("psy")
PSY = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "psyrun.cli"]


def psy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PSY, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def outputs(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    for i in (1, 2, 10):
        PickleStore().save(out / f"out-{i}.pkl", {"i": [i], "x": [i / 2]})
    NpzStore().save(out / "out-3.npz", {"i": [3], "y": [7.0]})
    return out


def test_merge_writes_one_file_in_natural_order(tmp_path):
    outputs(tmp_path)
    done = psy("merge", "out", "result.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "4 rows from 4 files" in done.stdout
    assert_data_equal(load_result(tmp_path / "result.npz"),
                      {"i": [1, 2, 3, 10], "x": [0.5, 1.0, math.nan, 5.0],
                       "y": [math.nan, math.nan, 7.0, math.nan]})


def test_merge_refuses_to_overwrite_without_force(tmp_path):
    outputs(tmp_path)
    PickleStore().save(tmp_path / "result.pkl", {"old": [1]})
    done = psy("merge", "out", "result.pkl", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("Error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "--force" in done.stderr
    assert load_result(tmp_path / "result.pkl") == {"old": [1]}
    done = psy("merge", "--force", "out", "result.pkl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert list(load_result(tmp_path / "result.pkl")["i"]) == [1, 2, 3, 10]


def test_an_unreadable_file_is_an_error_naming_it(tmp_path):
    out = outputs(tmp_path)
    (out / "out-2.pkl").write_bytes(b"broken")
    done = psy("merge", "out", "result.pkl", cwd=tmp_path)
    assert done.returncode == 2
    assert "out-2.pkl" in done.stderr and "--skip-unreadable" in done.stderr
    assert not (tmp_path / "result.pkl").exists()

    done = psy("merge", "--skip-unreadable", "out", "result.pkl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Skipped unreadable file" in done.stderr and "out-2.pkl" in done.stderr
    assert list(load_result(tmp_path / "result.pkl")["i"]) == [1, 3, 10]


def test_bad_input_gives_one_line_errors(tmp_path):
    outputs(tmp_path)
    for args, expected in [
        (("merge", "missing", "result.pkl"), "No such directory"),
        (("merge", "out", "result.txt"), "No store handles the file extension '.txt'"),
    ]:
        done = psy(*args, cwd=tmp_path)
        assert done.returncode == 2, done
        assert done.stderr.startswith("Error: ") and expected in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
