"""The torch side of an ONNX export: exportable copies of the models, and one module per graph.

torch's recurrent layers read padded batches through `pack_padded_sequence`, which ONNX cannot express. An
exportable copy (`exportable`) swaps every `Recurrent` for a `PaddedRecurrent` with the same weights that reads
the padded batch itself: the forward direction runs over the padded batch as it is (a real step never reads a
later one), the backward direction over each sequence reversed within its own length (a gather, so its padding
comes last) and its outputs are reversed back, layer by layer; padded positions are zero. Outputs therefore equal
the packed ones, and a sentence in a padded batch gives what it gives alone. Everything else runs the models' own
code, so the graphs compute what the models compute.

The graph modules below take and return tensors only (the ONNX graph's inputs and outputs, in this order).
Shapes: B batch, S source length, T steps, E embedding, H hidden, L layers (times directions), V vocabulary,
K tags, C labels, U distinct words, W characters per word.
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from nmt.models.rnn import FUSED, Recurrent
from nmt.models.seq2seq import EncoderOut


class PaddedRecurrent(nn.Module):
    """A `Recurrent` over padded batches without packing (see the module docstring); same weights, same outputs.

    With lengths, the final state is each direction's state at its sequence's own last step; an LSTM's final
    memory cell is not available that way (None), which no model reading padded batches uses.
    """

    def __init__(self, recurrent: Recurrent):
        super().__init__()
        self.config = c = recurrent.config
        self.output_size = recurrent.output_size
        directions = 2 if c.bidirectional else 1
        cls = FUSED[c.cell]
        first = recurrent.weight("weight_ih_l0").size(1)
        # the whole stack (for input without lengths) and each layer and direction alone, sharing parameters
        self.rnn = cls(first, c.hidden_size, c.num_layers, bidirectional=c.bidirectional, batch_first=True)
        self.parts = nn.ModuleList()
        for layer in range(c.num_layers):
            for d in range(directions):
                size = first if layer == 0 else self.output_size
                part = cls(size, c.hidden_size, 1, batch_first=True)
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    own = f"{name}_l{layer}" + ("_reverse" if d else "")
                    weight = nn.Parameter(recurrent.weight(own).detach().float().clone(), requires_grad=False)
                    setattr(self.rnn, own, weight)
                    setattr(part, f"{name}_l0", weight)
                part.flatten_parameters()
                self.parts.append(part)
        self.rnn.flatten_parameters()

    def weight(self, name: str) -> Tensor:
        return getattr(self.rnn, name)

    def forward(self, x: Tensor, lengths: Tensor | None = None, hx=None):
        """As `Recurrent.forward`: x (B, S, I), lengths (B,) or None, hx (L*D, B, H) (LSTM: a pair) or None."""
        if lengths is None:
            return self.rnn(x, hx)
        c = self.config
        directions = 2 if c.bidirectional else 1
        S = x.size(1)
        steps = torch.arange(S, device=x.device)[None, :]                                 # (1, S)
        mask = (steps < lengths[:, None])[..., None].to(x.dtype)                          # (B, S, 1)
        # position t of the reversed sequence reads position len - 1 - t (padding stays where it is)
        flip = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)  # (B, S)
        last = (lengths - 1).clamp(min=0)                                                 # (B,)
        rows = torch.arange(x.size(0), device=x.device)
        finals = []
        for layer in range(c.num_layers):
            outs = []
            for d in range(directions):
                k = layer * directions + d
                h0 = None if hx is None else _part_state(hx, k)
                inp = x if d == 0 else _gather(x, flip)
                out, _ = self.parts[k](inp, h0)                                           # (B, S, H)
                finals.append(out[rows, last])                                            # (B, H)
                outs.append(out if d == 0 else _gather(out, flip))
            x = torch.cat(outs, dim=-1) * mask                                            # (B, S, D*H)
        h_n = torch.stack(finals)                                                         # (L*D, B, H)
        return x, ((h_n, None) if c.cell == "lstm" else h_n)


def _gather(x: Tensor, index: Tensor) -> Tensor:
    """x (B, S, F) reordered along S by index (B, S)."""
    return x.gather(1, index[..., None].expand(-1, -1, x.size(2)))


def _part_state(hx, k: int):
    if isinstance(hx, tuple):
        return hx[0][k:k + 1], hx[1][k:k + 1]
    return hx[k:k + 1]


def exportable(model: nn.Module) -> nn.Module:
    """A float32 copy of `model` in eval mode whose `Recurrent`s read padded batches without packing."""
    memo = {}                  # weight drop keeps views of its raw weights on the layer, which deepcopy refuses
    for module in model.modules():
        if isinstance(module, Recurrent) and module.weight_drop:
            for name in module._dropped:
                view = getattr(module.rnn, name)
                memo[id(view)] = view.detach().clone()
    model = copy.deepcopy(model, memo).float().eval()
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, Recurrent):
                setattr(module, child_name, PaddedRecurrent(child))
    for module in model.modules():          # contextual LMs (models/context.py) would autocast to bfloat16
        if hasattr(module, "bfloat16"):
            module.bfloat16 = False
    return model.requires_grad_(False)


# --- the graphs of each task ---------------------------------------------------------------------------------

class TranslatorEncoder(nn.Module):
    """src (B, S), lengths (B,) -> memory (B, S, M), keys (B, S, A), the initial decoder state h (L, B, H)
    (and c (L, B, H) for an LSTM)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, lengths: Tensor):
        enc, (rnn_state, _) = self.model.encode(src, lengths)
        states = rnn_state if isinstance(rnn_state, tuple) else (rnn_state,)
        return (enc.memory, enc.keys, *states)


