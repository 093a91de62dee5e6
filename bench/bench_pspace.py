"""Benchmark of parameter spaces and mapping: psyrun against plain baselines.

Run with ``python bench/bench_pspace.py``.  Prints, for each operation, the
best of a few runs of psyrun, of a plain Python/numpy baseline doing the same
work, and (when it can be fetched from PyPI) of psyrun 0.8.0, with ratios.
Also prints the peak memory of ``iterate()`` over 10**7 rows.

Nothing here is asserted: the figures are for people to read.
"""

from __future__ import annotations

import collections
import collections.abc
import gc
import math
import subprocess
import sys
import tempfile
import time
import types
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from psyrun.mapper import map_pspace
from psyrun.pspace import Param, missing

REPEATS = 3


def best_of(fn: Callable[[], Any], repeats: int = REPEATS) -> float:
    """The shortest of ``repeats`` runs, with the garbage collector off (as timeit does).

    With it on, the objects left alive by earlier measurements (e.g. psyrun
    0.8's) make collections, and so every later figure, slower.
    """
    times = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return min(times)


def paired(ours: Callable[[], Any], baseline: Callable[[], Any],
           repeats: int = 2 * REPEATS + 1) -> tuple[float, float]:
    """Best times of ``ours`` and ``baseline``, run alternately.

    Alternating spreads the load of a shared machine over both sides, so
    the ratio is fairer than that of two separate series.
    """
    best = [math.inf, math.inf]
    for _ in range(repeats):
        for i, fn in enumerate((ours, baseline)):
            best[i] = min(best[i], best_of(fn, 1))
    return best[0], best[1]


def report(name: str, ours: float, baseline: float, old: float | None, goal: str) -> None:
    line = (
        f"{name:<44} psyrun {ours * 1e3:8.1f} ms | baseline {baseline * 1e3:8.1f} ms | "
        f"ratio {ours / baseline:5.2f} (goal {goal})"
    )
    if old is not None:
        line += f" | psyrun 0.8.0 {old * 1e3:9.1f} ms ({old / ours:6.1f}x ours)"
    print(line, flush=True)


