"""Named-entity tagging: tagging schemes, batches, the training task, inference, spans and seqeval scores.

Tags are kept in IOB2 inside the project (every entity starts with B-); files in IOB1 or IOBES are converted on
reading. Entity F1 is seqeval's strict IOB2 mode: a predicted entity counts only with exact boundaries and type.
"""
from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from nmt import checkpoint as ckpt_io
from nmt.config import TAG_PRESETS, TaggerConfig, TagSetup, from_dict
from nmt.data import DataError, bucket_batches, pad
from nmt.metrics import entity_scores
from nmt.models.context import context_ids, context_inputs
from nmt.models.tagger import Tagger, casing
from nmt.tasks.base import Runner, Task, Validation, batch_work, model_weights
from nmt.tokenizers import UNK, CharTokenizer, WordTokenizer, tokenizer_from_state

TASK = "tag"
SETUP, PRESETS = TagSetup, TAG_PRESETS
TAG_PATTERN = re.compile(r"^(O|[BIES]-\S+)$")


# --- tagging schemes ----------------------------------------------------------------------------------------

def check_tags(sentences: list[tuple[list[str], list[str]]], source: str) -> None:
    """Every tag must be O or PREFIX-TYPE with prefix B, I, E or S; name the first bad one."""
    for n, (_, tags) in enumerate(sentences, 1):
        for tag in tags:
            if not TAG_PATTERN.match(tag):
                raise DataError(f"{source}: sentence {n} has tag '{tag}', which is not O or B-/I-/E-/S-TYPE")


def detect_scheme(sentences: list[tuple[list[str], list[str]]]) -> str:
    """iobes when E-/S- tags occur; iob1 when an entity starts with I-; else iob2."""
    prefixes = {t[:2] for _, tags in sentences for t in tags}
    if prefixes & {"E-", "S-"}:
        return "iobes"
    for _, tags in sentences:
        prev = "O"
        for tag in tags:
            if tag.startswith("I-") and prev[2:] != tag[2:]:
                return "iob1"
            prev = tag
    return "iob2"


def to_iob2(tags: list[str], scheme: str) -> list[str]:
    """Convert one sentence's tags from iob1 / iobes (or iob2, unchanged) to IOB2."""
    if scheme not in ("iob1", "iob2", "iobes"):
        raise DataError(f"unknown tagging scheme '{scheme}' (expected auto, iob1, iob2 or iobes)")
    out, prev = [], "O"
    for tag in tags:
        prefix, kind = tag[:2], tag[2:]
        if scheme == "iobes" and prefix in ("S-", "E-"):
            tag = ("B-" if prefix == "S-" else "I-") + kind
        elif scheme == "iob1" and prefix == "I-" and prev[2:] != kind:     # IOB1 starts entities with I-
            tag = "B-" + kind
        out.append(tag)
        prev = tag
    return out


def normalise_scheme(sentences, scheme: str = "auto"):
    """Sentences with their tags converted to IOB2."""
    scheme = detect_scheme(sentences) if scheme == "auto" else scheme
    return [(words, to_iob2(tags, scheme)) for words, tags in sentences]


def spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """Entities of an IOB2 sentence as (type, first word, last word + 1)."""
    found, start, kind = [], None, None
    for i, tag in enumerate(tags + ["O"]):
        if start is not None and not (tag.startswith("I-") and tag[2:] == kind):
            found.append((kind, start, i))
            start = None
        if tag.startswith("B-") or (tag.startswith("I-") and start is None):
            start, kind = i, tag[2:]
    return found


def read_tagged(path: str | Path, tag_column: int = -1, scheme: str = "auto"):
    """A CoNLL column file as IOB2 sentences [(words, tags)], tags checked and converted."""
    from nmt.data import read_conll
    sentences = read_conll(path, tag_column)
    check_tags(sentences, str(path))
    return normalise_scheme(sentences, scheme)


# --- words to tensors ---------------------------------------------------------------------------------------

