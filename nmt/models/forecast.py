"""Recurrent forecasters: L past values of a series -> its H next values.

Both read each channel on its own (channel independence: the C channels of a window become C rows of the batch
and share every weight), after instance normalisation of the window, and undo it on the output.

- `SegmentForecaster` is SegRNN (Lin et al. 2023). The lookback is cut into segments of W steps, each embedded as
  one input token, so the RNN runs L / W steps instead of L. It then emits all H / W output segments at once
  (parallel multi-step forecasting): one more recurrent step from the encoder's final state for each output
  segment, whose input says which segment (a learnt position embedding) of which channel (a channel embedding).
  Those M steps share their starting state, so the recurrent product is computed once per channel row and
  broadcast over the M segments, and the input product once per (segment, channel) and broadcast over the batch.
- `StepForecaster` is a sequence-to-sequence RNN with recurrent multi-step decoding: an encoder reads the
  lookback (one step per segment; W = 1 is point by point), and a decoder starting from its state feeds back its
  own previous output segment for each of the H / W steps, so errors can accumulate along the horizon.

Shapes: B windows, L lookback, H horizon, C channels, W segment length, N = L / W input segments, M = ceil(H / W)
output segments, D hidden size.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from nmt.config import ForecastConfig, RNNConfig
from nmt.models.cells import gru_step, lstm_step, rnn_step
from nmt.models.rnn import Recurrent

EPS = 1e-5


def normalise(x: Tensor, mode: str) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Instance normalisation of each window and channel over its L steps: x (B, L, C) -> the same shape, and
    (shift, scale) (B, 1, C) to undo it. revin: mean and std (RevIN without its affine part); last: the last
    value (scale 1); none: nothing."""
    if mode == "revin":
        shift = x.mean(dim=1, keepdim=True).detach()                                    # (B, 1, C)
        scale = (x.var(dim=1, keepdim=True, unbiased=False) + EPS).sqrt().detach()
    elif mode == "last":
        shift, scale = x[:, -1:].detach(), torch.ones_like(x[:, -1:])
    else:
        shift, scale = torch.zeros_like(x[:, -1:]), torch.ones_like(x[:, -1:])
    return (x - shift) / scale, (shift, scale)


def denormalise(y: Tensor, stats: tuple[Tensor, Tensor]) -> Tensor:
    shift, scale = stats
    return y * scale + shift


