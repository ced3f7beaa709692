"""Attention over encoder states: Bahdanau (additive) and Luong (dot, general) scores.

Keys are projected once per source sentence (`keys`), then any number of queries attend in one batched call,
so teacher-forced training scores all T target steps at once and decoding reuses the same keys every step.
Shapes: B batch, S source length, T query steps, M memory size, Q query size, A attention size.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


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
            # tanh in place: the sum is a fresh (B, T, S, A) tensor, so no second one is allocated and written
            hidden = (self.query_proj(query)[:, :, None] + keys[:, None]).tanh_()     # (B, T, S, A)
            scores = self.v(hidden).squeeze(-1)                                      # (B, T, S)
        else:
            scores = query @ keys.transpose(1, 2)                                    # (B, T, S)
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)                                      # (B, T, S)
        return weights @ memory, weights                                             # (B, T, M)
