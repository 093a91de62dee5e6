"""Atomic replacement of files: write a temporary file, then rename it.

Every store writes through :func:`atomic_path`, so a writer that is killed
half way leaves the previous file untouched: the new content is written to a
temporary file in the same directory (a rename is only atomic within one file
system), flushed to disk with ``fsync`` and then moved over the target with
:func:`os.replace`.  The directory is synced too, so the rename itself survives
a power cut on file systems that need it.

Temporary files are named ``.<name>.<random>.tmp``: hidden, and with an
extension no store claims, so ``psy merge`` never mistakes one for a result.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def fsync_path(path: Path) -> None:
    """Flush a file (or a directory) that is already closed to disk."""
    flags = os.O_RDONLY
    if path.is_dir():
        flags |= getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # some platforms cannot open directories; nothing to sync then
        return
    try:
        os.fsync(fd)
    except OSError:  # directories on some file systems refuse fsync
        pass
    finally:
        os.close(fd)


def _current_umask() -> int:
    # Linux reports the umask without changing it; elsewhere set and restore it.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temporary_path(target: Path) -> Path:
    """A new, empty, hidden file next to ``target`` that the caller may fill.

    It gets the permissions a plainly created file would get (mkstemp makes
    it private), or those of ``target`` if that exists, so that replacing a
    result file does not change who may read it.
    """
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        try:
            mode = target.stat().st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~_current_umask()
        os.fchmod(fd, mode) if hasattr(os, "fchmod") else os.chmod(name, mode)
    finally:
        os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``target`` atomically.

    The caller writes the complete new file to the yielded path (with any
    library: open(), zipfile, PyTables).  If the block raises, the temporary
    file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    temp = temporary_path(target)
    try:
        yield temp
        fsync_path(temp)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    fsync_path(target.parent)


@contextlib.contextmanager
def atomic_create(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Like :func:`atomic_path`, but never replaces an existing ``target``.

    Raises :class:`FileExistsError` if ``target`` exists when the new file is
    complete (another process created it first); the caller then appends to
    that file instead.  Used by appends that create their file, so that two
    processes starting at once do not overwrite each other's first rows.
    """
    target = Path(target)
    temp = temporary_path(target)
    try:
        yield temp
        fsync_path(temp)
        try:
            os.link(temp, target)  # atomic, and fails if target exists
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links
            if target.exists():
                raise FileExistsError(target) from None
            os.replace(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    fsync_path(target.parent)


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``target`` by ``data`` atomically (creating its folder if needed).

    For the small bookkeeping files of backends and the runner (plans, job
    records, failure lists), which need the same crash safety as results.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as temp:
        temp.write_bytes(data)
