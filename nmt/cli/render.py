"""Rich rendering shared by the commands: tables of scores, sparklines, shaded matrices, highlighted spans."""
from __future__ import annotations

import math
from typing import Iterable, Sequence

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from nmt.cli.common import out

SPARK = "▁▂▃▄▅▆▇█"
ENTITY_STYLES = {"PER": "bold magenta", "ORG": "bold cyan", "LOC": "bold green", "MISC": "bold yellow"}


def sparkline(values: Sequence[float], low: float | None = None, high: float | None = None, log: bool = True) -> str:
    """One block character per value between low and high (default: the values' own range); on a log10 scale
    (low and high then being exponents) unless log=False. A value that is not a finite number is a space."""
    points = [(math.log10(max(v, 1e-300)) if log else v) if math.isfinite(v) else math.nan for v in values]
    finite = [p for p in points if math.isfinite(p)]
    low = min(finite, default=0.0) if low is None else low
    high = max(finite, default=1.0) if high is None else high
    cells = []
    for p in points:
        x = (p - low) / max(high - low, 1e-9) if math.isfinite(p) else math.nan
        cells.append(SPARK[min(len(SPARK) - 1, max(0, int(x * len(SPARK))))] if math.isfinite(x) else " ")
    return "".join(cells)


def table(title: str, columns: Iterable[str], rows: Iterable[Sequence], right: bool = True) -> Table:
    """A table whose first column is left-aligned and the others right-aligned (numbers)."""
    rows = [[str(x) for x in row] for row in rows]
    t = Table(title=title)
    for i, col in enumerate(columns):
        widest = max((len(row[i]) for row in rows if i < len(row)), default=0)
        t.add_column(col, justify="right" if right and i else "left", min_width=widest if i else None)
    for row in rows:
        t.add_row(*row)
    return t


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """A Rich table in a terminal; tab-separated values with a header line when piped (for scripts and files)."""
    if out.is_terminal:
        out.print(table(title, columns, rows))
        return
    lines = ["\t".join(columns)] + ["\t".join(str(x) for x in row) for row in rows]
    print("\n".join(lines))


def shaded_matrix(weights: Sequence[Sequence[float]], columns: list[str], rows: list[str], title: str) -> Table:
    """One row per output token, one shaded cell per source token (darker = more weight)."""
    t = Table(title=escape(title), show_lines=False, pad_edge=False, box=None)
    t.add_column("")
    for piece in columns:
        t.add_column(escape(piece), justify="center", no_wrap=True)
    for row, piece in zip(weights, rows):
        cells = []
        for w in row:
            level = int(round(w * 255))
            cells.append(f"[on rgb({255 - level},{255 - level // 2},255)]{w:4.2f}[/]" if w >= 0.005 else "")
        t.add_row(escape(piece), *cells)
    return t


def show_entities(records: list[dict]) -> None:
    """Each line with its entities coloured by type, then one table of all entities with their offsets."""
    t = Table("entity", "type", "start", "end", title="entities")
    for record in records:
        line = Text(record["text"])
        for ent in record["entities"]:
            line.stylize(ENTITY_STYLES.get(ent["type"], "bold blue"), ent["start"], ent["end"])
            t.add_row(escape(ent["text"]), ent["type"], str(ent["start"]), str(ent["end"]))
        out.print(line)
    if t.row_count:
        out.print(t)
