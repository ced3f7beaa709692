"""Tokenizers: SentencePiece subwords, Unicode characters, words (with their characters) for tagging, and a
word vocabulary with per-document extensions for copying (pointer-generator summarisation).

Every tokenizer turns into a plain dict (`to_state`) and back (`tokenizer_from_state`), holding only strings,
numbers and a uint8 tensor, so it travels inside a checkpoint and a checkpoint alone can encode and decode.
Ids 0..3 are always <pad>, <s>, </s>, <unk>.
"""
from __future__ import annotations

import io
import re
import unicodedata
from collections import Counter
from typing import Iterable, Iterator

import torch

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


class TokenizerError(ValueError):
    """Training or loading a tokenizer failed for a reason the user can fix."""


class SentencePieceTokenizer:
    """A SentencePiece model (BPE or unigram) held in memory as its serialized protobuf."""

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes):
        import sentencepiece as spm
        self.proto = bytes(model_proto)
        self.sp = spm.SentencePieceProcessor(model_proto=self.proto)

    @classmethod
    def train(cls, sentences: Iterable[str], vocab_size: int = 8000, model_type: str = "unigram",
              character_coverage: float = 1.0, max_sentences: int = 2_000_000) -> "SentencePieceTokenizer":
        """Train on an iterator of sentences (files: pass `read_lines(path)`)."""
        import sentencepiece as spm
        if model_type not in ("unigram", "bpe"):
            raise TokenizerError(f"unknown sentencepiece model type '{model_type}' (expected unigram or bpe)")
        lines = (s for s in sentences if s.strip())
        first = next(lines, None)
        if first is None:
            raise TokenizerError("cannot train a tokenizer on empty input")
        buffer = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=_chain(first, lines), model_writer=buffer, vocab_size=vocab_size,
                model_type=model_type, character_coverage=character_coverage, pad_id=PAD, bos_id=BOS,
                eos_id=EOS, unk_id=UNK, input_sentence_size=max_sentences, shuffle_input_sentence=True,
                hard_vocab_limit=False, minloglevel=2, num_threads=2)
        except RuntimeError as err:
            raise TokenizerError(f"sentencepiece training failed: {str(err).splitlines()[-1]}") from None
        return cls(buffer.getvalue())

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts, num_threads=2)

    def pieces(self, text: str) -> list[str]:
        return self.sp.encode(text, out_type=str)

    def decode(self, ids: list[int]) -> str:
        return self.sp.decode([i for i in ids if i > UNK or i == UNK])

    def id_to_piece(self, i: int) -> str:
        return self.sp.id_to_piece(i)

    def to_state(self) -> dict:
        return {"kind": self.kind, "model": torch.frombuffer(bytearray(self.proto), dtype=torch.uint8)}


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


class CharTokenizer:
    """Full-Unicode characters (NFC). Characters never seen in training map to <unk>."""

    kind = "char"

    def __init__(self, chars: list[str]):
        self.itos = SPECIALS + [c for c in chars if c not in SPECIALS]
        self.stoi = {c: i for i, c in enumerate(self.itos)}

    @classmethod
    def train(cls, texts: Iterable[str]) -> "CharTokenizer":
        counts = Counter()
        for text in texts:
            counts.update(unicodedata.normalize("NFC", text))
        if not counts:
            raise TokenizerError("cannot build a character vocabulary from empty input")
        return cls(sorted(counts))

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(c, UNK) for c in unicodedata.normalize("NFC", text)]

    def unknown(self, text: str) -> set[str]:
        """The characters of `text` this tokenizer has never seen."""
        return {c for c in unicodedata.normalize("NFC", text) if c not in self.stoi}

    def decode(self, ids: list[int]) -> str:
        return "".join(self.itos[i] for i in ids if i >= len(SPECIALS) or i == UNK)

    def to_state(self) -> dict:
        return {"kind": self.kind, "itos": self.itos[len(SPECIALS):]}


