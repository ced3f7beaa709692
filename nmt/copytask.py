"""The copy-memory task (many-to-one): remember a symbol seen T steps earlier.

Input: a symbol s in 1..K at step 1, then T - 1 steps of noise symbols drawn from K+1..2K; target: s, read from
the last hidden state. Chance is 1/K. A cell solves it only if information (and, during training, gradient)
survives T steps, which is exactly what vanishing gradients prevent.
Shapes: B sequences, T steps, H hidden.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.config import RNNConfig
from nmt.models.rnn import Recurrent


@dataclass
class CopyConfig:
    cell: str = "lstm"
    length: int = 20          # T
    symbols: int = 8          # K
    hidden: int = 64
    steps: int = 400
    batch: int = 64
    lr: float = 3e-3
    clip_norm: float = 1.0
    gate_bias: float = 1.0    # added to the LSTM forget / GRU update gate bias at initialisation
    seed: int = 0


def make_batch(config: CopyConfig, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """-> inputs (B, T) and targets (B,)."""
    k = config.symbols
    target = torch.randint(1, k + 1, (config.batch,), generator=generator)
    noise = torch.randint(k + 1, 2 * k + 1, (config.batch, config.length - 1), generator=generator)
    return torch.cat([target[:, None], noise], dim=1), target - 1


class CopyModel(nn.Module):
    def __init__(self, config: CopyConfig):
        super().__init__()
        self.embed = nn.Embedding(2 * config.symbols + 1, 16)
        self.rnn = Recurrent(RNNConfig(cell=config.cell, hidden_size=config.hidden, bidirectional=False), 16)
        self.out = nn.Linear(config.hidden, config.symbols)
        if config.cell in ("lstm", "gru"):    # bias the forget (LSTM) / update (GRU) gate towards remembering
            h = config.hidden
            with torch.no_grad():
                self.rnn.rnn.bias_ih_l0[h:2 * h] += config.gate_bias

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T) -> logits (B, K) from the last hidden state."""
        h, _ = self.rnn(self.embed(x))                                                # (B, T, H)
        return self.out(h[:, -1])


def train_and_score(config: CopyConfig, eval_batches: int = 8) -> dict:
    """Train one cell on one length; accuracy on fresh sequences (chance = 1 / symbols)."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model = CopyModel(config)
    optim = torch.optim.Adam(model.parameters(), lr=config.lr)
    for _ in range(config.steps):
        x, y = make_batch(config, gen)
        loss = F.cross_entropy(model(x), y)
        optim.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        optim.step()
    correct = total = 0
    with torch.no_grad():
        for _ in range(eval_batches):
            x, y = make_batch(config, gen)
            correct += int((model(x).argmax(-1) == y).sum())
            total += y.numel()
    return {"cell": config.cell, "length": config.length, "accuracy": correct / total,
            "chance": 1 / config.symbols, "final_loss": float(loss.detach())}
