"""Abstractive summarisation: documents to word ids with per-document OOV extensions, the training task,
beam search with length limits and n-gram blocking, and ROUGE (rouge-score, Porter stemming).

Targets are lowercased words. A target word outside the vocabulary that also occurs in its source gets the
source word's extended id (so the pointer learns to copy it); otherwise it is <unk>.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from nmt import checkpoint as ckpt_io
from nmt.config import (OptimConfig, SummarizerConfig, SummaryDataConfig, SummaryDecodeConfig, TrainConfig,
                        from_dict, to_dict)
from nmt.data import bucket_batches, pad
from nmt.decoding import Hypothesis, beam_search, greedy
from nmt.models.pointer import PointerGenerator
from nmt.tokenizers import BOS, EOS, PAD, UNK, VocabTokenizer, tokenizer_from_state
from nmt.training import Validation

TASK = "summarize"


@dataclass
class SummarySetup:
    model: SummarizerConfig = field(default_factory=SummarizerConfig)
    data: SummaryDataConfig = field(default_factory=SummaryDataConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        batch_tokens=0, batch_size=32, label_smoothing=0.0, eval_every=450, patience=6, max_len=0,
        optim=OptimConfig(lr=1e-3, clip_norm=2.0, schedule="plateau", plateau_patience=1)))
    decode: SummaryDecodeConfig = field(default_factory=lambda: SummaryDecodeConfig(beam=1))   # for validation


@dataclass
class Example:
    src: list[int]           # vocabulary ids, OOV = <unk>
    src_ext: list[int]       # extended ids
    oovs: list[str]          # the document's out-of-vocabulary words, in extended-id order
    tgt: list[int] | None    # extended target ids (copyable OOVs), or None at inference


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
    return Example(src, src_ext, oovs, tgt)


def make_batch(examples: list[Example], index: list[int]) -> SummaryBatch:
    chosen = [examples[i] for i in index]
    src, lengths = pad([e.src for e in chosen])
    src_ext, _ = pad([e.src_ext for e in chosen])
    batch = SummaryBatch(src, src_ext, lengths, max(len(e.oovs) for e in chosen), index=list(index))
    if chosen[0].tgt is not None:
        batch.tgt_in, _ = pad([[BOS] + e.tgt for e in chosen])
        batch.tgt_out, _ = pad([e.tgt + [EOS] for e in chosen])
    return batch


class SummaryTask:
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
        summarizer = Summarizer(model, self.tokenizer, self.setup.data)
        hyps = summarizer.summarize([d for d, _ in self.valid], self.setup.decode)
        scores = rouge([r for _, r in self.valid], hyps)
        samples = [(self.valid[i][1][0], hyps[i]) for i in range(min(3, len(hyps)))]
        metrics = {f"rouge{k}": scores[k] for k in ("1", "2", "L")} | {"words": scores["words"]}
        return Validation(metrics, scores["1"], samples)

    def make_checkpoint(self, model: PointerGenerator) -> ckpt_io.Checkpoint:
        return ckpt_io.Checkpoint(TASK, {"model": to_dict(model.summary_config), "setup": to_dict(self.setup)},
                                  model.state_dict(), tokenizers={"words": self.tokenizer.to_state()},
                                  meta=dict(self.meta))


class Summarizer:
    """Documents in, one summary each, in order; empty documents give empty summaries."""

    def __init__(self, model: PointerGenerator, tokenizer: VocabTokenizer, data: SummaryDataConfig):
        self.model, self.tokenizer, self.data = model, tokenizer, data

    @classmethod
    def load(cls, path: str | Path) -> "Summarizer":
        ckpt = ckpt_io.load(path, task=TASK)
        model = PointerGenerator(from_dict(SummarizerConfig, ckpt.config["model"]))
        model.load_state_dict(ckpt_io.state_dict_float(ckpt.model))
        setup = from_dict(SummarySetup, ckpt.config["setup"])
        runner = cls(model.eval(), tokenizer_from_state(ckpt.tokenizers["words"]), setup.data)
        runner.checkpoint = ckpt
        return runner

    @torch.inference_mode()
    def summarize_hyps(self, documents: list[str], decode: SummaryDecodeConfig) -> list[tuple[Hypothesis, Example]]:
        """The best hypothesis (tokens in extended ids, attention over the source) and the encoded document."""
        self.model.eval()
        examples = [make_example(self.tokenizer, d, None, self.data) for d in documents]
        results: list = [(Hypothesis([], 0.0), e) for e in examples]
        real = [i for i, e in enumerate(examples) if e.src]
        for group in bucket_batches([len(examples[i].src) for i in real], batch_size=decode.batch_size, shuffle=False):
            index = [real[g] for g in group]
            batch = make_batch(examples, index)
            args = dict(bos=BOS, eos=EOS, max_len=decode.max_len, keep_attention=True,
                        encode_args=(batch.src_ext, batch.num_oov))
            if decode.beam > 1:
                hyps = beam_search(self.model, batch.src, batch.lengths, beam=decode.beam, alpha=decode.length_penalty,
                                   min_len=decode.min_len, no_repeat_ngram=decode.no_repeat_ngram, **args)
            else:
                hyps = greedy(self.model, batch.src, batch.lengths, **args)
            for i, h in zip(index, hyps):
                results[i] = (h[0], examples[i])
        return results

    def summarize(self, documents: list[str], decode: SummaryDecodeConfig) -> list[str]:
        return [self.tokenizer.decode(h.tokens, e.oovs) for h, e in self.summarize_hyps(documents, decode)]

    def copied(self, hyp: Hypothesis, example: Example) -> list[tuple[str, bool]]:
        """Each output word and whether it was copied: outside the vocabulary, or present in the source."""
        words = self.tokenizer.decode_words(hyp.tokens, example.oovs)
        source = set(example.src_ext)
        return [(w, i >= self.tokenizer.vocab_size or i in source) for w, i in zip(words, hyp.tokens)]


def rouge(references: list[list[str]], hypotheses: list[str]) -> dict:
    """ROUGE-1/2/L F1 (in %) with stemming; each hypothesis scored against each of its references, averaged.

    Also the mean hypothesis length in words.
    """
    from rouge_score import rouge_scorer
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    totals = {"1": 0.0, "2": 0.0, "L": 0.0}
    for refs, hyp in zip(references, hypotheses):
        for ref in refs:
            s = scorer.score(ref, hyp)
            for k in totals:
                totals[k] += s[f"rouge{k}"].fmeasure / len(refs)
    n = max(1, len(hypotheses))
    result = {k: 100 * v / n for k, v in totals.items()}
    result["words"] = sum(len(h.split()) for h in hypotheses) / n
    return result


def lead_baseline(documents: list[str], words: int) -> list[str]:
    """The first `words` words of each document (the standard extractive baseline)."""
    return [" ".join(d.split()[:words]) for d in documents]


def make_setup(preset: str = "base", config_file: str | None = None, overrides: dict | None = None) -> SummarySetup:
    from nmt.config import SUMMARIZE_PRESETS, build_setup
    return build_setup(SummarySetup, SUMMARIZE_PRESETS, preset, config_file, overrides)


def train(setup: SummarySetup, train_pairs, valid, run_dir: str | Path, callbacks=(), meta: dict | None = None):
    """Train (or resume) on [(document, summary)], early stopping on ROUGE-1 against valid [(document, refs)]."""
    from nmt.training import fit_run, start_run
    setup, toks = start_run(setup, run_dir, TASK, SummarySetup)
    tokenizer = toks["words"] if toks else VocabTokenizer.train((t for pair in train_pairs for t in pair),
                                                                setup.data.vocab_size, setup.data.min_count)
    c = setup.model.seq2seq
    c.src_vocab_size = c.tgt_vocab_size = tokenizer.vocab_size
    task = SummaryTask(setup, tokenizer, train_pairs, valid, meta)
    return fit_run(PointerGenerator(setup.model), task, setup.train, run_dir, callbacks)

def read_pairs(corpus: str | None = None, split: str = "train", data_dir=None, jsonl: str | Path | None = None,
               src_field: str = "email_body", tgt_fields: tuple[str, ...] = ("subject_line",),
               src_file: str | Path | None = None, tgt_file: str | Path | None = None) -> list[tuple[str, list[str]]]:
    """[(document, [reference, ...])] from a named corpus, a JSONL file, or a pair of line-aligned text files."""
    from nmt import data
    if corpus is not None:
        files = data.corpus_files(corpus, split, data_dir)
        if files["kind"] == "jsonl":
            jsonl = files["paths"][0]
        else:
            src_file, tgt_file = files["paths"]
    if jsonl is not None:
        records = data.read_jsonl(jsonl, (src_field,) + tuple(tgt_fields))
        return [(r[src_field], [r[f] for f in tgt_fields]) for r in records]
    if src_file is None or tgt_file is None:
        raise data.DataError("give a corpus, a JSONL file, or both a source and a target file")
    return [(s, [t]) for s, t in data.read_parallel(src_file, tgt_file)]
