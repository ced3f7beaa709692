"""Text classification, the course's many-to-one shape: labelled files and splits, words to tensors, the training
task, and the TextClassifier runner (labels with probabilities, attention weights, scores).

Labelled data is a list of (label, text) pairs. Files hold one example a line as `LABEL TEXT`, a TSV (`LABEL<TAB>
TEXT`, or any columns named by a header row) or JSONL records (`--text-field`, `--label-field`). Labels are kept
exactly as written, so `--input` prints `0`/`1` for SST-2 and `NUM` for TREC-6.
"""
from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from nmt import checkpoint as ckpt_io
from nmt import metrics
from nmt.config import CLASSIFY_PRESETS, ClassifierConfig, ClassifySetup, from_dict
from nmt.data import DataError, bucket_batches, pad, read_lines
from nmt.models.classifier import Classifier
from nmt.tasks.base import Runner, Task, Validation, model_weights
from nmt.tokenizers import UNK, CharTokenizer, WordTokenizer, tokenizer_from_state

TASK = "classify"
SETUP, PRESETS = ClassifySetup, CLASSIFY_PRESETS


# --- labelled files and splits ------------------------------------------------------------------------------

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


# --- texts to steps to tensors ------------------------------------------------------------------------------

BRACKETS = str.maketrans({"(": " -lrb- ", ")": " -rrb- ", "[": " -lsb- ", "]": " -rsb- ", "{": " -lcb- ",
                          "}": " -rcb- "})
CLITIC = re.compile(r"(?i)(\w)(n't|'s|'re|'ve|'ll|'d|'m)\b")
PTB_TOKEN = re.compile(r"-[lr][rsc]b-|(?:[^\W\d_]\.){2,}|\b(?i:mrs?|ms|dr|st|jr|sr|vs|mt|[^\W\d_])\.(?=\s|$)|(?i:n't)"
                       r"|'(?i:s|re|ve|ll|d|m)\b|\d+(?:[.,:/]\d+)*(?![\w-])|\w+(?:[-'’]\w+)*|\.\.\.|--|``|''|[^\w\s]")


def words(text: str, tokenize: str = "ptb", lowercase: bool = False) -> list[str]:
    """The words of a text: PTB-style (punctuation, n't and 's split off, brackets as -lrb- ...) or whitespace."""
    text = text.lower() if lowercase else text
    if tokenize == "whitespace":
        return text.split()
    text = CLITIC.sub(r"\1 \2", text.translate(BRACKETS))
    return PTB_TOKEN.findall(text)


@dataclass
class Encoded:
    tokens: list[int]                          # word or character ids
    chars: list[tuple[int, ...]] | None        # unit=word: the character ids of each word
    label: int | None = None
    truncated: int = 0                         # steps cut off (beyond data.max_tokens)


@dataclass
class ClassifyBatch:
    tokens: Tensor               # (B, S) word or character ids
    lengths: Tensor              # (B,)
    chars: Tensor | None         # (U, W) characters of the batch's distinct words (row 0: the empty word)
    char_index: Tensor | None    # (B, S) row of `chars` for each position
    labels: Tensor | None        # (B,) label ids, or None at inference
    index: list[int]             # positions of the texts in the input


class Steps:
    """Texts -> the encoder's steps (words or characters) -> ids, as the setup says."""

    def __init__(self, setup: ClassifySetup, tokenizer):
        self.data, self.unit, self.tokenizer = setup.data, setup.model.unit, tokenizer
        self.seen: dict[str, tuple[int, tuple]] = {}      # word -> (id, its characters): texts repeat words

    def split(self, text: str) -> list[str]:
        d = self.data
        if self.unit == "char":
            return list((text.lower() if d.lowercase else text).strip())
        return words(text, d.tokenize, d.lowercase)

    def encode(self, steps: list[str], label: int | None = None) -> Encoded:
        cut = max(0, len(steps) - self.data.max_tokens)
        steps = steps[: self.data.max_tokens]
        if self.unit == "char":
            return Encoded(self.tokenizer.encode("".join(steps)), None, label, cut)
        pairs = [self.seen.get(w) or self._word(w) for w in steps]
        return Encoded([i for i, _ in pairs], [c for _, c in pairs], label, cut)

    def _word(self, word: str) -> tuple[int, tuple]:
        if len(self.seen) >= 200_000:
            self.seen.clear()
        (i,), (chars,) = self.tokenizer.encode([word])
        pair = self.seen[word] = (i, tuple(chars[: self.data.max_word_chars]) or (UNK,))
        return pair