TOKEN = re.compile(r"(?:[A-Za-z]\.){2,}|\d+(?:[.,:/]\d+)*|\w+(?:[-'’]\w+)*|[^\w\s]")


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """Split a line into words and punctuation (CoNLL-like), with character offsets: [(word, start, end)]."""
    return [(m.group(), m.start(), m.end()) for m in TOKEN.finditer(text)]


def words_with_offsets(words: list[str]) -> list[tuple[str, int, int]]:
    """Pre-tokenised words with offsets into their space-joined line."""
    out, pos = [], 0
    for w in words:
        out.append((w, pos, pos + len(w)))
        pos += len(w) + 1
    return out


@dataclass
class TagBatch:
    words: Tensor           # (B, S) word ids
    chars: Tensor           # (U, W) character ids of the batch's distinct words (row 0: the empty word)
    char_index: Tensor      # (B, S) row of `chars` for each position (0 on padding)
    casings: Tensor         # (B, S) casing classes
    lengths: Tensor         # (B,)
    tags: Tensor | None     # (B, S) tag ids, or None at inference
    index: list[int]        # positions of the sentences in the input
    plain: Tensor | None = None   # (B, S) word ids before word dropout (training)
    context: tuple | None = None  # the contextual LMs' inputs (fwd, bwd, fwd_at, bwd_at): models/context.py

    @property
    def mask(self) -> Tensor:
        return torch.arange(self.words.size(1))[None, :] < self.lengths[:, None]   # (B, S)


@dataclass
class Encoded:
    words: list[int]
    chars: list[tuple[int, ...]]
    casings: list[int]
    tags: list[int] | None = None
    context: tuple | None = None    # (the sentence string's LM character ids, words' first and last positions)


def encode(tokenizer: WordTokenizer, words: list[str], tag_ids: dict | None = None,
           tags: list[str] | None = None, max_word_chars: int = 30,
           context: CharTokenizer | None = None) -> Encoded:
    ids, chars = tokenizer.encode(words)
    chars = [tuple(c[:max_word_chars]) or (UNK,) for c in chars]
    return Encoded(ids, chars, [casing(w) for w in words], [tag_ids[t] for t in tags] if tags is not None else None,
                   context_ids(context, words) if context is not None else None)


def make_batch(items: list[Encoded], index: list[int], drop_rates: Tensor | None = None,
               rng: random.Random | None = None) -> TagBatch:
    """Pad sentences into a batch; in training, each word becomes <unk> with its rate in drop_rates (V,)."""
    words, lengths = pad([items[i].words for i in index])
    casings, _ = pad([items[i].casings for i in index])
    rows: dict[tuple, int] = {(): 0}                 # distinct words by their characters (Python-side dedup)
    char_index, _ = pad([[rows.setdefault(tuple(c), len(rows)) for c in items[i].chars] for i in index])  # (B, S)
    chars, _ = pad(list(rows))                                                        # (U, W)
    plain = words
    if drop_rates is not None:
        gen = torch.Generator().manual_seed(rng.randrange(2 ** 31) if rng else 0)
        words = words.masked_fill(torch.rand(words.shape, generator=gen) < drop_rates[words], UNK)
    tags = pad([items[i].tags for i in index])[0] if items[index[0]].tags is not None else None
    context = context_inputs([items[i].context for i in index]) if items[index[0]].context is not None else None
    return TagBatch(words, chars, char_index, casings, lengths, tags, list(index), plain, context)


# --- training -----------------------------------------------------------------------------------------------

