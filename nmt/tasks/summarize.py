"""Abstractive summarisation: documents to word ids with per-document OOV extensions, the training task,
beam search with length limits and n-gram blocking, and ROUGE (rouge-score, Porter stemming).

Targets are lowercased words. A target word outside the vocabulary that also occurs in its source gets the
source word's extended id (so the pointer learns to copy it); otherwise it is <unk>.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from nmt import checkpoint as ckpt_io
from nmt.config import (SUMMARIZE_PRESETS, SummarizerConfig, SummaryDataConfig, SummaryDecodeConfig, SummarySetup)
from nmt.data import DataError, bucket_batches, pad
from nmt.decoding import Hypothesis, beam_search, greedy
from nmt.metrics import rouge
from nmt.models.pointer import PointerGenerator
from nmt.tasks.base import Runner, Task, Validation, batch_work
from nmt.tokenizers import BOS, EOS, PAD, UNK, VocabTokenizer

TASK = "summarize"
SETUP, PRESETS = SummarySetup, SUMMARIZE_PRESETS


@dataclass
class Example:
    src: list[int]           # vocabulary ids, OOV = <unk>
    src_ext: list[int]       # extended ids
    oovs: list[str]          # the document's out-of-vocabulary words, in extended-id order
    tgt: list[int] | None    # extended target ids (copyable OOVs), or None at inference
    document: str = ""       # the text as given (its spellings restore the summary's casing)


@dataclass
class SummaryBatch:
    src: torch.Tensor        # (B, S)
    src_ext: torch.Tensor    # (B, S)
    lengths: torch.Tensor    # (B,)
    num_oov: int
    tgt_in: torch.Tensor | None = None    # (B, T) <s> + target
    tgt_out: torch.Tensor | None = None   # (B, T) target + </s>
    index: list[int] = field(default_factory=list)


def make_example(tokenizer: VocabTokenizer, document: str, summary: str | None, data: SummaryDataConfig) -> Example:
    words = VocabTokenizer.words(document)[: data.max_src_len]
    src_ext, oovs = tokenizer.encode_extended(words)
    src = [i if i < tokenizer.vocab_size else UNK for i in src_ext]
    tgt = None
    if summary is not None:
        v = tokenizer.vocab_size
        tgt = [tokenizer.stoi.get(w, v + oovs.index(w) if w in oovs else UNK)
               for w in VocabTokenizer.words(summary)[: data.max_tgt_len]]
    return Example(src, src_ext, oovs, tgt, document if summary is None else "")


def make_batch(examples: list[Example], index: list[int]) -> SummaryBatch:
    chosen = [examples[i] for i in index]
    src, lengths = pad([e.src for e in chosen])
    src_ext, _ = pad([e.src_ext for e in chosen])
    batch = SummaryBatch(src, src_ext, lengths, max(len(e.oovs) for e in chosen), index=list(index))
    if chosen[0].tgt is not None:
        batch.tgt_in, _ = pad([[BOS] + e.tgt for e in chosen])
        batch.tgt_out, _ = pad([e.tgt + [EOS] for e in chosen])
    return batch


class SummaryTask(Task):
    name = TASK

    def __init__(self, setup: SummarySetup, tokenizer: VocabTokenizer, train_pairs, valid, meta: dict | None = None):
        """train_pairs: [(document, summary)]; valid: [(document, [reference, ...])]."""
        self.setup, self.tokenizer, self.meta = setup, tokenizer, meta or {}
        self.train = [make_example(tokenizer, d, s, setup.data) for d, s in train_pairs]
        self.train = [e for e in self.train if e.src and e.tgt]
        self.valid = valid

    def batches(self, epoch: int) -> list[SummaryBatch]:
        c = self.setup.train
        lengths = [len(e.src) for e in self.train]
        return [make_batch(self.train, g) for g in bucket_batches(lengths, c.batch_tokens, c.batch_size, True,
                                                                   c.seed + epoch)]

    def loss(self, model: PointerGenerator, batch: SummaryBatch):
        logp, cov_loss = model(batch.src, batch.lengths, batch.tgt_in, batch.src_ext, batch.num_oov)  # (B, T, X)
        mask = batch.tgt_out != PAD
        tgt = batch.tgt_out
        if not model.summary_config.pointer:    # no copying: a copyable OOV target can only be <unk>
            tgt = tgt.masked_fill(tgt >= model.config.tgt_vocab_size, UNK)
        nll = -logp.gather(2, tgt[..., None]).squeeze(2)[mask].sum()
        tokens = int(mask.sum())
        loss = nll / tokens
        if model.summary_config.coverage:
            loss = loss + model.summary_config.coverage_weight * cov_loss[mask].sum() / tokens
        return loss, {"tokens": tokens, "nll": float(nll.detach())}

    def validate(self, model: PointerGenerator) -> Validation:
        summarizer = Summarizer(model, self.tokenizer, self.setup)
        hyps = summarizer.summarize([d for d, _ in self.valid], self.setup.decode)
        scores = rouge([r for _, r in self.valid], hyps)
        samples = [(self.valid[i][1][0], hyps[i]) for i in range(min(3, len(hyps)))]
        metrics = {f"rouge{k}": scores[k] for k in ("1", "2", "L")} | {"words": scores["words"]}
        return Validation(metrics, scores["1"], samples)

    def make_checkpoint(self, model: PointerGenerator) -> ckpt_io.Checkpoint:
        return self.checkpoint_of(model, model.summary_config, {"words": self.tokenizer})


class Summarizer(Runner):
    """Documents in, one summary each, in order; empty documents give empty summaries."""
    task, parts = TASK, (PointerGenerator, SummarizerConfig, "words", SummarySetup)
    model: PointerGenerator
    tokenizer: VocabTokenizer
    setup: SummarySetup

    @batch_work
    @torch.inference_mode()
    def summarize_hyps(self, documents: list[str], decode: SummaryDecodeConfig) -> list[tuple[Hypothesis, Example]]:
        """The best hypothesis (tokens in extended ids, attention over the source) and the encoded document."""
        self.model.eval()
        examples = [make_example(self.tokenizer, d, None, self.setup.data) for d in documents]
        results: list = [(Hypothesis([], 0.0), e) for e in examples]
        real = [i for i, e in enumerate(examples) if e.src]
        for group in bucket_batches([len(examples[i].src) for i in real], batch_size=decode.batch_size, shuffle=False):
            index = [real[g] for g in group]
            batch = make_batch(examples, index)
            args = dict(bos=BOS, eos=EOS, max_len=decode.max_len, keep_attention=True,
                        encode_args=(batch.src_ext, batch.num_oov))
            if decode.beam > 1 or decode.min_len or decode.no_repeat_ngram:     # beam 1: greedy, constraints kept
                hyps = beam_search(self.model, batch.src, batch.lengths, beam=decode.beam, alpha=decode.length_penalty,
                                   min_len=decode.min_len, no_repeat_ngram=decode.no_repeat_ngram, **args)
            else:
                hyps = greedy(self.model, batch.src, batch.lengths, **args)
            for i, h in zip(index, hyps):
                results[i] = (h[0], examples[i])
        return results

    def summarize(self, documents: list[str], decode: SummaryDecodeConfig) -> list[str]:
        """One summary per document, cased as the document (else the training text) spells its words."""
        return [self.text(h, e) for h, e in self.summarize_hyps(documents, decode)]

    def text(self, hyp: Hypothesis, example: Example) -> str:
        return self.tokenizer.decode(hyp.tokens, example.oovs, example.document)

    def copied(self, hyp: Hypothesis, example: Example) -> list[tuple[str, bool]]:
        """Each output word (cased as in `text`) and whether it was copied: outside the vocabulary, or present in
        the source."""
        words = self.tokenizer.decode_words(hyp.tokens, example.oovs, example.document)
        source = set(example.src_ext)
        return [(w, i >= self.tokenizer.vocab_size or i in source) for w, i in zip(words, hyp.tokens)]


def learn_casing(ckpt: ckpt_io.Checkpoint, corpus: str, data_dir=None) -> None:
    """Record in a summariser checkpoint the commonest spelling of each vocabulary word in the corpus's training
    documents and summaries (what training records now); for checkpoints trained without it."""
    state = ckpt.tokenizers.get("words")
    if ckpt.task != TASK or not isinstance(state, dict) or state.get("kind") != "vocab":
        raise DataError(f"casing is learnt for a summarize checkpoint, not a {ckpt.task} one")
    pairs = read_pairs(corpus, "train", data_dir)
    texts = (text for doc, summary in pairs for text in [doc, *([summary] if isinstance(summary, str) else summary)])
    spellings = VocabTokenizer.spellings(texts)
    ckpt.tokenizers["words"] = VocabTokenizer(list(state["itos"]), spellings).to_state()


def lead_baseline(documents: list[str], words: int) -> list[str]:
    """The first `words` words of each document (the standard extractive baseline)."""
    return [" ".join(d.split()[:words]) for d in documents]


def train(setup: SummarySetup, train_pairs, valid, run_dir: str | Path, callbacks=(), meta: dict | None = None):
    """Train (or resume) on [(document, summary)], early stopping on ROUGE-1 against valid [(document, refs)]."""
    from nmt.runs import fit_run, start_run
    setup, toks = start_run(setup, run_dir, TASK, SETUP, callbacks)
    tokenizer = toks["words"] if toks else VocabTokenizer.train((t for pair in train_pairs for t in pair),
                                                                setup.data.vocab_size, setup.data.min_count)
    c = setup.model.seq2seq
    c.src_vocab_size = c.tgt_vocab_size = tokenizer.vocab_size
    task = SummaryTask(setup, tokenizer, train_pairs, valid, meta)
    return fit_run(PointerGenerator(setup.model), task, setup.train, run_dir, callbacks)


def read_pairs(corpus: str | None = None, split: str = "train", data_dir=None, jsonl: str | Path | None = None,
               src_field: str | None = None, tgt_fields: Sequence[str] | None = None) -> list[tuple[str, list[str]]]:
    """[(document, [reference, ...])] from a named corpus or a JSONL file.

    A named JSONL corpus (AESLC) knows its fields: the target summary on train, the annotators' references on
    other splits; `src_field` / `tgt_fields` override them. A named parallel corpus (Gigaword) has one reference.
    """
    from nmt import corpora, data
    if corpus is not None:
        files = corpora.corpus_files(corpus, split, data_dir)
        if files["kind"] == "parallel":
            return [(s, [t]) for s, t in data.read_parallel(*files["paths"])]
        if files["kind"] != "jsonl":
            raise DataError(f"corpus '{corpus}' holds no documents with summaries")
        jsonl, fields = files["paths"][0], files["fields"]
        src_field = src_field or fields["source"]
        tgt_fields = tgt_fields or ((fields["target"],) if split == "train" else fields["references"])
    if jsonl is None or not src_field or not tgt_fields:
        raise DataError("give a corpus, or a JSONL file with its document field and summary fields")
    records = data.read_jsonl(jsonl, (src_field,) + tuple(tgt_fields))
    return [(r[src_field], [r[f] for f in tgt_fields]) for r in records]


def evaluation_pairs(corpus: str | None = None, split: str = "dev", data_dir=None, jsonl: str | Path | None = None,
                     src_field: str | None = None, ref_fields: Sequence[str] | None = None):
    """Documents and references to score, and the name of an extra reference set or None.

    A named JSONL corpus (AESLC) brings its annotators' references and, as the extra set scored on its own rows,
    its original summaries (the `subject_line` field). Otherwise as `read_pairs`.
    """
    from nmt import corpora
    fields = corpora.FIELDS.get(corpus or "")
    if not fields:
        return read_pairs(corpus, split, data_dir, jsonl, src_field, ref_fields), None
    refs = tuple(ref_fields or fields["references"])
    extra = fields["target"] if fields["target"] not in refs else None
    pairs = read_pairs(corpus, split, data_dir, src_field=src_field, tgt_fields=refs + ((extra,) if extra else ()))
    return pairs, extra


def evaluate(summarizer: Summarizer, pairs: list[tuple[str, list[str]]], decode: SummaryDecodeConfig,
             leads: Sequence[int] = (), extra: str | None = None) -> dict[str, dict]:
    """ROUGE of the model and of lead-N baselines against each document's references. With `extra` (the name of
    the last reference of each document), that reference is scored on its own rows ("<system> vs <extra>")."""
    documents = [d for d, _ in pairs]
    systems = {"model": summarizer.summarize(documents, decode)}
    for n in leads:
        systems[f"lead-{n}"] = lead_baseline(documents, n)
    n_refs = len(pairs[0][1]) - (1 if extra else 0)
    rows = {}
    for name, hyps in systems.items():
        rows[name] = rouge([refs[:n_refs] for _, refs in pairs], hyps)
        if extra:
            rows[f"{name} vs {extra}"] = rouge([refs[n_refs:] for _, refs in pairs], hyps)
    return rows


RUNNER = Summarizer
