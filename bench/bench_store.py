"""Benchmark of the stores: save, load, merge and single-row reads.

Run with ``python bench/bench_store.py`` (``--full`` also times psyrun
0.8.0's merge of 1000 files, which is quadratic and takes minutes).  For
every store it prints our time, the time of the plain library doing the same
work (``pickle.dump``/``load``, ``numpy.savez``/``load``, PyTables arrays)
and, when ``pip download psyrun==0.8.0`` works, the time of psyrun 0.8.0's
store, run in a subprocess from a temporary directory (0.8 needs a few
aliases on Python 3.10+, set up there; none of its code is kept).

Merge inputs hold Python lists, as the outputs of workers do; the save and
load figures use NumPy arrays.  Figures are the best of a few runs, in seconds unless marked ms.  Targets:
merging is linear in the total number of rows (the 1000-file merge takes
about 10x the 100-file one) and within 2x of the plain library; reading one
row of a 1e6-row h5 file takes under 10 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from psyrun.store import NpzStore, PickleStore
from psyrun.store.merge import merge_files

try:
    import tables
    from psyrun_store_h5.store import H5Store
except ImportError:  # psyrun[h5] not installed: its columns are skipped
    tables = None
    H5Store = None

SAVE_ROWS = 100_000
MERGE_ROWS = 1000
ROW_FILE_ROWS = 1_000_000


def best(fn: Callable[[], object], repeat: int = 3, setup: Callable[[], object] | None = None
         ) -> float:
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def table(rows: int, seed: int = 0, lists: bool = False) -> dict:
    """Two float columns and an int column; as lists, like a worker's output."""
    rng = np.random.default_rng(seed)
    data = {"x": rng.random(rows), "y": rng.random(rows), "i": np.arange(rows)}
    return {k: v.tolist() for k, v in data.items()} if lists else data