def segments(x: Tensor, width: int) -> Tensor:
    """Each channel of each window as its segments: (B, L, C) -> (B * C, L / W, W)."""
    B, L, C = x.shape
    return x.transpose(1, 2).reshape(B * C, L // width, width)                        # (B C, N, W)


def unsegment(y: Tensor, batch: int, horizon: int) -> Tensor:
    """Output segments back to windows: (B * C, M, W) -> (B, H, C), the steps past H cut off."""
    return y.reshape(batch, -1, y.size(1) * y.size(2))[:, :, :horizon].transpose(1, 2)   # (B, H, C)


class ByteDropout(nn.Module):
    """Dropout whose mask comes from random bytes (so p moves in steps of 1/256; 0.5 is exact). On the CPU torch's
    dropout draws one float per element, about ten times the cost of a multiplication, and the decoder's output
    (B, C, M, D) that it masks is the largest tensor of the model; bytes cost a third of that."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        cut = round(self.p * 256)
        if not self.training or cut == 0:
            return x
        if x.device.type != "cpu" or cut == 256:
            return nn.functional.dropout(x, self.p, True)
        keep = torch.empty(x.shape, dtype=torch.uint8).random_() >= cut                 # P(keep) = 1 - cut / 256
        return x * keep * (256 / (256 - cut))


def cell_step(cell: str, xg: Tensor, state, w_hh: Tensor, b_hh: Tensor, hh=None):
    """One step of an RNN / LSTM / GRU cell (nmt/models/cells.py) from its input term xg = W_ih x + b_ih.
    Shapes broadcast: a state (..., 1, D) with inputs (..., M, G*D) steps M rows from one state. hh: a module
    computing the recurrent term U a + b_hh (int8 products), or None."""
    a = state[0] if cell == "lstm" else state
    term = None if hh is None else hh(a)
    if cell == "gru":
        return gru_step(xg, state, w_hh, b_hh, hh=term)
    if cell == "lstm":
        return lstm_step(xg, state, w_hh, b_hh, hh=term)
    return rnn_step(xg, state, w_hh, b_hh, hh=term)


def encoder_config(config: ForecastConfig) -> RNNConfig:
    """The RNN of a forecaster: one direction (the future is to the right)."""
    rnn = config.rnn
    return RNNConfig(cell=rnn.cell, impl=rnn.impl, hidden_size=rnn.hidden_size, num_layers=rnn.num_layers,
                     bidirectional=False, dropout=rnn.dropout)


class SegmentForecaster(nn.Module):
    """SegRNN: segment-wise encoding, parallel multi-step decoding (see the module docstring)."""

    def __init__(self, config: ForecastConfig):
        super().__init__()
        self.config = config
        D, W = config.rnn.hidden_size, config.segment
        self.outputs = math.ceil(config.horizon / W)                                    # M
        self.embed = nn.Sequential(nn.Linear(W, D), nn.ReLU())
        self.rnn = Recurrent(encoder_config(config), D)
        own = D // 2 if config.channel_embed else 0
        # what each output step reads: its segment's position (and its channel), random normal as in SegRNN
        self.position = nn.Parameter(torch.randn(self.outputs, D - own))
        self.channel = nn.Parameter(torch.randn(max(1, config.channels), own))
        self.head = nn.Sequential(ByteDropout(config.dropout), nn.Linear(D, W))
        self._hh8: list | None = None       # each layer's recurrent product on int8 (use_int8)

    def use_int8(self, parts: dict) -> None:
        """Inference on int8 products (nmt/quantize.py): the encoder on `Int8RNN`, each decoding layer's
        recurrent product (the input products read the learnt queries once per channel: they stay float), the
        segment embedding and the head. `parts`: name -> (int8 values, scales) of the checkpoint."""
        from nmt.quantize import Int8Linear
        if not self.rnn.use_int8():
            return
        self._hh8 = [Int8Linear(*parts[f"rnn.rnn.weight_hh_l{k}"], self.rnn.weight(f"bias_hh_l{k}"))
                     if f"rnn.rnn.weight_hh_l{k}" in parts else None for k in range(self.config.rnn.num_layers)]
        self.embed[0] = Int8Linear.of(self.embed[0], parts, "embed.0")
        self.head[1] = Int8Linear.of(self.head[1], parts, "head.1")

    def queries(self) -> Tensor:
        """The decoder's input for each (channel, output segment): (C, M, D)."""
        C, M = max(1, self.config.channels), self.outputs
        position = self.position.unsqueeze(0).expand(C, M, -1)                          # (C, M, D - D/2)
        channel = self.channel.unsqueeze(1).expand(C, M, -1)                            # (C, M, D/2)
        return torch.cat([position, channel], dim=-1)                                   # (C, M, D)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, C) values (z-scored) -> forecast (B, H, C)."""
        B, _, C = x.shape
        x, stats = normalise(x, self.config.norm)
        _, state = self.rnn(self.embed(segments(x, self.config.segment)))              # (layers, B C, D)
        y = self.decode(state, B, C)                                                     # (B, C, M, D)
        y = self.head(y).reshape(B * C, self.outputs, -1)                               # (B C, M, W)
        return denormalise(unsegment(y, B, self.config.horizon), stats)

    def decode(self, state, batch: int, channels: int) -> Tensor:
        """All M output steps at once from the encoder's final state(s): -> top layer outputs (B, C, M, D)."""
        rnn, cell = self.rnn, self.config.rnn.cell
        inputs = self.queries()                                                         # (C, M, D)
        for layer in range(self.config.rnn.num_layers):
            w_ih, w_hh = rnn.weight(f"weight_ih_l{layer}"), rnn.weight(f"weight_hh_l{layer}")
            b_ih, b_hh = rnn.weight(f"bias_ih_l{layer}"), rnn.weight(f"bias_hh_l{layer}")
            xg = inputs @ w_ih.T + b_ih                                                 # (C, M, G D) or (B, C, M, G D)
            hh = self._hh8[layer] if self._hh8 and not torch.is_grad_enabled() else None
            if cell == "lstm":
                h, c = (s[layer].view(batch, channels, 1, -1) for s in state)          # (B, C, 1, D)
                out = cell_step(cell, xg, (h, c), w_hh, b_hh, hh)[0]
            else:
                out = cell_step(cell, xg, state[layer].view(batch, channels, 1, -1), w_hh, b_hh, hh)
            inputs = out.expand(batch, channels, self.outputs, -1)                     # (B, C, M, D)
            if layer < self.config.rnn.num_layers - 1:
                inputs = nn.functional.dropout(inputs, self.config.rnn.dropout, self.training)
        return inputs


class StepForecaster(nn.Module):
    """Encoder-decoder RNN with recurrent multi-step decoding (see the module docstring)."""

    def __init__(self, config: ForecastConfig):
        super().__init__()
        self.config = config
        D, W = config.rnn.hidden_size, config.segment
        self.outputs = math.ceil(config.horizon / W)                                    # M
        self.embed = nn.Sequential(nn.Linear(W, D), nn.ReLU())                          # shared by both sides
        self.encoder = Recurrent(encoder_config(config), D)
        self.decoder = Recurrent(encoder_config(config), D)
        self.head = nn.Sequential(ByteDropout(config.dropout), nn.Linear(D, W))

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, C) values (z-scored) -> forecast (B, H, C)."""
        B = x.size(0)
        x, stats = normalise(x, self.config.norm)
        inputs = segments(x, self.config.segment)                                      # (B C, N, W)
        _, state = self.encoder(self.embed(inputs))
        previous, outputs = inputs[:, -1:], []                                          # (B C, 1, W)
        for _ in range(self.outputs):
            out, state = self.decoder(self.embed(previous), hx=state)                 # (B C, 1, D)
            previous = self.head(out)                                                   # (B C, 1, W)
            outputs.append(previous)
        y = torch.cat(outputs, dim=1)                                                   # (B C, M, W)
        return denormalise(unsegment(y, B, self.config.horizon), stats)


def Forecaster(config: ForecastConfig) -> nn.Module:  # noqa: N802  (a model class chosen by the config)
    """The forecaster of `config.kind`."""
    return {"segment": SegmentForecaster, "seq2seq": StepForecaster}[config.kind](config)
