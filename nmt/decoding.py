"""Greedy and beam search, batched over sentences and beams.

Works on any model that offers `encode(src, lengths) -> (enc, state)`, `decode(enc, y, state) -> (logits, state,
weights)`, `reorder_encoder(enc, index)` and `reorder_state(state, index)`. No per-sentence Python loop: each step
advances all B*K hypotheses with one `decode` call. Shapes: B sentences, K beam, V vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Hypothesis:
    tokens: list[int]      # without BOS and EOS
    score: float           # length-normalised log-probability
    attention: Tensor | None = None   # (T, S) weights, one row per output token (and EOS)


def max_lengths(src_lengths: Tensor, ratio: float, max_len: int = 0, extra: int = 10) -> Tensor:
    """Per-sentence output cap: ratio * source length + extra, or a fixed max_len when it is > 0."""
    if max_len > 0:
        return torch.full_like(src_lengths, max_len)
    return (src_lengths.float() * ratio).long() + extra


def repeated_ngrams(history: Tensor, n: int, vocab: int) -> Tensor:
    """Tokens that would repeat an n-gram already in each row: history (R, t) -> ban mask (R, vocab)."""
    ban = torch.zeros(history.size(0), vocab)
    if n < 1 or history.size(1) < n:
        return ban.bool()
    windows = history.unfold(1, n, 1)                                                 # (R, W, n)
    if n == 1:
        match = torch.ones(windows.shape[:2])
    else:
        match = (windows[:, :, :-1] == history[:, None, history.size(1) - n + 1:]).all(-1).float()   # (R, W)
    return ban.scatter_add_(1, windows[:, :, -1], match) > 0


def topk_rows(x: Tensor, k: int, chunk: int = 64) -> tuple[Tensor, Tensor]:
    """The k largest values of each row of x (N, V) and their columns, as `x.topk(k, dim=-1)`.

    The k largest values of a row lie in the k chunks (of `chunk` columns) with the largest maxima, so one
    vectorised max over (N, V / chunk, chunk) narrows the search to k * chunk columns per row. On the CPU torch's
    topk and argmax read the rows element by element and cost several times this.
    """
    N, V = x.shape
    C = V // chunk
    if C < 4 * k or not x.is_contiguous():
        return x.topk(k, dim=-1)
    maxima = x.as_strided((N, C, chunk), (V, chunk, 1)).amax(-1)                   # (N, C)
    first = maxima.topk(k, dim=-1).indices * chunk                                   # (N, k)
    cols = (first[..., None] + torch.arange(chunk, device=x.device)).view(N, k * chunk)
    if C * chunk < V:                                                                # the short last chunk
        cols = torch.cat([cols, torch.arange(C * chunk, V, device=x.device).expand(N, -1)], 1)
    top, pos = x.gather(1, cols).topk(k, dim=-1)                                     # (N, k)
    return top, cols.gather(1, pos)


def length_penalty(lengths: Tensor, alpha: float) -> Tensor:
    """GNMT length penalty ((5 + |Y|) / 6) ** alpha (Wu et al. 2016); alpha 0 gives 1."""
    return ((5.0 + lengths.float()) / 6.0) ** alpha


@torch.inference_mode()
def greedy(model, src: Tensor, lengths: Tensor, bos: int, eos: int, max_len_ratio: float = 2.0,
           keep_attention: bool = False, max_len: int = 0, encode_args: tuple = ()) -> list[list[Hypothesis]]:
    """Argmax decoding; returns one hypothesis per sentence (as a one-element n-best list).

    Sentences leave the batch as soon as they end (their rows of the encoder output and state are dropped), so
    the steps after the shortest output cost only what the unfinished sentences need.
    """
    enc, state = model.encode(src, lengths, *encode_args)
    B = src.size(0)
    caps = max_lengths(lengths, max_len_ratio, max_len)
    steps = int(caps.max()) + 1                     # at most caps tokens, then EOS
    out = torch.full((B, steps), eos, dtype=torch.long)
    att_all = torch.zeros(B, steps, src.size(1)) if keep_attention else None          # (B, T, S)
    scores = torch.zeros(B)
    alive = torch.arange(B)                         # batch rows -> sentences
    y = torch.full((B, 1), bos, dtype=torch.long)
    for t in range(steps):
        logits, state, att = model.decode(enc, y, state)
        logits = logits[:, -1].float()                                                # (R, V)
        token = topk_rows(logits, 1)[1][:, 0]
        token = torch.where(caps[alive] <= t, torch.full_like(token, eos), token)
        logp = logits.gather(1, token[:, None]).squeeze(1) - torch.logsumexp(logits, -1)
        scores[alive] += logp
        out[alive, t] = token
        if keep_attention:
            att_all[alive, t] = att[:, -1]
        going = token != eos
        if not going.any():
            break
        if not going.all():                         # drop the finished sentences from the batch
            keep = going.nonzero().squeeze(1)
            enc, state = model.reorder_encoder(enc, keep), model.reorder_state(state, keep)
            alive, token = alive[keep], token[keep]
        y = token[:, None]
    tokens = out.tolist()
    results = []
    for b in range(B):
        seq = tokens[b][: tokens[b].index(eos)] if eos in tokens[b] else tokens[b]
        att = att_all[b, : len(seq) + 1, : int(lengths[b])] if keep_attention else None
        results.append([Hypothesis(seq, float(scores[b]), att)])
    return results


@dataclass
class _Rows:
    """The per-row state of a beam search: R sentences x K rows each, one hypothesis a row."""
    caps: Tensor              # (R*K,) most tokens before EOS is forced
    scores: Tensor            # (R*K,) running log-probabilities
    history: Tensor           # (R*K, t) tokens so far
    done: Tensor              # (R*K,) ended with EOS
    out_len: Tensor           # (R*K,) tokens before EOS
    y: Tensor                 # (R*K, 1) the last token
    att: Tensor | None        # (R*K, t, S) attention so far, when kept

    def take(self, index: Tensor) -> "_Rows":
        return _Rows(*(None if v is None else v[index] for v in vars(self).values()))


@torch.inference_mode()
def beam_search(model, src: Tensor, lengths: Tensor, bos: int, eos: int, beam: int = 5, alpha: float = 1.0,
                max_len_ratio: float = 2.0, n_best: int = 1, keep_attention: bool = False, min_len: int = 0,
                max_len: int = 0, no_repeat_ngram: int = 0, encode_args: tuple = ()) -> list[list[Hypothesis]]:
    """Batched beam search. Finished hypotheses stay in their beam slot and extend only with EOS at no cost;
    the final ranking divides each log-probability by the GNMT length penalty. EOS is barred before min_len
    tokens; with no_repeat_ngram = n, no hypothesis repeats an n-gram. A sentence whose K hypotheses all ended
    leaves the batch.

    Returns, per sentence, the n_best best hypotheses, best first.
    """
    if beam < 1:
        raise ValueError(f"beam must be at least 1, got {beam}")
    if not 1 <= n_best <= beam:
        raise ValueError(f"n-best must be between 1 and the beam size ({beam}), got {n_best}")
    B, K = src.size(0), beam
    enc, state = model.encode(src, lengths, *encode_args)
    flat = torch.arange(B).repeat_interleave(K)                                       # (B*K,)
    enc, state = model.reorder_encoder(enc, flat), model.reorder_state(state, flat)
    rows = _first_rows(max_lengths(lengths, max_len_ratio, max_len).repeat_interleave(K), B, K, bos)
    steps = int(rows.caps.max()) + 1                 # at most caps tokens, then EOS
    alive = torch.arange(B)                          # sentences still searching; the batch holds their K rows each
    finished: dict[int, _Rows] = {}
    for t in range(steps):
        logits, state, att = model.decode(enc, rows.y, state)
        logp = torch.log_softmax(logits[:, -1].float(), dim=-1)                     # (R*K, V)
        if no_repeat_ngram:
            logp[repeated_ngrams(rows.history, no_repeat_ngram, logp.size(-1))] = float("-inf")
        if t < min_len:
            logp[:, eos] = -1e9
        origin = _step(rows, logp, att if keep_attention else None, t, eos, K)
        state = model.reorder_state(state, origin)
        ended = rows.done.view(alive.numel(), K).all(1)                               # (R,)
        if ended.any() or t == steps - 1:
            leaving = torch.ones_like(ended) if t == steps - 1 else ended
            for r in leaving.nonzero().squeeze(1).tolist():
                finished[int(alive[r])] = rows.take(torch.arange(r * K, (r + 1) * K))
            if t == steps - 1 or ended.all():
                break
            keep = (~ended).nonzero().squeeze(1)                                      # (R',)
            index = (keep[:, None] * K + torch.arange(K)).view(-1)                    # (R'*K,)
            enc, state = model.reorder_encoder(enc, index), model.reorder_state(state, index)
            alive, rows = alive[keep], rows.take(index)
    return [_ranked(finished[b], int(lengths[b]), alpha, n_best, eos) for b in range(B)]


def _first_rows(caps: Tensor, B: int, K: int, bos: int) -> _Rows:
    scores = torch.full((B, K), float("-inf"))
    scores[:, 0] = 0.0                               # one live hypothesis per sentence at the start
    return _Rows(caps, scores.view(-1), torch.empty(B * K, 0, dtype=torch.long),
                 torch.zeros(B * K, dtype=torch.bool), torch.zeros(B * K, dtype=torch.long),
                 torch.full((B * K, 1), bos, dtype=torch.long), None)


def _step(rows: _Rows, logp: Tensor, att: Tensor | None, t: int, eos: int, K: int) -> Tensor:
    """Extend `rows` in place by one token each; returns the origin row of each new row (R*K,)."""
    origin, token, rows.scores = _best_extensions(rows.scores, logp, rows.done | (rows.caps <= t), rows.done, eos, K)
    rows.history = torch.cat([rows.history[origin], token[:, None]], dim=1)
    if att is not None:
        step_att = att[:, -1][origin][:, None]                                        # (R*K, 1, S)
        rows.att = step_att if rows.att is None else torch.cat([rows.att[origin], step_att], 1)
    rows.out_len = torch.where(rows.done[origin], rows.out_len[origin], rows.out_len[origin] + 1)
    rows.done = rows.done[origin] | (token == eos)
    rows.y = token[:, None]
    return origin


def _ranked(rows: _Rows, src_len: int, alpha: float, n_best: int, eos: int) -> list[Hypothesis]:
    """The n_best hypotheses of one sentence's K finished rows, best first by length-normalised score."""
    final = rows.scores / length_penalty(rows.out_len, alpha)                         # (K,)
    tokens = rows.history.tolist()
    hyps = []
    for k in final.argsort(descending=True)[:n_best].tolist():
        seq = tokens[k][: tokens[k].index(eos)] if eos in tokens[k] else tokens[k]
        att = rows.att[k, : len(seq) + 1, :src_len] if rows.att is not None else None
        hyps.append(Hypothesis(seq, float(final[k]), att))
    return hyps


