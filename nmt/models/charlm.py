"""Character-level language model (the course's many-to-many shape, same length; one-to-many when sampling).

Embedding -> embedding dropout -> multi-layer RNN/LSTM/GRU (optionally with weight-dropped recurrent matrices)
-> dropout -> linear over the characters (optionally tied to the embedding through a projection).
Shapes: B streams, T steps, E embedding, H hidden, V characters.
"""
from __future__ import annotations

import dataclasses
import math
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.config import CharLMConfig
from nmt.models.cells import double_candidate, gru_step, lstm_step, lstm_update, lstm_update_doubled, rnn_step
from nmt.models.int8_rnn import compiled
from nmt.models.rnn import Recurrent

STEPS = {"rnn": rnn_step, "lstm": lstm_step, "gru": gru_step}


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
        self.int8 = False                 # sample on int8 products (use_int8)

    def use_int8(self, parts: dict | None = None) -> None:
        """Sample on int8 products (nmt/quantize.py): the Stepper's matrix-vector products read a quarter of the
        float32 bytes. Scoring a text (forward) stays float, on the int8-rounded weights."""
        self.int8 = True

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
        return tuple(CharLM.detach(s) for s in state) if isinstance(state, tuple) else state.detach()

    @staticmethod
    def select(state, index: Tensor):
        """Keep (or repeat) streams: index (B',) -> state of batch B' (also an ensemble's tuple of states)."""
        if isinstance(state, tuple):
            return tuple(CharLM.select(s, index) for s in state)
        return state[:, index]


class CharLMEnsemble(nn.Module):
    """K character models with their own weights; the prediction is the mean of their distributions,
    p(x_t | x_<t) = 1/K sum_k p_k(x_t | x_<t), returned as log-probabilities (valid logits: softmax gives p back).
    Members err differently, so the mixture is better calibrated than any one of them. Trained side by side in one
    run (each member fits the data on its own loss: `each`) or apart and joined by `export --ensemble`.
    State: a tuple of the members' states."""

    detach, select = staticmethod(CharLM.detach), staticmethod(CharLM.select)

    def __init__(self, config: CharLMConfig):
        super().__init__()
        self.config = config
        one = dataclasses.replace(config, members=1)
        self.members = nn.ModuleList(CharLM(one) for _ in range(config.members))

    def use_int8(self, parts: dict | None = None) -> None:
        for member in self.members:
            member.use_int8()

    def each(self, x: Tensor, state=None) -> list[tuple[Tensor, object]]:
        """x (B, T) -> each member's own logits (B, T, V) and new state."""
        states = state if state is not None else (None,) * len(self.members)
        return [member(x, s) for member, s in zip(self.members, states)]

    def forward(self, x: Tensor, state=None) -> tuple[Tensor, tuple]:
        """x (B, T), state -> log-probabilities of the mixture (B, T, V), new state."""
        outputs = self.each(x, state)
        logp = torch.stack([F.log_softmax(logits.float(), -1) for logits, _ in outputs])   # (K, B, T, V)
        return mix(logp), tuple(s for _, s in outputs)


def mix(logp: Tensor) -> Tensor:
    """Members' log-probabilities (K, ..., V) -> log of their mean distribution (..., V)."""
    return torch.logsumexp(logp, 0) - math.log(logp.size(0))


def build(config: CharLMConfig) -> nn.Module:
    """The model a config describes: one CharLM, or an ensemble of `config.members` of them."""
    return CharLMEnsemble(config) if config.members > 1 else CharLM(config)