class TagTask(Task):
    name = TASK

    def __init__(self, setup: TagSetup, tokenizer: WordTokenizer, tags: list[str], train, valid,
                 meta: dict | None = None, context: CharTokenizer | None = None):
        self.setup, self.tokenizer, self.tags, self.meta = setup, tokenizer, tags, meta or {}
        self.context, self.features = context, {}        # features: sentence -> its context features (S, 2Hc)
        self.tag_ids = {t: i for i, t in enumerate(tags)}
        self.train = [encode(tokenizer, w, self.tag_ids, t, context=context) for w, t in train if w]
        self.valid = [(w, t) for w, t in valid if w]
        counts = Counter(i for item in self.train for i in item.words)
        m = setup.model
        self.drop_rates = torch.full((tokenizer.vocab_size,), m.unk_rate)        # (V,) <unk> rate of each word
        self.drop_rates[[i for i, n in counts.items() if n == 1]] = max(m.word_dropout, m.unk_rate)   # seen once
        self.drop_rates[0] = 0.0                                                 # padding
        self.lm_classes = lm_classes(counts, tokenizer.vocab_size, m.lm_vocab) if m.lm_weight else None   # (V,)

    def batches(self, epoch: int) -> list[TagBatch]:
        c = self.setup.train
        groups = bucket_batches([len(x.words) for x in self.train], c.batch_tokens, c.batch_size, True, c.seed + epoch)
        rng = random.Random(c.seed * 1000 + epoch)
        rates = self.drop_rates if self.drop_rates.any() else None
        return [make_batch(self.train, g, rates, rng) for g in groups]

    def loss(self, model: Tagger, batch: TagBatch):
        context = self.context_features(model, batch) if batch.context is not None else None
        h = model.encode(batch.words, batch.chars, batch.casings, batch.lengths, batch.char_index,
                         context)                                                                   # (B, S, 2H)
        emissions = model.emit(h)                                                                    # (B, S, K)
        mask, words = batch.mask, int(batch.lengths.sum())
        if model.crf is not None:      # negative log-likelihood of whole sentences, per word
            loss = model.crf.nll(emissions.float(), batch.tags, mask).sum() / words
        else:                          # cross-entropy per word
            loss = F.cross_entropy(emissions[mask].float(), batch.tags[mask])
        info = {"tokens": words, "nll": float(loss.detach()) * words}
        if model.lm is not None:       # auxiliary: predict the neighbouring words (not counted in the nll)
            lm = model.lm.loss(model.dropout(h), self.lm_classes[batch.plain], mask)
            loss = loss + model.config.lm_weight * lm
        return loss, info

    def context_features(self, model: Tagger, batch: TagBatch) -> Tensor:
        """The frozen LMs' features of a training batch (B, S, 2Hc), each sentence's computed once and kept (the
        LMs never change, and their input is the text before word dropout)."""
        missing = [row for row, i in enumerate(batch.index) if i not in self.features]
        if missing:
            picked = tuple(x[missing] for x in batch.context)
            for row, f in zip(missing, model.context(*picked)):
                i = batch.index[row]
                self.features[i] = f[: len(self.train[i].words)].clone()
        return pad_sequence([self.features[i] for i in batch.index], batch_first=True)             # (B, S, 2Hc)

    def validate(self, model: Tagger) -> Validation:
        runner = NERTagger(model, self.tokenizer, self.setup, self.context)
        predicted = runner.tag([w for w, _ in self.valid])
        scores = entity_scores([t for _, t in self.valid], predicted)
        samples = [(render_plain(words, tags), render_plain(words, pred))
                   for (words, tags), pred in zip(self.valid[:3], predicted)]
        metrics = {"f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"]}
        return Validation(metrics, scores["f1"], samples)

    def make_checkpoint(self, model: Tagger) -> ckpt_io.Checkpoint:
        tokenizers = {"words": self.tokenizer} | ({"context": self.context} if self.context else {})
        return self.checkpoint_of(model, model.config, tokenizers, tags=list(self.tags))


def lm_classes(counts: Counter, vocab_size: int, size: int) -> Tensor:
    """Word id -> class of the auxiliary LM (models/tagger.WordLM): the `size` most frequent training words get
    2.., every other word 1."""
    classes = torch.ones(vocab_size, dtype=torch.long)                           # (V,)
    frequent = [i for i, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size]]
    classes[frequent] = torch.arange(2, 2 + len(frequent))
    return classes