class WordTokenizer:
    """Words for tagging: a vocabulary of normalised words (lowercased, digits as 0) plus characters per word.

    `encode(words)` gives word ids and, for each word, its character ids, so a tagger can build character
    features for words it has never seen.
    """

    kind = "word"

    def __init__(self, words: list[str], chars: list[str]):
        self.itos = SPECIALS + [w for w in words if w not in SPECIALS]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.chars = CharTokenizer(chars)
        self._seen: dict[str, tuple[int, list[int]]] = {}      # word -> (id, character ids): text repeats words

    @staticmethod
    def normalize(word: str) -> str:
        return "".join("0" if c.isdigit() else c for c in word.lower())

    @classmethod
    def train(cls, sentences: Iterable[list[str]], min_count: int = 1) -> "WordTokenizer":
        words, chars = Counter(), Counter()
        for sentence in sentences:
            for word in sentence:
                words[cls.normalize(word)] += 1
                chars.update(word)
        if not words:
            raise TokenizerError("cannot build a word vocabulary from empty input")
        vocab = sorted(w for w, n in words.items() if n >= min_count)
        return cls(vocab, sorted(chars))

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, words: list[str]) -> tuple[list[int], list[list[int]]]:
        """Word ids and character ids per word (memoised per word: lookups are the cost of tagging a corpus)."""
        pairs = [self._seen.get(w) or self._remember(w) for w in words]
        return [i for i, _ in pairs], [c for _, c in pairs]

    def _remember(self, word: str) -> tuple[int, list[int]]:
        if len(self._seen) >= 200_000:
            self._seen.clear()
        pair = self._seen[word] = (self.stoi.get(self.normalize(word), UNK), self.chars.encode(word))
        return pair

    def decode(self, ids: list[int]) -> list[str]:
        return [self.itos[i] for i in ids]

    def to_state(self) -> dict:
        return {"kind": self.kind, "itos": self.itos[len(SPECIALS):], "chars": self.chars.itos[len(SPECIALS):]}


class VocabTokenizer:
    """Lowercased words and punctuation with a frequency-capped vocabulary (See et al. 2017).

    `encode_extended(words)` also numbers each document's out-of-vocabulary words from `vocab_size` upwards,
    so a pointer-generator can copy a word it cannot generate and `decode(ids, oovs)` can spell it.
    `cases` maps a vocabulary word to the training text's commonest spelling of it where that is not lowercase
    ("friday" -> "Friday"), so that `decode(..., document=...)` can restore casing.
    """

    kind = "vocab"
    PATTERN = re.compile(r"\w+(?:[-'.@/:]\w+)*|[^\w\s]")

    def __init__(self, words: list[str], cases: dict[str, str] | None = None):
        self.itos = SPECIALS + [w for w in words if w not in SPECIALS]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.cases = {w: c for w, c in (cases or {}).items() if w in self.stoi and c.lower() == w and c != w}

    @classmethod
    def words(cls, text: str) -> list[str]:
        return cls.PATTERN.findall(text.lower())

    @classmethod
    def spellings(cls, texts: Iterable[str]) -> dict[str, str]:
        """Each word (lowercased) -> its commonest spelling in the texts (ties: the first seen), counting only
        words inside a sentence: a capital after a full stop or a line break says nothing of the word. A word seen
        only at the start of sentences keeps its lowercase form."""
        forms: dict[str, Counter] = {}
        for line in (line for text in texts for line in text.splitlines()):
            initial = True
            for form in cls.PATTERN.findall(line):
                counts = forms.setdefault(form.lower(), Counter())
                if not initial:
                    counts[form] += 1
                initial = form in (".", "!", "?", ":")
        return {w: c.most_common(1)[0][0] if c else w for w, c in forms.items()}

    @classmethod
    def train(cls, texts: Iterable[str], max_size: int = 20000, min_count: int = 2) -> "VocabTokenizer":
        texts = list(texts)
        counts = Counter()
        for text in texts:
            counts.update(cls.words(text))
        if not counts:
            raise TokenizerError("cannot build a word vocabulary from empty input")
        kept = [w for w, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])) if n >= min_count]
        return cls(kept[: max_size - len(SPECIALS)], cls.spellings(texts))

    def truecase(self, words: list[str], document: str) -> list[str]:
        """Lowercased words spelt as the document spells them (its commonest form), else as the training text
        mostly did; the first word capitalised (a subject line or sentence starts with a capital)."""
        in_document = self.spellings([document])
        cased = [in_document.get(w) or self.cases.get(w, w) for w in words]
        if cased and cased[0][:1].islower():
            cased[0] = cased[0][:1].upper() + cased[0][1:]
        return cased

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, words: list[str]) -> list[int]:
        return [self.stoi.get(w, UNK) for w in words]

    def encode_extended(self, words: list[str], oovs: list[str] | None = None) -> tuple[list[int], list[str]]:
        """Ids where each out-of-vocabulary word gets vocab_size + its index in `oovs` (extended in place)."""
        oovs = [] if oovs is None else oovs
        ids = []
        for w in words:
            i = self.stoi.get(w)
            if i is None:
                if w not in oovs:
                    oovs.append(w)
                i = self.vocab_size + oovs.index(w)
            ids.append(i)
        return ids, oovs

    def decode_words(self, ids: list[int], oovs: list[str] = (), document: str | None = None) -> list[str]:
        """The words of `ids` (specials dropped, <unk> kept); with `document`, in restored casing (`truecase`)."""
        v = self.vocab_size
        words = [self.itos[i] if i < v else oovs[i - v] for i in ids if i >= len(SPECIALS) or i == UNK]
        return words if document is None else self.truecase(words, document)

    def decode(self, ids: list[int], oovs: list[str] = (), document: str | None = None) -> str:
        text = " ".join(self.decode_words(ids, oovs, document))
        return re.sub(r" ([.,:;!?)\]}%])|([(\[{$]) ", lambda m: m.group(1) or m.group(2), text)

    def to_state(self) -> dict:
        return {"kind": self.kind, "itos": self.itos[len(SPECIALS):], "cases": dict(self.cases)}


