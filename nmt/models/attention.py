"""Attention over encoder states: Bahdanau (additive) and Luong (dot, general) scores.

Keys are projected once per source sentence (`keys`), then any number of queries attend in one batched call,
so teacher-forced training scores all T target steps at once and decoding reuses the same keys every step.
Shapes: B batch, S source length, T query steps, M memory size, Q query size, A attention size.

The additive score v . tanh(q + k) is computed as 2 v . sigmoid(2q + 2k), which differs from it by the constant
sum(v) (tanh(x) = 2 sigmoid(2x) - 1). A constant added to every score of a row leaves the softmax unchanged, so
the weights are the same; on the CPU the (B, T, S, A) sigmoid costs a third to a quarter of the tanh.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def additive_scores(query: Tensor, keys: Tensor, v: Tensor) -> Tensor:
    """v . tanh(query + keys) - sum(v), for softmax: query (..., 1 or S, A) + keys (..., S, A), v (A,) -> (..., S)."""
    hidden = torch.add(query * 2, keys, alpha=2).sigmoid_()                         # (..., S, A), fresh
    return hidden @ (v * 2)


class Attention(nn.Module):
    """score(q, k): bahdanau v^T tanh(W_q q + W_k k); general q^T W k; dot q^T k."""

    def __init__(self, kind: str, query_size: int, memory_size: int, attention_size: int | None = None):
        super().__init__()
        if kind not in ("bahdanau", "dot", "general"):
            raise ValueError(f"unknown attention '{kind}' (expected bahdanau, dot or general)")
        if kind == "dot" and query_size != memory_size:
            raise ValueError(f"dot attention needs equal query and memory sizes, got {query_size} and {memory_size}")
        self.kind = kind
        if kind == "bahdanau":
            size = attention_size or query_size
            self.key_proj = nn.Linear(memory_size, size, bias=False)
            self.query_proj = nn.Linear(query_size, size, bias=False)
            self.v = nn.Linear(size, 1, bias=False)
        elif kind == "general":
            self.key_proj = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        """memory (B, S, M) -> keys (B, S, A) (for dot, the memory itself)."""
        return memory if self.kind == "dot" else self.key_proj(memory)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query (B, T, Q), keys (B, S, A), memory (B, S, M), mask (B, S) bool (True = real token).

        Returns context (B, T, M) and attention weights (B, T, S), each row summing to 1 over real tokens.
        """
        if self.kind == "bahdanau":
            scores = additive_scores(self.query_proj(query)[:, :, None], keys[:, None], self.v.weight[0])  # (B, T, S)
        else:
            scores = query @ keys.transpose(1, 2)                                    # (B, T, S)
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)                                      # (B, T, S)
        return weights @ memory, weights                                             # (B, T, M)
