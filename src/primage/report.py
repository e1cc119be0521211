"""Plain-text tables for the terminal: aligned columns, no dependency."""

from __future__ import annotations

from collections.abc import Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(str(cell)))
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*headers).rstrip(), "  ".join("-" * w for w in widths)]
    out.extend(line.format(*[str(c) for c in row]).rstrip() for row in rows)
    return "\n".join(out)
