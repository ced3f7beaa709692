"""Tokenizers: training, encode/decode round trips, special ids, unknowns, and state round trips."""
import random
import unicodedata

import pytest
import torch

from nmt.tokenizers import (BOS, EOS, PAD, SPECIALS, UNK, CharTokenizer, SentencePieceTokenizer,
                            TokenizerError, WordTokenizer, tokenizer_from_state)

WORDS = ("a the dog cat man woman child runs sits plays in on park house garden red blue big small "
         "ball water street looks at with".split())


def sentences(n=300, seed=0):
    """Short synthetic sentences of lowercase ASCII words separated by single spaces."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8))) for _ in range(n)]


# --- sentencepiece ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["unigram", "bpe"])
def sp(request):
    return SentencePieceTokenizer.train(iter(sentences()), vocab_size=80, model_type=request.param)


def test_sentencepiece_round_trip(sp):
    assert 4 < sp.vocab_size <= 80
    for text in sentences(50):
        ids = sp.encode(text)
        assert ids and all(UNK <= i < sp.vocab_size for i in ids)
        assert sp.decode(ids) == text


def test_sentencepiece_special_ids(sp):
    assert (PAD, BOS, EOS, UNK) == (0, 1, 2, 3)
    assert [sp.id_to_piece(i) for i in range(4)] == SPECIALS
    # plain encoding adds no <s>/</s>, and decoding drops pad/bos/eos but not the words around them
    text = sentences(1)[0]
    ids = sp.encode(text)
    assert not {PAD, BOS, EOS} & set(ids)
    assert sp.decode([BOS] + ids + [EOS, PAD, PAD]) == text


def test_sentencepiece_unseen_character_is_unk(sp):
    assert UNK in sp.encode("dog Ω")


def test_sentencepiece_state_round_trip(sp):
    state = sp.to_state()
    assert state["kind"] == "sentencepiece" and state["model"].dtype == torch.uint8
    again = tokenizer_from_state(state)
    texts = sentences(50, seed=1)
    assert again.encode_batch(texts) == sp.encode_batch(texts)
    assert [again.id_to_piece(i) for i in range(again.vocab_size)] == [sp.id_to_piece(i) for i in range(sp.vocab_size)]


def test_sentencepiece_encode_batch_equals_encode(sp):
    texts = sentences(20, seed=2)
    assert sp.encode_batch(texts) == [sp.encode(t) for t in texts]


@pytest.mark.parametrize("data", [[], ["", "   ", "\t"]], ids=["nothing", "blank-lines"])
def test_sentencepiece_empty_input(data):
    with pytest.raises(TokenizerError, match="empty"):
        SentencePieceTokenizer.train(iter(data), vocab_size=60)


def test_sentencepiece_unknown_model_type():
    with pytest.raises(TokenizerError, match="word"):
        SentencePieceTokenizer.train(iter(sentences(10)), vocab_size=60, model_type="word")


# --- characters ---------------------------------------------------------------------------------------------

UNICODE_TEXTS = ["café naïve Øresund", "漢字とかな", "emoji 😀 👍🏽 🇩🇪", "Straße, ĳ, ß — «quotes»", "tab\there"]


@pytest.fixture(scope="module")
def chars():
    return CharTokenizer.train(UNICODE_TEXTS)


def test_char_round_trip_full_unicode(chars):
    for text in UNICODE_TEXTS:
        ids = chars.encode(text)
        assert UNK not in ids and len(ids) == len(text)
        assert chars.decode(ids) == text


def test_char_normalises_to_nfc(chars):
    decomposed = unicodedata.normalize("NFD", "café")
    assert decomposed != "café"
    assert chars.encode(decomposed) == chars.encode("café")


def test_char_special_ids(chars):
    assert chars.itos[:4] == SPECIALS
    assert min(chars.encode("".join(UNICODE_TEXTS))) >= len(SPECIALS)
    assert chars.decode([PAD, BOS] + chars.encode("café") + [EOS, PAD]) == "café"


def test_char_unknown(chars):
    ids = chars.encode("caféQ🙂")
    assert ids[-2:] == [UNK, UNK]
    assert ids[:4] == chars.encode("café")
    assert chars.unknown("caféQ🙂") == {"Q", "🙂"}
    assert chars.unknown("café") == set()


def test_char_state_round_trip(chars):
    state = chars.to_state()
    assert state["kind"] == "char" and all(isinstance(c, str) for c in state["itos"])
    again = tokenizer_from_state(state)
    assert again.itos == chars.itos
    for text in UNICODE_TEXTS + ["unseen: Q🙂"]:
        assert again.encode(text) == chars.encode(text)


@pytest.mark.parametrize("data", [[], [""]], ids=["nothing", "empty-string"])
def test_char_empty_input(data):
    with pytest.raises(TokenizerError, match="empty"):
        CharTokenizer.train(data)


# --- words --------------------------------------------------------------------------------------------------

TAGGED = [["The", "Cat", "sat", "in", "Paris", "in", "2024"], ["the", "dog", "saw", "3", "cats"]]


@pytest.fixture(scope="module")
def words():
    return WordTokenizer.train(TAGGED)


def test_word_normalisation(words):
    assert WordTokenizer.normalize("PaRiS") == "paris"
    assert WordTokenizer.normalize("A1-b22") == "a0-b00"
    ids, _ = words.encode(["THE", "the", "1999", "2024", "0000"])
    assert ids[0] == ids[1] == words.stoi["the"]
    assert ids[2] == ids[3] == ids[4] == words.stoi["0000"]
    assert words.decode(ids[:3]) == ["the", "the", "0000"]


def test_word_unknown(words):
    ids, _ = words.encode(["zebra", "cat", "Cats"])
    assert ids[0] == UNK
    assert UNK not in ids[1:]


def test_word_characters_per_word(words):
    sentence = ["The", "Cat", "zebra", "2024"]
    ids, char_ids = words.encode(sentence)
    assert len(ids) == len(char_ids) == len(sentence)
    assert [len(c) for c in char_ids] == [len(w) for w in sentence]
    assert words.chars.decode(char_ids[0]) == "The"           # characters keep the original case
    assert char_ids[2][0] == UNK                               # 'z' never seen
    assert all(i > UNK for c in (char_ids[0], char_ids[1], char_ids[3]) for i in c)


def test_word_min_count(words):
    frequent = WordTokenizer.train(TAGGED, min_count=2)
    ids, _ = frequent.encode(["the", "in", "cat", "dog"])
    assert UNK not in ids[:2]                                   # 'the' (The + the) and 'in' appear twice
    assert ids[2:] == [UNK, UNK]
    assert frequent.vocab_size < words.vocab_size


def test_word_state_round_trip(words):
    state = words.to_state()
    assert state["kind"] == "word"
    again = tokenizer_from_state(state)
    assert again.itos == words.itos and again.chars.itos == words.chars.itos
    sentence = ["The", "unseen", "Cat", "42", "Ωx"]
    assert again.encode(sentence) == words.encode(sentence)


def test_word_empty_input():
    with pytest.raises(TokenizerError, match="empty"):
        WordTokenizer.train([[], []])


def test_unknown_state_kind():
    with pytest.raises(TokenizerError, match="bytes"):
        tokenizer_from_state({"kind": "bytes"})