# ---------------------------------------------------------------- plain libraries
def raw_save(ext: str, path: Path, data: dict) -> None:
    if ext == ".pkl":
        with open(path, "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
    elif ext == ".npz":
        with open(path, "wb") as f:
            np.savez(f, **data)
    else:
        with tables.open_file(str(path), "w") as h5:
            group = h5.create_group("/", "psyrun")
            for name, values in data.items():
                h5.create_earray(group, name, obj=values)


def raw_load(ext: str, path: Path, row: int | None = None) -> dict:
    if ext == ".pkl":
        with open(path, "rb") as f:
            return pickle.load(f)
    if ext == ".npz":
        with np.load(path) as npz:
            return {k: npz[k] for k in npz.files}
    with tables.open_file(str(path)) as h5:
        nodes = h5.root.psyrun._f_iter_nodes()
        if row is None:
            return {n._v_name: n.read() for n in nodes}
        return {n._v_name: n.read(row, row + 1) for n in nodes}


def raw_merge(ext: str, files: list[Path], merged: Path) -> None:
    if ext == ".h5":  # PyTables appends in place
        with tables.open_file(str(merged), "w") as out:
            group = out.create_group("/", "psyrun")
            for path in files:
                data = raw_load(ext, path)
                for name, values in data.items():
                    if name in group:
                        group._f_get_child(name).append(values)
                    else:
                        out.create_earray(group, name, obj=values)
        return
    parts = [raw_load(ext, p) for p in files]
    if ext == ".pkl":  # lists, as the workers wrote them
        raw_save(ext, merged, {k: [v for p in parts for v in p[k]] for k in parts[0]})
    else:
        raw_save(ext, merged, {k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


# ---------------------------------------------------------------- psyrun 0.8.0
OLD_RUNNER = textwrap.dedent(r"""
    import collections, collections.abc, json, os, sys, time, types
    for name in ("Sized", "Mapping", "MutableMapping", "Iterable", "Sequence", "Callable"):
        setattr(collections, name, getattr(collections.abc, name))
    import pickle
    for name, attrs in (("pkg_resources", {"iter_entry_points": lambda *a, **k: iter(())}),
                        ("six", {"string_types": (str,), "__path__": []}),
                        ("six.moves", {"cPickle": pickle})):
        try:
            __import__(name)
        except ImportError:
            module = types.ModuleType(name)
            module.__dict__.update(attrs)
            sys.modules[name] = module
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import psyrun
    assert psyrun.__file__.startswith(sys.argv[1]), psyrun.__file__
    from psyrun.backend.distribute import Splitter
    from psyrun.store.pickle import PickleStore
    from psyrun.store.npz import NpzStore
    stores = {".pkl": PickleStore(), ".npz": NpzStore()}
    try:
        from psyrun.store.h5 import H5Store
        stores[".h5"] = H5Store()
    except Exception:
        pass
    work, config = sys.argv[2], json.loads(sys.argv[3])

    def best(fn, repeat=3, setup=None):
        times = []
        for _ in range(repeat):
            if setup: setup()
            t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
        return min(times)

    def table(rows, lists=False):
        rng = np.random.default_rng(0)
        data = {"x": rng.random(rows), "y": rng.random(rows), "i": np.arange(rows)}
        return {k: v.tolist() for k, v in data.items()} if lists else data

    out = {}
    for ext, store in stores.items():
        path = os.path.join(work, "save" + ext)
        data = table(config["save_rows"])
        out[f"save{ext}"] = best(lambda: store.save(path, data))
        out[f"load{ext}"] = best(lambda: store.load(path))
        for n in config["merge_files"]:
            d = os.path.join(work, f"merge{n}{ext}")
            os.makedirs(d)
            for i in range(n):
                store.save(os.path.join(d, f"out-{i}{ext}"), table(config["merge_rows"], True))
            merged = os.path.join(work, f"merged{n}{ext}")
            def clean():
                if os.path.exists(merged): os.remove(merged)
            out[f"merge{n}{ext}"] = best(lambda: Splitter.merge(d, merged, store=store),
                                         repeat=1 if n > 100 else 3, setup=clean)
        if ext == ".h5":
            big = os.path.join(work, "rows.h5")
            store.save(big, table(config["row_rows"]))
            out["row.h5"] = best(lambda: store.load(big, row=654_321), repeat=5)
    print(json.dumps(out))
""")


def old_psyrun(work: Path, merge_counts: list[int]) -> tuple[dict[str, float], str]:
    """Times of psyrun 0.8.0, or ({}, why not)."""
    download = work / "download"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "psyrun==0.8.0", "--no-deps", "-q", "-d",
         str(download)], capture_output=True, text=True,
    )
    wheels = list(download.glob("psyrun-0.8.0*.whl")) if download.exists() else []
    if done.returncode != 0 or not wheels:
        return {}, f"pip download psyrun==0.8.0 failed: {done.stderr.strip()[-200:]}"
    unpacked = work / "psyrun-0.8.0"
    shutil.unpack_archive(wheels[0], unpacked, format="zip")
    old_work = work / "old"
    old_work.mkdir()
    config = {"save_rows": SAVE_ROWS, "merge_rows": MERGE_ROWS, "merge_files": merge_counts,
              "row_rows": ROW_FILE_ROWS}
    done = subprocess.run(
        [sys.executable, "-c", OLD_RUNNER, str(unpacked), str(old_work), json.dumps(config)],
        capture_output=True, text=True, cwd=work,
        env={**os.environ, "PYTHONPATH": ""},
    )
    if done.returncode != 0:
        return {}, f"psyrun 0.8.0 failed to run: {done.stderr.strip()[-300:]}"
    return json.loads(done.stdout.strip().splitlines()[-1]), ""


# ---------------------------------------------------------------- our stores
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true",
                        help="also time psyrun 0.8.0 merging 1000 files (minutes)")
    parser.add_argument("--no-old", action="store_true", help="skip psyrun 0.8.0")
    args = parser.parse_args()

    stores = {".pkl": PickleStore(), ".npz": NpzStore()}
    if H5Store is not None:
        stores[".h5"] = H5Store()
    else:
        print("psyrun-store-h5 is not installed: h5 figures skipped")

    with tempfile.TemporaryDirectory(prefix="psyrun-bench-store-") as tmp:
        work = Path(tmp)
        if args.no_old:
            old, why = {}, "skipped (--no-old)"
        else:
            old, why = old_psyrun(work, [100, 1000] if args.full else [100])
        if why:
            print(f"psyrun 0.8.0: {why}")

        results: dict[str, float] = {}
        raw: dict[str, float] = {}
        data = table(SAVE_ROWS)
        for ext, store in stores.items():
            path, raw_path = work / f"save{ext}", work / f"raw{ext}"
            results[f"save{ext}"] = best(partial(store.save, path, data))
            results[f"load{ext}"] = best(partial(store.load, path))
            raw[f"save{ext}"] = best(partial(raw_save, ext, raw_path, data))
            raw[f"load{ext}"] = best(partial(raw_load, ext, raw_path))

            for n in (100, 1000):
                inputs = work / f"in{n}{ext}"
                inputs.mkdir()
                raw_inputs = work / f"raw-in{n}{ext}"
                raw_inputs.mkdir()
                for i in range(n):
                    chunk = table(MERGE_ROWS, seed=i, lists=True)
                    store.save(inputs / f"out-{i}{ext}", chunk)
                    raw_save(ext, raw_inputs / f"out-{i}{ext}", chunk)
                merged = work / f"merged{n}{ext}"
                results[f"merge{n}{ext}"] = best(
                    partial(merge_files, inputs, merged, overwrite=True), repeat=2)
                assert store.count(merged) == n * MERGE_ROWS
                files = sorted(raw_inputs.iterdir())
                raw[f"merge{n}{ext}"] = best(
                    partial(raw_merge, ext, files, work / f"raw-merged{n}{ext}"), repeat=2)
                shutil.rmtree(inputs)
                shutil.rmtree(raw_inputs)

        if ".h5" in stores:
            big, raw_big = work / "rows.h5", work / "raw-rows.h5"
            rows = table(ROW_FILE_ROWS)
            stores[".h5"].save(big, rows)
            raw_save(".h5", raw_big, rows)
            results["row.h5"] = best(lambda: stores[".h5"].load(big, row=654_321), repeat=7)
            raw["row.h5"] = best(lambda: raw_load(".h5", raw_big, row=654_321), repeat=7)
            results["count.h5"] = best(lambda: stores[".h5"].count(big), repeat=7)
        for ext in (".pkl", ".npz"):
            big = work / f"rows{ext}"
            stores[ext].save(big, table(ROW_FILE_ROWS))
            results[f"row{ext}"] = best(partial(stores[ext].load, big, row=654_321), repeat=5)

    report(results, raw, old)


