"""Sentence pairs from TSV files (Tatoeba / OPUS / Anki style), dev splits grouped by sentence, and corpus mixing.

A pair file holds one pair a line, its columns separated by tabs: `English<TAB>German` in Tatoeba's export,
sometimes with more columns (Anki files add an attribution). The columns are named by languages: given
(`--tsv-columns en,de`), read from a header line (`en<TAB>de`, `english<TAB>german`, `source<TAB>target` is not
enough: it names no language), or English-then-German by default. A column named `-` is read and ignored.
"""
from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from nmt.data import DataError, read_lines

# names a header may give a column, by ISO 639-1 code
LANGUAGE_NAMES = {"en": ("en", "eng", "english"), "de": ("de", "deu", "ger", "german", "deutsch"),
                  "fr": ("fr", "fra", "fre", "french"), "cs": ("cs", "ces", "cze", "czech")}
DEFAULT_COLUMNS = ("en", "de")      # Tatoeba's and manythings.org's order


def language_of(name: str) -> str | None:
    """The ISO code a column header names (`German` -> `de`), or None."""
    name = name.strip().lower()
    return next((code for code, names in LANGUAGE_NAMES.items() if name in names), None)


def parse_columns(spec: str | Sequence[str]) -> tuple[str, ...]:
    """`en,de` or `de,en,-` -> a tuple of column names (`-`: a column to ignore); checks each appears once."""
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    names = [language_of(n) or n for n in names]
    named = [n for n in names if n != "-"]
    if len(named) < 2 or len(set(named)) != len(named) or "" in names:
        raise DataError(f"--tsv-columns needs two or more distinct names separated by commas (like en,de), "
                        f"got '{','.join(names)}'")
    return tuple(names)


@dataclass
class TsvPairs:
    """The pairs read from one TSV file, in file order, and what was skipped."""
    pairs: list[tuple[str, str]]
    path: Path
    columns: tuple[str, ...]
    skipped: int = 0              # bad lines skipped (only with skip_bad)
    blank: int = 0                # empty lines (always skipped)


def read_tsv(path: str | Path, src: str | None = None, tgt: str | None = None,
             columns: str | Sequence[str] | None = None, skip_bad: bool = False) -> TsvPairs:
    """(src, tgt) pairs of a TSV file whose columns are languages (see the module docstring); src and tgt
    default to the first two named columns.

    Every line must have the first line's number of columns and a non-empty text in the two used; a bad line
    raises DataError naming it, or is counted and skipped with skip_bad. Blank lines are skipped and counted.
    """
    path = Path(path)
    lines = read_lines(path)
    start, names = 0, parse_columns(columns) if columns else None
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise DataError(f"{path}: no pairs (the file is empty)")
    header = [language_of(c) for c in first.split("\t")]
    if len(header) >= 2 and all(header):                  # a header line naming languages
        start = lines.index(first) + 1
        names = names or tuple(header)
    names = names or DEFAULT_COLUMNS
    named = [n for n in names if n != "-"]
    src, tgt = src or named[0], tgt or named[1]
    for side in (src, tgt):
        if side not in names:
            raise DataError(f"{path}: no '{side}' column (its columns are {','.join(names)}; "
                            "name them with --tsv-columns)")
    i_src, i_tgt = names.index(src), names.index(tgt)
    width = len(first.split("\t")) if start == 0 else len(names)
    if width != len(names) and columns:
        raise DataError(f"{path}: line 1 has {width} columns, --tsv-columns names {len(names)}")
    width = max(width, 2)
    result = TsvPairs([], path, names)
    for n, line in enumerate(lines[start:], start + 1):
        if not line.strip():
            result.blank += 1
            continue
        problem, parts = _line_problem(line, width, i_src, i_tgt)
        if problem:
            if not skip_bad:
                raise DataError(f"{path}: line {n} {problem} (or pass --tsv-skip-bad to skip such lines)")
            result.skipped += 1
            continue
        result.pairs.append((parts[i_src].strip(), parts[i_tgt].strip()))
    if not result.pairs:
        raise DataError(f"{path}: no usable pairs ({result.skipped} bad line(s) skipped)")
    return result


def _line_problem(line: str, width: int, i_src: int, i_tgt: int) -> tuple[str | None, list[str]]:
    """What is wrong with one TSV line (None: nothing), and its columns."""
    parts = line.split("\t")
    if len(parts) == 1:
        return "has no tab (a pair line is SOURCE<TAB>TARGET)", parts
    if len(parts) != width:
        return f"has {len(parts)} columns, the file's first line {width}", parts
    for i in (i_src, i_tgt):
        if not parts[i].strip():
            return f"has an empty column {i + 1}", parts
    return None, parts


def group_split(pairs: Sequence[tuple[str, str]], key_side: int, dev_share: float, split: str,
                salt: str = "dev") -> list[tuple[str, str]]:
    """Train or dev part of `pairs`, drawn by the sentence on `key_side` (0 or 1): every pair whose key sentence
    hashes into the dev share is dev, so all translations of one sentence fall on the same side (no near-copies
    of dev sentences in training). Deterministic: the same file always gives the same split."""
    if split not in ("train", "dev"):
        raise DataError(f"a grouped split is train or dev, not '{split}'")
    cut = int(dev_share * 2**32)
    in_dev = [zlib.crc32(f"{salt}\t{p[key_side]}".encode("utf-8")) < cut for p in pairs]
    return [p for p, d in zip(pairs, in_dev) if d == (split == "dev")]


@dataclass
class Source:
    """One corpus of a mixture: its name, its training pairs and its weight (times each pair is seen per epoch)."""
    name: str
    pairs: Sequence[tuple[str, str]]
    weight: float = 1.0


def parse_weights(spec: str | None, names: Sequence[str]) -> dict[str, float]:
    """`multi30k=2,tatoeba=1` -> {name: weight}; sources not named get 1. Weights are positive numbers."""
    weights = {n: 1.0 for n in names}
    for item in filter(None, (spec or "").split(",")):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in weights:
            raise DataError(f"--mix names '{name}', which is not one of the sources ({', '.join(names)})")
        try:
            weights[name] = float(value)
        except ValueError:
            weights[name] = -1.0
        if not 0 < weights[name] <= 100:
            raise DataError(f"--mix weight of '{name}' must be a number in (0, 100], got '{value}'")
    return weights


def mix(sources: Sequence[Source], seed: int = 0) -> tuple[list[tuple[str, str]], str]:
    """The training pairs of a mixture and its description for the checkpoint and the card.

    Weight w repeats a source's pairs int(w) times and adds a seeded random share w - int(w) of them once more
    (0.5: half of them), so a small corpus can be upsampled beside a large one. Returns (pairs, description).
    """
    rng = random.Random(seed)
    mixed, parts = [], []
    for s in sources:
        whole, frac = int(s.weight), s.weight - int(s.weight)
        chosen = list(s.pairs) * whole
        if frac > 0:
            chosen += rng.sample(list(s.pairs), round(frac * len(s.pairs)))
        mixed.extend(chosen)
        parts.append((s, len(chosen)))
    total = max(1, len(mixed))
    description = "; ".join(f"{s.name}: {len(s.pairs):,} pairs x{s.weight:g} = {n:,} per epoch ({100 * n / total:.1f}%)"
                            for s, n in parts)
    return mixed, description
