"""Pointer-generator with coverage (See et al. 2017) on top of the attention encoder-decoder.

Pointer: at each step a generation probability p_gen = sigmoid(w [c_t; s_t; x_t] + b) mixes the vocabulary
distribution with the attention over the source, P(w) = p_gen P_vocab(w) + (1 - p_gen) sum_{i: x_i = w} a_t,i,
over an extended vocabulary where each document's out-of-vocabulary words get ids from V upwards.
Coverage: c_t = sum_{t' < t} a_t' enters the additive attention score, v^T tanh(W_k h_i + W_q s_t + w_c c_t,i),
and the coverage loss sum_i min(a_t,i, c_t,i) penalises attending again where attention has already been.

The decoder RNN still runs over all T steps in one fused call (no input feeding); only the attention, which
depends on the coverage so far, loops over steps. Decoding code sees the usual encode / decode / reorder
interface; `decode` returns log-probabilities over the extended vocabulary in place of logits.
Shapes: B batch, S source, T target, V vocabulary, X = V + out-of-vocabulary words of the batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nmt.config import SummarizerConfig
from nmt.models.attention import additive_scores
from nmt.models.seq2seq import EncoderOut, Seq2Seq

UNK = 3


@dataclass
class PointerEncoderOut(EncoderOut):
    src_ext: Tensor = None    # (B, S) source ids in the extended vocabulary
    num_oov: int = 0          # out-of-vocabulary words in the batch (X - V)


class PointerGenerator(Seq2Seq):
    def __init__(self, config: SummarizerConfig):
        super().__init__(config.seq2seq)
        self.summary_config = config
        c = config.seq2seq
        if config.coverage and c.attention != "bahdanau":
            raise ValueError("coverage needs bahdanau (additive) attention")
        memory = self.encoder.output_size
        self.cov_proj = nn.Linear(1, self.attention.key_proj.out_features, bias=False) if config.coverage else None
        self.gen = nn.Linear(memory + c.decoder_hidden + c.embed_size, 1) if config.pointer else None

    def use_int8(self, parts: dict) -> None:
        """Seq2Seq's int8 products (encoder, key and query projections, combination and output layers, bridge),
        and the decoder, which this model runs as one layer call, on `Int8RNN`."""
        super().use_int8(parts)
        self.decoder.use_int8()

    def encode(self, src: Tensor, lengths: Tensor, src_ext: Tensor | None = None, num_oov: int = 0):
        """src (B, S) ids (OOV = <unk>), src_ext (B, S) extended ids -> encoder output and the initial state."""
        enc, (rnn_state, _) = super().encode(src, lengths)
        enc = PointerEncoderOut(enc.memory, enc.keys, enc.mask, enc.lengths,
                                src if src_ext is None else src_ext, num_oov)
        coverage = enc.memory.new_zeros(src.shape) if self.cov_proj is not None else None   # (B, S)
        return enc, (rnn_state, coverage)

    def decode(self, enc: PointerEncoderOut, y: Tensor, state) -> tuple[Tensor, tuple, Tensor]:
        """y (B, T) previous tokens (extended ids allowed) -> log-probabilities (B, T, X), state, weights (B, T, S)."""
        logp, state, weights, _ = self.decode_with_coverage(enc, y, state)
        return logp, state, weights

    def decode_with_coverage(self, enc: PointerEncoderOut, y: Tensor, state):
        """As `decode`, plus the coverage loss per step (B, T) (zeros without coverage)."""
        rnn_state, coverage = state
        vocab = self.config.tgt_vocab_size
        emb = self.emb_dropout(self.tgt_embed(y.masked_fill(y >= vocab, UNK)))               # (B, T, E)
        out, rnn_state = self.decoder(emb, hx=rnn_state)                                    # (B, T, H)
        if self.cov_proj is None:
            context, weights = self.attention(out, enc.keys, enc.memory, enc.mask)          # (B, T, M), (B, T, S)
            cov_loss = out.new_zeros(out.shape[:2])
        else:
            weights, cov_loss, coverage = self._coverage_attention(out, enc, coverage)
            context = weights @ enc.memory                                                  # (B, T, M)
        att_vec = torch.tanh(self.combine(torch.cat([out, context], dim=-1)))              # (B, T, E)
        logits = self.output(self.dropout(att_vec))                                         # (B, T, V)
        if self.gen is None:
            return torch.log_softmax(logits.float(), -1), (rnn_state, coverage), weights, cov_loss
        p_gen = torch.sigmoid(self.gen(torch.cat([context, out, emb], dim=-1))).float()    # (B, T, 1)
        probs = torch.softmax(logits.float(), -1) * p_gen                                   # (B, T, V)
        probs = torch.cat([probs, probs.new_zeros(*probs.shape[:2], enc.num_oov)], dim=-1)  # (B, T, X)
        index = enc.src_ext[:, None, :].expand(-1, y.size(1), -1)                           # (B, T, S)
        probs = probs.scatter_add(2, index, (1 - p_gen) * weights.float())
        return torch.log(probs.clamp_min(1e-12)), (rnn_state, coverage), weights, cov_loss

    def _coverage_attention(self, out: Tensor, enc: PointerEncoderOut, coverage: Tensor):
        """Additive attention with the coverage term, one step at a time -> weights (B, T, S), loss (B, T), coverage."""
        att = self.attention
        queries = att.query_proj(out)                                                       # (B, T, A)
        weights, losses = [], []
        for t in range(out.size(1)):
            query = queries[:, t, None] + self.cov_proj(coverage[..., None])                  # (B, S, A)
            scores = additive_scores(query, enc.keys, att.v.weight[0]).masked_fill(~enc.mask, float("-inf"))
            a = torch.softmax(scores, dim=-1)
            losses.append(torch.minimum(a, coverage).sum(-1))                                 # (B,)
            coverage = coverage + a
            weights.append(a)
        return torch.stack(weights, 1), torch.stack(losses, 1), coverage

    def forward(self, src, src_lengths, tgt_in, src_ext=None, num_oov: int = 0):
        """Teacher forcing -> log-probabilities (B, T, X) and the coverage loss per step (B, T)."""
        enc, state = self.encode(src, src_lengths, src_ext, num_oov)
        logp, _, _, cov_loss = self.decode_with_coverage(enc, tgt_in, state)
        return logp, cov_loss

    @staticmethod
    def reorder_encoder(enc: PointerEncoderOut, index: Tensor) -> PointerEncoderOut:
        return PointerEncoderOut(enc.memory[index], enc.keys[index], enc.mask[index], enc.lengths[index],
                                 enc.src_ext[index], enc.num_oov)
