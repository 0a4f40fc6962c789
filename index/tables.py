"""Tables that plain text gives one cell per line, rebuilt as one line per row.

A plan's indicator table copied out of Word or a PDF arrives as::

    一级 / 二级 / 十三五期间 / 2025目标 / 更公平的教育 / 普惠性幼儿园在园儿童覆盖面（%） / 93.94 / 95 / …

one cell per line. Cell by cell, no line says anything (the cell 95 is not an answer to 普惠园覆盖面
目标多少); :func:`rebuild_cell_tables` writes each row as one line, every cell beside its column's
header, the way :mod:`index.loader` writes a .docx table's rows::

    一级: 更公平的教育 | 二级: 普惠性幼儿园在园儿童覆盖面（%） | 十三五期间: 93.94 | 2025目标: 95

A row is its labels (the cells since the previous row's values) and a run of value cells. The
first row sets the number of value columns; there are two label columns when a later row has a
category line before its indicator, else one; the header is what precedes the first row's labels.
The table ends at the first row that does not fit; lines that make no table are left as they were.
"""

from __future__ import annotations

import re

from index.lines import OPENS_PART
from index.sentences import SENTENCE_ENDS

MIN_CELLS = 8  # fewer short lines than this are a list or a signature, not a table
MIN_ROWS = 3
MAX_CELL = 40  # characters; a longer line is prose
_SENTENCE_END = (*SENTENCE_ENDS, "：", ":")  # a line so ended is prose, not a cell
_NO_VALUE = re.compile(r"[—－\-/／]+")


def rebuild_cell_tables(text: str) -> str:
    """``text`` with each run of one-cell-per-line table rows written as one line per row."""
    lines = text.split("\n")
    out: list[str] = []
    n = 0
    while n < len(lines):
        end = n
        while end < len(lines) and _is_cell(lines[end]):
            end += 1
        end = max(end, n + 1)  # a line that is no cell passes through alone
        rows = _rows([line.strip() for line in lines[n:end]]) if end - n >= MIN_CELLS else None
        out += rows or lines[n:end]  # a run that opens no table stays as it was, whole
        n = end
    return "\n".join(out)


def _is_cell(line: str) -> bool:
    cell = line.strip()
    return (0 < len(cell) <= MAX_CELL and "|" not in cell and not cell.endswith(_SENTENCE_END)
            and not OPENS_PART.match(cell))


def _is_value(cell: str) -> bool:
    """A figure (73.35, 不少于60, 95%) or an empty mark (—): at most a few characters of words."""
    if _NO_VALUE.fullmatch(cell):
        return True
    words = re.sub(r"[\d.,，%％\s+\-—－~～/]", "", cell)
    # a year with words is a column's name (2025目标, 2020年), not a figure
    return bool(re.search(r"\d", cell)) and len(words) <= 4 and not (words and re.search(r"(?:19|20)\d\d", cell))


def _rows(cells: list[str]) -> list[str] | None:
    """The lines of one run of cells, its table's rows first, or None when it opens no table.

    The table is the rows that each open with one or two labels and carry as many values as the
    first row; it ends at the first row that does not (a value written in words, a row opening
    with a figure such as 序号 1, 2, 3 …), and the cells from there on stay as they were.
    """
    groups = _groups(cells)
    if not groups or not groups[0][0]:
        return None
    width = len(groups[0][1])
    kept = 1
    while kept < len(groups) and len(groups[kept][1]) == width and 1 <= len(groups[kept][0]) <= 2:
        kept += 1
    if kept < MIN_ROWS or _numbers_rows(groups[:kept]):
        return None
    used = sum(len(lab) + len(val) for lab, val in groups[:kept])
    groups = groups[:kept]
    # label columns: 2 when some row has a category line before its label (更公平的教育), else 1
    depth = 2 if any(len(lab) == 2 for lab, _ in groups[1:]) else 1
    first = groups[0][0]
    header: list[str] = []
    if len(first) > depth:
        header, groups[0] = first[:-depth], (first[-depth:], groups[0][1])
    names = header[-(depth + width):] if len(header) >= depth + width else []
    lead = header[:len(header) - len(names)]  # a caption above the header stays a line of its own
    return [*lead, *(_row(lab, val, names, depth) for lab, val in groups), *cells[used:]]


def _numbers_rows(groups: list[tuple[list[str], list[str]]]) -> bool:
    """True when the rows' last values count 1, 2, 3 …: a 序号 column that opens each row, read
    here as the end of the row before; such a table cannot be told apart into rows this way."""
    last = [val[-1] for _, val in groups]
    return all(a.isdigit() and b.isdigit() and int(b) == int(a) + 1 for a, b in zip(last, last[1:], strict=False))


def _groups(cells: list[str]) -> list[tuple[list[str], list[str]]]:
    """The cells as (labels, values) runs: each row's labels, then its values."""
    groups: list[tuple[list[str], list[str]]] = []
    labels: list[str] = []
    values: list[str] = []
    for cell in cells:
        if _is_value(cell):
            values.append(cell)
            continue
        if values:
            groups.append((labels, values))
            labels, values = [], []
        labels.append(cell)
    return groups + [(labels, values)] if values else groups


def _row(labels: list[str], values: list[str], names: list[str], depth: int) -> str:
    if not names:
        return " | ".join([*labels, *values])
    label_names, value_names = names[:depth], names[depth:]
    own = labels[-depth:]  # a row with fewer labels than the depth fills the innermost columns
    pairs = [*labels[:-depth], *(f"{h}: {c}" for h, c in zip(label_names[depth - len(own):], own, strict=True))]
    pairs += [f"{h}: {c}" for h, c in zip(value_names, values, strict=False)]
    pairs += values[len(value_names):]
    return " | ".join(pairs)
