"""Named corpora: where they live, which files make each split, and which fields hold what.

Named corpora live under a data root (see `data_root`). This is the only module that knows a corpus's file names
and field names (AESLC's `email_body`, `subject_line` and its three annotations, ...); tasks and the command line
ask it.
"""
from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Sequence

from nmt.data import DataError, read_conll, read_jsonl, read_lines

REPO = Path(__file__).resolve().parents[1]
CORPORA = ("multi30k", "tatoeba", "tinyshakespeare", "conll2003", "wnut17", "aeslc", "gigaword", "etth1", "sst2", "trec", "names")
# JSONL corpora: the field of the document, of the target, and of the references of the evaluation splits
FIELDS = {"aeslc": {"source": "email_body", "target": "subject_line", "references": ("ann0", "ann1", "ann2")}}
# the split that validates training runs (early stopping, best.pt)
VALIDATION = {"multi30k": "val", "tatoeba": "dev", "tinyshakespeare": "val", "conll2003": "dev", "wnut17": "dev", "aeslc": "dev",
              "gigaword": "valid", "etth1": "val", "sst2": "dev", "trec": "dev", "names": "dev"}
# CSV series: the folder and file, and the standard row split (train, val, test) of the long-horizon benchmark
# TSV pair corpora: the file, and the share of its sentences (grouped by the English one) held out as dev
TSV = {"tatoeba": ("train.tsv", 0.012)}
SERIES = {"etth1": ("ett", "ETTh1.csv", (8640, 2880, 2880))}


def data_root(corpus: str, data_dir: str | Path | None = None) -> Path:
    """The folder holding `corpus`: --data-dir, else $NMT_DATA, else ./data, else ../shared/data."""
    if data_dir:    # an explicit folder is the only place looked at
        if (Path(data_dir) / corpus).is_dir():
            return Path(data_dir)
        raise DataError(f"corpus '{corpus}' not found under --data-dir {data_dir}")
    for root in candidate_roots():
        if (root / corpus).is_dir():
            return root
    raise DataError(f"corpus '{corpus}' not found (looked in $NMT_DATA, data/ and ../shared/data; "
                    "see data/README.md for where to get it)")


def candidate_roots() -> list[Path]:
    """Where named corpora are looked for, in order: $NMT_DATA, the repository's data/, ../shared/data, ./data."""
    roots = [os.environ.get("NMT_DATA"), REPO / "data", REPO.parent / "shared" / "data", Path.cwd() / "data"]
    return [Path(r) for r in roots if r]


def multi30k_paths(split: str, src: str, tgt: str, data_dir=None) -> tuple[Path, Path]:
    root = data_root("multi30k", data_dir) / "multi30k" / "raw"
    return root / f"{split}.{src}.gz", root / f"{split}.{tgt}.gz"


def check_name(name: str) -> None:
    """Refuse a corpus name that nmt does not know (before any data is looked for)."""
    if name not in CORPORA:
        raise DataError(f"unknown corpus '{name}' (known: {', '.join(CORPORA)})")