def make_batch(items: list[Encoded], index: list[int], unk_words: Tensor | None = None, word_dropout: float = 0.0,
               rng: random.Random | None = None) -> ClassifyBatch:
    """Pad texts into a batch; in training, words seen once become <unk> with probability word_dropout."""
    tokens, lengths = pad([items[i].tokens for i in index])
    chars = char_index = None
    if items[index[0]].chars is not None:
        rows: dict[tuple, int] = {(): 0}           # distinct words by their characters
        char_index, _ = pad([[rows.setdefault(c, len(rows)) for c in items[i].chars] for i in index])  # (B, S)
        chars, _ = pad(list(rows))                                                    # (U, W)
    if unk_words is not None and word_dropout > 0:
        gen = torch.Generator().manual_seed(rng.randrange(2 ** 31) if rng else 0)
        drop = unk_words[tokens] & (torch.rand(tokens.shape, generator=gen) < word_dropout)
        tokens = tokens.masked_fill(drop, UNK)
    labels = torch.tensor([items[i].label for i in index]) if items[index[0]].label is not None else None
    return ClassifyBatch(tokens, lengths, chars, char_index, labels, list(index))


# --- training -----------------------------------------------------------------------------------------------

class ClassifyTask(Task):
    name = TASK

    def __init__(self, setup: ClassifySetup, tokenizer, labels: list[str], train, valid, meta: dict | None = None):
        self.setup, self.tokenizer, self.labels, self.meta = setup, tokenizer, list(labels), meta or {}
        ids = {label: i for i, label in enumerate(labels)}
        steps = Steps(setup, tokenizer)
        self.train = [item for item in (steps.encode(steps.split(t), ids[y]) for y, t in train) if item.tokens]
        self.valid = [(y, t) for y, t in valid if t.strip()]
        self.singletons = None
        if setup.model.unit == "word":
            counts = Counter(i for item in self.train for i in item.tokens)
            self.singletons = torch.zeros(tokenizer.vocab_size, dtype=torch.bool)    # (V,) words seen once
            self.singletons[[i for i, n in counts.items() if n == 1]] = True

    def batches(self, epoch: int) -> list[ClassifyBatch]:
        c = self.setup.train
        groups = bucket_batches([len(x.tokens) for x in self.train], 0, c.batch_size, True, c.seed + epoch)
        rng = random.Random(c.seed * 1000 + epoch)
        return [make_batch(self.train, g, self.singletons, self.setup.model.word_dropout, rng) for g in groups]

    def loss(self, model: Classifier, batch: ClassifyBatch):
        logits, _ = model(batch.tokens, batch.lengths, batch.chars, batch.char_index)     # (B, C)
        loss = F.cross_entropy(logits.float(), batch.labels, label_smoothing=self.setup.train.label_smoothing)
        n = batch.labels.numel()
        return loss, {"tokens": n, "nll": float(F.cross_entropy(logits.detach().float(), batch.labels)) * n}

    def validate(self, model: Classifier) -> Validation:
        runner = TextClassifier(model, self.tokenizer, self.setup, self.labels)
        gold = [y for y, _ in self.valid]
        predicted = runner.predict([t for _, t in self.valid])
        scores = {"accuracy": metrics.accuracy(gold, predicted), "macro_f1": metrics.macro_f1(gold, predicted)}
        samples = [(t[:80], y, p) for (y, t), p in zip(self.valid[:3], predicted)]
        return Validation(scores, scores[self.setup.data.select], samples)

    def make_checkpoint(self, model: Classifier) -> ckpt_io.Checkpoint:
        name = "chars" if self.setup.model.unit == "char" else "words"
        return self.checkpoint_of(model, model.config, {name: self.tokenizer}, labels=list(self.labels))


