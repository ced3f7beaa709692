"""Corpora -> `datasets` -> length-bucketed, padded batches.

Named corpora live under a data root (see `data_root`); user files of any path work the same way. Files are
read through Hugging Face `datasets` (local files, Arrow caching); before that each text file is checked to be
valid UTF-8 so the error can name the file and line.
"""
from __future__ import annotations

import gzip
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor


class DataError(ValueError):
    """A corpus or input file cannot be used; the message names the file and, where known, the line."""


# --- reading files --------------------------------------------------------------------------------------------

def check_text_file(path: str | Path) -> int:
    """Raise DataError unless `path` exists and is valid UTF-8 (gzip allowed); name the bad line.

    Reads 1 MB at a time (a corpus may not fit in memory). Returns the size of the (decompressed) text in bytes.
    """
    import codecs
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what_is(path)}, not a file to read")
    opener = gzip.open if path.suffix == ".gz" else open
    decoder = codecs.getincrementaldecoder("utf-8")()
    size, newlines = 0, 0
    try:
        with opener(path, "rb") as f:
            while block := f.read(1 << 20):
                pending = len(decoder.getstate()[0])      # bytes of a character cut by the last block
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as err:
                    line = newlines + block.count(b"\n", 0, max(0, err.start - pending)) + 1
                    raise DataError(f"{path}: line {line} is not valid UTF-8") from None
                size, newlines = size + len(block), newlines + block.count(b"\n")
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read {path}: {err}") from None
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise DataError(f"{path}: line {newlines + 1} is not valid UTF-8") from None
    return size


def what_is(path: Path) -> str:
    """What a path that is not a regular file is, in a few words."""
    import stat
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as err:
        return err.strerror or "unreadable"
    kinds = [(stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def arrow_lines(path: str | Path):
    """The lines of a UTF-8 text file (gzip allowed) as a `datasets.Dataset` with one column, `text`.

    Lines end at \\n or \\r\\n only (see `split_lines`). The data lives in Arrow files that `datasets` caches on
    disk (keyed by the file's path, size and modification time) and memory-maps: a corpus larger than memory is
    read as it is used. An empty file gives an empty dataset.
    """
    import datasets
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    if check_text_file(path) == 0:                 # an empty .gz is not 0 bytes on disk
        return datasets.Dataset.from_dict({"text": []})
    stat = Path(path).stat()
    return datasets.Dataset.from_generator(_line_records, gen_kwargs={
        "path": str(Path(path).resolve()), "stamp": (stat.st_size, stat.st_mtime_ns)})


def _line_records(path: str, stamp: tuple):
    """{"text": line} for each line of a file, split at \\n only (`stamp` makes the cache key follow the file)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="\n") as f:
        for line in f:
            line = line[:-1] if line.endswith("\n") else line
            yield {"text": line[:-1] if line.endswith("\r") else line}


def split_lines(text: str) -> list[str]:
    """Lines separated by \\n or \\r\\n only: one line out per line in. (str.splitlines also splits on \\x0c,
    \\x1c-\\x1e, \\x85, \\u2028 and \\u2029, which occur inside lines of real text.) A final newline ends the last
    line rather than starting an empty one."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_lines(path: str | Path) -> list[str]:
    """All lines of a UTF-8 text file (gzip allowed), read through `datasets`, without line breaks."""
    return arrow_lines(path)["text"][:]            # a list: newer `datasets` return a lazy Column


def read_text(path: str | Path) -> str:
    """A whole UTF-8 text file as one string (for character models)."""
    lines = read_lines(path)
    text = "\n".join(lines)
    if not text.strip():
        raise DataError(f"{path} is empty")
    return text + "\n"


def read_parallel(src_path: str | Path, tgt_path: str | Path) -> list[tuple[str, str]]:
    """Line-aligned sentence pairs as a list; mismatched line counts name both files and their counts."""
    return list(ParallelCorpus.from_files(src_path, tgt_path))


class ParallelCorpus:
    """Line-aligned sentence pairs kept in memory-mapped Arrow files (a `datasets.Dataset` with columns `src`
    and `tgt`), for corpora that outgrow memory. A sequence of (source, target) pairs."""

    def __init__(self, dataset):
        self.dataset = dataset

    @classmethod
    def from_files(cls, src_path: str | Path, tgt_path: str | Path) -> "ParallelCorpus":
        import datasets
        src, tgt = arrow_lines(src_path), arrow_lines(tgt_path)
        if len(src) != len(tgt):
            raise DataError(f"parallel files differ in length: {src_path} has {_lines(len(src))}, "
                            f"{tgt_path} has {_lines(len(tgt))}")
        if not len(src):
            raise DataError(f"parallel corpus is empty: {src_path}")
        both = [src.rename_column("text", "src"), tgt.rename_column("text", "tgt")]
        return cls(datasets.concatenate_datasets(both, axis=1))

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, str]]) -> "ParallelCorpus":
        import datasets
        return cls(datasets.Dataset.from_dict({"src": [s for s, _ in pairs], "tgt": [t for _, t in pairs]}))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[str, str]:
        row = self.dataset[int(i)]
        return row["src"], row["tgt"]

    def __iter__(self):
        for part in self.dataset.iter(batch_size=10_000):
            yield from zip(part["src"], part["tgt"])


