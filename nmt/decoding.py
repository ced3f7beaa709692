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
        token = logits.argmax(-1)
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


@torch.inference_mode()
def beam_search(model, src: Tensor, lengths: Tensor, bos: int, eos: int, beam: int = 5, alpha: float = 1.0,
                max_len_ratio: float = 2.0, n_best: int = 1, keep_attention: bool = False, min_len: int = 0,
                max_len: int = 0, no_repeat_ngram: int = 0, encode_args: tuple = ()) -> list[list[Hypothesis]]:
    """Batched beam search. Finished hypotheses stay in their beam slot and extend only with EOS at no cost;
    the final ranking divides each log-probability by the GNMT length penalty. EOS is barred before min_len
    tokens; with no_repeat_ngram = n, no hypothesis repeats an n-gram.

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
    caps = max_lengths(lengths, max_len_ratio, max_len).repeat_interleave(K)          # (B*K,)
    scores = torch.full((B, K), float("-inf"))
    scores[:, 0] = 0.0
    scores = scores.view(-1)                                                          # (B*K,)
    y = torch.full((B * K, 1), bos, dtype=torch.long)
    history = torch.empty(B * K, 0, dtype=torch.long)
    att_history = None
    done = torch.zeros(B * K, dtype=torch.bool)
    out_len = torch.zeros(B * K, dtype=torch.long)
    alive = torch.arange(B)                      # sentences still searching; the batch holds their K rows each
    finished: dict[int, tuple] = {}              # sentence -> (scores, lengths, tokens, attention) of its K rows
    for t in range(int(caps.max()) + 1):      # at most caps tokens, then EOS
        logits, state, att = model.decode(enc, y, state)
        logp = torch.log_softmax(logits[:, -1].float(), dim=-1)                     # (R*K, V)
        if no_repeat_ngram:
            logp[repeated_ngrams(history, no_repeat_ngram, logp.size(-1))] = float("-inf")
        eos_logp = logp[:, eos].clone() if t >= min_len else torch.full_like(logp[:, eos], -1e9)
        logp[done | (caps <= t)] = float("-inf")                                     # only EOS may follow
        logp[:, eos] = torch.where(done, 0.0, eos_logp)
        R, V = alive.numel(), logp.size(-1)
        candidates = (scores[:, None] + logp).view(R, K * V)                          # (R, K*V)
        top, idx = candidates.topk(K, dim=-1)                                         # (R, K)
        origin = (idx // V + torch.arange(R)[:, None] * K).view(-1)                   # (R*K,) rows they extend
        token = (idx % V).view(-1)
        scores = top.view(-1)
        history = torch.cat([history[origin], token[:, None]], dim=1)
        if keep_attention:
            step_att = att[:, -1][origin][:, None]                                    # (R*K, 1, S)
            att_history = step_att if att_history is None else torch.cat([att_history[origin], step_att], 1)
        out_len = torch.where(done[origin], out_len[origin], out_len[origin] + 1)
        done = done[origin] | (token == eos)
        state = model.reorder_state(state, origin)
        y = token[:, None]
        ended = done.view(R, K).all(1)                                                # (R,)
        last = t == int(caps.max())
        if ended.any() or last:                  # a sentence whose K hypotheses all ended leaves the batch
            leaving = torch.ones_like(ended) if last else ended
            for r in leaving.nonzero().squeeze(1).tolist():
                rows = slice(r * K, (r + 1) * K)
                finished[int(alive[r])] = (scores[rows], out_len[rows], history[rows].tolist(),
                                           att_history[rows] if keep_attention else None)
            if last or ended.all():
                break
            keep = (~ended).nonzero().squeeze(1)                                      # (R',)
            rows = (keep[:, None] * K + torch.arange(K)).view(-1)                     # (R'*K,)
            enc, state = model.reorder_encoder(enc, rows), model.reorder_state(state, rows)
            alive, caps, scores, history, done, out_len, y = (alive[keep], caps[rows], scores[rows], history[rows],
                                                              done[rows], out_len[rows], y[rows])
            if keep_attention:
                att_history = att_history[rows]
    results = []
    for b in range(B):
        b_scores, b_len, tokens, b_att = finished[b]
        final = b_scores / length_penalty(b_len, alpha)                               # (K,)
        hyps = []
        for k in final.argsort(descending=True)[:n_best].tolist():
            seq = tokens[k][: tokens[k].index(eos)] if eos in tokens[k] else tokens[k]
            att = b_att[k, : len(seq) + 1, : int(lengths[b])] if keep_attention else None
            hyps.append(Hypothesis(seq, float(final[k]), att))
        results.append(hyps)
    return results


def sample_logits(logits: Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                  generator: torch.Generator | None = None) -> Tensor:
    """Draw one token per row of logits (B, V) -> (B,).

    temperature 0 is argmax; otherwise logits / temperature, restricted to the top_k most likely tokens and to the
    smallest set whose probability reaches top_p (nucleus sampling), then a multinomial draw.
    """
    if temperature == 0:
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
