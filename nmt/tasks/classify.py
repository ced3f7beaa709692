"""Text classification, the course's many-to-one shape: words to tensors, the training task, and the TextClassifier
runner (labels with probabilities, attention weights, scores). Labelled files and the corpora's splits are read
by nmt/labelled.py: (label, text) pairs, labels kept exactly as written, so `--input` prints `0`/`1` for SST-2
and `NUM` for TREC-6.
"""
from __future__ import annotations

import math
import random
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from nmt import checkpoint as ckpt_io
from nmt import metrics
from nmt.config import CLASSIFY_PRESETS, ClassifierConfig, ClassifySetup, from_dict
from nmt.data import DataError, bucket_batches, pad
from nmt.labelled import corpus_pairs, read_labelled, read_names, stratified_split  # noqa: F401 (the task's data)
from nmt.models.classifier import Classifier
from nmt.tasks.base import Runner, Task, Validation, batch_work, model_weights
from nmt.tokenizers import UNK, CharTokenizer, WordTokenizer, tokenizer_from_state

TASK = "classify"
SETUP, PRESETS = ClassifySetup, CLASSIFY_PRESETS


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
    ngrams: list[int] | None = None            # model.ngram_buckets > 0: the rows of the text's hashed n-grams
    words: list[str] | None = None             # unit=word: the words themselves (StepTable's keys)


@dataclass
class ClassifyBatch:
    tokens: Tensor               # (B, S) word or character ids
    lengths: Tensor              # (B,)
    chars: Tensor | None         # (U, W) characters of the batch's distinct words (row 0: the empty word)
    char_index: Tensor | None    # (B, S) row of `chars` for each position
    labels: Tensor | None        # (B,) label ids, or None at inference
    index: list[int]             # positions of the texts in the input
    ngrams: tuple[Tensor, Tensor] | None = None   # the texts' n-gram rows (N,) and where each text's start (B,)


class Steps:
    """Texts -> the encoder's steps (words or characters) -> ids, as the setup says."""

    def __init__(self, setup: ClassifySetup, tokenizer):
        self.data, self.unit, self.tokenizer = setup.data, setup.model.unit, tokenizer
        self.buckets, self.max_n = setup.model.ngram_buckets, setup.model.ngram_max
        self.seen: dict[str, tuple[int, tuple]] = {}      # word -> (id, its characters): texts repeat words

    def split(self, text: str) -> list[str]:
        d = self.data
        if self.unit == "char":
            return list((text.lower() if d.lowercase else text).strip())
        return words(text, d.tokenize, d.lowercase)

    def encode(self, steps: list[str], label: int | None = None) -> Encoded:
        cut = max(0, len(steps) - self.data.max_tokens)
        steps = steps[: self.data.max_tokens]
        grams = hashed_ngrams(steps, self.max_n, self.buckets) if self.buckets and steps else None
        if self.unit == "char":
            return Encoded(self.tokenizer.encode("".join(steps)), None, label, cut, grams)
        pairs = [self.seen.get(w) or self._word(w) for w in steps]
        return Encoded([i for i, _ in pairs], [c for _, c in pairs], label, cut, grams, steps)

    def _word(self, word: str) -> tuple[int, tuple]:
        if len(self.seen) >= 200_000:
            self.seen.clear()
        (i,), (chars,) = self.tokenizer.encode([word])
        pair = self.seen[word] = (i, tuple(chars[: self.data.max_word_chars]) or (UNK,))
        return pair


def hashed_ngrams(steps: list[str], max_n: int, buckets: int) -> list[int]:
    """The distinct 1..max_n-grams of ^ steps $ (characters or words), each hashed (CRC-32, the same on every
    machine and run) to one of `buckets` rows: fastText's bag of n-grams, without a vocabulary to store."""
    marked = ["^", *steps, "$"]
    grams = {"\x1f".join(marked[i:i + n]) for n in range(1, max_n + 1) for i in range(len(marked) - n + 1)}
    return sorted({zlib.crc32(g.encode("utf-8", "surrogatepass")) % buckets for g in grams})


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
    ngrams = ngram_tensors([items[i].ngrams for i in index]) if items[index[0]].ngrams is not None else None
    return ClassifyBatch(tokens, lengths, chars, char_index, labels, list(index), ngrams)


