"""Conditional character model: the course's one-to-many shape (one input, a sequence out).

Step 0 reads the condition x^0 (a language) with a zero previous state, so a^0 depends on the condition alone;
step t >= 1 reads the previous character y^{t-1}; every step's output is the distribution of the next character
y^t, and a name ends when </s> is drawn. Characters and conditions share one input table: rows 0..V-1 are the
characters, rows V.. the conditions.
Shapes: B names, T steps, E embedding, H hidden, V characters, K conditions.
"""
from __future__ import annotations

import hashlib

import torch
from torch import Tensor, nn

from nmt.config import NameGenConfig
from nmt.models.rnn import Recurrent


def name_hash(name: str) -> int:
    """A stable 63-bit hash of a name (the checkpoint keeps the training names this way, to mark copies)."""
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest(), "big") >> 1


class NameGenerator(nn.Module):
    def __init__(self, config: NameGenConfig, num_conditions: int, num_known: int = 0):
        super().__init__()
        self.config = c = config
        if c.rnn.bidirectional:
            raise ValueError("a generator reads left to right: model.rnn.bidirectional must be false")
        self.num_conditions = num_conditions
        self.embed = nn.Embedding(c.vocab_size + num_conditions, c.embed_size)     # (V + K, E)
        self.rnn = Recurrent(c.rnn, c.embed_size)
        self.dropout = nn.Dropout(c.dropout)
        self.output = nn.Linear(self.rnn.output_size, c.vocab_size)
        # hashes of the training names (sorted), so that a checkpoint alone can tell a copy from a new name
        self.register_buffer("known", torch.zeros(num_known, dtype=torch.long))

    def use_int8(self, parts: dict) -> None:
        """Inference on int8 products (nmt/quantize.py): the RNN on `Int8RNN` (batches of 8 names or more) and the
        output layer. `parts`: name -> (int8 values, scales) of the checkpoint."""
        from nmt.quantize import Int8Linear
        self.rnn.use_int8()
        self.output = Int8Linear.of(self.output, parts, "output")

    def condition_ids(self, conditions: Tensor) -> Tensor:
        """Condition numbers (B,) in 0..K-1 -> their rows of the input table (B,)."""
        return conditions + self.config.vocab_size

    def forward(self, inputs: Tensor, lengths: Tensor | None = None, state=None) -> tuple[Tensor, object]:
        """inputs (B, T): the condition's row at step 0 (`condition_ids`), then characters; lengths (B,) or None
        -> logits of the next character at every step (B, T, V) and the final state (L, B, H) (LSTM: a pair)."""
        h, state = self.rnn(self.embed(inputs), lengths, hx=state)                   # (B, T, H)
        return self.output(self.dropout(h)), state

    def start(self, conditions: Tensor) -> tuple[Tensor, object]:
        """Step 0 alone: conditions (B,) -> logits of the first character (B, V) and the state a^0."""
        logits, state = self(self.condition_ids(conditions)[:, None])                 # (B, 1, V)
        return logits[:, 0], state

    def step(self, chars: Tensor, state) -> tuple[Tensor, object]:
        """Step t: the previous characters (B,) and state a^{t-1} -> logits (B, V) and a^t."""
        logits, state = self(chars[:, None], state=state)
        return logits[:, 0], state

    def is_known(self, names: list[str]) -> list[bool]:
        """Whether each name is one of the training names."""
        if not hasattr(self, "_known_set"):
            self._known_set = set(self.known.tolist())
        return [name_hash(n) in self._known_set for n in names]
