"""Named corpora (nmt/corpora.py): where they are found, their files and fields, statistics; real slices where
the data folders hold them."""
import json
import random

import pytest

from nmt import corpora
from nmt.corpora import corpus_files, corpus_stats, data_root, length_stats
from nmt.data import DataError, read_conll, read_parallel


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


def test_candidate_roots_honour_nmt_data(tmp_path, monkeypatch):
    monkeypatch.setenv("NMT_DATA", str(tmp_path))
    assert corpora.candidate_roots()[0] == tmp_path
    monkeypatch.delenv("NMT_DATA")
    assert tmp_path not in corpora.candidate_roots()
    assert corpora.REPO / "data" in corpora.candidate_roots()


def test_shared_data_fixture_looks_where_the_cli_looks(tmp_path, monkeypatch, shared_data):
    (tmp_path / "toy_corpus").mkdir()
    (tmp_path / "toy_corpus" / "train.txt").write_text("x\n")
    monkeypatch.setenv("NMT_DATA", str(tmp_path))
    assert shared_data("toy_corpus", "train.txt") == tmp_path / "toy_corpus" / "train.txt"


def test_corpus_files_know_their_fields_and_validation_split(tmp_path):
    text_corpora = ("multi30k", "tinyshakespeare", "conll2003", "wnut17", "aeslc", "gigaword")
    for name in text_corpora:
        (tmp_path / name).mkdir()
    aeslc = corpus_files("aeslc", "dev", tmp_path)
    assert aeslc["kind"] == "jsonl" and aeslc["paths"] == (tmp_path / "aeslc" / "dev.jsonl",)
    assert aeslc["fields"] == {"source": "email_body", "target": "subject_line", "references": ("ann0", "ann1", "ann2")}
    assert corpus_files("wnut17", "dev", tmp_path)["paths"] == (tmp_path / "wnut17" / "emerging.dev.conll",)
    assert corpus_files("tinyshakespeare", "val", tmp_path)["kind"] == "text"
    giga = corpus_files("gigaword", "valid", tmp_path)
    assert giga["kind"] == "parallel" and giga["paths"][0].name == "valid.article.filter.txt"
    with pytest.raises(DataError, match="gigaword has splits"):
        corpus_files("gigaword", "test", tmp_path)
    assert set(corpora.VALIDATION) == set(corpora.CORPORA)
    for name in text_corpora:
        corpus_files(name, corpora.VALIDATION[name], tmp_path)     # every validation split has files


def test_corpus_stats_of_files(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("a b c\nd e\n\nf\n", encoding="utf-8")
    stats = corpus_stats(str(text))["columns"]["text"]
    assert (stats["count"], stats["total"], stats["vocab"], stats["max"]) == (4, 6, 6, 3)
    conll = tmp_path / "ner.txt"
    conll.write_text("-DOCSTART- O\n\nEU B-ORG\nrejects O\n\nPeter B-PER\n", encoding="utf-8")
    assert corpus_stats(str(conll))["columns"]["tokens"]["count"] == 2
    records = tmp_path / "mail.jsonl"
    records.write_text(json.dumps({"body": "a b c", "subject": "a", "id": 3}) + "\n", encoding="utf-8")
    assert set(corpus_stats(str(records))["columns"]) == {"body", "subject"}         # the text fields
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="no data"):
        corpus_stats(str(empty))


# --- real slices (skipped where no data folder holds them) ------------------------------------------------------

def test_real_multi30k_val(shared_data):
    shared_data("multi30k", "raw", "val.de.gz")
    pairs = read_parallel(*corpus_files("multi30k", "val")["paths"])
    assert len(pairs) == 1014
    assert all(de.strip() and en.strip() for de, en in pairs)


def test_real_wnut17_dev(shared_data):
    sentences = read_conll(shared_data("wnut17", "emerging.dev.conll"))
    assert len(sentences) == 1009
    assert all(len(words) == len(tags) for words, tags in sentences)
    assert {t[0] for _, tags in sentences for t in tags} <= {"B", "I", "O"}
