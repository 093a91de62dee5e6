"""``psy plugins``: list the installed plugins and whether they work."""

from __future__ import annotations

import click


@click.command()
def plugins() -> None:
    """List stores, schedulers and backends with their distribution and status."""
    from psyrun.plugins.manager import get_plugin_manager

    infos = get_plugin_manager().plugin_infos()
    header = ("NAME", "KIND", "DISTRIBUTION", "VERSION", "STATUS")
    rows = [
        (i.name, i.kind, i.distribution, i.version, i.status + (f": {i.error}" if i.error else ""))
        for i in infos
    ]
    widths = [max(len(r[c]) for r in rows + [header]) for c in range(4)]
    for row in [header] + rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])
