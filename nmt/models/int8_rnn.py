"""Torch's nn.LSTM / nn.GRU (batch_first) for inference on int8 products, written over the course's step functions.

Each layer computes the input terms W_ih x^t + b_ih of every step and both directions in one int8 product (per-row
scales: the checkpoint's own int8 rows), then loops over the steps with one int8 product U a^{t-1} + b_hh per
direction and the cell's update. An LSTM's candidate rows are doubled, so one sigmoid serves its four gates
(`cells.lstm_update_doubled`), and its sweep is one TorchScript function (`lstm_int8_sweep`, compiled once per
process by `compiled`): a step is a dozen small calls, and the interpreter's share of them is large. GRUs loop in
Python over `cells.gru_step`. Against torch's own dynamic int8 LSTM (per-tensor scales), `python
bench/int8_kernels.py` measures about the same speed from 8 rows up.

Fewer than FLOAT_BELOW rows (one sentence typed at the command line) run on the float module itself, whose weights
are the same int8-rounded values: torch's fused float LSTM takes the whole sequence in one call, where the step
loop costs more than its products save (one 20-word sentence through a 128-unit BiLSTM: 0.37 ms float against
0.59 ms; 8 sentences: 1.85 against 1.01; `bench/int8_kernels.py`).

Padding: with a mask, each sequence's backward direction starts at its own last real step (its state is held at
zero over the padding), the outputs are zero on padding and the final states are those of each sequence's last
real step, as torch returns them for a packed sequence.
Shapes: B batch, S steps, I input size, H hidden size, G gates (LSTM 4, GRU 3), L layers, D directions.
"""
from __future__ import annotations

import functools
import warnings
from typing import Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.models.cells import double_candidate, gru_step, lstm_update_doubled
from nmt.quantize import Int8Linear, quantize_rows

FLOAT_BELOW = 8      # batches of fewer rows run on the float module (see above)