def _lines(n: int) -> str:
    return f"{n} line" if n == 1 else f"{n} lines"


def read_jsonl(path: str | Path, fields: Sequence[str], text_fields: Sequence[str] | None = None,
               check=None) -> list[dict]:
    """Records of a JSONL file keeping `fields`; invalid JSON, a missing field, a field of `text_fields` (default:
    all of them) that is not text, or a record for which `check(record)` returns a message names the line."""
    import json
    check_text_file(path)
    records = []
    with open(path, encoding="utf-8", newline="\n") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {n} is not valid JSON ({err.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}: line {n} is not a JSON object")
            missing = [k for k in fields if k not in record]
            if missing:
                raise DataError(f"{path}: line {n} has no field '{missing[0]}'")
            wrong = [k for k in (fields if text_fields is None else text_fields) if not isinstance(record[k], str)]
            if wrong:
                raise DataError(f"{path}: line {n}: field '{wrong[0]}' holds {type(record[wrong[0]]).__name__}, "
                                "not text")
            problem = check(record) if check else None
            if problem:
                raise DataError(f"{path}: line {n}: {problem}")
            records.append({k: record[k] for k in fields})
    if not records:
        raise DataError(f"{path} holds no records")
    return records


def read_conll_rows(path: str | Path, lines: list[str] | None = None) -> list[list[str]]:
    """The token lines (all columns, as written) of each sentence of a CoNLL column file; -DOCSTART- lines and
    blank lines separate sentences, and every token line must have as many columns as the first. `lines`: the
    file's lines when the caller has read them already."""
    sentences, current, width = [], [], None
    for n, line in enumerate(read_lines(path) if lines is None else lines, 1):
        cols = line.split()
        if not cols or cols[0] == "-DOCSTART-":
            if current:
                sentences.append(current)
            current = []
            continue
        width = width or len(cols)
        if len(cols) != width:
            raise DataError(f"{path}: line {n} has {len(cols)} columns, expected {width}")
        current.append(line.rstrip())
    if current:
        sentences.append(current)
    if not sentences:
        raise DataError(f"{path} holds no sentences")
    return sentences


def read_conll(path: str | Path, tag_column: int = -1) -> list[tuple[list[str], list[str]]]:
    """Sentences of a CoNLL column file as (words, tags): the first column and the tag column."""
    rows = read_conll_rows(path)
    width = len(rows[0][0].split())
    if width < 2:
        raise DataError(f"{path}: lines need a word and a tag column, found 1 column")
    if not -width <= tag_column < width or tag_column in (0, -width):
        raise DataError(f"{path}: --tag-column {tag_column} is not a tag column of lines with {width} columns "
                        f"(1..{width - 1}, or -1 for the last)")
    split = [[line.split() for line in sent] for sent in rows]
    return [([cols[0] for cols in sent], [cols[tag_column] for cols in sent]) for sent in split]


def conll_words(path: str | Path) -> list[list[str]]:
    """The words (first column) of each sentence of a CoNLL file, for tagging."""
    return [[line.split()[0] for line in sent] for sent in read_conll_rows(path)]


# --- batching ---------------------------------------------------------------------------------------------------

@dataclass
class Batch:
    src: Tensor            # (B, S) token ids, padded with 0
    src_lengths: Tensor    # (B,)
    tgt_in: Tensor | None = None    # (B, T) <s> + target
    tgt_out: Tensor | None = None   # (B, T) target + </s>, padded with 0
    index: Tensor | None = None     # (B,) positions of the examples in the corpus

    @property
    def src_mask(self) -> Tensor:
        """(B, S) bool, True = real token."""
        return torch.arange(self.src.size(1))[None, :] < self.src_lengths[:, None]

    @property
    def num_tgt_tokens(self) -> int:
        return int((self.tgt_out != 0).sum()) if self.tgt_out is not None else 0


def pad(seqs: Sequence[Sequence[int]], value: int = 0) -> tuple[Tensor, Tensor]:
    """Right-pad id lists -> ids (B, S) and lengths (B,)."""
    sizes = [len(s) for s in seqs]
    width = max(1, max(sizes, default=1))
    if not sizes:
        return torch.full((0, width), value, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    rows = [list(s) + [value] * (width - n) for s, n in zip(seqs, sizes)]     # one tensor call, no per-row copies
    return torch.tensor(rows, dtype=torch.long), torch.tensor(sizes, dtype=torch.long)


def bucket_batches(lengths: Sequence[int], max_tokens: int = 0, batch_size: int = 64, shuffle: bool = True,
                   seed: int = 0) -> list[list[int]]:
    """Group example indices into batches of similar length.

    With max_tokens > 0, a batch holds as many examples as fit `count * longest <= max_tokens` (padded tokens),
    else `batch_size` examples. Shuffling is seeded: lengths get a little noise before sorting, so batches differ
    from epoch to epoch, and the batch order is shuffled; the same seed always gives the same batches.
    """
    rng = random.Random(seed)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i] + (rng.random() if shuffle else 0.0))
    batches, current, longest = [], [], 0
    for i in order:
        new_longest = max(longest, lengths[i])
        full = (len(current) + 1) * new_longest > max_tokens if max_tokens > 0 else len(current) >= batch_size
        if current and full:
            batches.append(current)
            current, new_longest = [], lengths[i]
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    if shuffle:
        rng.shuffle(batches)
    return batches