def ngram_tensors(rows: list[list[int]]) -> tuple[Tensor, Tensor]:
    """Each text's n-gram rows -> all of them (N,) and where each text's start (B,), as nn.EmbeddingBag takes."""
    return (torch.tensor([r for row in rows for r in row]),
            torch.tensor([0] + [len(row) for row in rows[:-1]]).cumsum(0))


class StepTable:
    """The distinct steps of many texts (a word with its characters, or a character), numbered in order of
    appearance, and each text's steps as those numbers, so that a model computes each one's input term once."""

    def __init__(self, items: list[Encoded]):
        keys: dict = {}
        words = items[0].chars is not None
        if words and items[0].words is not None:    # keyed by the word: a string hashes once, a tuple every time
            self.rows = [[keys.setdefault(w, (len(keys), t, c))[0] for w, t, c in zip(item.words, item.tokens,
                                                                                     item.chars)] for item in items]
            self.keys, self.words = [(t, c) for _, t, c in keys.values()], words
            return
        self.rows = [[keys.setdefault(key, len(keys)) for key in (zip(item.tokens, item.chars) if words
                                                                   else item.tokens)] for item in items]
        self.keys, self.words = list(keys), words

    def tensors(self) -> tuple[Tensor, Tensor | None]:
        """The distinct steps' ids (U,) and, for words with characters, their characters (U, W)."""
        if not self.words:
            return torch.tensor(self.keys), None
        return torch.tensor([k for k, _ in self.keys]), pad([c for _, c in self.keys])[0]


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
        logits, _ = model(batch.tokens, batch.lengths, batch.chars, batch.char_index, batch.ngrams)   # (B, C)
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

    @batch_work
    @torch.inference_mode()
    def run(self, texts: list[str], attention: bool = False) -> tuple[Tensor, list[Encoded], list]:
        """Probabilities (N, C) (NaN rows for empty texts), the encoded texts, and the attention weights of each
        text's steps (when asked for and the model pools by attention; else empty lists). Texts go in blocks
        (length-sorted): each distinct word's input term is computed once per block, then batches gather them."""
        self.model.eval()
        items = [self.steps.encode(self.steps.split(t)) for t in texts]
        probs = torch.full((len(texts), len(self.labels)), float("nan"))
        weights: list = [[] for _ in texts]
        real = sorted((i for i, item in enumerate(items) if item.tokens), key=lambda i: len(items[i].tokens))
        size, fused = self.setup.data.eval_batch_size, self.model.config.rnn.impl == "fused"
        for block in (real[k:k + 8 * size] for k in range(0, len(real), 8 * size)):
            table = StepTable([items[i] for i in block]) if fused else None
            terms = self.model.step_table(*table.tensors()) if table else None
            for start in range(0, len(block), size):
                index = block[start:start + size]
                rows = table.rows[start:start + size] if table else None
                logits, att = self._scores(items, index, terms, rows)                 # (B, C)
                probs[index] = logits.float().softmax(dim=-1)
                if attention and att is not None:
                    for row, i in enumerate(index):
                        weights[i] = att[row, : len(items[i].tokens)].tolist()
        return probs, items, weights

    def _scores(self, items: list[Encoded], index: list[int], terms: Tensor | None, rows: list[list[int]] | None):
        """Label scores (B, C) and attention weights of the texts `index`: from the block's input terms (U, D,
        G) and the texts' rows of them, or (terms None: impl torch or scratch) through the model's own encoder."""
        if terms is None:
            batch = make_batch(items, index)
            return self.model(batch.tokens, batch.lengths, batch.chars, batch.char_index, batch.ngrams)
        steps, lengths = pad(rows)                                                    # (B, S)
        grams = ngram_tensors([items[i].ngrams for i in index]) if items[index[0]].ngrams is not None else None
        return self.model.classify_steps(terms, steps, lengths, grams)

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

