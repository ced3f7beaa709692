"""Attention encoder-decoder (the course's many-to-many shape with different lengths).

Encoder: embeddings -> dropout -> multi-layer bidirectional GRU/LSTM over packed sequences.
Decoder: GRU/LSTM over target embeddings -> attention over the encoder states (query = the new decoder state,
as in Luong et al. 2015; scores bahdanau | dot | general) -> attentional vector tanh(W_c [s_t; c_t]) -> logits.
Without input feeding the decoder RNN runs over all T target steps in one fused call and attention scores all
steps at once; with input feeding the attentional vector of step t-1 enters the RNN at step t, which forces a
loop over steps.

Decoding code sees only `encode`, `decode` (any T, including one step), `reorder_encoder` and `reorder_state`.
Shapes: B batch, S source length, T target length, E embedding, H decoder hidden, V vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nmt.config import RNNConfig, Seq2SeqConfig
from nmt.models.attention import Attention
from nmt.models.bptt import FeedGRUBahdanau
from nmt.models.cells import gru_step, lstm_step, rnn_step
from nmt.models.rnn import Recurrent


@dataclass
class EncoderOut:
    memory: Tensor    # (B, S, M) encoder states, M = D * encoder H
    keys: Tensor      # (B, S, A) attention keys, projected once
    mask: Tensor      # (B, S) bool, True = real token
    lengths: Tensor   # (B,)


STEPS = {"rnn": rnn_step, "lstm": lstm_step, "gru": gru_step}


def _unstack(state) -> list:
    """(L, B, H) (or an LSTM pair of them) -> L per-layer states (B, H) (or pairs)."""
    if isinstance(state, tuple):
        return list(zip(state[0].unbind(0), state[1].unbind(0)))
    return list(state.unbind(0))


def _stack(layers: list):
    if isinstance(layers[0], tuple):
        return torch.stack([h for h, _ in layers]), torch.stack([c for _, c in layers])
    return torch.stack(layers)


def _hidden(state) -> Tensor:
    return state[0] if isinstance(state, tuple) else state


# Decoder state: (rnn state (L, B, H) or an LSTM pair of them, previous attentional vector (B, 1, E) or None)
State = tuple


class Seq2Seq(nn.Module):
    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = c = config
        if c.tie_src_tgt and c.src_vocab_size != c.tgt_vocab_size:
            raise ValueError("tie_src_tgt needs a joint vocabulary (equal source and target vocabulary sizes)")
        self.tgt_embed = nn.Embedding(c.tgt_vocab_size, c.embed_size, padding_idx=c.pad_id)
        self.src_embed = self.tgt_embed if c.tie_src_tgt else nn.Embedding(c.src_vocab_size, c.embed_size,
                                                                              padding_idx=c.pad_id)
        self.encoder = Recurrent(c.encoder, c.embed_size)
        dec_rnn = RNNConfig(cell=c.encoder.cell, impl=c.encoder.impl, hidden_size=c.decoder_hidden,
                            num_layers=c.decoder_layers, bidirectional=False, dropout=c.dropout)
        dec_in = c.embed_size + (c.embed_size if c.input_feeding else 0)
        self.decoder = Recurrent(dec_rnn, dec_in)
        memory = self.encoder.output_size
        self.attention = Attention(c.attention, c.decoder_hidden, memory)
        self.bridge = nn.Linear(memory, c.decoder_hidden * c.decoder_layers) if c.bridge else None
        self.combine = nn.Linear(c.decoder_hidden + memory, c.embed_size, bias=False)
        self.output = nn.Linear(c.embed_size, c.tgt_vocab_size)
        if c.tie_output:
            self.output.weight = self.tgt_embed.weight
        # small embeddings: with tying they are also the output layer, and N(0, 1) rows would start the softmax
        # saturated (logit std ~ sqrt(E)), spending the first epoch shrinking them (Press & Wolf 2017 init)
        for emb in {self.src_embed, self.tgt_embed}:
            nn.init.uniform_(emb.weight, -0.1, 0.1)
            emb.weight.data[c.pad_id].zero_()
        self.emb_dropout = nn.Dropout(c.emb_dropout)
        self.dropout = nn.Dropout(c.dropout)
        self.is_lstm = c.encoder.cell == "lstm"
        # impl=fused: in training, input feeding with one GRU layer and Bahdanau attention runs as one autograd
        # function with hand-written BPTT (models/bptt.py); other decoders, other impls and decoding loop over steps
        self.fused_feed = (c.input_feeding and c.encoder.cell == "gru" and c.decoder_layers == 1
                           and c.attention == "bahdanau" and c.encoder.impl == "fused")
        self._inputs_table, self._inputs_key = None, None
        self._hh_int8: list | None = None      # the decoder's recurrent products in int8 (use_int8), per layer

    def use_int8(self, parts: dict) -> None:
        """Inference on int8 products (nmt/quantize.py) for what runs at every decoding step: the decoder's
        recurrent matrices, attention's query projection, the combination layer and the output layer (and, once
        per sentence, the encoder, the key projection and the bridge). `parts`: name -> (int8 values, scales) of the checkpoint."""
        from nmt.quantize import Int8Linear
        c, att = self.config, self.attention
        self.encoder.use_int8()
        self.output = Int8Linear.of(self.output, parts, "output")
        self.combine = Int8Linear.of(self.combine, parts, "combine")
        if self.bridge is not None:
            self.bridge = Int8Linear.of(self.bridge, parts, "bridge")
        if att.kind != "dot":
            att.key_proj = Int8Linear.of(att.key_proj, parts, "attention.key_proj")
        if att.kind == "bahdanau":
            att.query_proj = Int8Linear.of(att.query_proj, parts, "attention.query_proj")
        names = [f"decoder.rnn.weight_hh_l{k}" for k in range(c.decoder_layers)]
        if c.encoder.impl == "fused" and all(name in parts for name in names):
            rnn = self.decoder.rnn
            self._hh_int8 = [Int8Linear(*parts[name], getattr(rnn, f"bias_hh_l{k}")) for k, name in enumerate(names)]

    # --- encoder -------------------------------------------------------------------------------------------
    def encode(self, src: Tensor, lengths: Tensor) -> tuple[EncoderOut, State]:
        """src (B, S) token ids, lengths (B,) -> encoder output and the initial decoder state."""
        mask = torch.arange(src.size(1), device=src.device)[None, :] < lengths[:, None]   # (B, S)
        x = self.emb_dropout(self.src_embed(src))                                         # (B, S, E)
        memory, _ = self.encoder(x, lengths)                                              # (B, S, M)
        memory = self.dropout(memory)
        enc = EncoderOut(memory, self.attention.keys(memory), mask, lengths)
        return enc, (self._bridge(enc), None)

    def _bridge(self, enc: EncoderOut):
        c = self.config
        B = enc.memory.size(0)
        if self.bridge is None:
            h = enc.memory.new_zeros(c.decoder_layers, B, c.decoder_hidden)
        else:
            # mean of the encoder states over real tokens: both directions have then read the whole sentence
            mean = (enc.memory * enc.mask[..., None]).sum(1) / enc.lengths[:, None].clamp(min=1)   # (B, M)
            h = torch.tanh(self.bridge(mean)).view(B, c.decoder_layers, c.decoder_hidden).transpose(0, 1)
            h = h.contiguous()                                                                    # (L, B, H)
        return (h, torch.zeros_like(h)) if self.is_lstm else h

    # --- decoder -------------------------------------------------------------------------------------------
    def decode(self, enc: EncoderOut, y: Tensor, state: State) -> tuple[Tensor, State, Tensor]:
        """y (B, T) previous target tokens (teacher forcing, or T=1 while decoding) and a state.

        Returns logits (B, T, V), the new state, and attention weights (B, T, S).
        """
        att_vec, state, weights = self.features(enc, y, state)
        return self.output(self.dropout(att_vec)), state, weights

    def features(self, enc: EncoderOut, y: Tensor, state: State) -> tuple[Tensor, State, Tensor]:
        """The decoder up to the output layer: attentional vectors (B, T, E), the new state, weights (B, T, S)."""
        rnn_state, feed = state
        x_in = self._decoding_inputs(y)                                                   # (B, T, G*H) or None
        emb = self.emb_dropout(self.tgt_embed(y)) if x_in is None else None               # (B, T, E)
        if not self.config.input_feeding:
            if x_in is None:
                out, rnn_state = self.decoder(emb, hx=rnn_state)                          # (B, T, H)
            else:                                                                         # one decoding step
                layers = _unstack(rnn_state)
                out = self._cell_stack_step(x_in[:, 0], layers)[:, None]                  # (B, 1, H)
                rnn_state = _stack(layers)
            att_vec, weights = self._attend(out, enc)
            return att_vec, (rnn_state, None), weights
        if self.fused_feed and torch.is_grad_enabled():      # training; decoding steps one at a time below
            return self._feed_fused(emb, enc, rnn_state, feed)
        return self._feed_loop(emb, enc, rnn_state, feed, x_in)

    def _decoding_inputs(self, y: Tensor) -> Tensor | None:
        """When decoding (eval mode, no autograd, torch's layers; one step unless the decoder loops anyway): the
        first decoder layer's input term W_ih[:, :E] e_y + b_ih (B, T, G*H) for tokens y (B, T), read from a
        (V, G*H) table computed once per weight version instead of running the (B, E) x (E, G*H) product each
        step. None otherwise."""
        c = self.config
        if (self.training or torch.is_grad_enabled() or c.encoder.impl != "fused"
                or (y.size(1) > 1 and not c.input_feeding)):
            return None
        rnn, emb = self.decoder.rnn, self.tgt_embed.weight
        w_ih, b_ih = rnn.weight_ih_l0, rnn.bias_ih_l0
        key = tuple((t.data_ptr(), t._version) for t in (w_ih, b_ih, emb))
        if self._inputs_key != key:
            self._inputs_table = torch.addmm(b_ih, emb, w_ih[:, : c.embed_size].T)   # (V, G*H)
            self._inputs_key = key
        return self._inputs_table[y]

    def _cell_stack_step(self, x_in: Tensor, layers: list) -> Tensor:
        """One step of the decoder's layers, given the first layer's input term W_ih x + b_ih (B, G*H).
        Updates the per-layer states in `layers` and returns the top layer's output (B, H)."""
        c, rnn = self.config, self.decoder.rnn
        step, int8 = STEPS[c.encoder.cell], self._hh_int8
        hh = (lambda k: int8[k](_hidden(layers[k]))) if int8 and not torch.is_grad_enabled() else (lambda k: None)
        layers[0] = step(x_in, layers[0], rnn.weight_hh_l0, rnn.bias_hh_l0, hh=hh(0))
        out = _hidden(layers[0])
        for k in range(1, c.decoder_layers):
            w_ih, w_hh, b_ih, b_hh = (getattr(rnn, f"{name}_l{k}") for name in ("weight_ih", "weight_hh", "bias_ih",
                                                                                  "bias_hh"))
            out = nn.functional.dropout(out, c.dropout, self.training)
            layers[k] = step(torch.addmm(b_ih, out, w_ih.T), layers[k], w_hh, b_hh, hh=hh(k))
            out = _hidden(layers[k])
        return out

    def _feed_fused(self, emb: Tensor, enc: EncoderOut, rnn_state: Tensor, feed: Tensor | None):
        """`_feed_loop` for a one-layer GRU with Bahdanau attention, as one function with batched weight gradients."""
        E, rnn, att = self.config.embed_size, self.decoder.rnn, self.attention
        w_ih = rnn.weight_ih_l0
        x_emb = torch.addmm(rnn.bias_ih_l0, emb.flatten(0, 1), w_ih[:, :E].T).view(*emb.shape[:2], -1)  # (B, T, 3H)
        feed = emb.new_zeros(emb.size(0), E) if feed is None else feed[:, 0]               # (B, E)
        att_vec, h, weights = FeedGRUBahdanau.apply(
            x_emb, feed, rnn_state[0], w_ih[:, E:], rnn.weight_hh_l0, rnn.bias_hh_l0, att.query_proj.weight,
            att.v.weight[0], self.combine.weight, enc.keys, enc.memory, enc.mask)
        return att_vec, (h[None], att_vec[:, -1:]), weights

    def _feed_loop(self, emb: Tensor | None, enc: EncoderOut, rnn_state, feed: Tensor | None,
                   x_emb: Tensor | None = None):
        """Input feeding: the attentional vector of step t-1 joins the input of step t, so steps run in a loop.

        The loop calls the cell step functions directly on the decoder's weights; the embedding half of the first
        layer's input product is computed for all T steps in one matrix product before it (or given as x_emb
        (B, T, G*H), read from the decoding table). Steps are taken with `unbind`, whose backward stacks the T
        gradients once (indexing x[:, t] would zero-fill a (B, T, G*H) gradient at every step: O(T^2) memory
        traffic). emb (B, T, E) -> attentional vectors (B, T, E), state, weights (B, T, S).
        """
        c, rnn = self.config, self.decoder.rnn
        w_ih0 = rnn.weight_ih_l0
        if x_emb is None:
            x_emb = torch.addmm(rnn.bias_ih_l0, emb.flatten(0, 1), w_ih0[:, : c.embed_size].T)   # (B*T, G*H)
            x_emb = x_emb.view(emb.size(0), emb.size(1), -1)                               # (B, T, G*H)
        w_feed = w_ih0[:, c.embed_size:]                                                   # (G*H, E)
        layers = _unstack(rnn_state)                                                       # L states (B, H)
        feed = x_emb.new_zeros(x_emb.size(0), c.embed_size) if feed is None else feed[:, 0]  # (B, E)
        vectors, all_weights = [], []
        for x_t in x_emb.unbind(1):                                                        # (B, G*H)
            out = self._cell_stack_step(torch.addmm(x_t, feed, w_feed.T), layers)          # (B, H)
            vec, att = self._attend(out[:, None], enc)                                     # (B, 1, E), (B, 1, S)
            feed = vec[:, 0]
            vectors.append(vec)
            all_weights.append(att)
        att_vec = torch.cat(vectors, dim=1)                                                # (B, T, E)
        return att_vec, (_stack(layers), feed[:, None]), torch.cat(all_weights, dim=1)

    def _attend(self, out: Tensor, enc: EncoderOut) -> tuple[Tensor, Tensor]:
        """Decoder states (B, T, H) -> attentional vectors (B, T, E) and weights (B, T, S)."""
        context, weights = self.attention(out, enc.keys, enc.memory, enc.mask)            # (B, T, M)
        return torch.tanh(self.combine(torch.cat([out, context], dim=-1))), weights

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, select: Tensor | None = None) -> Tensor:
        """Teacher-forced logits (B, T, V) for target inputs tgt_in (B, T) (BOS + target without EOS).

        With `select` (B, T) bool, only the logits of the selected positions (N, V), in row-major order: the
        largest layer then skips the padding.
        """
        enc, state = self.encode(src, src_lengths)
        att_vec, _, _ = self.features(enc, tgt_in, state)                                 # (B, T, E)
        if select is not None:
            att_vec = att_vec[select]                                                      # (N, E)
        return self.output(self.dropout(att_vec))

    # --- beam bookkeeping ----------------------------------------------------------------------------------
    @staticmethod
    def reorder_encoder(enc: EncoderOut, index: Tensor) -> EncoderOut:
        """Select (or repeat) batch rows: index (B',) -> an EncoderOut of batch B'."""
        return EncoderOut(enc.memory[index], enc.keys[index], enc.mask[index], enc.lengths[index])

    @staticmethod
    def reorder_state(state: State, index: Tensor) -> State:
        rnn_state, feed = state
        if isinstance(rnn_state, tuple):
            rnn_state = tuple(s[:, index] for s in rnn_state)
        else:
            rnn_state = rnn_state[:, index]
        return rnn_state, None if feed is None else feed[index]