def check_labels(train_pairs, valid_pairs) -> list[str]:
    """The sorted labels of the training data; a DataError for one class only or a dev label never trained on."""
    labels = sorted({y for y, _ in train_pairs})
    if len(labels) < 2:
        raise DataError(f"the training data has one class only ('{labels[0]}'): a classifier needs at least two")
    unseen = sorted({y for y, _ in valid_pairs} - set(labels))
    if unseen:
        raise DataError(f"dev labels never seen in training: {', '.join(unseen[:5])} (training labels: "
                        f"{', '.join(labels[:20])})")
    return labels


def train(setup: ClassifySetup, train_pairs, valid_pairs, run_dir: str | Path, callbacks=(), meta: dict | None = None):
    """Train (or resume) a classifier on (label, text) pairs, early stopping on dev; returns (state, run_dir)."""
    from nmt.runs import fit_run, start_run
    labels = check_labels(train_pairs, valid_pairs)
    if setup.data.eval_per_epoch:           # set before a resume compares settings
        setup.train.eval_every = max(1, math.ceil(len(train_pairs) / setup.train.batch_size)
                                     // setup.data.eval_per_epoch)
    setup, toks = start_run(setup, run_dir, TASK, SETUP, callbacks)
    name = "chars" if setup.model.unit == "char" else "words"
    tokenizer = toks[name] if toks else build_tokenizer(setup, train_pairs)
    c = setup.model
    c.char_vocab_size = (tokenizer if c.unit == "char" else tokenizer.chars).vocab_size
    c.word_vocab_size = tokenizer.vocab_size if c.unit == "word" else 0
    task = ClassifyTask(setup, tokenizer, labels, train_pairs, valid_pairs, meta)
    return fit_run(Classifier(c, len(labels)), task, setup.train, run_dir, callbacks)


def build_tokenizer(setup: ClassifySetup, pairs):
    steps = Steps(setup, None)
    if setup.model.unit == "char":
        return CharTokenizer.train("".join(steps.split(t)) for _, t in pairs)
    return WordTokenizer.train(steps.split(t) for _, t in pairs)


# --- inference and scores -----------------------------------------------------------------------------------

class TextClassifier(Runner):
    """Texts in; labels, probabilities and (with attention pooling) the weight of each step out. Texts are
    batched by length; an empty text gets no label (None)."""
    task = TASK
    model: Classifier
    setup: ClassifySetup

    def __init__(self, model: Classifier, tokenizer, setup: ClassifySetup, labels: list[str]):
        super().__init__(model, tokenizer, setup)
        self.labels, self.steps = list(labels), Steps(setup, tokenizer)

    @classmethod
    def from_checkpoint(cls, ckpt: ckpt_io.Checkpoint) -> "TextClassifier":
        labels = [str(label) for label in ckpt.config["labels"]]
        setup = from_dict(ClassifySetup, ckpt.config["setup"])
        tokenizer = tokenizer_from_state(ckpt.tokenizers["chars" if setup.model.unit == "char" else "words"])
        return cls(model_weights(ckpt, Classifier, ClassifierConfig, len(labels)), tokenizer, setup, labels)

    def unknown(self, texts: list[str]) -> set[str]:
        """Characters of the texts the model never saw in training (read as <unk>)."""
        chars = self.tokenizer if self.setup.model.unit == "char" else self.tokenizer.chars
        return set().union(*(chars.unknown("".join(self.steps.split(t))) for t in texts)) if texts else set()

    @torch.inference_mode()
    def run(self, texts: list[str], attention: bool = False) -> tuple[Tensor, list[Encoded], list]:
        """Probabilities (N, C) (NaN rows for empty texts), the encoded texts, and the attention weights of each
        text's steps (when asked for and the model pools by attention; else empty lists)."""
        self.model.eval()
        items = [self.steps.encode(self.steps.split(t)) for t in texts]
        probs = torch.full((len(texts), len(self.labels)), float("nan"))
        weights: list = [[] for _ in texts]
        real = [i for i, item in enumerate(items) if item.tokens]
        for group in bucket_batches([len(items[i].tokens) for i in real], 0, self.setup.data.eval_batch_size,
                                    shuffle=False):
            index = [real[g] for g in group]
            batch = make_batch(items, index)
            logits, att = self.model(batch.tokens, batch.lengths, batch.chars, batch.char_index)   # (B, C)
            probs[index] = logits.float().softmax(dim=-1)
            if attention and att is not None:
                for row, i in enumerate(index):
                    weights[i] = att[row, : len(items[i].tokens)].tolist()
        return probs, items, weights

    def predict(self, texts: list[str]) -> list[str | None]:
        """The most probable label of each text (None for an empty text)."""
        probs, _, _ = self.run(texts)
        best = probs.nan_to_num(-1.0).argmax(dim=-1).tolist()
        return [None if math.isnan(p[0]) else self.labels[b] for p, b in zip(probs.tolist(), best)]

    def classify(self, texts: list[str], top: int = 0, attention: bool = False) -> list[dict]:
        """For each text: {"text", "label", "probability", "probabilities" ({label: p}, most probable first, the
        `top` best or all), "steps" (the words or characters read), "attention" (a weight per step, or []),
        "truncated" (steps cut off)}; an empty text has label None and no probabilities."""
        probs, items, weights = self.run(texts, attention)
        records = []
        for i, text in enumerate(texts):
            row = probs[i].tolist()
            order = sorted(range(len(row)), key=lambda k: -row[k])[: top or None]
            empty = not items[i].tokens
            records.append({"text": text, "label": None if empty else self.labels[order[0]],
                            "probability": None if empty else row[order[0]],
                            "probabilities": {} if empty else {self.labels[k]: row[k] for k in order},
                            "steps": self.steps.split(text)[: self.setup.data.max_tokens],
                            "attention": weights[i], "truncated": items[i].truncated})
        return records

    def evaluate(self, pairs: list[tuple[str, str]]) -> dict:
        """Accuracy and macro F1 (in %), each label's precision / recall / F1 / support and the confusion matrix
        (rows: gold, columns: predicted, in the order of `labels`) on (label, text) pairs."""
        unseen = sorted({y for y, _ in pairs} - set(self.labels))
        if unseen:
            raise DataError(f"labels the model does not know: {', '.join(unseen[:5])} (it knows: "
                            f"{', '.join(self.labels[:20])})")
        gold = [y for y, _ in pairs]
        predicted = [p if p is not None else "" for p in self.predict([t for _, t in pairs])]
        matrix = [[sum(g == a and p == b for g, p in zip(gold, predicted)) for b in self.labels] for a in self.labels]
        per_label = {}
        for k, label in enumerate(self.labels):
            tp, said, support = matrix[k][k], sum(row[k] for row in matrix), sum(matrix[k])
            p, r = 100 * tp / max(1, said), 100 * tp / max(1, support)
            per_label[label] = {"precision": p, "recall": r, "f1": 2 * p * r / max(1e-9, p + r), "support": support}
        return {"examples": len(pairs), "accuracy": metrics.accuracy(gold, predicted),
                "macro_f1": metrics.macro_f1(gold, predicted), "labels": list(self.labels), "per_label": per_label,
                "confusion": matrix}


RUNNER = TextClassifier