def report(results: dict[str, float], raw: dict[str, float], old: dict[str, float]) -> None:
    def cell(value: float | None, ms: bool = False) -> str:
        if value is None:
            return "-"
        return f"{value * 1000:.2f} ms" if ms else f"{value:.3f}"

    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:.3g}x" if a is not None and b else "-"

    print()
    print(f"{'operation':<28}{'psyrun':>12}{'plain lib':>12}{'ratio':>8}{'0.8.0':>12}"
          f"{'vs 0.8':>8}")
    labels = {
        "save": f"save {SAVE_ROWS:.0e} rows",
        "load": f"load {SAVE_ROWS:.0e} rows",
        "merge100": f"merge 100 x {MERGE_ROWS}",
        "merge1000": f"merge 1000 x {MERGE_ROWS}",
        "row": f"one row of {ROW_FILE_ROWS:.0e}",
        "count": f"count of {ROW_FILE_ROWS:.0e}",
    }
    for key in sorted(results, key=lambda k: (k.split(".")[1], list(labels).index(k.split(".")[0]))):
        op, ext = key.split(".")
        ms = op in ("row", "count")
        ours, plain, before = results[key], raw.get(key), old.get(key)
        print(f"{labels[op] + ' .' + ext:<28}{cell(ours, ms):>12}{cell(plain, ms):>12}"
              f"{ratio(ours, plain):>8}{cell(before, ms):>12}{ratio(ours, before):>8}")
    print()
    print("save: psyrun writes a temporary file, syncs it to disk and renames it (atomic);")
    print("      the plain libraries write in place without syncing.")
    for ext in (".pkl", ".npz", ".h5"):
        if f"merge100.{ext[1:]}" in results:
            growth = results[f"merge1000.{ext[1:]}"] / results[f"merge100.{ext[1:]}"]
            print(f"merge .{ext[1:]}: 10x the rows took {growth:.1f}x the time "
                  f"(linear: about 10x)")
    if "row.h5" in results:
        verdict = "under" if results["row.h5"] < 0.010 else "OVER"
        print(f"h5 single-row read: {results['row.h5'] * 1000:.2f} ms ({verdict} the 10 ms target)")


if __name__ == "__main__":
    main()
