"""Labelled text for classification: `LABEL TEXT` lines, TSV and JSONL files, the names-by-language folder, and
the seeded stratified splits of the named corpora (sst2, trec, names). Labelled data is a list of (label, text)
pairs; labels are kept exactly as written.
"""
from __future__ import annotations

import random
from pathlib import Path

from nmt.data import DataError, read_lines

def read_labelled(path: str | Path, text_field: str = "text", label_field: str = "label") -> list[tuple[str, str]]:
    """(label, text) pairs of a file: JSONL (.jsonl), TSV (.tsv) or `LABEL TEXT` lines (anything else).

    Blank lines are skipped; a line with a label and no text names the file and line."""
    path = Path(path)
    if path.suffix == ".jsonl":
        return _jsonl(path, text_field, label_field)
    rows = [(n, line) for n, line in enumerate(read_lines(path), 1) if line.strip()]
    if path.suffix == ".tsv":
        return _tsv(path, rows, text_field, label_field)
    pairs = []
    for n, line in rows:
        parts = line.split(None, 1)
        if len(parts) < 2:
            raise DataError(f"{path}: line {n} has a label and no text (expected LABEL TEXT)")
        pairs.append((parts[0], parts[1].strip()))
    return _nonempty(pairs, path)


def _tsv(path: Path, rows: list[tuple[int, str]], text_field: str, label_field: str) -> list[tuple[str, str]]:
    """LABEL<TAB>TEXT rows, or the columns a header row names `label_field` and `text_field`."""
    header = rows[0][1].split("\t") if rows else []
    named = text_field in header and label_field in header
    columns = (header.index(label_field), header.index(text_field)) if named else (0, 1)
    pairs = []
    for n, line in rows[1:] if named else rows:
        cells = line.split("\t")
        if len(cells) <= max(columns) or not cells[columns[1]].strip():
            raise DataError(f"{path}: line {n} has no text in column {columns[1] + 1}")
        pairs.append((cells[columns[0]].strip(), cells[columns[1]].strip()))
    return _nonempty(pairs, path)


def _jsonl(path: Path, text_field: str, label_field: str) -> list[tuple[str, str]]:
    """(label, text) pairs of a JSONL file; the label may be a string, number or boolean."""
    from nmt.data import read_jsonl

    def plain_label(record: dict) -> str | None:
        label = record[label_field]
        if isinstance(label, (dict, list)) or label is None:
            return f"'{label_field}' must be a string or number, not {type(label).__name__}"
        return None
    try:
        records = read_jsonl(path, [text_field, label_field], text_fields=[text_field], check=plain_label)
    except DataError as exc:
        hint = " (set them with --text-field and --label-field)" if "has no field" in str(exc) else ""
        raise DataError(f"{exc}{hint}") from None
    return [(str(r[label_field]).lower() if isinstance(r[label_field], bool) else str(r[label_field]), r[text_field])
            for r in records]


def _nonempty(pairs: list, path) -> list:
    if not pairs:
        raise DataError(f"{path} holds no labelled examples")
    return pairs


def read_names(paths) -> list[tuple[str, str]]:
    """(language, name) pairs from one file per language (`LANGUAGE.txt`, one name a line), without the
    duplicates inside a language; a name listed under two languages stays under both."""
    pairs = []
    for path in sorted(paths, key=lambda p: Path(p).stem):
        names = dict.fromkeys(line.strip() for line in read_lines(path) if line.strip())
        pairs += [(Path(path).stem, name) for name in names]
    return _nonempty(pairs, paths[0] if paths else "the names folder")


def stratified_split(pairs: list, shares: tuple[float, ...], seed: int) -> list[list]:
    """Split (label, text) pairs into len(shares) + 1 parts: each label's examples are shuffled (seeded) and the
    first round(share * n) go to each held-out part in turn, the rest (the first part) trains."""
    by_label: dict[str, list] = {}
    for pair in pairs:
        by_label.setdefault(pair[0], []).append(pair)
    parts: list[list] = [[] for _ in range(len(shares) + 1)]
    for label in sorted(by_label):
        items = list(by_label[label])
        random.Random(f"{seed}/{label}").shuffle(items)
        start = 0
        for k, share in enumerate(shares, 1):
            size = round(share * len(items))
            parts[k] += items[start:start + size]
            start += size
        parts[0] += items[start:]
    return parts


def corpus_pairs(name: str, split: str, d, data_dir=None) -> list[tuple[str, str]]:
    """The (label, text) pairs of a named corpus's split: sst2 train / dev (its files); trec train / dev (coarse
    labels; dev: a seeded share of the training file); names train / dev / test (a seeded stratified split).
    `d` is the data config holding the splits' shares and seed (dev_share, test_share, split_seed)."""
    from nmt.corpora import corpus_files
    files = corpus_files(name, split, data_dir)
    if files["kind"] == "names":
        parts = stratified_split(read_names(files["paths"]), (d.dev_share, d.test_share), d.split_seed)
        return parts[("train", "dev", "test").index(split)]
    pairs = read_labelled(files["paths"][0])
    if files.get("label") == "coarse":
        pairs = [(label.split(":")[0], text) for label, text in pairs]
    if files.get("holdout"):
        train, dev = stratified_split(pairs, (d.dev_share,), d.split_seed)
        pairs = dev if split == "dev" else train
    return pairs
