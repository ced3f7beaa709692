"""TSV pair files, grouped dev splits and corpus mixing (nmt/pairs.py); the real Tatoeba file where present."""
import gzip

import pytest

from nmt.corpora import corpus_pairs, corpus_stats
from nmt.data import DataError
from nmt.pairs import Source, group_split, language_of, mix, parse_columns, parse_weights, read_tsv


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# --- parsing ------------------------------------------------------------------------------------------------

def test_default_columns_are_english_then_german(tmp_path):
    path = write(tmp_path / "p.tsv", "Hi.\tHallo!\nGood morning.\tGuten Morgen.\n")
    assert read_tsv(path, "de", "en").pairs == [("Hallo!", "Hi."), ("Guten Morgen.", "Good morning.")]
    assert read_tsv(path, "en", "de").pairs[0] == ("Hi.", "Hallo!")
    assert read_tsv(path).pairs[0] == ("Hi.", "Hallo!")        # the first two columns, in file order


def test_header_names_the_columns(tmp_path):
    path = write(tmp_path / "p.tsv", "German\tEnglish\nHallo!\tHi.\n")
    read = read_tsv(path, "de", "en")
    assert read.columns == ("de", "en") and read.pairs == [("Hallo!", "Hi.")]      # the header is no pair


def test_columns_option_reorders_and_skips(tmp_path):
    path = write(tmp_path / "p.tsv", "Hallo!\tHi.\tCC-BY 2.0 (France) Attribution: tatoeba.org\n")
    assert read_tsv(path, "de", "en", columns="de,en,-").pairs == [("Hallo!", "Hi.")]
    assert parse_columns("German, eng ,-") == ("de", "en", "-")
    assert language_of("Deutsch") == "de" and language_of("source") is None
    with pytest.raises(DataError, match="two or more distinct"):
        parse_columns("en,en")
    with pytest.raises(DataError, match="line 1 has 3 columns, --tsv-columns names 2"):
        read_tsv(path, "de", "en", columns="de,en")
    with pytest.raises(DataError, match="no 'fr' column"):
        read_tsv(path, "fr", "en", columns="de,en,-")


def test_text_is_stripped_and_blank_lines_counted(tmp_path):
    path = write(tmp_path / "p.tsv", " Hi. \t Hallo! \n\n\nYes.\tJa.\r\n")
    read = read_tsv(path, "en", "de")
    assert read.pairs == [("Hi.", "Hallo!"), ("Yes.", "Ja.")] and read.blank == 2 and read.skipped == 0


def test_gzip_files_are_read(tmp_path):
    path = tmp_path / "p.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("Hi.\tHallo!\n")
    assert read_tsv(path, "en", "de").pairs == [("Hi.", "Hallo!")]


# --- bad lines ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, problem", [
    ("No tab here", "line 2 has no tab"),
    ("Yes.\t", "line 2 has an empty column 2"),
    ("\tJa.", "line 2 has an empty column 1"),
    ("Yes.\tJa.\textra", "line 2 has 3 columns, the file's first line 2"),
])
def test_a_bad_line_is_named_or_skipped_and_counted(tmp_path, bad, problem):
    path = write(tmp_path / "p.tsv", f"Hi.\tHallo!\n{bad}\nNo.\tNein.\n")
    with pytest.raises(DataError, match=problem) as caught:
        read_tsv(path, "en", "de")
    assert "--tsv-skip-bad" in str(caught.value) and "\n" not in str(caught.value)
    read = read_tsv(path, "en", "de", skip_bad=True)
    assert read.pairs == [("Hi.", "Hallo!"), ("No.", "Nein.")] and read.skipped == 1


def test_empty_and_all_bad_files_are_refused(tmp_path):
    with pytest.raises(DataError, match="empty"):
        read_tsv(write(tmp_path / "e.tsv", "\n\n"), "en", "de")
    with pytest.raises(DataError, match="no usable pairs"):
        read_tsv(write(tmp_path / "b.tsv", "no tab\nnone here\n"), "en", "de", skip_bad=True)


def test_wrong_encoding_is_one_clear_error(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes("Hi.\tGrüß dich!\n".encode("latin-1"))
    with pytest.raises(DataError, match="UTF-8"):
        read_tsv(path, "en", "de")


# --- grouped dev splits ---------------------------------------------------------------------------------------

def test_group_split_keeps_every_translation_of_a_sentence_together():
    pairs = [(f"Satz {i} Variante {v}", f"Sentence {i}.") for i in range(400) for v in range(3)]
    train, dev = (group_split(pairs, 1, 0.1, s) for s in ("train", "dev"))
    assert len(train) + len(dev) == len(pairs) and 40 < len(dev) < 200
    assert not {e for _, e in train} & {e for _, e in dev}
    assert all(sum(e == d for _, e in dev) == 3 for _, d in dev[:10])
    assert group_split(pairs, 1, 0.1, "dev") == dev                     # deterministic
    with pytest.raises(DataError):
        group_split(pairs, 1, 0.1, "test")


# --- mixing ---------------------------------------------------------------------------------------------------

def test_mix_weights_repeat_and_sample():
    a, b = [(f"a{i}", "x") for i in range(10)], [(f"b{i}", "y") for i in range(100)]
    pairs, description = mix([Source("captions", a, 3), Source("everyday", b, 0.5)], seed=1)
    assert sum(p[0].startswith("a") for p in pairs) == 30 and sum(p[0].startswith("b") for p in pairs) == 50
    assert len({p for p in pairs if p[0].startswith("b")}) == 50       # a share is drawn without repeats
    assert "captions: 10 pairs x3 = 30 per epoch (37.5%)" in description and "everyday: 100 pairs x0.5" in description
    assert mix([Source("everyday", b, 0.5)], seed=1)[0] == mix([Source("everyday", b, 0.5)], seed=1)[0]


def test_parse_weights():
    assert parse_weights("multi30k=3", ["multi30k", "tatoeba"]) == {"multi30k": 3.0, "tatoeba": 1.0}
    assert parse_weights(None, ["a"]) == {"a": 1.0}
    for spec, message in (("news=2", "not one of the sources"), ("multi30k=0", "in \\(0, 100\\]"),
                          ("multi30k=lots", "must be a number")):
        with pytest.raises(DataError, match=message):
            parse_weights(spec, ["multi30k", "tatoeba"])


# --- data stats and the named corpus ------------------------------------------------------------------------------

def test_data_stats_reads_tsv(tmp_path):
    path = write(tmp_path / "p.tsv", "en\tde\nHi there.\tHallo!\nGood morning, Tom.\tGuten Morgen, Tom.\n")
    stats = corpus_stats(str(path))["columns"]
    assert stats["en"]["count"] == 2 and stats["de"]["total"] == 4 and stats["en"]["max"] == 3


def test_real_tatoeba_dev_is_grouped_by_english(shared_data):
    shared_data("tatoeba", "train.tsv")
    train, dev = corpus_pairs("tatoeba", "train"), corpus_pairs("tatoeba", "dev")       # (de, en) pairs
    assert 1500 < len(dev) < 3000 and len(train) + len(dev) > 160_000
    assert not {e for _, e in dev} & {e for _, e in train}
    assert corpus_pairs("tatoeba", "dev", src="en", tgt="de")[0] == dev[0][::-1]
    with pytest.raises(DataError, match="held out"):
        corpus_pairs("tatoeba", "test")
