"""Translation: build, train and run attention encoder-decoders.

`TranslationTask` plugs a parallel corpus into the shared `Trainer`; `Translator` turns a checkpoint into a
function from lines to lines. Neither knows about the terminal.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from nmt import checkpoint as ckpt_io
from nmt import metrics
from nmt.config import (TRANSLATE_PRESETS, DecodeConfig, Seq2SeqConfig, TokenizerConfig, TranslationSetup)
from nmt.data import (Batch, EncodedPairs, LazyBatches, ParallelCorpus, bucket_batches, make_seq2seq_batch, pad)
from nmt.decoding import Hypothesis, beam_search, greedy
from nmt.losses import smoothed_cross_entropy
from nmt.models.seq2seq import Seq2Seq
from nmt.tasks.base import Runner, Task, Validation, batch_work, model_weights
from nmt.tokenizers import BOS, EOS, PAD, SentencePieceTokenizer, tokenizer_from_state

TASK = "translate"
SETUP, PRESETS = TranslationSetup, TRANSLATE_PRESETS


def smoothed_loss(logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> tuple[torch.Tensor, dict]:
    """Label-smoothed cross-entropy averaged over real target tokens (target 0 = padding).

    logits (B, T, V) with target (B, T), or logits (N, V) of the real tokens only (the model's `select`).
    Returns the loss and {"tokens", "nll"} (nll summed, for perplexity). Only real tokens reach the (fused)
    softmax: padding costs nothing in the largest layer.
    """
    mask = target != PAD
    real = (logits if logits.dim() == 2 else logits[mask]).float()                    # (N, V)
    gold = target[mask]                                                               # (N,)
    loss, nll = smoothed_cross_entropy(real, gold, smoothing)
    nll = float(nll.sum())
    tokens = int(gold.numel())
    return loss / max(1, tokens), {"tokens": tokens, "nll": nll}


def train_tokenizers(pairs: list[tuple[str, str]], config: TokenizerConfig) -> dict:
    """SentencePiece models for a parallel corpus: one joint model, or one per side."""
    if config.joint:
        joint = SentencePieceTokenizer.train((s for pair in pairs for s in pair), config.vocab_size,
                                             config.model_type, config.character_coverage)
        return {"src": joint, "tgt": joint}
    return {side: SentencePieceTokenizer.train((p[i] for p in pairs), config.vocab_size, config.model_type,
                                               config.character_coverage)
            for i, side in enumerate(("src", "tgt"))}


class TranslationTask(Task):
    name = TASK

    def __init__(self, setup: TranslationSetup, tokenizers: dict, train_pairs: ParallelCorpus | list[tuple[str, str]],
                 valid_pairs: list[tuple[str, str]], meta: dict | None = None):
        self.setup, self.tokenizers, self.meta = setup, tokenizers, meta or {}
        src_tok, tgt_tok = tokenizers["src"], tokenizers["tgt"]
        corpus = train_pairs if isinstance(train_pairs, ParallelCorpus) else ParallelCorpus.from_pairs(train_pairs)
        key = hashlib.sha1(src_tok.to_state()["model"].numpy().tobytes()
                           + tgt_tok.to_state()["model"].numpy().tobytes()).hexdigest()
        self.train = EncodedPairs(corpus, src_tok.encode_batch, tgt_tok.encode_batch, setup.train.max_len, key)
        self.lengths = self.train.lengths
        self.valid = valid_pairs
        self.valid_ids = list(zip(src_tok.encode_batch([s for s, _ in valid_pairs]),
                                  tgt_tok.encode_batch([t for _, t in valid_pairs])))

    def batches(self, epoch: int) -> LazyBatches:
        c = self.setup.train
        groups = bucket_batches(self.lengths, c.batch_tokens, c.batch_size, shuffle=True, seed=c.seed + epoch)
        return LazyBatches(groups, lambda group: make_seq2seq_batch(self.train, group))

    def loss(self, model: Seq2Seq, batch: Batch):
        real = batch.tgt_out != PAD                                                    # (B, T)
        logits = model(batch.src, batch.src_lengths, batch.tgt_in, select=real)      # (N, V)
        return smoothed_loss(logits, batch.tgt_out, self.setup.train.label_smoothing)

    def validate(self, model: Seq2Seq) -> Validation:
        nll, tokens = 0.0, 0
        for group in bucket_batches([len(s) for s, _ in self.valid_ids], batch_size=128, shuffle=False):
            batch = make_seq2seq_batch(self.valid_ids, group)
            _, stats = smoothed_loss(model(batch.src, batch.src_lengths, batch.tgt_in), batch.tgt_out, 0.0)
            nll, tokens = nll + stats["nll"], tokens + stats["tokens"]
        translator = Translator(model, self.tokenizers["src"], self.tokenizers["tgt"])
        hyps = translator.translate([s for s, _ in self.valid], self.setup.decode)
        refs = [t for _, t in self.valid]
        bleu = metrics.bleu(hyps, refs)
        samples = [(self.valid[i][0], refs[i], hyps[i]) for i in range(min(3, len(hyps)))]
        return Validation({"valid_ppl": metrics.perplexity(nll / max(1, tokens)), "bleu": bleu.score}, bleu.score,
                          samples)

    def make_checkpoint(self, model: Seq2Seq) -> ckpt_io.Checkpoint:
        return self.checkpoint_of(model, model.config, self.tokenizers)


class Translator(Runner):
    """Lines in, lines out. Empty lines stay empty; lines longer than `decode.max_src_tokens` are truncated."""
    task = TASK

    def __init__(self, model: Seq2Seq, src_tok, tgt_tok):
        self.model, self.src_tok, self.tgt_tok = model, src_tok, tgt_tok
        self.truncated = 0            # lines cut in the last call

    @classmethod
    def from_checkpoint(cls, ckpt: ckpt_io.Checkpoint) -> "Translator":
        toks = {k: tokenizer_from_state(v) for k, v in ckpt.tokenizers.items()}
        return cls(model_weights(ckpt, Seq2Seq, Seq2SeqConfig), toks["src"], toks["tgt"])

    @batch_work
    def translate_hyps(self, lines: list[str], decode: DecodeConfig,
                       keep_attention: bool = False) -> list[list[Hypothesis]]:
        """n-best hypotheses for every line (an empty list for an empty line), in input order."""
        ids = [self.src_tok.encode(line) if line.strip() else [] for line in lines]
        self.truncated = sum(len(x) > decode.max_src_tokens for x in ids)
        ids = [x[: decode.max_src_tokens] for x in ids]
        results: list[list[Hypothesis]] = [[] for _ in lines]
        real = [i for i, x in enumerate(ids) if x]
        budget = decode.greedy_batch_tokens if decode.beam == 1 else decode.beam_batch_tokens
        for group in bucket_batches([len(ids[i]) for i in real], max_tokens=budget, shuffle=False):
            index = [real[g] for g in group]
            src, lengths = pad([ids[i] for i in index])
            if decode.beam == 1:
                out = greedy(self.model, src, lengths, BOS, EOS, decode.max_len_ratio, keep_attention)
            else:
                out = beam_search(self.model, src, lengths, BOS, EOS, decode.beam, decode.length_penalty,
                                  decode.max_len_ratio, decode.n_best, keep_attention)
            for i, hyps in zip(index, out):
                results[i] = hyps
        return results

    def translate(self, lines: list[str], decode: DecodeConfig | None = None) -> list[str]:
        """The best translation of every line."""
        decode = decode or DecodeConfig()
        return [self.tgt_tok.decode(h[0].tokens) if h else "" for h in self.translate_hyps(lines, decode)]

    @torch.inference_mode()
    def confidence(self, lines: list[str], outputs: list[list[int]], decode: DecodeConfig) -> list[float | None]:
        """The model's mean log-probability per output token (</s> included) of each line's output, teacher-forced:
        near 0 when the model is sure, -2 and below on text unlike its training data (None for an empty line)."""
        self.model.eval()
        pairs = [(self.src_tok.encode(line)[: decode.max_src_tokens], out) for line, out in zip(lines, outputs)]
        real = [i for i, (src, _) in enumerate(pairs) if src]
        result: list[float | None] = [None] * len(lines)
        for group in bucket_batches([len(pairs[i][0]) for i in real], batch_size=64, shuffle=False):
            index = [real[g] for g in group]
            src, lengths = pad([pairs[i][0] for i in index])
            tgt_in, _ = pad([[BOS] + pairs[i][1] for i in index])                        # (B, T)
            tgt_out, _ = pad([pairs[i][1] + [EOS] for i in index])                       # (B, T)
            mask = tgt_out != PAD
            logits = self.model(src, lengths, tgt_in, select=mask).float()               # (N, V) real tokens only
            token_logp = logits.gather(1, tgt_out[mask][:, None]).squeeze(1) - torch.logsumexp(logits, -1)  # (N,)
            for i, row in zip(index, token_logp.split(mask.sum(1).tolist())):
                result[i] = float(row.mean())
        return result

    def attention_view(self, line: str, hyp: Hypothesis, decode: DecodeConfig) -> dict:
        """What a picture of one translation's attention needs: the weights (T, S) as nested lists, the source
        pieces (as the model read them, truncated alike), the output pieces with </s>, and the translation."""
        source = self.src_tok.pieces(line)[: decode.max_src_tokens]
        target = [self.tgt_tok.id_to_piece(i) for i in hyp.tokens] + ["</s>"]
        weights = hyp.attention[:, : len(source)].float()                                   # (T, S)
        return {"weights": weights.tolist(), "source": source, "target": target,
                "translation": self.tgt_tok.decode(hyp.tokens)}


def build_model(setup: TranslationSetup, tokenizers: dict) -> Seq2Seq:
    config = setup.model
    config.src_vocab_size = tokenizers["src"].vocab_size
    config.tgt_vocab_size = tokenizers["tgt"].vocab_size
    config.tie_src_tgt = config.tie_src_tgt and tokenizers["src"] is tokenizers["tgt"]
    return Seq2Seq(config)


def train(setup: TranslationSetup, train_pairs, valid_pairs, run_dir: str | Path, callbacks=(),
          meta: dict | None = None):
    """Train on parallel pairs (or resume, when run_dir holds last.pt); returns (trainer state, run_dir)."""
    from nmt.runs import fit_run, main_tokenizers, start_run
    setup, toks = start_run(setup, run_dir, TASK, SETUP, callbacks)
    toks = toks or main_tokenizers(lambda: train_tokenizers(train_pairs, setup.tokenizer), setup.train.device)
    model = build_model(setup, toks)
    task = TranslationTask(setup, toks, train_pairs, valid_pairs, meta)
    return fit_run(model, task, setup.train, run_dir, callbacks)


RUNNER = Translator
