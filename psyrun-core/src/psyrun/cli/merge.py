"""``psy merge DIRECTORY MERGED``: join all output files into one file."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.argument("merged", type=click.Path(path_type=Path))
@click.option("--skip-unreadable", is_flag=True,
              help="Leave out files that cannot be read (listed on stderr) instead of stopping.")
@click.option("-f", "--force", is_flag=True, help="Replace MERGED if it exists.")
def merge(directory: Path, merged: Path, skip_unreadable: bool, force: bool) -> None:
    """Merge all output files in DIRECTORY into the single file MERGED.

    The extension of MERGED chooses its format (.pkl, .npz, .h5 with
    psyrun[h5]), so merging also converts.  Files are taken in natural order
    of their names (out-2 before out-10); columns missing from some files are
    filled with nan.  An unreadable file stops the merge and nothing is
    written, unless --skip-unreadable is given.  An existing MERGED is kept
    unless --force is given.
    """
    from psyrun.store.merge import merge_files

    result = merge_files(directory, merged, skip_unreadable=skip_unreadable, overwrite=force)
    for path, reason in result.skipped:
        click.echo(f"Skipped unreadable file {path}: {reason}", err=True)
    plural = "s" if len(result.files) != 1 else ""
    click.echo(f"Merged {result.rows} rows from {len(result.files)} file{plural} into {merged}.")
