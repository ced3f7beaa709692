"""Text classifier: the course's many-to-one shape (a whole sequence in, one label out).

step inputs (a word's embedding + its character CNN features, or one character's embedding) -> dropout
-> BiLSTM/BiGRU -> pooling over the steps (attention, max, mean, or the two final states) -> dropout -> linear
over the labels (softmax in the loss).
Shapes: B texts, S steps (words or characters), U distinct words of a batch, W characters per word, H hidden per
direction, C labels.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.config import ClassifierConfig
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
        self.output = nn.Linear(self.encoder.output_size, num_labels)
        for emb in self.modules():     # uniform with variance 1/dim (as the tagger), not N(0, 1)
            if isinstance(emb, nn.Embedding):
                bound = (3.0 / emb.embedding_dim) ** 0.5
                nn.init.uniform_(emb.weight, -bound, bound)
                emb.weight.data[0].zero_()

    def inputs(self, tokens: Tensor, chars: Tensor | None = None, char_index: Tensor | None = None) -> Tensor:
        """The encoder's step inputs (B, S, I): word embeddings and character features, or character embeddings.

        tokens (B, S) word or character ids; chars (U, W) the characters of the batch's distinct words and
        char_index (B, S) the row of each position's word (unit=word with character features).
        """
        parts = [self.word_embed(tokens)] if self.word_embed is not None else []    # (B, S, E)
        if self.chars is not None:
            parts.append(self.chars(chars)[char_index])                               # (B, S, F)
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]

    def forward(self, tokens: Tensor, lengths: Tensor, chars: Tensor | None = None,
                char_index: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """tokens (B, S), lengths (B,) (each at least 1), characters as in `inputs` -> label scores (B, C) and,
        with attention pooling, the attention weights (B, S) (else None)."""
        x = self.emb_dropout(self.inputs(tokens, chars, char_index))
        mask = torch.arange(x.size(1), device=x.device)[None, :] < lengths[:, None]   # (B, S)
        if self.training or torch.is_grad_enabled() or self.config.rnn.impl != "fused":
            h, _ = self.encoder(x, lengths)                                           # (B, S, 2H)
        else:
            h = self.padded(x, lengths, mask)
        pooled, weights = self.pool(h, mask, lengths)                                 # (B, 2H)
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

    def padded(self, x: Tensor, lengths: Tensor, mask: Tensor) -> Tensor:
        """The encoder at inference without packing (torch runs padded batches several times faster on CPUs):
        each direction is one plain pass over the batch, the backward one over every text reversed within its
        own length, so that padding only ever follows a text's real steps and none of them reads it. Same
        weights and results as the packed encoder (up to float rounding): x (B, S, I) -> (B, S, D*H)."""
        steps = torch.arange(x.size(1), device=x.device)[:, None]                     # (S, 1)
        flip = torch.where(mask.T, lengths[None, :] - 1 - steps, steps)               # (S, B) each text reversed
        x = x.transpose(0, 1).contiguous()                  # (S, B, I): torch's time-major layout is faster
        for layer in range(self.config.rnn.num_layers):
            outs = [self._direction(layer, 0)(x)[0]]                                  # (S, B, H)
            if self.config.rnn.bidirectional:
                back = self._direction(layer, 1)(x.gather(0, flip[..., None].expand_as(x)))[0]   # reversed texts
                outs.append(back.gather(0, flip[..., None].expand_as(back)))
            x = torch.cat(outs, dim=-1) if len(outs) > 1 else outs[0]
        return x.transpose(0, 1) * mask[..., None]                                    # (B, S, D*H)

    def _direction(self, layer: int, direction: int) -> nn.Module:
        """A one-layer, one-direction torch RNN sharing the encoder's weights of that layer and direction (kept
        out of the module tree, so the state dict is unchanged)."""
        cache = self.__dict__.setdefault("_directions", {})
        if (layer, direction) not in cache:
            rnn, c = self.encoder.rnn, self.config.rnn
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            size = rnn.input_size if layer == 0 else c.hidden_size * (2 if c.bidirectional else 1)
            one = type(rnn)(size, c.hidden_size)            # time-major
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                setattr(one, f"{name}_l0", getattr(rnn, name + suffix))
            cache[(layer, direction)] = one
        return cache[(layer, direction)]