def tokenizer_from_state(state: dict):
    """Rebuild a tokenizer from `to_state()` output; a TokenizerError when the state is damaged."""
    try:
        return _from_state(state)
    except TokenizerError:
        raise
    except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise TokenizerError(f"a damaged tokenizer in the checkpoint ({reason})") from None


def _from_state(state: dict):
    kind = state.get("kind") if isinstance(state, dict) else None
    if kind == "sentencepiece":
        return SentencePieceTokenizer(state["model"].numpy().tobytes())
    if kind == "char":
        return CharTokenizer(list(state["itos"]))
    if kind == "vocab":
        return VocabTokenizer(list(state["itos"]), dict(state.get("cases", {})))
    if kind == "word":
        return WordTokenizer(list(state["itos"]), list(state["chars"]))
    raise TokenizerError(f"unknown tokenizer kind '{kind}'")


def encode_text(tokenizer, line: str) -> list[int]:
    """The ids of one line of text under any tokenizer (word tokenizers split it at whitespace first)."""
    if isinstance(tokenizer, WordTokenizer):
        return tokenizer.encode(line.split())[0]
    if isinstance(tokenizer, VocabTokenizer):
        return tokenizer.encode(VocabTokenizer.words(line))
    return tokenizer.encode(line)


def decode_text(tokenizer, ids: list[int]) -> str:
    """One line of text from ids under any tokenizer."""
    text = tokenizer.decode(ids)
    return " ".join(text) if isinstance(text, list) else text


def train_on_files(files, vocab_size: int, model_type: str = "unigram",
                   character_coverage: float = 1.0) -> tuple[SentencePieceTokenizer, int]:
    """One SentencePiece model over the lines of text files (joint when several); also the number of lines."""
    from nmt.data import read_lines
    lines = [line for f in files for line in read_lines(f)]
    return SentencePieceTokenizer.train(lines, vocab_size, model_type, character_coverage), len(lines)


def save_tokenizer(path, tokenizer, config: dict) -> None:
    """A checkpoint of task 'tokenizer' holding one tokenizer (as side 'src') and how it was made."""
    from nmt import checkpoint as ckpt_io
    ckpt_io.save(path, ckpt_io.Checkpoint("tokenizer", config, {}, {"src": tokenizer.to_state()}))


def load_tokenizer(path, side: str | None = None, default: str = "src"):
    """The `side` tokenizer (src, tgt, chars, words) of a tokenizer or model checkpoint; without a side, the only
    one there is, else `default`."""
    from nmt import checkpoint as ckpt_io
    ckpt = ckpt_io.load(path)
    try:
        return _side(ckpt, side, default)
    except TokenizerError as exc:
        raise TokenizerError(f"{path}: {exc}") from None


def _side(ckpt, side: str | None, default: str):
    if side is None:
        side = next(iter(ckpt.tokenizers)) if len(ckpt.tokenizers) == 1 else default
    if side not in ckpt.tokenizers:
        raise TokenizerError(f"no '{side}' tokenizer (it has: {', '.join(ckpt.tokenizers) or 'none'})")
    return tokenizer_from_state(ckpt.tokenizers[side])