class TranslatorStep(nn.Module):
    """One decoder step: memory (B, S, M), keys (B, S, A), mask (B, S) bool, y (B, 1) previous tokens, the state
    h (L, B, H) [c (L, B, H)] [feed (B, 1, E): the previous attentional vector, zeros at the first step] ->
    logits (B, 1, V), the new state (same names), attention weights (B, 1, S)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.lstm = model.is_lstm
        self.feeding = model.config.input_feeding

    def forward(self, memory: Tensor, keys: Tensor, mask: Tensor, y: Tensor, *state: Tensor):
        rnn_state = (state[0], state[1]) if self.lstm else state[0]
        feed = state[-1] if self.feeding else None
        enc = EncoderOut(memory, keys, mask, mask.sum(1))
        logits, (rnn_state, feed), weights = self.model.decode(enc, y, (rnn_state, feed))
        states = rnn_state if isinstance(rnn_state, tuple) else (rnn_state,)
        return (logits, *states, *((feed,) if self.feeding else ()), weights)


def translator_state_names(model) -> list[str]:
    """The decoder state's graph names, in order."""
    return ["h"] + (["c"] if model.is_lstm else []) + (["feed"] if model.config.input_feeding else [])


class TaggerEmissions(nn.Module):
    """words (B, S), chars (U, W), char_index (B, S), casings (B, S), lengths (B,) [and the contextual LMs'
    fwd (B, L), bwd (B, L), fwd_at (B, S), bwd_at (B, S)] -> emission scores (B, S, K)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, words, chars, char_index, casings, lengths, *context):
        return self.model(words, chars, casings, lengths, char_index, tuple(context) if context else None)


class ClassifierScores(nn.Module):
    """tokens (B, S), lengths (B,) [chars (U, W), char_index (B, S)] [ngram ids (N,), offsets (B,)] -> label scores
    (B, C) [and the attention weights (B, S)]: the model's whole-batch path (its encoder, then its head)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.chars = model.chars is not None
        self.ngrams = model.ngrams is not None

    def forward(self, tokens, lengths, *rest):
        m = self.model
        chars, char_index = (rest[0], rest[1]) if self.chars else (None, None)
        ngrams = (rest[-2], rest[-1]) if self.ngrams else None
        x = m.inputs(tokens, chars, char_index)                                          # (B, S, I)
        mask = torch.arange(x.size(1), device=x.device)[None, :] < lengths[:, None]      # (B, S)
        h, _ = m.encoder(x, lengths)                                                     # (B, S, D*H)
        scores, weights = m.head(h, mask, lengths, ngrams)
        return (scores,) if weights is None else (scores, weights)


class CharLMChunk(nn.Module):
    """x (B, T) characters and the state (each member's h (L, B, H) [and c]) -> logits (B, T, V) (an ensemble:
    the mixture's log-probabilities) and the new state: T = 1 is one sampling step, longer T reads a prime."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.members = len(getattr(model, "members", [model]))
        self.lstm = model.config.rnn.cell == "lstm"

    def forward(self, x: Tensor, *flat: Tensor):
        per = 2 if self.lstm else 1
        states = [(flat[k * per], flat[k * per + 1]) if self.lstm else flat[k] for k in range(self.members)]
        logits, state = self.model(x, tuple(states) if self.members > 1 else states[0])
        states = state if self.members > 1 else (state,)
        return (logits, *[t for s in states for t in (s if isinstance(s, tuple) else (s,))])


def charlm_state_names(model) -> list[str]:
    members = len(getattr(model, "members", [model]))
    lstm = model.config.rnn.cell == "lstm"
    return [f"{name}{k}" for k in range(members) for name in (("h", "c") if lstm else ("h",))]