def make_seq2seq_batch(pairs, index: Sequence[int], bos: int = 1, eos: int = 2) -> Batch:
    """Token-id pairs (a list of (src, tgt) id lists, or EncodedPairs) -> a padded Batch with teacher-forcing
    inputs and outputs."""
    srcs, tgts = pairs.take(index) if hasattr(pairs, "take") else ([pairs[i][0] for i in index],
                                                                  [pairs[i][1] for i in index])
    src, src_lengths = pad(srcs)
    tgt_in, _ = pad([[bos] + t for t in tgts])
    tgt_out, _ = pad([t + [eos] for t in tgts])
    return Batch(src, src_lengths, tgt_in, tgt_out, torch.tensor(list(index)))


class EncodedPairs:
    """The token ids of a ParallelCorpus, encoded once by `datasets.map` into an Arrow file that is cached on
    disk (reused by the next run on the same corpus and tokenizers) and memory-mapped. Pairs with an empty side
    or a side longer than `max_len` tokens are left out; `lengths` holds max(src, tgt) + 1 of each kept pair."""

    def __init__(self, corpus: "ParallelCorpus", encode_src, encode_tgt, max_len: int, key: str):
        import hashlib

        def encode(part: dict) -> dict:
            src, tgt = encode_src(part["src"]), encode_tgt(part["tgt"])
            return {"src_ids": src, "tgt_ids": tgt, "src_len": [len(x) for x in src], "tgt_len": [len(x) for x in tgt]}

        fingerprint = hashlib.sha1(f"{corpus.dataset._fingerprint}/{key}".encode()).hexdigest()
        self.encoded = corpus.dataset.map(encode, batched=True, batch_size=5000, remove_columns=["src", "tgt"],
                                          new_fingerprint=fingerprint)
        src_len, tgt_len = self.encoded["src_len"][:], self.encoded["tgt_len"][:]
        self.rows = [i for i, (a, b) in enumerate(zip(src_len, tgt_len)) if 0 < a <= max_len and 0 < b <= max_len]
        self.lengths = [max(src_len[i], tgt_len[i]) + 1 for i in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[list[int], list[int]]:
        row = self.encoded[self.rows[i]]
        return row["src_ids"], row["tgt_ids"]

    def take(self, index: Sequence[int]) -> tuple[list[list[int]], list[list[int]]]:
        """Source and target ids of the kept pairs at `index`, read in one go."""
        part = self.encoded[[self.rows[i] for i in index]]
        return part["src_ids"], part["tgt_ids"]


class LazyBatches:
    """An epoch's batches, each built when it is asked for: the epoch's order without the epoch in memory."""

    def __init__(self, groups: list[list[int]], build):
        self.groups, self.build = groups, build

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int):
        return self.build(self.groups[i])
