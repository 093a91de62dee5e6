"""The wheels, installed as a user installs them, find their plugins.

Builds the four distributions and the third-party example plugin in
``tests/data/psyrun-plugin-example`` into wheels, makes one fresh virtual
environment, installs ``psyrun[h5]`` and the example plugin there from those
wheels (our own packages with ``--no-index``, so none can come from a package
index; only third-party dependencies such as numpy and PyTables do), and
checks through ``psy plugins`` and the registry in that environment that the
plugins are discovered through their entry points.

Run by ``nox -s packaging``, not by ``nox -s tests``: it takes a while and
needs the package index (or a warm cache) for the third-party dependencies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = {  # folder -> distribution name
    "psyrun-core": "psyrun",
    "psyrun-store-h5": "psyrun-store-h5",
    "psyrun-sched-slurm": "psyrun-sched-slurm",
    "psyrun-sched-sqsub": "psyrun-sched-sqsub",
}
EXAMPLE = ROOT / "tests" / "data" / "psyrun-plugin-example"
UV = shutil.which("uv")


def run(argv: list[str | Path], **kwargs) -> subprocess.CompletedProcess:
    # The environment under test must not see the development one.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PSYRUN_DISABLED_PLUGINS")}
    env.update(kwargs.pop("env", {}))
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env,
                            timeout=900, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, argv))} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def version_of(folder: Path) -> str:
    return tomllib.loads((folder / "pyproject.toml").read_text("utf-8"))["project"]["version"]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    wheeldir = tmp_path_factory.mktemp("wheels")
    sources = [ROOT / folder for folder in DISTRIBUTIONS] + [EXAMPLE]
    if UV:
        for source in sources:
            run([UV, "build", "--quiet", "--wheel", "--out-dir", wheeldir, source])
    else:
        run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--wheel-dir", wheeldir, *sources])
    return wheeldir


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheels) -> Path:
    """A fresh environment with psyrun[h5] and the example plugin from the wheels."""
    path = tmp_path_factory.mktemp("venv") / "env"
    ours = ["psyrun", "psyrun-store-h5", "psyrun-plugin-example"]
    if UV:
        run([UV, "venv", "--quiet", "--python", sys.executable, path])
        install = [UV, "pip", "install", "--quiet", "--python", path / "bin" / "python"]
    else:
        run([sys.executable, "-m", "venv", path])
        install = [path / "bin" / "python", "-m", "pip", "install", "--quiet"]
    # Our distributions from the wheels and nowhere else ...
    run([*install, "--no-index", "--find-links", wheels, "--no-deps", *ours])
    # ... then what they need from the index; the requirement "psyrun[h5]" is
    # already satisfied by the wheels just installed.
    run([*install, "--find-links", wheels, "psyrun[h5]", "psyrun-plugin-example"])
    return path


def python_in(venv: Path, code: str, cwd: Path) -> str:
    return run([venv / "bin" / "python", "-c", code], cwd=cwd).stdout


def plugin_rows(venv: Path, cwd: Path, env: dict[str, str] | None = None) -> dict[str, list[str]]:
    output = run([venv / "bin" / "psy", "plugins"], cwd=cwd, env=env or {}).stdout
    lines = output.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "DISTRIBUTION", "VERSION", "STATUS"], output
    return {line.split()[0]: line.split(None, 4) for line in lines[1:] if line.strip()}


def test_the_four_distributions_share_one_version():
    versions = {folder: version_of(ROOT / folder) for folder in DISTRIBUTIONS}
    assert len(set(versions.values())) == 1, versions
    (version,) = set(versions.values())
    core = tomllib.loads((ROOT / "psyrun-core" / "pyproject.toml").read_text("utf-8"))
    extras = core["project"]["optional-dependencies"]
    # The extras pin the plugins to exactly the core's version.
    assert extras["h5"] == [f"psyrun-store-h5=={version}"]
    assert extras["slurm"] == [f"psyrun-sched-slurm=={version}"]
    assert extras["sqsub"] == [f"psyrun-sched-sqsub=={version}"]
    assert sorted(extras["all"]) == sorted(extras["h5"] + extras["slurm"] + extras["sqsub"])
    for folder in ("psyrun-store-h5", "psyrun-sched-slurm", "psyrun-sched-sqsub"):
        plugin = tomllib.loads((ROOT / folder / "pyproject.toml").read_text("utf-8"))
        assert f"psyrun=={version}" in plugin["project"]["dependencies"], folder


def test_wheels_carry_the_version_the_entry_points_and_no_tests(wheels):
    version = version_of(ROOT / "psyrun-core")
    built = {p.name.split("-")[0]: p for p in wheels.glob("*.whl")}
    assert set(built) == {"psyrun", "psyrun_store_h5", "psyrun_sched_slurm",
                          "psyrun_sched_sqsub", "psyrun_plugin_example"}
    for name, wheel in built.items():
        if name != "psyrun_plugin_example":
            assert wheel.name.startswith(f"{name}-{version}-py3-none-any"), wheel.name
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            assert not [n for n in names if n.startswith("tests/")], wheel.name
            entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
            text = archive.read(entry_points).decode()
        if name == "psyrun":
            assert "psy = psyrun.cli:main" in text
        else:
            assert "[psyrun]" in text, f"{wheel.name} declares no psyrun entry point"


def test_our_packages_come_from_the_wheels(venv, tmp_path):
    report = json.loads(python_in(venv, (
        "import json, psyrun, psyrun_store_h5, psyrun_plugin_example\n"
        "from importlib import metadata\n"
        "print(json.dumps({m.__name__: m.__file__ for m in "
        "(psyrun, psyrun_store_h5, psyrun_plugin_example)} | "
        "{'versions': [metadata.version(d) for d in ('psyrun', 'psyrun-store-h5')]}))\n"
    ), cwd=tmp_path))
    version = version_of(ROOT / "psyrun-core")
    assert report.pop("versions") == [version, version]
    for module, location in report.items():
        assert Path(location).is_relative_to(venv), f"{module} imported from {location}"


def test_h5_is_discovered_through_its_entry_point(venv, tmp_path):
    rows = plugin_rows(venv, tmp_path)
    version = version_of(ROOT / "psyrun-core")
    assert rows["h5"] == ["h5", "store", "psyrun-store-h5", version, "active"], rows["h5"]
    assert rows["pickle"] == ["pickle", "store", "psyrun", version, "active"]
    # Only the extra that was asked for is installed.
    assert "slurm" not in rows and "sqsub" not in rows


def test_a_third_party_plugin_is_discovered_and_works(venv, tmp_path):
    rows = plugin_rows(venv, tmp_path)
    assert rows["jsonl"] == ["jsonl", "store", "psyrun-plugin-example", "0.1.0", "active"]
    # Chosen by its extension through the registry, it writes and reads a file.
    output = python_in(venv, (
        "from psyrun.plugins.manager import get_plugin_manager\n"
        "store = get_plugin_manager().store_for_path('out.jsonl').store()\n"
        "store.save('out.jsonl', {'x': [1, 2], 'y': ['a', 'b']})\n"
        "store.append('out.jsonl', {'x': [3]})\n"
        "print(store.count('out.jsonl'), store.load('out.jsonl', row=2))\n"
    ), cwd=tmp_path)
    assert output.strip() == "3 {'x': [3], 'y': [nan]}"


def test_disabling_the_third_party_plugin_in_the_installed_environment(venv, tmp_path):
    rows = plugin_rows(venv, tmp_path, env={"PSYRUN_DISABLED_PLUGINS": "jsonl"})
    assert rows["jsonl"][2:4] == ["psyrun-plugin-example", "0.1.0"]
    assert rows["jsonl"][4].startswith("blocked")
    assert rows["h5"][4] == "active"
