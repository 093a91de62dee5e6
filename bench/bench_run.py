"""Benchmark: ``psy run`` end to end, ``psy status`` and ``psy --help``.

Figures printed:

* ``psy run`` of a trivial task (``execute`` returns ``x + 1``) for N = 1e3,
  1e4, 1e5 items with default settings, pickle and (if installed) h5 store;
* per-item cost at N = 1e5 with ``min_items = 1000`` (target < 20 us): the
  whole run divided by N, and the marginal cost between N = 1e4 and 1e5;
* ``psy status`` on a finished task of 1e6 items (target < 2 s);
* ``psy --help`` (target < 0.3 s);
* psyrun 0.8.0 on the same task where it works (fetched now with
  ``pip download psyrun==0.8.0 six --no-deps`` into a temporary directory,
  run with a shim restoring the ``collections`` ABC aliases Python 3.10
  removed and closing the multiprocessing pool its workers leave open;
  never copied into this tree).  Skipped with a message if the
  download fails.  Target: 20x faster than 0.8.0 at N = 1e4.

Run with ``python bench/bench_run.py``; ``--quick`` skips N = 1e5 and 0.8.0.
Timings are wall-clock seconds of whole processes, best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASK = """\
from psyrun import Param
pspace = Param(x=range({n}))
{settings}
def execute(x):
    return {{"y": x + 1}}