class Int8RNN(nn.Module):
    """An LSTM or GRU's weights as int8 (per-row scales, quantised from the module's float weights). Inference
    only: forward(x (B, S, I), hx=None, mask=None (B, S)) -> output (B, S, D*H), final state (L*D, B, H) (LSTM: a
    pair)."""

    def __init__(self, rnn: nn.LSTM | nn.GRU):
        super().__init__()
        if not rnn.batch_first or getattr(rnn, "proj_size", 0):
            raise ValueError("Int8RNN needs a batch_first LSTM or GRU without projections")
        self.float_rnn = rnn                   # its weights as loaded (int8-rounded), for small batches
        self.lstm = isinstance(rnn, nn.LSTM)
        self.hidden_size, self.num_layers = rnn.hidden_size, rnn.num_layers
        self.directions = 2 if rnn.bidirectional else 1
        suffixes = ["", "_reverse"][: self.directions]
        self.inputs, self.hidden = nn.ModuleList(), nn.ModuleList()
        for k in range(self.num_layers):
            names = [f"l{k}{s}" for s in suffixes]
            w_ih = torch.cat([self._scaled(rnn, f"weight_ih_{n}") for n in names])   # (D*G*H, I)
            b_ih = torch.cat([self._scaled(rnn, f"bias_ih_{n}") for n in names])
            self.inputs.append(Int8Linear(*quantize_rows(w_ih), b_ih))                # both directions, one product
            self.hidden.extend(Int8Linear(*quantize_rows(self._scaled(rnn, f"weight_hh_{n}")),
                                          self._scaled(rnn, f"bias_hh_{n}")) for n in names)

    def _scaled(self, rnn: nn.Module, name: str) -> Tensor:
        """A weight or bias in float32; an LSTM's candidate rows doubled (`cells.double_candidate`)."""
        w = getattr(rnn, name)
        return double_candidate(w, self.hidden_size) if self.lstm else w.detach().float()

    @torch.no_grad()
    def forward(self, x: Tensor, hx=None, mask: Tensor | None = None):
        if x.size(0) < FLOAT_BELOW:
            return self._float(x, hx, mask)
        return self._loop(x, hx, mask)

    def _loop(self, x: Tensor, hx, mask: Tensor | None):
        """The layers on int8 products, step by step."""
        B, S, _ = x.shape
        steps = None if mask is None else mask.T[..., None]                           # (S, B, 1)
        h0, c0 = (hx if self.lstm else (hx, None)) if hx is not None else (None, None)
        finals_h, finals_c = [], []
        for k in range(self.num_layers):
            terms = self.inputs[k](x).view(B, S, self.directions, -1)                 # (B, S, D, G*H)
            outs = []
            for d in range(self.directions):
                i = k * self.directions + d
                start = [None if h0 is None else h0[i], None if c0 is None else c0[i]]
                out, h, c = self._sweep(self.hidden[i], terms[:, :, d], steps, d == 1, *start)
                outs.append(out)
                finals_h.append(h)
                finals_c.append(c)
            x = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]                 # (B, S, D*H)
        if mask is not None:
            x = x * mask[..., None]
        h_n = torch.stack(finals_h)                                                   # (L*D, B, H)
        return x, ((h_n, torch.stack(finals_c)) if self.lstm else h_n)

    def _float(self, x: Tensor, hx, mask: Tensor | None):
        """The float module on a (packed, where there is padding) batch: torch's return values."""
        if mask is None:
            return self.float_rnn(x, hx)
        packed = pack_padded_sequence(x, mask.sum(1).cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.float_rnn(packed, hx)
        return pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0], state

    def _sweep(self, hidden: Int8Linear, terms: Tensor, steps: Tensor | None, backward: bool,
               h: Tensor | None, c: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """One direction of one layer: terms (B, S, G*H) -> outputs (B, S, H), final h (B, H) and c (or None)."""
        B, S, _ = terms.shape
        h = terms.new_zeros(B, self.hidden_size) if h is None else h
        c = (terms.new_zeros(B, self.hidden_size) if c is None else c) if self.lstm else None
        if self.lstm:
            keep = torch.ones(S, B, 1, dtype=torch.bool) if steps is None else steps
            out, h, c = compiled(lstm_int8_sweep)(terms.transpose(0, 1), keep, hidden._packed, backward, h, c)
            return out.transpose(0, 1), h, c
        out = [None] * S                             # a GRU: the loop in Python
        for t in (range(S - 1, -1, -1) if backward else range(S)):
            new_h = gru_step(terms[:, t], h, None, None, hh=hidden(h))                # hidden(h): U a + b_hh
            if steps is not None:                    # hold the state over padding (the backward one at zero)
                new_h = torch.where(steps[t], new_h, h)
            h = out[t] = new_h
        return torch.stack(out, dim=1), h, None



def lstm_int8_sweep(terms: Tensor, keep: Tensor, hidden: torch.classes.quantized.LinearPackedParamsBase,
                    backward: bool, h: Tensor, c: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """One direction of an LSTM layer on int8 recurrent products, written for TorchScript (`compiled`): terms
    (S, B, 4H) the input terms W_ih x^t + b_ih with the candidate doubled (`cells.double_candidate`), keep (S, B, 1)
    the real steps (the state is held over the others), hidden the packed U (candidate doubled) with b_hh, h and c
    (B, H) the start -> outputs (S, B, H) and the final h, c (`cells.lstm_update_doubled`, compiled with it)."""
    S = terms.size(0)
    out = torch.empty(S, h.size(0), h.size(1))
    for i in range(S):
        t = S - 1 - i if backward else i
        gates = torch.ops.quantized.linear_dynamic(h, hidden, True).add_(terms[t])            # (B, 4H)
        new_h, new_c = lstm_update_doubled(gates, c)
        h = torch.where(keep[t], new_h, h)
        c = torch.where(keep[t], new_c, c)
        out[t] = h
    return out, h, c


@functools.cache
def compiled(fn):
    """fn compiled by TorchScript (once per process, on first use), or fn itself where TorchScript is missing: a
    step loop of small calls loses a good share of its time to the interpreter."""
    try:
        with warnings.catch_warnings():      # torch 2.13 marks TorchScript deprecated; it compiles and runs
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.script(fn)
    except Exception:               # noqa: BLE001  (a torch without TorchScript: the same function, interpreted)
        return fn