class Stepper:
    """Sampling one character at a time without module dispatch.

    The first layer's input product W_ih e(x) + b_ih is a lookup in a (V, G*H) table computed once; each step is
    then one matrix-vector product per weight matrix, so its cost is reading the weights once. State: a list of
    L per-layer states (B, H) (LSTM: (a, c) pairs).
    """

    def __init__(self, model: CharLM, half: bool = False):
        """half: keep the LSTM's matrices in float16 for the matrix-vector products (half the bytes read per
        character; activations are rounded to float16 before each product, sums and gates stay float32)."""
        c = model.config
        self.int8 = model.int8                 # int8 products instead (use_int8): no float16 copies then
        self.half = half and c.rnn.cell == "lstm" and not self.int8
        if c.rnn.bidirectional:
            raise ValueError("a bidirectional model cannot generate")
        self.step = STEPS[c.rnn.cell]
        self.layers = [tuple(model.rnn.weight(f"{k}_l{layer}").detach() for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                       for layer in range(c.rnn.num_layers)]
        w_ih0, _, b_ih0, _ = self.layers[0]
        self.table = model.embed.weight.detach() @ w_ih0.T + b_ih0                       # (V, G*H)
        if self.half:
            self.layers = [(w_ih.half(), w_hh.half(), b_ih, b_hh) for w_ih, w_hh, b_ih, b_hh in self.layers]
        out_w = model.output.weight.detach()
        out_b = model.output.bias.detach()
        if model.proj is not None:     # fold the tied projection into the output layer: (V, E) @ (E, H)
            out_b = out_b + out_w @ model.proj.bias.detach()
            out_w = out_w @ model.proj.weight.detach()
        self.out_w, self.out_b = out_w, out_b                                             # (V, H), (V,)
        if self.int8:        # the same products on int8 weights (nmt/quantize.py); x is quantised per step
            self._int8_setup(c.rnn.cell == "lstm", c.rnn.hidden_size)

    def _int8_setup(self, lstm: bool, H: int) -> None:
        """The int8 products of `_int8_call`. An LSTM's layers above the first take one product over [x, a^{t-1}]
        with [W_ih | W_hh] (rows quantised afresh over both halves) instead of two, and its candidate rows are
        doubled so that one sigmoid serves the four gates (`cells.lstm_update_doubled`): one stream's step is
        a chain of small calls, and each saved call is a few microseconds of a character's 100-200."""
        from nmt.quantize import Int8Linear, quantize_rows
        self.fused = lstm
        if lstm:
            self.table = double_candidate(self.table.T, H).T.contiguous()            # (V, 4H), gates on dim 1
            self.hh8 = [Int8Linear(*quantize_rows(double_candidate(w_hh, H)), double_candidate(b_hh, H))
                        if k == 0 else
                        Int8Linear(*quantize_rows(double_candidate(torch.cat([w_ih, w_hh], 1), H)),
                                   double_candidate(b_ih + b_hh, H))
                        for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.layers)]
        else:
            self.hh8 = [Int8Linear(*quantize_rows(w_hh), b_hh) for _, w_hh, _, b_hh in self.layers]
            self.ih8 = [None] + [Int8Linear(*quantize_rows(w_ih), b_ih) for w_ih, _, b_ih, _ in self.layers[1:]]
        self.out8 = Int8Linear(*quantize_rows(self.out_w), self.out_b)
        self.packed = [product._packed for product in self.hh8] if lstm else None      # for lstm_int8_step

    @staticmethod
    def split(state) -> list:
        """nn.LSTM/GRU state (L, B, H) (or a pair) -> per-layer states."""
        if isinstance(state, tuple):
            return list(zip(state[0].unbind(0), state[1].unbind(0)))
        return list(state.unbind(0))

    def __call__(self, token: Tensor, layers: list) -> Tensor:
        """token (B,) -> logits (B, V); `layers` is updated in place."""
        if self.int8:
            return self._int8_call(token, layers)
        x = self.table[token]                                                             # (B, G*H)
        for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.layers):
            if k:
                x = self._product(h, w_ih, b_ih)
            if self.half:
                a, c = layers[k]
                layers[k] = lstm_update(x + self._product(a, w_hh, b_hh), c)
            else:
                layers[k] = self.step(x, layers[k], w_hh, b_hh)
            h = layers[k][0] if isinstance(layers[k], tuple) else layers[k]
        return torch.addmm(self.out_b, h, self.out_w.T)

    def _int8_call(self, token: Tensor, layers: list) -> Tensor:
        """`__call__` on the int8 products."""
        x = self.table[token]                                                             # (B, G*H)
        if self.fused:                                                                    # LSTM (_int8_setup)
            hs, cs = [a for a, _ in layers], [c for _, c in layers]
            logits, hs, cs = compiled(lstm_int8_step)(x, hs, cs, self.packed, self.out8._packed)
            layers[:] = list(zip(hs, cs))
            return logits
        for k, (_, w_hh, _, b_hh) in enumerate(self.layers):
            if k:
                x = self.ih8[k](h)
            previous = layers[k][0] if isinstance(layers[k], tuple) else layers[k]
            layers[k] = self.step(x, layers[k], w_hh, b_hh, hh=self.hh8[k](previous))
            h = layers[k][0] if isinstance(layers[k], tuple) else layers[k]
        return self.out8(h)

    def _product(self, h: Tensor, w: Tensor, b: Tensor) -> Tensor:
        """h (B, I) @ w.T + b -> (B, G*H), in float32 or through the float16 copy of w."""
        if self.half:
            return (h.to(w.dtype) @ w.T).float() + b
        return torch.addmm(b, h, w.T)