# ------------------------------------------------------------------ psyrun 0.8.0
def load_old_psyrun() -> dict[str, Any] | None:
    """psyrun 0.8.0's pspace and mapper modules, fetched from PyPI now.

    The old package is imported under its own name ``psyrun`` while our
    modules are moved aside in ``sys.modules``, then ours are put back; the
    old modules stay reachable through the returned dict.  Its code is never
    copied into this repository.
    """
    tmp = Path(tempfile.mkdtemp(prefix="psyrun-0.8.0-"))
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "psyrun==0.8.0", "--no-deps",
             "--quiet", "-d", str(tmp)],
            check=True, capture_output=True, timeout=120,
        )
        wheel = next(tmp.glob("psyrun-0.8.0*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(tmp / "unpacked")
    except (subprocess.SubprocessError, OSError, StopIteration) as error:
        print(f"psyrun 0.8.0 column skipped: could not fetch it from PyPI ({error!r})")
        return None

    ours = {name: mod for name, mod in sys.modules.items() if name.split(".")[0] == "psyrun"}
    for name in ours:
        del sys.modules[name]
    # Python 3.10 moved these ABCs out of `collections`; psyrun 0.8 predates that.
    added = [n for n in ("Sized", "Iterable", "Mapping", "Sequence")
             if not hasattr(collections, n)]
    for n in added:
        setattr(collections, n, getattr(collections.abc, n))
    fake_six = "six" not in sys.modules
    if fake_six:
        try:
            import six  # noqa: F401
            fake_six = False
        except ImportError:
            six_shim = types.ModuleType("six")
            six_shim.string_types = (str,)  # type: ignore[attr-defined]
            sys.modules["six"] = six_shim
    # A bare package object, so that the old __init__ (which pulls in its
    # schedulers and stores) is not run.
    package = types.ModuleType("psyrun")
    package.__path__ = [str(tmp / "unpacked" / "psyrun")]  # type: ignore[attr-defined]
    sys.modules["psyrun"] = package
    try:
        import importlib

        old = {
            "pspace": importlib.import_module("psyrun.pspace"),
            "mapper": importlib.import_module("psyrun.mapper"),
        }
    except Exception as error:  # an old package can fail in many ways on a new Python
        print(f"psyrun 0.8.0 column skipped: it does not import here ({error!r})")
        old = None
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "psyrun"]:
            del sys.modules[name]
        sys.modules.update(ours)
        for n in added:
            delattr(collections, n)
        if fake_six:
            sys.modules.pop("six", None)
    return old


# ------------------------------------------------------------------ benchmarks
def bench_build(old: dict[str, Any] | None) -> None:
    def ours() -> Any:
        return (Param(a=range(100)) * Param(b=range(100)) * Param(c=range(100))).build()

    values = np.arange(100)

    def baseline() -> Any:
        # What build() must produce: Python lists of the repeated/tiled values.
        return {
            "a": np.repeat(values, 10_000).tolist(),
            "b": np.tile(np.repeat(values, 100), 100).tolist(),
            "c": np.tile(values, 10_000).tolist(),
        }

    assert ours() == baseline()
    old_time = None
    if old is not None:
        P = old["pspace"].Param
        old_time = best_of(lambda: (P(a=range(100)) * P(b=range(100)) * P(c=range(100))).build(), 1)
    report("build 100*100*100 (1e6 rows) vs repeat/tile+tolist", *paired(ours, baseline),
           old_time, "<= 2")


def bench_iterate(old: dict[str, Any] | None) -> None:
    space = Param(a=range(100)) * Param(b=range(100)) * Param(c=range(100))
    r = list(range(100))

    def plain() -> Iterator:
        for a in r:
            for b in r:
                for c in r:
                    yield {"a": a, "b": b, "c": c}

    def consume(rows: Any) -> None:
        collections.deque(rows, maxlen=0)

    old_time = None
    if old is not None:
        P = old["pspace"].Param
        old_space = P(a=range(100)) * P(b=range(100)) * P(c=range(100))
        old_time = best_of(lambda: consume(old_space.iterate()), 1)
    report("iterate 1e6 rows vs nested generator of dicts",
           *paired(lambda: consume(space.iterate()), lambda: consume(plain())), old_time, "<= 1.5")


def bench_missing(old: dict[str, Any] | None) -> None:
    rng = np.random.default_rng(0)

    def spaces(n: int) -> tuple[Any, Any, dict[str, list[int]], dict[str, list[int]]]:
        a_cols = {"a": list(range(n)), "b": rng.integers(0, 10, n).tolist()}
        keep = rng.permutation(n)[: n // 2]
        b_cols = {k: [v[i] for i in keep] for k, v in a_cols.items()}
        b_cols["result"] = [0.5] * len(keep)
        return Param(**a_cols), Param(**b_cols), a_cols, b_cols

    def hash_join(a_cols: dict[str, list[int]], b_cols: dict[str, list[int]]) -> Any:
        seen = set(zip(b_cols["a"], b_cols["b"]))
        rows = [r for r in zip(a_cols["a"], a_cols["b"]) if r not in seen]
        return {"a": [r[0] for r in rows], "b": [r[1] for r in rows]}

    per_row = []
    for n in (25_000, 50_000, 100_000):
        a, b, _, _ = spaces(n)
        per_row.append((n, best_of(lambda a=a, b=b: missing(a, b).build()) / n))
    a, b, a_cols, b_cols = spaces(100_000)
    assert missing(a, b).build() == hash_join(a_cols, b_cols)
    report("missing 1e5 rows against 5e4 vs set hash join",
           *paired(lambda: missing(a, b).build(), lambda: hash_join(a_cols, b_cols)), None, "<= 3")
    print("missing, time per row of the first space: "
          + ", ".join(f"n={n}: {t * 1e9:.0f} ns" for n, t in per_row)
          + "  (flat = linear)")
    if old is not None:
        # psyrun 0.8's missing compares every row against lists of values
        # (quadratic), so it gets a 100 times smaller problem.
        small_a, small_b, _, _ = spaces(1_000)
        OldParam = old["pspace"].Param
        old_a, old_b = OldParam(**small_a.build()), OldParam(**small_b.build())
        old_time = best_of(lambda: old["pspace"].missing(old_a, old_b).build(), 1)
        ours = best_of(lambda: missing(small_a, small_b).build())
        print(f"missing 1e3 rows against 5e2: psyrun {ours * 1e3:.1f} ms | psyrun 0.8.0 "
              f"{old_time * 1e3:.1f} ms ({old_time / ours:.1f}x ours)")


def bench_map(old: dict[str, Any] | None) -> None:
    space = Param(x=range(100_000))

    def trivial(x: int) -> dict[str, int]:
        return {"y": x}

    def plain() -> Any:
        columns: dict[str, list[Any]] = {"x": [], "y": []}
        for x in range(100_000):
            out = trivial(x=x)
            columns["x"].append(x)
            for key, value in out.items():
                columns[key].append(value)
        return columns

    assert map_pspace(trivial, space) == plain()
    old_time = None
    if old is not None:
        old_space = old["pspace"].Param(x=range(100_000))
        old_time = best_of(lambda: old["mapper"].map_pspace(trivial, old_space), 1)
    report("map_pspace 1e5 rows vs plain loop into lists",
           *paired(lambda: map_pspace(trivial, space), plain), old_time, "<= 1.5")

    def trivial_kw(**params: int) -> dict[str, int]:
        return {"y": params["x"]}

    def plain_kw() -> Any:
        columns: dict[str, list[Any]] = {"x": [], "y": []}
        for x in range(100_000):
            out = trivial_kw(x=x)
            columns["x"].append(x)
            for key, value in out.items():
                columns[key].append(value)
        return columns

    # A function taking **kwargs gets one dict per row (no positional calls).
    report("map_pspace 1e5 rows, fn(**kwargs), vs plain loop",
           *paired(lambda: map_pspace(trivial_kw, space), plain_kw), None, "<= 1.5")

    space2 = Param(a=range(1000)) * Param(b=range(100))
    columns2 = space2.build()

    def plain_kw2() -> Any:
        columns: dict[str, list[Any]] = {"a": [], "b": [], "y": []}
        for a, b in zip(columns2["a"], columns2["b"]):
            out = trivial_kw2(a=a, b=b)
            columns["a"].append(a)
            columns["b"].append(b)
            for key, value in out.items():
                columns[key].append(value)
        return columns

    def trivial_kw2(**params: int) -> dict[str, int]:
        return {"y": params["a"]}

    def ours_kw2() -> Any:
        return map_pspace(trivial_kw2, space2)

    # The baseline starts from built columns; ours builds them.
    assert ours_kw2() == plain_kw2()
    report("map_pspace 1e5 rows, 2 params, fn(**kwargs)",
           *paired(ours_kw2, plain_kw2), None, "<= 1.5")


MEMORY_CHILD = """
from pathlib import Path
from psyrun.pspace import Param

def peak_kib():
    # VmHWM: this process's peak resident set size (ru_maxrss would include
    # the parent's, inherited through fork).
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

space = Param(a=range(100)) * Param(b=range(100)) * Param(c=range(100)) * Param(d=range(10))
before = peak_kib()
n = sum(1 for _ in space.iterate())
after = peak_kib()
print(n, before, after)
"""


def bench_memory() -> None:
    """Peak memory of iterate() over 10**7 rows, in a fresh process."""
    if not Path("/proc/self/status").exists():
        print("iterate memory skipped: needs /proc/self/status (Linux)")
        return
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD], capture_output=True, text=True,
                         check=True, timeout=300).stdout.split()
    n, before, after = (int(v) for v in out)
    print(f"iterate over {n:.0e} rows: peak RSS {before / 1024:.1f} MiB before, "
          f"{after / 1024:.1f} MiB after (growth {(after - before) / 1024:.1f} MiB; "
          f"build() would need about {n * 4 * 8 / 2**20:.0f} MiB for the lists alone)")


def main() -> None:
    print(f"Python {sys.version.split()[0]}, numpy {np.__version__}; best of {REPEATS} runs "
          "(psyrun 0.8.0: one run)")
    old = load_old_psyrun()
    bench_build(old)
    bench_iterate(old)
    bench_missing(old)
    bench_map(old)
    bench_memory()


if __name__ == "__main__":
    main()
