"""Contextual character-LM features of words (Akbik et al. 2018, "Flair"): a forward and a backward character
language model, pretrained on unlabelled text and frozen, read a sentence as one character string; a word is
represented by the forward LM's state after its last character (everything up to and including the word) and the
backward LM's state after its first character read right to left (everything from the word to the end).

The LMs read normalised text (lowercased, digits as '#', as the Gigaword release writes news), so that the case
of a word reaches the tagger only through its own character and casing features.
Shapes: B sentences, S words, L characters of the longest sentence string, H units of each LM.
"""
from __future__ import annotations

import re
import unicodedata

import torch
from torch import Tensor, nn

from nmt.config import CharLMConfig, RNNConfig
from nmt.precision import cpu_bfloat16
from nmt.data import pad
from nmt.models.charlm import CharLM
from nmt.tokenizers import UNK, CharTokenizer

DIGIT = re.compile(r"\d")


def normalise(text: str) -> str:
    """The LMs' view of text: NFC, lowercased, every digit as '#'."""
    return DIGIT.sub("#", unicodedata.normalize("NFC", text).lower())


def sentence_string(words: list[str]) -> tuple[str, list[int], list[int]]:
    """'\\n' + the normalised words joined by spaces + ' ', with each word's first and last character position."""
    text, starts, ends = "\n", [], []
    for w in words:
        starts.append(len(text))
        text += normalise(w)
        ends.append(len(text) - 1)
        text += " "
    return text, starts, ends


def context_ids(alphabet: CharTokenizer, words: list[str]) -> tuple[list[int], list[int], list[int]]:
    """One sentence for the LMs: the character ids of its string, each word's first and last position."""
    text, starts, ends = sentence_string(words)
    return [alphabet.stoi.get(c, UNK) for c in text], starts, ends


def context_inputs(rows: list[tuple]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """`context_ids` of B sentences -> fwd (B, L), bwd (B, L) (each string reversed, both padded at the end),
    fwd_at (B, S) each word's last character, bwd_at (B, S) its first character in the reversed string."""
    fwd, _ = pad([ids for ids, _, _ in rows])
    bwd, _ = pad([ids[::-1] for ids, _, _ in rows])
    fwd_at, _ = pad([ends for _, _, ends in rows])
    bwd_at, _ = pad([[len(ids) - 1 - s for s in starts] for ids, starts, _ in rows])
    return fwd, bwd, fwd_at, bwd_at


def lm_config(vocab: int, embed: int, hidden: int, layers: int) -> CharLMConfig:
    """The architecture of each of the two LMs (no weight drop, untied): what `train charlm --preset news` trains."""
    return CharLMConfig(vocab_size=vocab, embed_size=embed, dropout=0.0, emb_dropout=0.0,
                        rnn=RNNConfig(cell="lstm", hidden_size=hidden, num_layers=layers, bidirectional=False))


class CharContext(nn.Module):
    """The two frozen LMs; `forward` gathers their states at each word. With `bfloat16` (the default where the
    CPU has it) the LMs' products run in bfloat16: their states differ from float32 by about 2e-3."""

    def __init__(self, config: CharLMConfig):
        super().__init__()
        self.forward_lm, self.backward_lm = CharLM(config), CharLM(config)
        self.output_size = 2 * config.rnn.hidden_size
        self.bfloat16 = cpu_bfloat16()
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> "CharContext":
        return super().train(False)         # frozen: always without dropout

    @torch.no_grad()
    def forward(self, fwd: Tensor, bwd: Tensor, fwd_at: Tensor, bwd_at: Tensor) -> Tensor:
        """fwd (B, L) character ids of each sentence string, bwd (B, L) of the same string reversed (both padded
        at the end), fwd_at / bwd_at (B, S) positions to read in each -> (B, S, 2H)."""
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bfloat16 and fwd.device.type == "cpu"):
            h_f = self._states(self.forward_lm, fwd).float()                              # (B, L, H)
            h_b = self._states(self.backward_lm, bwd).float()
        return torch.cat([self._at(h_f, fwd_at), self._at(h_b, bwd_at)], dim=2)

    @staticmethod
    def _states(lm: CharLM, ids: Tensor) -> Tensor:
        h, _ = lm.rnn(lm.embed(ids))                                                      # (B, L, H)
        return h

    @staticmethod
    def _at(h: Tensor, at: Tensor) -> Tensor:
        """h (B, L, H) states, at (B, S) positions -> (B, S, H)."""
        return h.gather(1, at[..., None].expand(-1, -1, h.size(2)))
