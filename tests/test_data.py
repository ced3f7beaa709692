"""Reading corpora (errors name the file and line), locating corpora, bucketing, padding and batches."""
import gzip
import json
import random
from pathlib import Path

import pytest
import torch

from nmt import data
from nmt.data import (DataError, bucket_batches, corpus_files, data_root, length_stats, make_seq2seq_batch, pad,
                      read_conll, read_jsonl, read_lines, read_parallel)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


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
    with pytest.raises(DataError, match="not found") as err:
        read_lines(path)
    assert str(path) in str(err.value)


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


def test_length_stats():
    values = list(range(1, 101))
    random.Random(0).shuffle(values)
    stats = length_stats(values)
    assert stats == {"count": 100, "total": 5050, "mean": 50.5, "min": 1, "p50": 50, "p90": 90, "p99": 99,
                     "max": 100}
    assert length_stats([7])["p50"] == length_stats([7])["p99"] == 7
    assert length_stats([]) == {"count": 0, "total": 0}


# --- locating corpora ---------------------------------------------------------------------------------------

def test_data_root_explicit_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("NMT_DATA", raising=False)
    (tmp_path / "toy_corpus").mkdir()
    assert data_root("toy_corpus", tmp_path) == tmp_path
    assert data_root("toy_corpus", str(tmp_path)) == tmp_path


def test_data_root_env(tmp_path, monkeypatch):
    (tmp_path / "env_corpus").mkdir()
    monkeypatch.setenv("NMT_DATA", str(tmp_path))
    assert data_root("env_corpus") == tmp_path


def test_data_root_explicit_dir_wins_over_env(tmp_path, monkeypatch):
    explicit, env = tmp_path / "explicit", tmp_path / "env"
    for root in (explicit, env):
        (root / "toy_corpus").mkdir(parents=True)
    monkeypatch.setenv("NMT_DATA", str(env))
    assert data_root("toy_corpus", explicit) == explicit


def test_data_root_absent_names_corpus(tmp_path, monkeypatch):
    monkeypatch.delenv("NMT_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="no_such_corpus"):
        data_root("no_such_corpus")
    with pytest.raises(DataError, match="no_such_corpus") as err:
        data_root("no_such_corpus", tmp_path)
    assert str(tmp_path) in str(err.value)


def test_corpus_files_multi30k(tmp_path):
    (tmp_path / "multi30k").mkdir()
    raw = tmp_path / "multi30k" / "raw"
    assert corpus_files("multi30k", "train", tmp_path) == {"kind": "parallel",
                                                           "paths": (raw / "train.de.gz", raw / "train.en.gz")}
    assert corpus_files("multi30k", "val", tmp_path, src="en", tgt="fr")["paths"] == (raw / "val.en.gz",
                                                                                      raw / "val.fr.gz")


def test_corpus_files_unknown_corpus():
    with pytest.raises(DataError, match="unknown corpus 'wikipedia'"):
        corpus_files("wikipedia")


# --- real slices (skipped where shared/data is absent) ------------------------------------------------------

def shared(*parts) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


def test_real_multi30k_val():
    shared("multi30k", "raw", "val.de.gz")
    files = corpus_files("multi30k", "val", SHARED)
    pairs = read_parallel(*files["paths"])
    assert len(pairs) == 1014
    assert all(de.strip() and en.strip() for de, en in pairs)


def test_real_wnut17_dev():
    path = shared("wnut17", "emerging.dev.conll")
    sentences = read_conll(path)
    assert len(sentences) == 1009
    assert all(len(words) == len(tags) for words, tags in sentences)
    assert {t[0] for _, tags in sentences for t in tags} <= {"B", "I", "O"}



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
