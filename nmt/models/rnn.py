"""One recurrent layer stack for every model: torch's fused kernels or the scratch cells, same weights.

`Recurrent(config, input_size)` hides the choice `impl=fused|torch|scratch` (see nmt/config/components.py): torch's
layers with or without the hand-written GRU backward, or the cells from their equations. All keep their parameters
under `rnn.` with torch's names, so a state dict moves freely between them.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.config import RNNConfig
from nmt.models.bptt import gru_layers
from nmt.models.cells import GATES, ScratchRNN
from nmt.models.int8_rnn import Int8RNN

FUSED = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class Recurrent(nn.Module):
    """A multi-layer (bi)directional RNN/LSTM/GRU over padded batches."""

    def __init__(self, config: RNNConfig, input_size: int, weight_drop: float = 0.0):
        super().__init__()
        if config.cell not in GATES:
            raise ValueError(f"unknown cell '{config.cell}' (expected rnn, lstm or gru)")
        if config.impl not in ("fused", "torch", "scratch"):
            raise ValueError(f"unknown impl '{config.impl}' (expected fused, torch or scratch)")
        self.config = config
        dropout = config.dropout if config.num_layers > 1 else 0.0
        args = dict(input_size=input_size, hidden_size=config.hidden_size, num_layers=config.num_layers,
                    bidirectional=config.bidirectional, dropout=dropout)
        if config.impl != "scratch":
            self.rnn = FUSED[config.cell](batch_first=True, **args)
        else:
            self.rnn = ScratchRNN(config.cell, **args)
        self.weight_drop = weight_drop
        self._dropped = [name for name, _ in self.rnn.named_parameters() if name.startswith("weight_hh")]
        if weight_drop:
            # DropConnect on the recurrent matrices (Wan et al. 2013; AWD-LSTM, Merity et al. 2018): the raw
            # weights are the parameters; each forward installs a dropped copy under torch's own name.
            for name in self._dropped:
                raw = self.rnn._parameters.pop(name)
                self.rnn.register_parameter(name + "_raw", raw)
                setattr(self.rnn, name, raw.view_as(raw))

    def use_int8(self) -> bool:
        """Inference on int8 products (`Int8RNN`: the weights quantised per row from the loaded ones; 1.5-2x an
        LSTM's float time on AVX2). Only for models that call this layer and do not read its weights themselves;
        refused (False) for the scratch cells, vanilla RNNs and weight drop."""
        if self.config.impl == "scratch" or self.weight_drop or self.config.cell == "rnn":
            return False
        self.rnn = Int8RNN(self.rnn)
        return True

    def _hand_bptt(self, x: Tensor) -> bool:
        """impl=fused trains torch's GRU on the CPU with the hand-written BPTT of models/bptt.py: same results, and
        each weight gradient is one product over all steps instead of one per step (about 3x faster backward)."""
        return (self.config.impl == "fused" and isinstance(self.rnn, nn.GRU) and x.device.type == "cpu"
                and torch.is_grad_enabled() and not self.weight_drop)

    def weight(self, name: str) -> Tensor:
        """A weight under torch's name (e.g. 'weight_hh_l0'): the raw parameter, without weight drop."""
        dropped = self.weight_drop and name in self._dropped
        rnn = self.rnn.float_rnn if isinstance(self.rnn, Int8RNN) else self.rnn     # after use_int8: as loaded
        return getattr(rnn, name + "_raw" if dropped else name)

    @property
    def output_size(self) -> int:
        return self.config.hidden_size * (2 if self.config.bidirectional else 1)

    def forward(self, x: Tensor, lengths: Tensor | None = None, hx=None):
        """x: (B, S, I); lengths: (B,) real lengths or None (no padding); hx: (L*D, B, H) or an LSTM pair.

        Returns output (B, S, D*H), zero at padded positions, and the final state (L*D, B, H) (LSTM: a pair),
        taken at each sequence's own last real step.
        """
        if self.weight_drop:
            for name in self._dropped:
                raw = getattr(self.rnn, name + "_raw")
                # a plain tensor, never the Parameter itself (which would register it under torch's name again)
                dropped = nn.functional.dropout(raw, self.weight_drop) if self.training else raw.view_as(raw)
                setattr(self.rnn, name, dropped)
        mask = None if lengths is None else torch.arange(x.size(1), device=x.device)[None, :] < lengths[:, None]
        if self._hand_bptt(x):
            return gru_layers(self.rnn, x, mask, hx)
        if lengths is None:
            return self.rnn(x, hx)
        if isinstance(self.rnn, (ScratchRNN, Int8RNN)):
            return self.rnn(x, hx, mask=mask)                                          # mask (B, S)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed, hx)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))   # (B, S, D*H)
        return out, state
