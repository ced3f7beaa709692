"""Sequence tagger: the course's many-to-many shape with equal lengths (one tag per word).

word embedding + character features (char CNN or char BiLSTM) + casing embedding (+ contextual char-LM states)
-> dropout -> BiLSTM/BiGRU -> dropout -> linear emissions -> CRF (or a per-word softmax).
Shapes: B sentences, S words, W characters per word, K tags.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.config import ConfigError, RNNConfig, TaggerConfig
from nmt.models.context import CharContext, lm_config
from nmt.models.crf import CRF, iob2_constraints
from nmt.models.rnn import Recurrent

# casing classes of a word (0 is padding)
CASINGS = ("<pad>", "numeric", "mainly_numeric", "lower", "upper", "initial_upper", "has_digit", "other")


@functools.lru_cache(maxsize=1 << 16)
def casing(word: str) -> int:
    """The casing class of a word, an index into CASINGS."""
    digits = sum(c.isdigit() for c in word)
    if word.isdigit():
        return 1
    if digits / max(1, len(word)) > 0.5:
        return 2
    if word.islower():
        return 3
    if word.isupper():
        return 4
    if word[:1].isupper():
        return 5
    return 6 if digits else 7


class CharCNN(nn.Module):
    """Max-pooled convolution over each word's characters (Ma & Hovy 2016)."""

    def __init__(self, vocab: int, embed: int, filters: int, width: int = 3):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed, padding_idx=0)
        self.conv = nn.Conv1d(embed, filters, width, padding=width // 2)
        self.output_size = filters

    def forward(self, chars: Tensor) -> Tensor:
        """chars (U, W) character ids of U words, left-aligned (0: padding) -> (U, F); an empty (all-padding) word
        gives zeros."""
        if torch.is_grad_enabled() or torch.jit.is_tracing() or chars.numel() == 0:
            return self.padded(chars)
        return self.packed(chars)

    def packed(self, chars: Tensor) -> Tensor:
        """`forward` over the words laid end to end, `padding` zero characters between two, so the convolution
        reads each real character once instead of W per word (most words are far shorter than the longest of a
        batch: 2.5-3x less time for CoNLL's words), then the max over each word's segment. The same values as
        `padded`: the zero embedding of the gaps is what the padding gives each word's first and last window."""
        U, W = chars.shape
        p = self.conv.padding[0]
        lengths = (chars != 0).sum(1)                                               # (U,)
        keep = torch.arange(W + p) < (lengths + p)[:, None]                         # (U, W + p)
        stream = nn.functional.pad(chars, (0, p))[keep]                             # (N,) ids, p zeros after each word
        h = self.conv(self.embed(stream).T[None])[0].T                              # (N, F)
        out = torch.segment_reduce(h[stream != 0], "max", lengths=lengths, unsafe=True)   # (U, F)
        return out.masked_fill_(lengths[:, None] == 0, 0.0)

    def padded(self, chars: Tensor) -> Tensor:
        """`forward` on the (U, W) grid as it comes (training, ONNX export)."""
        x = self.embed(chars).transpose(1, 2)                                       # (U, C, W)
        h = self.conv(x).masked_fill((chars == 0)[:, None, :], float("-inf"))       # (U, F, W)
        h = h.max(dim=2).values                                                     # (U, F)
        return h.masked_fill(torch.isinf(h), 0.0)


class CharLSTM(nn.Module):
    """Final states of a character BiLSTM over each word (Lample et al. 2016)."""

    def __init__(self, vocab: int, embed: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed, padding_idx=0)
        self.rnn = Recurrent(RNNConfig(cell="lstm", hidden_size=hidden, bidirectional=True), embed)
        self.output_size = 2 * hidden

    def forward(self, chars: Tensor) -> Tensor:
        """chars (U, W) character ids of U words -> (U, 2*Hc); an empty (all-padding) word gives zeros."""
        lengths = (chars != 0).sum(1)                                               # (U,)
        out = chars.new_zeros(chars.size(0), self.output_size, dtype=torch.float)
        real = lengths > 0
        if real.any():
            _, (h, _) = self.rnn(self.embed(chars[real]), lengths[real])            # h: (2, N, Hc)
            out = out.to(h.dtype)
            out[real] = torch.cat([h[0], h[1]], dim=1)
        return out


class SharedDropout(nn.Module):
    """Variational dropout (Gal and Ghahramani 2016): each sentence draws one mask over the features and every
    word of it uses that mask, so a feature is dropped for the whole sentence rather than word by word."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """x (B, S, D) -> (B, S, D)."""
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1 - self.p) / (1 - self.p)    # (B, 1, D)
        return x * mask


class WordLM(nn.Module):
    """Auxiliary language model over a BiLSTM's states (Rei 2017), used in training only: the forward half at word
    t predicts word t+1, the backward half word t-1 (neither has read the word it predicts). Classes: 0 is the
    sentence boundary, 1 any word outside the vocabulary, 2.. the vocabulary's words."""

    BOUNDARY = 0

    def __init__(self, hidden: int, layer: int, classes: int):     # hidden: H, the units of one direction
        super().__init__()
        self.next = nn.Sequential(nn.Linear(hidden, layer), nn.Tanh(), nn.Linear(layer, classes))
        self.prev = nn.Sequential(nn.Linear(hidden, layer), nn.Tanh(), nn.Linear(layer, classes))

    def loss(self, h: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
        """h (B, S, 2H) BiLSTM states, targets (B, S) word classes, mask (B, S) -> mean cross-entropy of both
        directions over the real words."""
        half = h.size(-1) // 2
        edge = torch.zeros_like(mask[:, :1])                                        # (B, 1) False
        has_next = torch.cat([mask[:, 1:], edge], dim=1)                            # (B, S)
        has_prev = torch.cat([edge, mask[:, :-1]], dim=1)
        nxt = torch.where(has_next, targets.roll(-1, dims=1), self.BOUNDARY)        # (B, S)
        prev = torch.where(has_prev, targets.roll(1, dims=1), self.BOUNDARY)
        forward = F.cross_entropy(self.next(h[..., :half][mask]).float(), nxt[mask])
        backward = F.cross_entropy(self.prev(h[..., half:][mask]).float(), prev[mask])
        return (forward + backward) / 2


class Tagger(nn.Module):
    def __init__(self, config: TaggerConfig, tags: list[str]):
        super().__init__()
        self.config = c = config
        self.tags = list(tags)
        self.word_embed = nn.Embedding(c.word_vocab_size, c.word_embed, padding_idx=0)
        self.chars = {"cnn": lambda: CharCNN(c.char_vocab_size, c.char_embed, c.char_hidden),
                      "lstm": lambda: CharLSTM(c.char_vocab_size, c.char_embed, c.char_hidden),
                      "none": lambda: None}[c.char_features]()
        self.casing_embed = nn.Embedding(len(CASINGS), c.casing_embed, padding_idx=0) if c.casing_embed else None
        self.context = (CharContext(lm_config(c.context_vocab, c.context_embed, c.context_hidden, c.context_layers))
                        if c.context_vocab else None)
        size = (c.word_embed + (self.chars.output_size if self.chars else 0) + c.casing_embed
                + (self.context.output_size if self.context else 0))
        self.encoder = Recurrent(c.rnn, size)
        self.dropout = SharedDropout(c.dropout) if c.shared_dropout else nn.Dropout(c.dropout)
        self.emissions = nn.Linear(self.encoder.output_size, c.num_tags)
        constraints = iob2_constraints(self.tags) if c.constrain else None
        self.crf = CRF(c.num_tags, constraints) if c.output == "crf" else None
        if c.lm_weight and not c.rnn.bidirectional:
            raise ConfigError("model.lm_weight needs a bidirectional encoder (model.rnn.bidirectional=true)")
        self.lm = WordLM(c.rnn.hidden_size, c.lm_hidden, c.lm_vocab + 2) if c.lm_weight else None
        for emb in self.modules():     # uniform with variance 1/dim (Lample et al.; NCRF++), not N(0, 1)
            if isinstance(emb, nn.Embedding):
                bound = (3.0 / emb.embedding_dim) ** 0.5
                nn.init.uniform_(emb.weight, -bound, bound)
                emb.weight.data[0].zero_()

    def forward(self, words: Tensor, chars: Tensor, casings: Tensor, lengths: Tensor,
                char_index: Tensor | None = None, context: tuple | None = None) -> Tensor:
        """words (B, S), casings (B, S), lengths (B,) and the characters -> emission scores (B, S, K)."""
        return self.emit(self.encode(words, chars, casings, lengths, char_index, context))

    def use_int8(self, parts: dict) -> None:
        """Inference on int8 products (nmt/quantize.py): the BiLSTM encoder, the character BiLSTM and the emission
        layer (the contextual LMs stay float). `parts`: name -> (int8 values, scales) of the checkpoint."""
        from nmt.quantize import Int8Linear
        self.encoder.use_int8()
        if isinstance(self.chars, CharLSTM):
            self.chars.rnn.use_int8()
        self.emissions = Int8Linear.of(self.emissions, parts, "emissions")

    def emit(self, h: Tensor) -> Tensor:
        """BiLSTM states (B, S, 2H) -> emission scores (B, S, K)."""
        return self.emissions(self.dropout(h))

    def encode(self, words: Tensor, chars: Tensor, casings: Tensor, lengths: Tensor,
               char_index: Tensor | None = None, context: tuple | None = None) -> Tensor:
        """words (B, S), casings (B, S), lengths (B,) and the characters -> BiLSTM states (B, S, 2H).

        Characters: chars (B, S, W) per position, or (with char_index (B, S)) chars (U, W) of the batch's U
        distinct words and, per position, the row of its word: each distinct word's features are computed once.
        context: the contextual LMs' inputs (fwd, bwd, fwd_at, bwd_at) (see CharContext.forward), or their
        features (B, S, 2Hc) already computed.
        """
        parts = [self.word_embed(words)]                                            # (B, S, Ew)
        if self.chars is not None:
            if char_index is None:
                b, s, w = chars.shape
                chars, char_index = chars.view(b * s, w), torch.arange(b * s).view(b, s)
            parts.append(self.chars(chars)[char_index])                             # (B, S, F)
        if self.casing_embed is not None:
            parts.append(self.casing_embed(casings))                                # (B, S, Ec)
        if self.context is not None:
            if context is None:
                raise ValueError("this tagger reads contextual character-LM features: pass `context`")
            parts.append(context if isinstance(context, Tensor) else self.context(*context))   # (B, S, 2Hc)
        h, _ = self.encoder(self.dropout(torch.cat(parts, dim=-1)), lengths)        # (B, S, 2H)
        return h

    def decode(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Best tags (B, S), zero past each sentence's end."""
        if self.crf is not None:
            return self.crf.decode(emissions.float(), mask)
        return emissions.argmax(-1) * mask
