"""Plain-text tables for the bench reports."""

from __future__ import annotations

from collections.abc import Sequence


def aligned(rows: Sequence[Sequence[str]], *, free_last: bool = False) -> str:
    """``rows`` (the first is the header) as aligned columns, a rule under the header: the first
    column left-aligned, the others right-aligned; with ``free_last`` the last column is free
    text, not padded."""
    padded = len(rows[0]) - 1 if free_last else len(rows[0])
    widths = [max(len(row[column]) for row in rows) for column in range(padded)]
    lines = [
        "  ".join(
            [
                *(
                    cell.ljust(width) if column == 0 else cell.rjust(width)
                    for column, (cell, width) in enumerate(zip(row[:padded], widths, strict=True))
                ),
                *row[padded:],
            ]
        )
        for row in rows
    ]
    rule = [*widths, *(len(cell) for cell in rows[0][padded:])]
    lines.insert(1, "  ".join("-" * width for width in rule))
    return "\n".join(lines)