def tag_vocabulary(sentences) -> list[str]:
    """O first, then B-/I- of every type, sorted."""
    kinds = sorted({t[2:] for _, tags in sentences for t in tags if t != "O"})
    return ["O"] + [f"{p}-{k}" for k in kinds for p in "BI"]


def train(setup: TagSetup, train_sents, valid_sents, run_dir: str | Path, callbacks=(), meta: dict | None = None):
    """Train (or resume) a tagger on IOB2 sentences [(words, tags)]; returns (state, run_dir)."""
    from nmt.runs import fit_run, start_run
    setup, toks = start_run(setup, run_dir, TASK, SETUP, callbacks)
    tokenizer = toks["words"] if toks else WordTokenizer.train([w for w, _ in train_sents])
    tags = tag_vocabulary(train_sents)
    unseen = sorted({t for _, ts in valid_sents for t in ts} - set(tags))
    if unseen:
        raise DataError(f"validation tags never seen in training: {', '.join(unseen[:5])}")
    c = setup.model
    c.word_vocab_size, c.char_vocab_size, c.num_tags = tokenizer.vocab_size, tokenizer.chars.vocab_size, len(tags)
    lms = context_lms(c) if c.context_forward and not toks else None
    context = toks.get("context") if toks else (lms[0] if lms else None)
    model = Tagger(c, tags)
    if lms:
        model.context.forward_lm.load_state_dict(lms[1])
        model.context.backward_lm.load_state_dict(lms[2])
    task = TagTask(setup, tokenizer, tags, train_sents, valid_sents, meta, context)
    return fit_run(model, task, setup.train, run_dir, callbacks)


def context_lms(c: TaggerConfig) -> tuple[CharTokenizer, dict, dict]:
    """The two charlm checkpoints named by model.context_forward / context_backward: their shared alphabet and
    weights; fills in c.context_* from them. They must be plain LSTM LMs of one shape (`--preset news`)."""
    if not c.context_backward:
        raise DataError("model.context_forward needs model.context_backward (the LM trained on reversed text)")
    fwd, bwd = (ckpt_io.load(p, task="charlm") for p in (c.context_forward, c.context_backward))
    same_alphabet = ckpt_io.same_state(fwd.tokenizers["chars"], bwd.tokenizers["chars"])
    if fwd.config["model"] != bwd.config["model"] or not same_alphabet:
        raise DataError("the forward and backward context LMs differ in shape or alphabet")
    m = fwd.config["model"]
    if m["weight_drop"] or m["tie_weights"] or m["rnn"]["cell"] != "lstm" or m.get("members", 1) != 1:
        raise DataError("context LMs must be single untied LSTMs without weight drop (train charlm --preset news)")
    c.context_vocab, c.context_embed = m["vocab_size"], m["embed_size"]
    c.context_hidden, c.context_layers = m["rnn"]["hidden_size"], m["rnn"]["num_layers"]
    weights = [ckpt_io.state_dict_float(x.model) for x in (fwd, bwd)]
    return tokenizer_from_state(fwd.tokenizers["chars"]), weights[0], weights[1]


# --- inference and scores -----------------------------------------------------------------------------------