def corpus_files(name: str, split: str = "train", data_dir=None, src: str = "de", tgt: str = "en") -> dict:
    """Paths of a named corpus split, with the kind of data they hold (and, for JSONL corpora, the fields)."""
    check_name(name)
    if name in SERIES:          # one CSV holds every split; the split is a range of its rows
        folder, file, rows = SERIES[name]
        return {"kind": "csv", "paths": (data_root(folder, data_dir) / folder / file,), "split_rows": rows}
    base = data_root(name, data_dir) / name
    if name == "multi30k":
        return {"kind": "parallel", "paths": multi30k_paths(split, src, tgt, data_dir)}
    if name in TSV:             # one TSV of pairs; dev is a share of it grouped by the English sentence
        if split not in ("train", "dev"):
            raise DataError(f"{name} has splits train and dev (held out from train.tsv by English sentence), "
                            f"not '{split}' (its test set is held out)")
        file, share = TSV[name]
        return {"kind": "tsv", "paths": (base / file,), "split": split, "dev_share": share}
    if name == "tinyshakespeare":
        return {"kind": "text", "paths": (base / "input.txt",), "split": split}
    if name == "conll2003":
        return {"kind": "conll", "paths": (base / f"{split}.txt",)}
    if name == "wnut17":
        file = {"train": "wnut17train.conll", "dev": "emerging.dev.conll"}.get(split, f"{split}.conll")
        return {"kind": "conll", "paths": (base / file,)}
    if name == "aeslc":
        return {"kind": "jsonl", "paths": (base / f"{split}.jsonl",), "fields": FIELDS["aeslc"]}
    if name in ("sst2", "trec", "names"):    # labelled texts (nmt/tasks/classify.py reads and splits them)
        return labelled_files(name, base, split)
    files = {"train": ("train_sample_10k", "train.article.txt", "train.title.txt"),
             "valid": ("valid_sample_1k", "valid.article.filter.txt", "valid.title.filter.txt"),
             "dev": ("dev_4k", "valid.article.filter.4K.txt", "valid.title.filter.4K.txt")}
    if split not in files:
        raise DataError(f"gigaword has splits train, valid and dev, not '{split}'")
    folder, article, title = files[split]
    return {"kind": "parallel", "paths": (base / folder / article, base / folder / title)}


def corpus_pairs(name: str, split: str, data_dir=None, src: str = "de", tgt: str = "en") -> list[tuple[str, str]]:
    """The (src, tgt) sentence pairs of a named parallel corpus's split (Multi30k files, a TSV corpus's grouped
    train / dev part, Gigaword's article / title lines)."""
    from nmt.data import read_parallel
    from nmt.pairs import group_split, read_tsv
    files = corpus_files(name, split, data_dir, src, tgt)
    if files["kind"] == "parallel":
        return read_parallel(*files["paths"])
    if files["kind"] != "tsv":
        raise DataError(f"{name} is not a corpus of sentence pairs (pair corpora: multi30k, tatoeba, gigaword)")
    if "en" not in (src, tgt):
        raise DataError(f"{name} pairs English with German: --src and --tgt must include en, got {src}-{tgt}")
    pairs = read_tsv(files["paths"][0], src, tgt).pairs
    return group_split(pairs, (src, tgt).index("en"), files["dev_share"], files["split"])


def labelled_files(name: str, base: Path, split: str) -> dict:
    """SST-2: `LABEL TEXT` files train / dev. TREC: one training file, labels `COARSE:fine` (TREC-6 reads the
    coarse label), dev a held-out share of it. Names: one file per language; train / dev / test a stratified split."""
    if name == "names":
        if split not in ("train", "dev", "test"):
            raise DataError(f"names has splits train, dev and test (seeded, stratified), not '{split}'")
        return {"kind": "names", "paths": tuple(sorted(base.glob("*.txt"))), "split": split}
    splits = ("train", "dev") if name == "sst2" else ("train", "dev (held out from train)")
    if split not in ("train", "dev"):
        raise DataError(f"{name} has splits {' and '.join(splits)}, not '{split}' (its test set is held out)")
    if name == "sst2":
        return {"kind": "labelled", "paths": (base / f"{split}.txt",)}
    return {"kind": "labelled", "paths": (base / "train.txt",), "label": "coarse", "holdout": True, "split": split}


def length_stats(lengths: Sequence[int]) -> dict:
    """Count, total and percentiles of a list of lengths."""
    if not lengths:
        return {"count": 0, "total": 0}
    ordered = sorted(lengths)

    def pct(p: float) -> int:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    return {"count": len(ordered), "total": sum(ordered), "mean": sum(ordered) / len(ordered),
            "min": ordered[0], "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": ordered[-1]}


