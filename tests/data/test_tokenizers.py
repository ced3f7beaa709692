"""Tokenizers: training, encode/decode round trips, special ids, unknowns, and state round trips."""
import random
import unicodedata

import pytest
import torch

from nmt.tokenizers import (
    BOS,
    EOS,
    PAD,
    SPECIALS,
    UNK,
    CharTokenizer,
    SentencePieceTokenizer,
    TokenizerError,
    VocabTokenizer,
    WordTokenizer,
    load_tokenizer,
    save_tokenizer,
    tokenizer_from_state,
)

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


# --- words with per-document extensions (the summariser) -----------------------------------------------------

def test_vocab_tokenizer_train_counts_and_specials():
    tok = VocabTokenizer.train(["The cat sat.", "the cat ran!", "a dog"], max_size=100, min_count=2)
    assert tok.itos == ["<pad>", "<s>", "</s>", "<unk>", "cat", "the"]          # count, then alphabetical
    assert VocabTokenizer.words("Re: Q3 budget, e-mail bob@x.com!") == \
        ["re", ":", "q3", "budget", ",", "e-mail", "bob@x.com", "!"]
    capped = VocabTokenizer.train(["a a a b b c"], max_size=5, min_count=1)
    assert capped.itos[4:] == ["a"] and capped.vocab_size == 5


def test_vocab_tokenizer_extended_round_trip():
    tok = VocabTokenizer(["the", "cat", "sat", "on", ",", "."])
    words = VocabTokenizer.words("The cat sat on Zorblax's mat, zorblax's mat.")
    ids, oovs = tok.encode_extended(words)
    assert oovs == ["zorblax's", "mat"]
    v = tok.vocab_size
    assert ids == [4, 5, 6, 7, v, v + 1, 8, v, v + 1, 9]                # a repeated OOV keeps its id
    assert tok.encode(words) == [i if i < v else UNK for i in ids]
    assert tok.decode(ids, oovs) == "the cat sat on zorblax's mat, zorblax's mat."
    assert tok.decode_words(ids, oovs)[4] == "zorblax's"
    assert tok.decode([BOS, 4, UNK, PAD, EOS]) == "the <unk>"             # specials dropped, <unk> spelled
    more, same = tok.encode_extended(["mat", "hat"], oovs)                # extends the list in place
    assert more == [v + 1, v + 2] and same is oovs and oovs[-1] == "hat"


def test_vocab_tokenizer_state_round_trip_and_empty_input():
    tok = VocabTokenizer.train(["the cat sat on the mat", "the cat ran"], min_count=1)
    back = tokenizer_from_state(tok.to_state())
    assert isinstance(back, VocabTokenizer) and back.itos == tok.itos
    words = VocabTokenizer.words("the dog sat")
    assert back.encode_extended(words) == tok.encode_extended(words)
    for texts in ([], ["", "   "]):
        with pytest.raises(TokenizerError, match="empty"):
            VocabTokenizer.train(texts)


def test_unknown_state_kind():
    with pytest.raises(TokenizerError, match="bytes"):
        tokenizer_from_state({"kind": "bytes"})


def test_saved_tokenizer_loads_alone_or_from_a_model_checkpoint(tmp_path, translate_model):
    tok = SentencePieceTokenizer.train(iter(sentences()), vocab_size=60)
    save_tokenizer(tmp_path / "spm.pt", tok, {"vocab_size": 60})
    again = load_tokenizer(tmp_path / "spm.pt", "src")
    assert again.encode_batch(sentences(5)) == tok.encode_batch(sentences(5))
    with pytest.raises(TokenizerError, match="no 'tgt' tokenizer .*it has: src"):
        load_tokenizer(tmp_path / "spm.pt", "tgt")
    src, tgt = load_tokenizer(translate_model.checkpoint, "src"), load_tokenizer(translate_model.checkpoint, "tgt")
    assert src.encode("der hund") == tgt.encode("der hund")           # the tiny model's joint vocabulary


def test_vocab_tokenizer_restores_casing():
    """Spellings inside sentences count (a capital after a full stop or at a line start does not); the document's
    own spelling wins over the training text's; the first word is capitalised; the table survives a round-trip."""
    tok = VocabTokenizer.train(["Send it to Enron by Friday. Please call.", "we met Enron on Friday.\nThanks a lot"],
                               min_count=1)
    assert tok.cases == {"enron": "Enron", "friday": "Friday"}
    assert tok.decode_words([tok.stoi["please"], tok.stoi["enron"], tok.stoi["friday"]], document="") == \
        ["Please", "Enron", "Friday"]
    assert tok.decode([tok.stoi["call"], tok.stoi["enron"]], document="we call ENRON now") == "Call ENRON"
    assert tok.decode([tok.stoi["enron"]]) == "enron"                       # no document: lowercased, as trained
    again = tokenizer_from_state(tok.to_state())
    assert again.cases == tok.cases
    assert tokenizer_from_state({"kind": "vocab", "itos": ["a"]}).cases == {}    # checkpoints from before
