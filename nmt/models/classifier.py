"""Text classifier: the course's many-to-one shape (a whole sequence in, one label out).

step inputs (a word's embedding + its character CNN features, or one character's embedding) -> dropout
-> BiLSTM/BiGRU -> pooling over the steps (attention, max, mean, or the two final states), optionally beside
the mean of the text's hashed n-gram vectors (fastText's bag) -> dropout -> linear over the labels (softmax in the
loss).
Shapes: B texts, S steps (words or characters), U distinct words of a batch, W characters per word, H hidden per
direction, C labels, N n-grams of a batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.config import ClassifierConfig
from nmt.models.cells import double_candidate, gru_step, lstm_step, lstm_update_doubled, rnn_step
from nmt.models.int8_rnn import FLOAT_BELOW, compiled, lstm_int8_sweep
from nmt.models.rnn import Recurrent
from nmt.models.tagger import CharCNN


class AttentionPooling(nn.Module):
    """Additive self-attention over the steps (Yang et al. 2016): score_t = v . tanh(W h_t + b), weights =
    softmax over the real steps, output = sum_t weight_t h_t. The weights say which steps the label rests on."""

    def __init__(self, size: int, hidden: int):
        super().__init__()
        self.proj = nn.Linear(size, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)

    def forward(self, h: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """h (B, S, D), mask (B, S) -> pooled (B, D), weights (B, S) (zero on padding)."""
        scores = self.score(torch.tanh(self.proj(h))).squeeze(-1)                     # (B, S)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        return torch.bmm(weights.unsqueeze(1), h).squeeze(1), weights


class Classifier(nn.Module):
    def __init__(self, config: ClassifierConfig, num_labels: int):
        super().__init__()
        self.config = c = config
        if c.unit == "word":
            self.word_embed = nn.Embedding(c.word_vocab_size, c.word_embed, padding_idx=0) if c.word_embed else None
            self.chars = CharCNN(c.char_vocab_size, c.char_embed, c.char_hidden) if c.char_features == "cnn" else None
            size = c.word_embed + (self.chars.output_size if self.chars else 0)
        else:
            self.word_embed, self.chars = nn.Embedding(c.char_vocab_size, c.char_embed, padding_idx=0), None
            size = c.char_embed
        if size == 0:
            raise ValueError("a word classifier needs word embeddings or character features (word_embed > 0 or "
                             "char_features=cnn)")
        self.encoder = Recurrent(c.rnn, size)
        self.attention = AttentionPooling(self.encoder.output_size, c.attention_size) \
            if c.pooling == "attention" else None
        self.emb_dropout = nn.Dropout(c.emb_dropout)
        self.dropout = nn.Dropout(c.dropout)
        self.ngrams = nn.EmbeddingBag(c.ngram_buckets, c.ngram_dim, mode="mean") if c.ngram_buckets else None
        bag = c.ngram_dim if self.ngrams is not None else 0
        self.output = nn.Linear(self.encoder.output_size + bag, num_labels)
        for emb in self.modules():     # uniform with variance 1/dim (as the tagger), not N(0, 1)
            if isinstance(emb, (nn.Embedding, nn.EmbeddingBag)):
                bound = (3.0 / emb.embedding_dim) ** 0.5
                nn.init.uniform_(emb.weight, -bound, bound)
                if isinstance(emb, nn.Embedding):
                    emb.weight.data[0].zero_()
        self._int8: dict | None = None     # int8 products of the inference path (use_int8), by weight name
        self._int8_doubled = False          # ... an LSTM's, with its candidate rows doubled

    def use_int8(self, parts: dict) -> None:
        """Inference on int8 products (nmt/quantize.py) where `classify_steps` spends its time: layer 0's input
        terms of the distinct words, every layer's recurrent product, the upper layers' input products and the
        attention's projection. The word embeddings, the character CNN and the output layer stay float (lookups
        and small products). `parts`: name -> (int8 values, scales) of the checkpoint."""
        from nmt.quantize import Int8Linear
        c = self.config.rnn
        if c.impl != "fused":                       # the scratch cells keep their own parameters
            return
        layers = [[f"_l{k}{s}" for s in (["", "_reverse"] if c.bidirectional else [""])] for k in range(c.num_layers)]
        if not all(f"encoder.rnn.weight_{kind}{n}" in parts for names in layers for n in names
                   for kind in ("ih", "hh")):
            return
        # an LSTM's candidate rows doubled throughout (cells.double_candidate): its sweeps then take one sigmoid
        # for the four gates (int8_rnn.lstm_int8_sweep; exact for int8 rows, whose scale doubles)
        double = (lambda w: double_candidate(w, c.hidden_size)) if c.cell == "lstm" else (lambda w: w.float())

        def rows(kind: str, name: str) -> tuple[Tensor, Tensor, Tensor]:
            """int8 values, row scales and bias of one matrix, candidate rows doubled."""
            q, scale = parts[f"encoder.rnn.weight_{kind}{name}"]
            return q, double(scale[:, None])[:, 0], double(self.encoder.weight(f"bias_{kind}{name}"))
        self._int8, self._int8_doubled = {}, c.cell == "lstm"
        for k, names in enumerate(layers):
            self._int8[f"weight_ih_l{k}"] = Int8Linear(*(torch.cat(t) for t in zip(*(rows("ih", n) for n in names))))
            for name in names:
                q, scale, bias = rows("hh", name)
                self._int8[f"hh{name}"] = Int8Linear(q, scale, bias)
                self._int8[f"float_hh{name}"] = (double(self.encoder.weight(f"weight_hh{name}")), bias)  # < FLOAT_BELOW
        if self.attention is not None:
            self.attention.proj = Int8Linear.of(self.attention.proj, parts, "attention.proj")

    def inputs(self, tokens: Tensor, chars: Tensor | None = None, char_index: Tensor | None = None) -> Tensor:
        """The encoder's step inputs (B, S, I): word embeddings and character features, or character embeddings.

        tokens (B, S) word or character ids; chars (U, W) the characters of the batch's distinct words and
        char_index (B, S) the row of each position's word (unit=word with character features).
        """
        parts = [self.word_embed(tokens)] if self.word_embed is not None else []    # (B, S, E)
        if self.chars is not None:
            parts.append(self.chars(chars)[char_index])                               # (B, S, F)
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]

    def forward(self, tokens: Tensor, lengths: Tensor, chars: Tensor | None = None, char_index: Tensor | None = None,
                ngrams: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor | None]:
        """tokens (B, S), lengths (B,) (each at least 1), characters as in `inputs`, ngrams (ids (N,), offsets
        (B,)) the hashed n-grams of each text (with ngram_buckets > 0) -> label scores (B, C) and, with attention
        pooling, the attention weights (B, S) (else None)."""
        x = self.emb_dropout(self.inputs(tokens, chars, char_index))                  # (B, S, I)
        if not (self.training or torch.is_grad_enabled() or self.config.rnn.impl != "fused"):
            B, S, _ = x.shape
            return self.classify_steps(self.input_terms(x.reshape(B * S, -1)), torch.arange(B * S).view(B, S),
                                       lengths, ngrams)
        mask = torch.arange(x.size(1), device=x.device)[None, :] < lengths[:, None]   # (B, S)
        h, _ = self.encoder(x, lengths)                                               # (B, S, 2H)
        return self.head(h, mask, lengths, ngrams)

    def head(self, h: Tensor, mask: Tensor, lengths: Tensor, ngrams) -> tuple[Tensor, Tensor | None]:
        """Encoder outputs h (B, S, D*H) -> label scores (B, C) and the attention weights (B, S) (or None)."""
        pooled, weights = self.pool(h, mask, lengths)                                 # (B, 2H)
        if self.ngrams is not None:
            pooled = torch.cat([pooled, self.ngrams(*ngrams)], dim=-1)                # (B, 2H + G)
        return self.output(self.dropout(pooled)), weights

    def pool(self, h: Tensor, mask: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        """One vector per text from the encoder's outputs h (B, S, D) (zero on padding)."""
        kind = self.config.pooling
        if kind == "attention":
            return self.attention(h, mask)
        if kind == "max":
            return h.masked_fill(~mask[..., None], float("-inf")).max(dim=1).values, None
        if kind == "mean":
            return h.sum(dim=1) / lengths[:, None].to(h.dtype), None
        last = h[torch.arange(h.size(0)), lengths - 1]                                # (B, D): a^S of each text
        if not self.config.rnn.bidirectional:
            return last, None
        size = self.config.rnn.hidden_size        # the backward direction ends at the first step
        return torch.cat([last[:, :size], h[:, 0, size:]], dim=-1), None

    # --- inference from input terms -----------------------------------------------------------------------

    def step_table(self, tokens: Tensor, chars: Tensor | None = None) -> Tensor:
        """Layer 0's input terms of distinct steps: tokens (U,) word or character ids and chars (U, W) their
        characters (unit=word with character features) -> (U, D, G). Texts repeat words, so a caller that
        computes each distinct word's term once saves most of layer 0's input product (`classify_steps`)."""
        index = torch.arange(tokens.numel())[None]                                    # (1, U)
        return self.input_terms(self.inputs(tokens[None], chars, index)[0])

    def input_terms(self, x: Tensor, layer: int = 0) -> Tensor:
        """x (N, I) -> W_ih x + b_ih of each direction of the layer, (N, D, G) (G = H times the cell's gates)."""
        names = ["_reverse"] if self.config.rnn.bidirectional else []
        int8 = self._int8.get(f"weight_ih_l{layer}") if self._int8 and not torch.is_grad_enabled() else None
        if int8 is not None:
            return int8(x).view(x.size(0), len(names) + 1, -1)
        w = torch.cat([self.encoder.weight(f"weight_ih_l{layer}{s}") for s in ["", *names]])     # (D*G, I)
        b = torch.cat([self.encoder.weight(f"bias_ih_l{layer}{s}") for s in ["", *names]])       # (D*G,)
        return F.linear(x, w, b).view(x.size(0), len(names) + 1, -1)

    def classify_steps(self, table: Tensor, rows: Tensor, lengths: Tensor, ngrams=None) -> tuple[Tensor, Tensor | None]:
        """Inference from layer 0's input terms: table (U, D, G) (`step_table`), rows (B, S) each step's row of
        it, lengths (B,) -> label scores (B, C) and attention weights (B, S) or None, as `forward`."""
        mask = torch.arange(rows.size(1))[None, :] < lengths[:, None]                 # (B, S)
        return self.head(self.encode_steps(table, rows, mask), mask, lengths, ngrams)

    def encode_steps(self, table: Tensor, rows: Tensor, mask: Tensor) -> Tensor:
        """The encoder's outputs (B, S, D*H), zero on padding, from layer 0's input terms (the same equations
        as torch's module, one loop over the steps per direction and layer)."""
        rows, steps = rows.T, mask.T                                                  # (S, B)
        S, B = rows.shape
        terms = table.index_select(0, rows.flatten()).view(S, B, *table.shape[1:])    # (S, B, D, G)
        directions = 2 if self.config.rnn.bidirectional else 1
        for layer in range(self.config.rnn.num_layers):
            h = torch.cat([self._sweep(layer, d, terms[:, :, d], steps) for d in range(directions)], dim=-1)
            if layer + 1 < self.config.rnn.num_layers:                               # h (S, B, D*H)
                terms = self.input_terms(h.flatten(0, 1), layer + 1).unflatten(0, h.shape[:2])    # (S, B, D, G)
        return (h * steps[..., None]).transpose(0, 1)

    def _sweep(self, layer: int, direction: int, terms: Tensor, steps: Tensor) -> Tensor:
        """One direction of one layer: terms (S, B, G) the input terms, steps (S, B) the real-step mask -> outputs
        (S, B, H). The backward direction starts at the last step and holds its zero state over each text's
        padding, so it meets every text's last word fresh. An int8 LSTM runs `lstm_int8_sweep` (TorchScript)."""
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        w_hh, b_hh = self.encoder.weight("weight_hh" + suffix), self.encoder.weight("bias_hh" + suffix)
        S, B = steps.shape
        H, cell = self.config.rnn.hidden_size, self.config.rnn.cell
        int8 = self._int8 if self._int8 and not torch.is_grad_enabled() else None
        h = c = torch.zeros(B, H)
        if int8 is not None and self._int8_doubled:         # candidate rows doubled in terms and products
            if B >= FLOAT_BELOW:
                hold = steps[..., None] if direction else torch.ones(S, B, 1, dtype=torch.bool)
                return compiled(lstm_int8_sweep)(terms, hold, int8["hh" + suffix]._packed, bool(direction), h, c)[0]
            w_hh, b_hh = int8["float_hh" + suffix]          # a few texts: float products (int8_rnn.py)
        hh_int8 = int8["hh" + suffix] if int8 is not None and B >= FLOAT_BELOW else None
        out = [None] * S
        for t in (range(S - 1, -1, -1) if direction else range(S)):
            hh = None if hh_int8 is None else hh_int8(h)                              # (B, G) or None
            if cell == "lstm" and int8 is not None:
                new_h, new_c = lstm_update_doubled(terms[t] + h @ w_hh.T + b_hh, c)
            elif cell == "lstm":
                new_h, new_c = lstm_step(terms[t], (h, c), w_hh, b_hh, hh=hh)
            else:
                new_h = (gru_step if cell == "gru" else rnn_step)(terms[t], h, w_hh, b_hh, hh=hh)
                new_c = c
            if direction:
                keep = steps[t, :, None]                                              # (B, 1)
                new_h, new_c = torch.where(keep, new_h, h), torch.where(keep, new_c, c)
            h, c, out[t] = new_h, new_c, new_h
        return torch.stack(out)