class NERTagger(Runner):
    """Sentences of words in, IOB2 tags out, batched by length; empty sentences give empty tag lists."""
    task = TASK
    model: Tagger
    tokenizer: WordTokenizer
    setup: TagSetup

    def __init__(self, model: Tagger, tokenizer: WordTokenizer, setup: TagSetup, context: CharTokenizer | None = None):
        super().__init__(model, tokenizer, setup)
        self.context = context          # the contextual LMs' alphabet, for a tagger that reads them

    @property
    def tags(self) -> list[str]:
        return self.model.tags

    @classmethod
    def from_checkpoint(cls, ckpt: ckpt_io.Checkpoint) -> "NERTagger":
        model = model_weights(ckpt, Tagger, TaggerConfig, ckpt.config["tags"])
        context = ckpt.tokenizers.get("context")
        return cls(model, tokenizer_from_state(ckpt.tokenizers["words"]), from_dict(TagSetup, ckpt.config["setup"]),
                   tokenizer_from_state(context) if context else None)

    @batch_work
    @torch.inference_mode()
    def tag(self, sentences: list[list[str]]) -> list[list[str]]:
        self.model.eval()
        d = self.setup.data
        items = [encode(self.tokenizer, words, max_word_chars=d.max_word_chars, context=self.context)
                 for words in sentences]
        result: list[list[str]] = [[] for _ in sentences]
        real = [i for i, words in enumerate(sentences) if words]
        lengths = [len(sentences[i]) for i in real]
        for group in bucket_batches(lengths, max_tokens=d.eval_batch_size * 32, batch_size=d.eval_batch_size,
                                    shuffle=False):
            index = [real[g] for g in group]
            batch = make_batch(items, index)
            emissions = self.model(batch.words, batch.chars, batch.casings, batch.lengths, batch.char_index,
                                   batch.context)
            best = self.model.decode(emissions, batch.mask).tolist()                # (B, S)
            for row, i in enumerate(index):
                result[i] = [self.tags[t] for t in best[row][: len(sentences[i])]]
        return result

    def tag_text(self, lines: list[str]) -> list[dict]:
        """Raw lines, tokenised here: for each, {"text", "words", "tags", "entities": [{"text", "type", "start",
        "end"}]} with character offsets into the line."""
        return self._records(lines, [tokenize(line) for line in lines])

    def tag_words(self, sentences: list[list[str]]) -> list[dict]:
        """Pre-tokenised sentences, as `tag_text` with offsets into the space-joined words."""
        return self._records([" ".join(words) for words in sentences], [words_with_offsets(w) for w in sentences])

    def _records(self, lines: list[str], tokens: list[list[tuple[str, int, int]]]) -> list[dict]:
        predicted = self.tag([[w for w, _, _ in sent] for sent in tokens])
        return [{"text": line, "words": [w for w, _, _ in sent], "tags": tags,
                 "entities": [{"text": line[sent[a][1]:sent[b - 1][2]], "type": kind, "start": sent[a][1],
                               "end": sent[b - 1][2]} for kind, a, b in spans(tags)]}
                for line, sent, tags in zip(lines, tokens, predicted)]

    def tag_conll(self, path: str | Path) -> str:
        """A CoNLL file (one token per line, first column the word) with the predicted tag appended to each token
        line; every other line is kept where it was (blank lines as they are, -DOCSTART- lines with the tag O), so
        the output lines up with the input, line for line."""
        from nmt.data import read_conll_rows, read_lines
        lines = read_lines(path)
        rows = read_conll_rows(path, lines)
        tags = iter(t for sent in self.tag([[line.split()[0] for line in sent] for sent in rows]) for t in sent)
        sep = "\t" if "\t" in rows[0][0] else " "
        tagged = []
        for line in lines:
            line = line.rstrip()
            first = line.split(maxsplit=1)[0] if line.strip() else None
            tagged.append(line if first is None else f"{line}{sep}{'O' if first == '-DOCSTART-' else next(tags)}")
        return "\n".join(tagged) + "\n"


def mark_entities(text: str, entities: list[dict]) -> str:
    """The text as written, each entity bracketed with its type: 'Angela Merkel met Paris.' ->
    '[PER Angela Merkel] met [LOC Paris].' (entities as from `tag_text`: character offsets into the text)."""
    out, i = [], 0
    for e in sorted(entities, key=lambda e: e["start"]):
        out += [text[i:e["start"]], f"[{e['type']} {text[e['start']:e['end']]}]"]
        i = e["end"]
    return "".join(out) + text[i:]


def render_plain(words: list[str], tags: list[str]) -> str:
    """'[PER Angela Merkel] met [LOC Paris] .': entities in brackets with their type."""
    out, i = [], 0
    for kind, start, end in spans(tags):
        out += words[i:start] + [f"[{kind} " + " ".join(words[start:end]) + "]"]
        i = end
    return " ".join(out + words[i:])


RUNNER = NERTagger
