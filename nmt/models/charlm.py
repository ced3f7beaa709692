"""Character-level language model (the course's many-to-many shape, same length; one-to-many when sampling).

Embedding -> embedding dropout -> multi-layer RNN/LSTM/GRU (optionally with weight-dropped recurrent matrices)
-> dropout -> linear over the characters (optionally tied to the embedding through a projection).
Shapes: B streams, T steps, E embedding, H hidden, V characters.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.config import CharLMConfig
from nmt.models.rnn import Recurrent


class CharLM(nn.Module):
    def __init__(self, config: CharLMConfig):
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.embed_size)
        self.rnn = Recurrent(c.rnn, c.embed_size, weight_drop=c.weight_drop)
        hidden = self.rnn.output_size
        self.proj = nn.Linear(hidden, c.embed_size) if c.tie_weights and hidden != c.embed_size else None
        self.output = nn.Linear(c.embed_size if c.tie_weights else hidden, c.vocab_size)
        if c.tie_weights:
            self.output.weight = self.embed.weight
        self.emb_dropout = nn.Dropout(c.emb_dropout)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: Tensor, state=None) -> tuple[Tensor, object]:
        """x (B, T) character ids, state from the previous chunk (or None) -> logits (B, T, V), new state."""
        h, state = self.rnn(self.emb_dropout(self.embed(x)), hx=state)               # (B, T, H)
        h = self.dropout(h)
        if self.proj is not None:
            h = self.proj(h)                                                          # (B, T, E)
        return self.output(h), state

    @staticmethod
    def detach(state):
        """Cut the graph between chunks: truncated BPTT keeps the state's value but not its history."""
        if state is None:
            return None
        return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()

    @staticmethod
    def select(state, index: Tensor):
        """Keep (or repeat) streams: index (B',) -> state of batch B'."""
        if isinstance(state, tuple):
            return tuple(s[:, index] for s in state)
        return state[:, index]