def lstm_int8_step(x: Tensor, hs: List[Tensor], cs: List[Tensor],
                   packed: List[torch.classes.quantized.LinearPackedParamsBase],
                   out: torch.classes.quantized.LinearPackedParamsBase) -> Tuple[Tensor, List[Tensor], List[Tensor]]:
    """One sampling step of an int8 LSTM stack (`Stepper._int8_setup`): x (B, 4H) the first layer's input term
    (candidate doubled), hs / cs the layers' states (B, H); packed[0] holds U_0, packed[k > 0] [W_ih | W_hh] of
    layer k; out the output layer -> logits (B, V) and the new states (new lists: TorchScript copies lists passed
    in, so changes to them would not reach the caller). Written so that TorchScript compiles it
    (`int8_rnn.compiled`): one stream's step is some twenty small calls, and the interpreter's share of them was
    a third of a character's time (96 against 61 us a step for the shipped 2 x 512 LSTM, one thread)."""
    hs, cs = list(hs), list(cs)
    for k in range(len(hs)):
        if k == 0:
            gates = torch.ops.quantized.linear_dynamic(hs[k], packed[k], True).add_(x)       # (B, 4H)
        else:
            gates = torch.ops.quantized.linear_dynamic(torch.cat([x, hs[k]], 1), packed[k], True)
        x, cs[k] = lstm_update_doubled(gates, cs[k])
        hs[k] = x
    return torch.ops.quantized.linear_dynamic(x, out, True), hs, cs


class EnsembleStepper:
    """Stepper for a CharLMEnsemble: each member steps on its own state; returns the mixture's log-probabilities."""

    def __init__(self, model: CharLMEnsemble, half: bool = False):
        self.members = [Stepper(member, half) for member in model.members]

    @staticmethod
    def split(state) -> list:
        """The ensemble's tuple of states -> each member's per-layer states."""
        return [Stepper.split(s) for s in state]

    def __call__(self, token: Tensor, layers: list) -> Tensor:
        """token (B,) -> log-probabilities (B, V); `layers` (one list per member) is updated in place."""
        logp = [F.log_softmax(step(token, own), -1) for step, own in zip(self.members, layers)]
        return mix(torch.stack(logp))                                                     # (B, V)


def stepper(model: nn.Module, half: bool = False) -> Stepper | EnsembleStepper:
    """The sampling stepper of a CharLM or a CharLMEnsemble; a model run by another runtime (nmt/onnx) brings its
    own (`model.stepper()`)."""
    if isinstance(model, CharLMEnsemble):
        return EnsembleStepper(model, half)
    return Stepper(model, half) if isinstance(model, CharLM) else model.stepper()
