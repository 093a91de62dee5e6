"""How long ``psy --help`` takes to start (target: under 0.3 s).

Runs the installed ``psy`` N times (default 15; ``python bench/bench_cli_startup.py 30``)
and prints the median wall time next to a bare ``python -c pass`` for
reference, then ``psy plugins`` (which builds the plugin registry), and which
heavy modules each of them imports.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 0.3
HEAVY = ("numpy", "tables", "joblib", "pandas")


def psy_executable() -> str:
    beside = Path(sys.executable).parent / "psy"
    found = str(beside) if beside.exists() else shutil.which("psy")
    if not found:
        sys.exit("psy is not installed in this environment")
    return found


def median_seconds(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def heavy_imports(args: list[str]) -> list[str]:
    code = (
        "import sys\n"
        "from psyrun.cli import cli\n"
        f"cli.main({args!r}, prog_name='psy', standalone_mode=False)\n"
        f"print('HEAVY:' + ','.join(sorted(set({HEAVY!r}) & set(sys.modules))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    marked = [line for line in result.stdout.splitlines() if line.startswith("HEAVY:")]
    return [m for m in marked[-1].removeprefix("HEAVY:").split(",") if m]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    psy = psy_executable()
    env_note = f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, median of {runs} runs"
    baseline = median_seconds([sys.executable, "-c", "pass"], runs)
    help_time = median_seconds([psy, "--help"], runs)
    plugins_time = median_seconds([psy, "plugins"], runs)
    print(f"CLI start-up ({env_note})")
    print(f"  python -c pass      {baseline:6.3f} s")
    verdict = "meets" if help_time < TARGET_SECONDS else "MISSES"
    print(f"  psy --help          {help_time:6.3f} s  ({verdict} the {TARGET_SECONDS} s target; "
          f"{help_time - baseline:.3f} s above bare python)")
    print(f"  psy plugins         {plugins_time:6.3f} s")
    print(f"  heavy modules imported by psy --help:  {', '.join(heavy_imports(['--help'])) or 'none'}")
    print(f"  heavy modules imported by psy plugins: {', '.join(heavy_imports(['plugins'])) or 'none'}")


if __name__ == "__main__":
    main()