def corpus_stats(name_or_path: str, data_dir=None, split: str = "train") -> dict:
    """Sentences, tokens (whitespace words), length percentiles and vocabulary size of a corpus or file.

    `name_or_path` is a named corpus (multi30k shows every language of the split) or a text / gzip / JSONL /
    CoNLL file. Returns {"name", "columns": {column: stats}}.
    """
    path = Path(name_or_path)
    if name_or_path in CORPORA:
        columns = _corpus_columns(name_or_path, split, data_dir)
    elif path.exists():
        columns = _file_columns(path)
    else:
        raise DataError(f"'{name_or_path}' is neither a named corpus ({', '.join(CORPORA)}) nor a file")
    if not columns or not any(columns.values()):
        raise DataError(f"{name_or_path}: no data")
    result = {}
    for column, sentences in columns.items():
        vocab = Counter(w for s in sentences for w in s)
        result[column] = {**length_stats([len(s) for s in sentences]), "vocab": len(vocab)}
    return {"name": str(name_or_path), "split": split, "columns": result}


def _corpus_columns(name: str, split: str, data_dir) -> dict[str, list[list[str]]]:
    """The whitespace tokens of each column of a named corpus's split."""
    files = corpus_files(name, split, data_dir)
    kind, paths = files["kind"], files["paths"]
    if kind == "csv":
        raise DataError(f"{name} is a time series, not text: see `nmt evaluate forecast --corpus {name}`")
    if name == "multi30k":
        found = sorted(paths[0].parent.glob(f"{split}.*.gz"))
        if not found:
            splits = sorted({f.name.split(".")[0] for f in paths[0].parent.glob("*.gz")})
            raise DataError(f"multi30k has no split '{split}' (it has: {', '.join(splits)})")
        return {f.name.split(".")[-2]: [line.split() for line in read_lines(f)] for f in found}
    if kind == "parallel":
        return {label: [line.split() for line in read_lines(f)] for label, f in zip(("source", "target"), paths)}
    if kind == "tsv":
        pairs = corpus_pairs(name, split, data_dir, "en", "de")
        return {lang: [p[i].split() for p in pairs] for i, lang in enumerate(("en", "de"))}
    if kind == "text":
        return {"text": [line.split() for line in read_lines(paths[0])]}
    if kind == "conll":
        return {"tokens": [words for words, _ in read_conll(paths[0])]}
    if kind in ("labelled", "names"):     # the whole file(s), every split of them
        lines = [line for f in paths for line in read_lines(f)]
        return {"text": [line.split()[1:] if kind == "labelled" else line.split() for line in lines]}
    fields = [files["fields"]["source"], files["fields"]["target"]]
    records = read_jsonl(paths[0], fields)
    return {field: [str(r[field]).split() for r in records] for field in fields}


def _file_columns(path: Path) -> dict[str, list[list[str]]]:
    """The whitespace tokens of a file: each text field of a JSONL file, the words of a CoNLL file, or lines."""
    lines = read_lines(path)
    if path.suffix == ".jsonl":
        import json
        try:
            first = json.loads(next(line for line in lines if line.strip()))
        except (StopIteration, ValueError):
            raise DataError(f"{path}: the first record is not valid JSON") from None
        fields = [k for k, v in first.items() if isinstance(v, str)] if isinstance(first, dict) else []
        records = read_jsonl(path, fields)
        return {field: [r[field].split() for r in records] for field in fields}
    if path.suffix == ".tsv" or (path.suffix == ".gz" and path.stem.endswith(".tsv")):
        from nmt.pairs import read_tsv
        read = read_tsv(path)
        named = [c for c in read.columns if c != "-"]
        return {named[0]: [s.split() for s, _ in read.pairs], named[1]: [t.split() for _, t in read.pairs]}
    if lines and any(line.startswith("-DOCSTART-") for line in lines[:5]):
        return {"tokens": [words for words, _ in read_conll(path)]}
    return {"text": [line.split() for line in lines]}
