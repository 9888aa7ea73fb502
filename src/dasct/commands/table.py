"""The one table layout of the CLI's read-only views (status, where, inventory, trace)."""

from __future__ import annotations

from collections.abc import Sequence


def print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Print rows under header, two spaces in; `none` when there are no rows."""
    # Columns as wide as their widest cell: ids and paths have no useful maximum length.
    if not rows:
        print("  none")
        return
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