"""


def psy_command() -> list[str]:
    script = Path(sys.executable).parent / "psy"
    return [str(script)] if script.exists() else [sys.executable, "-m", "psyrun"]


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None,
          timeout: float = 600) -> float:
    start = time.perf_counter()
    # A session of its own, so that a hung run is stopped with all its children.
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{stdout}\n{stderr}")
    return elapsed


def project(root: Path, n: int, settings: str = "") -> Path:
    if root.exists():
        shutil.rmtree(root)
    (root / "psy-tasks").mkdir(parents=True)
    (root / "psy-tasks" / "task_triv.py").write_text(TASK.format(n=n, settings=settings))
    return root


def best_run(tmp: Path, n: int, settings: str, repeat: int, argv: list[str] | None = None,
             env: dict[str, str] | None = None, timeout: float = 600) -> float:
    times = []
    for i in range(repeat):
        root = project(tmp / f"run-{n}-{i}", n, settings)
        times.append(timed((argv or psy_command()) + ["run"], root, env=env, timeout=timeout))
        shutil.rmtree(root, ignore_errors=True)
    return min(times)


def has_h5() -> bool:
    try:
        import psyrun_store_h5  # noqa: F401
        import tables  # noqa: F401
    except ImportError:
        return False
    return True


def bench_runs(tmp: Path, sizes: list[int], repeat: int) -> dict[tuple[str, int], float]:
    results = {}
    stores = ["pickle"] + (["h5"] if has_h5() else [])
    if "h5" not in stores:
        print("  (h5 store not installed: skipped)")
    for store in stores:
        for n in sizes:
            t = best_run(tmp, n, f"store = {store!r}", repeat)
            results[(store, n)] = t
            print(f"  psy run  N={n:>7,}  store={store:<6}  {t:7.2f} s   "
                  f"{1e6 * t / n:8.1f} us/item")
    return results


def bench_per_item(tmp: Path, repeat: int) -> None:
    settings = "min_items = 1000"
    small = best_run(tmp, 10_000, settings, repeat)
    big = best_run(tmp, 100_000, settings, repeat)
    print(f"  N=100,000 min_items=1000: {big:.2f} s total = {1e6 * big / 1e5:.1f} us/item; "
          f"marginal (1e4 -> 1e5): {1e6 * (big - small) / 9e4:.1f} us/item  (target < 20)")


def bench_status(tmp: Path, repeat: int) -> None:
    from psyrun.store.pickle import PickleStore

    n = 1_000_000
    root = project(tmp / "status", n)
    result = root / "psy-work" / "triv" / "result.pkl"
    result.parent.mkdir(parents=True)
    # A finished task: its result written after the task file, as psy run leaves it.
    PickleStore().save(result, {"x": list(range(n)), "y": list(range(1, n + 1))})
    later = time.time() + 1
    os.utime(result, (later, later))
    times = [timed(psy_command() + ["status"], root) for _ in range(repeat)]
    out = subprocess.run(psy_command() + ["status"], cwd=root, capture_output=True,
                         text=True).stdout.splitlines()[0]
    print(f"  psy status, finished task of 1e6 items: {min(times):.2f} s  (target < 2)  [{out}]")


def bench_help(tmp: Path, repeat: int) -> None:
    times = [timed(psy_command() + ["--help"], tmp) for _ in range(max(3, repeat))]
    print(f"  psy --help: {min(times):.3f} s  (target < 0.3)")


def fetch_old(tmp: Path) -> Path | None:
    """psyrun 0.8.0 and six unpacked into tmp/old, or None if unavailable."""
    import zipfile

    download = tmp / "download"
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "psyrun==0.8.0", "six",
                           "--no-deps", "-d", str(download), "-q"],
                          capture_output=True, text=True, timeout=300)
    wheels = sorted(download.glob("*.whl")) if download.exists() else []
    if proc.returncode != 0 or len(wheels) < 2:
        print(f"  psyrun 0.8.0 unavailable (pip download failed): skipped. "
              f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}")
        return None
    old = tmp / "old"
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            z.extractall(old)
    # psyrun 0.8 uses collections.Sized & co., removed from collections in 3.10.
    # Its workers also leave a multiprocessing Pool open, which now and then
    # deadlocks at interpreter exit on 3.11 (one of 100 jobs hangs for ever);
    # closing the pool once its iterator is exhausted avoids that.
    (old / "sitecustomize.py").write_text(
        "import collections, collections.abc\n"
        "for _n in collections.abc.__all__:\n"
        "    if not hasattr(collections, _n):\n"
        "        setattr(collections, _n, getattr(collections.abc, _n))\n"
        "import multiprocessing.pool as _mp_pool\n"
        "_orig_imap_unordered = _mp_pool.Pool.imap_unordered\n"
        "def _imap_unordered(self, *args, **kwargs):\n"
        "    yield from _orig_imap_unordered(self, *args, **kwargs)\n"
        "    self.close()\n"
        "    self.join()\n"
        "_mp_pool.Pool.imap_unordered = _imap_unordered\n")
    return old


def bench_old(tmp: Path, sizes: list[int], ours: dict[tuple[str, int], float]) -> None:
    old = fetch_old(tmp)
    if old is None:
        return
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(CI="1", PYTHONPATH=str(old))  # CI=1: 0.8 would try to re-activate a venv
    argv = [sys.executable, "-c",
            "import sys; from psyrun.main import psy_main; sys.argv[0] = 'psy'; psy_main()"]
    for n in sizes:
        try:
            t = best_run(tmp, n, "", 1, argv=argv, env=env, timeout=240)
        except subprocess.TimeoutExpired:
            print(f"  psyrun 0.8.0  N={n:>7,}: did not finish within 240 s: no figure")
            continue
        except RuntimeError as exc:
            print(f"  psyrun 0.8.0  N={n:>7,}: failed ({str(exc).splitlines()[0]})")
            continue
        ratio = t / ours[("pickle", n)] if ("pickle", n) in ours else float("nan")
        print(f"  psyrun 0.8.0  N={n:>7,}  store=pickle  {t:7.2f} s   "
              f"-> ours is {ratio:.1f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="skip N=1e5 and psyrun 0.8.0")
    parser.add_argument("--skip-old", action="store_true", help="skip psyrun 0.8.0")
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    with tempfile.TemporaryDirectory(prefix="psyrun-bench-") as name:
        tmp = Path(name)
        print(f"psyrun bench_run ({os.cpu_count()} cores, Python {sys.version.split()[0]})")
        bench_help(tmp, args.repeat)
        ours = bench_runs(tmp, sizes, args.repeat)
        if not args.quick:
            bench_per_item(tmp, args.repeat)
        bench_status(tmp, args.repeat)
        if not (args.quick or args.skip_old):
            bench_old(tmp, [1_000, 10_000], ours)


if __name__ == "__main__":
    main()
