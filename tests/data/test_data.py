"""Reading files (errors name the file and line), lines, CoNLL rows, bucketing, padding, batches and the
memory-mapped corpora of nmt/data.py."""
import gzip
import json
import random
from pathlib import Path

import pytest
import torch

from nmt import data
from nmt.data import (
    DataError,
    bucket_batches,
    conll_words,
    make_seq2seq_batch,
    pad,
    read_conll,
    read_conll_rows,
    read_jsonl,
    read_lines,
    read_parallel,
    split_lines,
)


def write_gz(path: Path, text: str) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(text)
    return path


# --- reading files ------------------------------------------------------------------------------------------

def test_read_lines_plain(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("hello world\nwörld 漢字\n\nlast line without newline", encoding="utf-8")
    lines = read_lines(path)
    assert isinstance(lines, list)
    assert lines == ["hello world", "wörld 漢字", "", "last line without newline"]


def test_read_lines_gzip(tmp_path):
    path = write_gz(tmp_path / "a.de.gz", "ein Hund\nläuft\n")
    lines = read_lines(path)
    assert isinstance(lines, list)
    assert lines == ["ein Hund", "läuft"]


def test_read_lines_crlf(tmp_path):
    path = tmp_path / "dos.txt"
    path.write_bytes(b"one\r\ntwo\r\n")
    assert read_lines(path) == ["one", "two"]


def test_read_text(tmp_path):
    path = tmp_path / "play.txt"
    path.write_text("First Citizen:\nSpeak.\n", encoding="utf-8")
    assert data.read_text(path) == "First Citizen:\nSpeak.\n"
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        data.read_text(blank)


@pytest.mark.parametrize("name", ["empty.txt", "empty.gz"])
def test_read_lines_empty_file(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".gz"):
        write_gz(path, "")
    else:
        path.write_bytes(b"")
    assert read_lines(path) == []


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_invalid_utf8_names_file_and_line(tmp_path, gz):
    raw = "fine\nstill fine\n".encode() + b"bad \xff byte\n" + "after\n".encode()
    path = tmp_path / ("latin.txt.gz" if gz else "latin.txt")
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)
    with pytest.raises(DataError) as err:
        read_lines(path)
    assert str(path) in str(err.value) and "line 3" in str(err.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.txt"
    with pytest.raises(DataError) as err:
        read_lines(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_broken_gzip(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(b"this is not gzip data")
    with pytest.raises(DataError, match="cannot read"):
        read_lines(path)


def test_read_parallel(tmp_path):
    src = write_gz(tmp_path / "s.de.gz", "ein Hund\neine Katze\n")
    tgt = tmp_path / "t.en"
    tgt.write_text("a dog\na cat\n", encoding="utf-8")
    assert read_parallel(src, tgt) == [("ein Hund", "a dog"), ("eine Katze", "a cat")]


def test_read_parallel_mismatch_names_both_files_and_counts(tmp_path):
    src, tgt = tmp_path / "src.txt", tmp_path / "tgt.txt"
    src.write_text("a\nb\nc\nd\ne\n", encoding="utf-8")
    tgt.write_text("x\ny\nz\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_parallel(src, tgt)
    message = str(err.value)
    assert f"{src} has 5 lines" in message and f"{tgt} has 3" in message


def test_read_parallel_empty(tmp_path):
    src, tgt = tmp_path / "src.txt", tmp_path / "tgt.txt"
    src.write_bytes(b"")
    tgt.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_parallel(src, tgt)


def test_read_jsonl(tmp_path):
    path = tmp_path / "mail.jsonl"
    rows = [{"body": "hello there", "subject": "hi", "id": 1}, {"body": "meeting at 9", "subject": "meeting"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    assert read_jsonl(path, ["body", "subject"]) == [{"body": "hello there", "subject": "hi"},
                                                      {"body": "meeting at 9", "subject": "meeting"}]


def test_read_jsonl_invalid_json_names_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"body": "ok", "subject": "s"}\n\n{"body": "broken",\n', encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_jsonl(path, ["body"])
    assert str(path) in str(err.value) and "line 3" in str(err.value) and "JSON" in str(err.value)


def test_read_jsonl_missing_field_names_field_and_line(tmp_path):
    path = tmp_path / "missing.jsonl"
    path.write_text('{"body": "a", "subject": "s"}\n{"body": "b"}\n', encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_jsonl(path, ["body", "subject"])
    assert "'subject'" in str(err.value) and "line 2" in str(err.value)


def test_read_jsonl_no_records(tmp_path):
    path = tmp_path / "blank.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no records"):
        read_jsonl(path, ["body"])


CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
-DOCSTART- -X- -X- O
BRUSSELS NNP B-NP B-LOC


"""


def test_read_conll_splits_sentences(tmp_path):
    path = tmp_path / "ner.txt"
    path.write_text(CONLL, encoding="utf-8")
    assert read_conll(path) == [(["EU", "rejects"], ["B-ORG", "O"]),
                                (["Peter", "Blackburn"], ["B-PER", "I-PER"]),
                                (["BRUSSELS"], ["B-LOC"])]
    assert read_conll(path, tag_column=1)[0] == (["EU", "rejects"], ["NNP", "VBZ"])


def test_read_conll_wrong_column_count_names_line(tmp_path):
    path = tmp_path / "ragged.conll"
    path.write_text("EU B-ORG\nrejects O\n\nPeter B-PER\nBlackburn NNP I-PER\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_conll(path)
    assert str(path) in str(err.value) and "line 5" in str(err.value) and "3 columns" in str(err.value)


def test_read_conll_no_sentences(tmp_path):
    path = tmp_path / "docstart.conll"
    path.write_text("-DOCSTART- O\n\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no sentences"):
        read_conll(path)


# --- batching -----------------------------------------------------------------------------------------------

def random_lengths(n=300, seed=0):
    rng = random.Random(seed)
    return [rng.randint(1, 40) for _ in range(n)]


@pytest.mark.parametrize("max_tokens, batch_size", [(0, 16), (200, 0), (57, 0)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_bucket_batches_cover_every_index_once(max_tokens, batch_size, shuffle):
    lengths = random_lengths()
    batches = bucket_batches(lengths, max_tokens=max_tokens, batch_size=batch_size, shuffle=shuffle, seed=3)
    assert all(batches)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))


def test_bucket_batches_token_budget():
    lengths = random_lengths() + [150, 130]                   # two examples longer than the budget on their own
    batches = bucket_batches(lengths, max_tokens=120, seed=1)
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) * longest <= 120 or len(batch) == 1
    alone = [b for b in batches if max(lengths[i] for i in b) > 120]
    assert sorted(alone) == [[300], [301]]


def test_bucket_batches_batch_size():
    lengths = random_lengths(100)
    batches = bucket_batches(lengths, batch_size=16, shuffle=False)
    assert [len(b) for b in batches] == [16] * 6 + [4]


def test_bucket_batches_seeded():
    lengths = random_lengths()
    first = bucket_batches(lengths, max_tokens=200, seed=7)
    assert bucket_batches(lengths, max_tokens=200, seed=7) == first
    assert bucket_batches(lengths, max_tokens=200, seed=8) != first


def test_bucket_batches_unshuffled_keeps_sorted_order():
    lengths = random_lengths()
    batches = bucket_batches(lengths, max_tokens=200, shuffle=False)
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths)
    assert bucket_batches(lengths, max_tokens=200, shuffle=False, seed=99) == batches


def test_pad():
    ids, lengths = pad([[5, 6, 7], [8], []])
    assert ids.dtype == torch.long and ids.shape == (3, 3)
    assert lengths.tolist() == [3, 1, 0]
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]
    assert pad([[1], [2, 3]], value=-1)[0].tolist() == [[1, -1], [2, 3]]


def test_make_seq2seq_batch():
    pairs = [([4, 5, 6], [7, 8]), ([9], [10, 11, 12, 13]), ([14, 15], [16])]
    index = [1, 0, 2]
    batch = make_seq2seq_batch(pairs, index)
    tgt = [pairs[i][1] for i in index]
    assert batch.src.shape == (3, 3) and batch.tgt_in.shape == batch.tgt_out.shape == (3, 5)
    assert batch.src_lengths.tolist() == [1, 3, 2]
    assert batch.index.tolist() == index
    assert batch.src_mask.dtype == torch.bool
    assert batch.src_mask.tolist() == [[True, False, False], [True, True, True], [True, True, False]]
    assert (batch.tgt_in[:, 0] == 1).all()
    for row, t in enumerate(tgt):
        n = len(t) + 1                                         # real length of tgt_in and tgt_out
        assert batch.tgt_out[row, :n].tolist() == t + [2]
        assert batch.tgt_in[row, :n].tolist() == [1] + t
        assert (batch.tgt_out[row, n:] == 0).all() and (batch.tgt_in[row, n:] == 0).all()
    assert batch.num_tgt_tokens == sum(len(t) + 1 for t in tgt)


# --- corpora on disk (memory-mapped Arrow) ------------------------------------------------------------------------

def test_parallel_corpus_is_arrow_backed_and_equals_the_list(tmp_path):
    src = write_gz(tmp_path / "a.de.gz", "ein Haus\nzwei Hunde\n\ndrei\n")
    tgt = tmp_path / "a.en"
    tgt.write_text("a house\ntwo dogs\nempty source\nthree\n", encoding="utf-8")
    corpus = data.ParallelCorpus.from_files(src, tgt)
    assert len(corpus) == 4 and corpus[1] == ("zwei Hunde", "two dogs")
    assert list(corpus) == read_parallel(src, tgt)
    assert corpus.dataset.cache_files            # memory-mapped files, not Python lists
    (tmp_path / "short.en").write_text("one line\n", encoding="utf-8")
    with pytest.raises(DataError, match="differ in length"):
        data.ParallelCorpus.from_files(src, tmp_path / "short.en")


def test_encoded_pairs_drop_empty_and_long_pairs_and_read_batches(tmp_path):
    pairs = [("a b", "x"), ("", "y"), ("a b c d e f", "z"), ("c", "w v")]
    corpus = data.ParallelCorpus.from_pairs(pairs)
    encode = lambda texts: [[ord(ch) for ch in t.replace(" ", "")] for t in texts]   # noqa: E731
    encoded = data.EncodedPairs(corpus, encode, encode, max_len=4, key="test")
    assert len(encoded) == 2 and encoded.lengths == [3, 3]              # kept: 0 and 3; lengths max+1
    srcs, tgts = encoded.take([1, 0])
    assert srcs == [[ord("c")], [ord("a"), ord("b")]] and tgts == [[ord("w"), ord("v")], [ord("x")]]
    batch = make_seq2seq_batch(encoded, [0, 1])
    assert batch.src.tolist() == [[97, 98], [99, 0]] and batch.tgt_out.tolist() == [[120, 2, 0], [119, 118, 2]]


def test_read_lines_names_a_bad_line_past_the_first_megabyte(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(("é" * 300 + "\n").encode() * 2000 + b"bad \xff\n")      # ~1.2 MB: the error is in block 2
    with pytest.raises(DataError, match="line 2001 is not valid UTF-8"):
        read_lines(path)


# --- lines --------------------------------------------------------------------------------------------------------

def test_split_lines_breaks_only_at_newlines():
    """\x0c, \x1c-\x1e, \x85, \u2028 and \u2029 (which str.splitlines breaks at) stay inside their line."""
    inside = ["page\x0cbreak", "next\x85line", "line\u2028separator", "para\u2029graph", "file\x1cgroup\x1d\x1e"]
    assert split_lines("\n".join(inside) + "\n") == inside
    assert split_lines("\r\n".join(inside)) == inside                  # \r\n too, with or without a final break
    assert split_lines("dos\r\nunix\nmac\rstays\n") == ["dos", "unix", "mac\rstays"]   # a lone \r is no break


def test_split_lines_final_newline_and_blank_lines():
    assert split_lines("") == [] and split_lines("\n") == [""] and split_lines("\r\n") == [""]
    assert split_lines("one") == ["one"] and split_lines("one\n") == ["one"]
    assert split_lines("a\n\nb\n\n") == ["a", "", "b", ""]


def test_read_lines_keeps_unicode_separators_inside_lines(tmp_path):
    path = tmp_path / "odd.txt"
    path.write_text("a\x0cb\nc\x85d\ne\u2028f\r\ng\n", encoding="utf-8")
    assert read_lines(path) == ["a\x0cb", "c\x85d", "e\u2028f", "g"]
    assert read_lines(path) == split_lines(path.read_text(encoding="utf-8"))


# --- CoNLL rows ---------------------------------------------------------------------------------------------------

def test_read_conll_rows_keeps_every_column_and_conll_words_the_first(tmp_path):
    path = tmp_path / "ner.txt"
    path.write_text(CONLL, encoding="utf-8")
    rows = read_conll_rows(path)
    assert rows == [["EU NNP B-NP B-ORG", "rejects VBZ B-VP O"], ["Peter NNP B-NP B-PER", "Blackburn NNP I-NP I-PER"],
                    ["BRUSSELS NNP B-NP B-LOC"]]
    assert conll_words(path) == [["EU", "rejects"], ["Peter", "Blackburn"], ["BRUSSELS"]]
    words_only = tmp_path / "words.txt"                 # one column: enough to tag, not to train
    words_only.write_text("EU\nrejects\n\nPeter\n", encoding="utf-8")
    assert conll_words(words_only) == [["EU", "rejects"], ["Peter"]]
    with pytest.raises(DataError, match="1 column"):
        read_conll(words_only)


def test_check_text_file(tmp_path):
    path = tmp_path / "ok.txt"
    path.write_text("héllo\n", encoding="utf-8")
    assert data.check_text_file(path) == len("héllo\n".encode())
    gz = write_gz(tmp_path / "ok.gz", "héllo\n")
    assert data.check_text_file(gz) == len("héllo\n".encode())       # the size of the text, not of the file
    with pytest.raises(DataError, match="missing.txt"):
        data.check_text_file(tmp_path / "missing.txt")
    cut = tmp_path / "cut.txt"
    cut.write_bytes("ok\né".encode()[:-1])                              # a character cut at the end of the file
    with pytest.raises(DataError, match="line 2 is not valid UTF-8"):
        data.check_text_file(cut)