def _best_extensions(scores: Tensor, logp: Tensor, forced: Tensor, done: Tensor, eos: int,
                     K: int) -> tuple[Tensor, Tensor, Tensor]:
    """One beam step: the K best one-token extensions of each sentence's K rows.

    scores (R*K,) running log-probabilities, logp (R*K, V) next-token log-probabilities; a `forced` row may only
    append EOS, which costs nothing when the row is already `done`. The K best of a sentence's K*V candidates take
    at most K from any one row, and those are that row's K best, so each row offers its top K first: the full
    (R*K, V) matrix is read by one top-k and nothing else. Returns origin (R*K,) (the rows extended), token (R*K,)
    and the new scores (R*K,).
    """
    k = min(K, logp.size(-1))
    top_logp, top_token = topk_rows(logp, k)                                         # (R*K, k)
    if forced.any():
        end = torch.full_like(top_logp, float("-inf"))
        end[:, 0] = torch.where(done, 0.0, logp[:, eos])
        top_logp = torch.where(forced[:, None], end, top_logp)
        top_token = top_token.masked_fill(forced[:, None], eos)
    R = scores.numel() // K
    candidates = (scores[:, None] + top_logp).view(R, K * k)                          # (R, K*k)
    best, idx = candidates.topk(K, dim=-1)                                            # (R, K)
    origin = (idx // k + torch.arange(R)[:, None] * K).view(-1)                       # (R*K,)
    return origin, top_token.view(R, K * k).gather(1, idx).view(-1), best.view(-1)


GREEDY_BELOW = 1e-4     # a temperature this small samples the most likely token with probability ~1 anyway


def sample_logits(logits: Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                  generator: torch.Generator | None = None) -> Tensor:
    """Draw one token per row of logits (B, V) -> (B,).

    temperature 0 is argmax (and so is any below GREEDY_BELOW, where dividing would overflow into NaN); otherwise
    logits / temperature, restricted to the top_k most likely tokens and to the smallest set whose probability
    reaches top_p (nucleus sampling), then a multinomial draw.
    """
    if temperature < GREEDY_BELOW:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k and top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[:, -1:]                                # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_logits.softmax(-1) >= top_p                        # keeps at least one token
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)


class GumbelDraws:
    """Draws from softmax(logits / T) for a sampling loop, without top-k or top-p: argmax(logits / T + G) with G
    standard Gumbel noise, -log(-log U), is such a draw (the Gumbel-max trick). The noise of `block` steps is drawn
    at once, so a step is one add and one argmax instead of a softmax and a multinomial draw; columns in `barred`
    (e.g. special tokens) get -inf noise and are never drawn. Deterministic for a given generator."""

    def __init__(self, rows: int, vocab: int, generator: torch.Generator, barred: int = 0, block: int = 256):
        self.shape, self.generator, self.barred = (block, rows, vocab), generator, barred
        self.noise, self.used = None, block

    def __call__(self, logits: Tensor, temperature: float) -> Tensor:
        """logits (B, V) -> tokens (B,)."""
        if self.used == self.shape[0]:
            u = torch.rand(self.shape, generator=self.generator).clamp_(min=1e-20)     # (block, B, V)
            self.noise = u.log_().neg_().log_().neg_()
            self.noise[..., : self.barred] = float("-inf")
            self.used = 0
        self.used += 1
        return torch.add(self.noise[self.used - 1], logits, alpha=1 / temperature).argmax(-1)
