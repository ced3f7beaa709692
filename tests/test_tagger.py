"""Named-entity tagger: CRF against brute force, padding, IOB2 constraints, schemes, overfitting, the CLI."""
import itertools
import json
from pathlib import Path

import pytest
import torch

from nmt import checkpoint as ckpt_io
from nmt.config import RNNConfig, TaggerConfig
from nmt.data import DataError, read_conll
from nmt.models.crf import CRF, iob2_constraints
from nmt.models.tagger import CASINGS, Tagger, casing
from nmt.tagging import (TAG_PATTERN, Encoded, NERTagger, TagTask, check_tags, detect_scheme, entity_scores,
                         make_batch, make_setup, normalise_scheme, read_tagged, render_plain, spans, tag_vocabulary,
                         to_iob2, tokenize, words_with_offsets)
from nmt.tokenizers import WordTokenizer
from tests.cli_util import one_line_error, run

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TAGS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


# --- CRF against brute force ----------------------------------------------------------------------------------

def random_crf(k: int, seed: int, constraints=None) -> CRF:
    gen = torch.Generator().manual_seed(seed)
    crf = CRF(k, constraints)
    with torch.no_grad():
        crf.start.copy_(torch.randn(k, generator=gen))
        crf.end.copy_(torch.randn(k, generator=gen))
        crf.trans.copy_(torch.randn(k, k, generator=gen))
    return crf


def path_score(crf: CRF, em: torch.Tensor, path) -> float:
    """The CRF score of one tag path over unpadded emissions em (S, K), in float64."""
    start, trans = (t.detach().double() for t in crf._scores())
    end, em = crf.end.detach().double(), em.double()
    total = start[path[0]] + end[path[-1]] + sum(em[i, t] for i, t in enumerate(path))
    return float(total + sum(trans[a, b] for a, b in zip(path, path[1:])))


def brute_force(crf: CRF, em: torch.Tensor):
    """(log Z, best path) over every path of an unpadded sentence em (S, K)."""
    scores = {p: path_score(crf, em, p) for p in itertools.product(range(em.size(1)), repeat=em.size(0))}
    log_z = float(torch.logsumexp(torch.tensor(list(scores.values()), dtype=torch.float64), 0))
    return log_z, list(max(scores, key=scores.get))


@pytest.mark.parametrize("length", [1, 2, 3, 4])
def test_crf_matches_brute_force(length):
    crf = random_crf(3, seed=length)
    gen = torch.Generator().manual_seed(100 + length)
    for _ in range(3):
        em = torch.randn(1, length, 3, generator=gen) * 2
        mask = torch.ones(1, length, dtype=torch.bool)
        log_z, best = brute_force(crf, em[0])
        assert crf.log_partition(em, mask).item() == pytest.approx(log_z, abs=1e-5)
        assert crf.decode(em, mask)[0].tolist() == best
        tags = torch.randint(0, 3, (1, length), generator=gen)
        gold = path_score(crf, em[0], tags[0].tolist())
        assert crf.score(em, tags, mask).item() == pytest.approx(gold, abs=1e-5)
        assert crf.nll(em, tags, mask).item() == pytest.approx(log_z - gold, abs=1e-5)


def test_crf_batch_of_different_lengths_matches_each_sentence():
    crf = random_crf(3, seed=7)
    gen = torch.Generator().manual_seed(8)
    lengths = torch.tensor([4, 2, 3, 1])
    mask = torch.arange(4)[None, :] < lengths[:, None]                   # (B, S)
    em = torch.randn(4, 4, 3, generator=gen)
    em = torch.where(mask[:, :, None], em, torch.full_like(em, 50.0))    # padding would dominate if it leaked in
    tags = torch.randint(0, 3, (4, 4), generator=gen)                    # padded tags are arbitrary too
    log_z, decoded = crf.log_partition(em, mask), crf.decode(em, mask)
    nll = crf.nll(em, tags, mask)
    for b, n in enumerate(lengths.tolist()):
        ref_z, ref_best = brute_force(crf, em[b, :n])
        assert log_z[b].item() == pytest.approx(ref_z, abs=1e-5)
        assert decoded[b, :n].tolist() == ref_best and decoded[b, n:].eq(0).all()
        ref_nll = ref_z - path_score(crf, em[b, :n], tags[b, :n].tolist())
        assert nll[b].item() == pytest.approx(ref_nll, abs=1e-5)


def test_crf_nll_is_padding_invariant_and_positive():
    crf = random_crf(5, seed=3)
    gen = torch.Generator().manual_seed(4)
    short, long_ = torch.randn(1, 3, 5, generator=gen), torch.randn(1, 6, 5, generator=gen)
    tags_short, tags_long = torch.randint(0, 5, (1, 3), generator=gen), torch.randint(0, 5, (1, 6), generator=gen)
    alone = crf.nll(short, tags_short, torch.ones(1, 3, dtype=torch.bool))
    em = torch.cat([torch.cat([short, torch.randn(1, 3, 5, generator=gen)], 1), long_])      # (2, 6, 5)
    tags = torch.cat([torch.cat([tags_short, torch.full((1, 3), 4)], 1), tags_long])
    mask = torch.tensor([[1] * 3 + [0] * 3, [1] * 6], dtype=torch.bool)
    batched = crf.nll(em, tags, mask)
    assert batched[0].item() == pytest.approx(alone.item(), abs=1e-5)
    assert (batched > 0).all()                          # -log p of one path among many


# --- the tagger model -----------------------------------------------------------------------------------------

def tiny_config(char_features="cnn", output="crf", **kw) -> TaggerConfig:
    rnn = RNNConfig(cell="lstm", hidden_size=8, bidirectional=True)
    return TaggerConfig(word_vocab_size=20, char_vocab_size=15, num_tags=len(TAGS), word_embed=8, char_embed=4,
                        char_features=char_features, char_hidden=4, casing_embed=3, rnn=rnn, dropout=0.0,
                        word_dropout=0.0, output=output, **kw)


def item(n: int, seed: int) -> Encoded:
    gen = torch.Generator().manual_seed(seed)
    words = torch.randint(1, 20, (n,), generator=gen).tolist()
    chars = [torch.randint(1, 15, (int(torch.randint(1, 7, (1,), generator=gen)),), generator=gen).tolist()
             for _ in range(n)]
    return Encoded(words, chars, torch.randint(1, len(CASINGS), (n,), generator=gen).tolist(),
                   torch.randint(0, len(TAGS), (n,), generator=gen).tolist())


@pytest.mark.parametrize("char_features", ["cnn", "lstm", "none"])
def test_tagger_emissions_and_loss_are_padding_invariant(char_features):
    torch.manual_seed(0)
    model = Tagger(tiny_config(char_features), TAGS).eval()
    items = [item(3, 1), item(7, 2)]
    alone, both = make_batch(items, [0]), make_batch(items, [0, 1])
    assert both.chars.size(1) >= alone.chars.size(1) and both.words.shape == (2, 7)
    assert both.char_index.shape == (2, 7) and torch.all(both.char_index[0, 3:] == 0)   # padding: the empty word
    em_alone = model(alone.words, alone.chars, alone.casings, alone.lengths, alone.char_index)
    em_both = model(both.words, both.chars, both.casings, both.lengths, both.char_index)
    assert em_alone.shape == (1, 3, len(TAGS)) and em_both.shape == (2, 7, len(TAGS))
    assert torch.allclose(em_alone[0], em_both[0, :3], atol=1e-5)
    nll_alone = model.crf.nll(em_alone, alone.tags, alone.mask)
    nll_both = model.crf.nll(em_both, both.tags, both.mask)
    assert nll_alone[0].item() == pytest.approx(nll_both[0].item(), abs=1e-4)
    assert torch.equal(model.decode(em_alone, alone.mask)[0], model.decode(em_both, both.mask)[0, :3])


@pytest.mark.parametrize("char_features", ["cnn", "lstm"])
def test_distinct_word_features_equal_per_position_features(char_features):
    """The batch convolves each distinct word once; the result equals computing every position's word."""
    torch.manual_seed(0)
    model = Tagger(tiny_config(char_features), TAGS).eval()
    items = [item(5, 3), item(4, 3), item(6, 4)]          # the same seed twice: repeated words across sentences
    batch = make_batch(items, [0, 1, 2])
    assert batch.chars.size(0) < 1 + 15                    # fewer distinct words than positions
    per_position = batch.chars[batch.char_index]           # (B, S, W)
    fast = model(batch.words, batch.chars, batch.casings, batch.lengths, batch.char_index)
    slow = model(batch.words, per_position, batch.casings, batch.lengths)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_casing_classes():
    assert [casing(w) for w in ("1996", "1996-08-30", "london", "EU", "London", "-3", "-")] == [1, 2, 3, 4, 5, 6, 7]
    assert all(0 < casing(w) < len(CASINGS) for w in ("x", "X", "3", "Ünïcode", "漢字", "'s"))


# --- IOB2 constraints -------------------------------------------------------------------------------------------

def may_follow(prev: str, tag: str) -> bool:
    return not tag.startswith("I-") or (prev[:2] in ("B-", "I-") and prev[2:] == tag[2:])


def valid_iob2(tags: list[str]) -> bool:
    return all(may_follow(prev, tag) for prev, tag in zip(["O"] + tags, tags))     # "O" before: no I- first


def test_iob2_constraints_table():
    start, allowed = iob2_constraints(TAGS)
    assert start.tolist() == [True, True, False, True, False]
    for i, prev in enumerate(TAGS):
        for j, tag in enumerate(TAGS):
            assert allowed[i, j].item() == may_follow(prev, tag), (prev, tag)


def test_constrained_decode_never_breaks_iob2():
    crf = random_crf(len(TAGS), seed=1, constraints=iob2_constraints(TAGS))
    idx = {t: i for i, t in enumerate(TAGS)}
    # emissions shouting for an invalid sequence: I- first, I-PER after O, I-LOC after B-PER, I-PER after I-LOC
    wanted = ["I-PER", "O", "I-PER", "B-PER", "I-LOC", "I-PER"]
    em = torch.zeros(1, len(wanted), len(TAGS))
    for i, tag in enumerate(wanted):
        em[0, i, idx[tag]] = 100.0
    mask = torch.ones(1, len(wanted), dtype=torch.bool)
    best = [TAGS[t] for t in crf.decode(em, mask)[0].tolist()]
    assert valid_iob2(best), best
    unconstrained = random_crf(len(TAGS), seed=1)
    assert [TAGS[t] for t in unconstrained.decode(em, mask)[0].tolist()] == wanted
    # many random strong emissions, padded batch
    gen = torch.Generator().manual_seed(2)
    em = torch.randn(64, 9, len(TAGS), generator=gen) * 30
    lengths = torch.randint(1, 10, (64,), generator=gen)
    mask = torch.arange(9)[None, :] < lengths[:, None]
    for row, n in zip(crf.decode(em, mask).tolist(), lengths.tolist()):
        assert valid_iob2([TAGS[t] for t in row[:n]])


def test_constrained_nll_stays_finite():
    crf = random_crf(len(TAGS), seed=5, constraints=iob2_constraints(TAGS))
    em = (torch.randn(2, 4, len(TAGS), generator=torch.Generator().manual_seed(6)) * 10).requires_grad_()
    idx = {t: i for i, t in enumerate(TAGS)}
    gold = torch.tensor([[idx[t] for t in ("B-PER", "I-PER", "O", "B-LOC")],
                         [idx[t] for t in ("O", "I-PER", "I-LOC", "O")]])     # the second breaks IOB2
    nll = crf.nll(em, gold, torch.ones(2, 4, dtype=torch.bool))
    assert torch.isfinite(nll).all() and nll[0] > 0 and nll[1] > nll[0]
    nll.sum().backward()
    assert torch.isfinite(em.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in crf.parameters())


# --- tagging schemes, spans, tokens -----------------------------------------------------------------------------

def test_to_iob2_from_iob1():
    tags = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG", "I-MISC", "I-MISC"]
    assert to_iob2(tags, "iob1") == ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG", "B-MISC", "I-MISC"]


def test_to_iob2_from_iobes():
    tags = ["S-PER", "O", "B-LOC", "I-LOC", "E-LOC", "S-MISC", "S-MISC", "B-ORG", "E-ORG"]
    assert to_iob2(tags, "iobes") == ["B-PER", "O", "B-LOC", "I-LOC", "I-LOC", "B-MISC", "B-MISC", "B-ORG", "I-ORG"]


def test_to_iob2_keeps_iob2_and_rejects_unknown_scheme():
    tags = ["B-PER", "I-PER", "O", "B-LOC"]
    assert to_iob2(tags, "iob2") == tags
    with pytest.raises(DataError, match="bilou"):
        to_iob2(tags, "bilou")


def test_detect_scheme_and_normalise():
    iob2 = [(["a", "b"], ["B-PER", "I-PER"]), (["c"], ["O"])]
    iob1 = [(["a", "b"], ["I-PER", "I-PER"])]
    iobes = [(["a", "b"], ["B-PER", "E-PER"]), (["c"], ["S-LOC"])]
    assert detect_scheme(iob2) == "iob2" and detect_scheme(iob1) == "iob1" and detect_scheme(iobes) == "iobes"
    assert detect_scheme([(["x"], ["O"])]) == "iob2"
    assert normalise_scheme(iob1) == [(["a", "b"], ["B-PER", "I-PER"])]
    assert normalise_scheme(iobes) == [(["a", "b"], ["B-PER", "I-PER"]), (["c"], ["B-LOC"])]
    assert normalise_scheme(iob1, "iob2") == iob1                       # an explicit scheme is not second-guessed


def test_check_tags_names_the_bad_tag():
    check_tags([(["a"], ["O"]), (["b", "c"], ["B-PER", "S-X_Y"])], "ok.txt")
    for bad in ("PERSON", "B_PER", "B-", "o", "X-PER"):
        with pytest.raises(DataError, match=f"f.txt: sentence 2 has tag '{bad}'"):
            check_tags([(["a"], ["O"]), (["b"], [bad])], "f.txt")


def test_spans_edge_cases():
    assert spans([]) == [] and spans(["O", "O"]) == []
    assert spans(["O", "B-PER", "I-PER"]) == [("PER", 1, 3)]                         # entity at the end
    assert spans(["B-LOC"]) == [("LOC", 0, 1)]
    assert spans(["O", "I-PER", "I-PER", "O"]) == [("PER", 1, 3)]                    # I- without B-
    assert spans(["B-PER", "B-LOC"]) == [("PER", 0, 1), ("LOC", 1, 2)]              # adjacent, other types
    assert spans(["B-PER", "B-PER", "I-PER"]) == [("PER", 0, 1), ("PER", 1, 3)]      # adjacent, same type
    assert spans(["B-PER", "I-LOC", "I-LOC"]) == [("PER", 0, 1), ("LOC", 1, 3)]      # type change inside
    assert spans(["I-ORG", "O", "B-MISC", "I-MISC", "I-MISC"]) == [("ORG", 0, 1), ("MISC", 2, 5)]


def test_tokenize_offsets_round_trip():
    text = "Angela Merkel's visit to the U.S. on 30.08.1996 cost $1,000 — «wow», e-mail: a@b.de!"
    tokens = tokenize(text)
    assert all(text[a:b] == w for w, a, b in tokens)
    assert all(a < b for _, a, b in tokens) and all(b1 <= a2 for (_, _, b1), (_, a2, _) in zip(tokens, tokens[1:]))
    words = [w for w, _, _ in tokens]
    assert "U.S." in words and "Merkel's" in words and "1,000" in words and "e-mail" in words
    assert "".join(words) == "".join(text.split())                        # nothing but whitespace is dropped
    assert tokenize("") == [] and tokenize("   \t ") == []
    assert [w for w, _, _ in tokenize("Paris.")] == ["Paris", "."]


def test_words_with_offsets():
    words = ["EU", "rejects", "German", "call", "."]
    line = " ".join(words)
    offsets = words_with_offsets(words)
    assert [w for w, _, _ in offsets] == words and all(line[a:b] == w for w, a, b in offsets)


def test_render_plain():
    words = "Angela Merkel met Macron in Paris .".split()
    tags = ["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC", "O"]
    assert render_plain(words, tags) == "[PER Angela Merkel] met [PER Macron] in [LOC Paris] ."
    assert render_plain(["a", "b"], ["O", "O"]) == "a b"
    assert render_plain(["x", "y"], ["B-ORG", "B-LOC"]) == "[ORG x] [LOC y]"
    assert render_plain([], []) == ""


def test_progress_samples_keep_lowercase_entity_types():
    """WNUT-17 types are lowercase: '[person Angela]' in a sample must print as text, not vanish as Rich markup."""
    import io

    from rich.console import Console

    from nmt.progress import RichProgress
    console = Console(file=io.StringIO(), width=200)
    progress = RichProgress(console, sample_headers=("gold", "predicted"))
    gold = render_plain(["Angela", "met", "Paris"], ["B-person", "O", "B-location"])
    progress.on_validate({"step": 1, "f1": 50.0, "best": 50.0}, [(gold, "[/b] odd")])
    shown = console.file.getvalue()
    assert "[person Angela] met [location Paris]" in shown and "[/b] odd" in shown


def test_tag_vocabulary_and_entity_scores():
    sents = [(["a", "b"], ["B-PER", "I-PER"]), (["c"], ["B-LOC"]), (["d"], ["O"])]
    assert tag_vocabulary(sents) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    gold = [t for _, t in sents]
    perfect = entity_scores(gold, gold)
    assert perfect["f1"] == pytest.approx(100) and set(perfect["types"]) == {"PER", "LOC"}
    half = entity_scores(gold, [["B-PER", "O"], ["B-LOC"], ["O"]])                  # PER boundary wrong: strict
    assert half["precision"] == pytest.approx(50) and half["recall"] == pytest.approx(50)
    assert half["types"]["LOC"]["f1-score"] == pytest.approx(100) and half["types"]["PER"]["support"] == 1


def test_read_tagged_converts_iob1(tmp_path):
    path = tmp_path / "iob1.txt"
    path.write_text("-DOCSTART- -X- O\n\nEU NNP I-ORG\nrejects VBZ O\nGerman JJ I-MISC\n\n"
                    "Peter NNP I-PER\nBlackburn NNP I-PER\n", encoding="utf-8")
    assert read_tagged(path) == [(["EU", "rejects", "German"], ["B-ORG", "O", "B-MISC"]),
                                 (["Peter", "Blackburn"], ["B-PER", "I-PER"])]
    assert read_tagged(path, scheme="iob2")[0][1] == ["I-ORG", "O", "I-MISC"]       # explicit scheme: as written
    bad = tmp_path / "bad.txt"
    bad.write_text("EU NNP B-ORG\nrejects VBZ PERSON\n", encoding="utf-8")
    with pytest.raises(DataError, match="PERSON"):
        read_tagged(bad)


# --- overfitting a tiny batch -------------------------------------------------------------------------------------

SENTENCES = [
    ("Angela Merkel visited Paris .".split(), ["B-PER", "I-PER", "O", "B-LOC", "O"]),
    ("The EU rejects German calls".split(), ["O", "B-ORG", "O", "B-MISC", "O"]),
    ("Peter Blackburn lives in New York".split(), ["B-PER", "I-PER", "O", "O", "B-LOC", "I-LOC"]),
    ("Paris Saint-Germain beat Chelsea".split(), ["B-ORG", "I-ORG", "O", "B-ORG"]),
]


@pytest.mark.parametrize("output", ["crf", "softmax"])
def test_overfits_tiny_batch(output):
    torch.manual_seed(0)
    tokenizer = WordTokenizer.train([w for w, _ in SENTENCES])
    tags = tag_vocabulary(SENTENCES)
    setup = make_setup("tiny", overrides={"model.dropout": 0.0, "model.word_dropout": 0.0, "model.output": output})
    c = setup.model
    c.word_vocab_size, c.char_vocab_size, c.num_tags = tokenizer.vocab_size, tokenizer.chars.vocab_size, len(tags)
    model = Tagger(c, tags)
    assert (model.crf is not None) == (output == "crf")
    task = TagTask(setup, tokenizer, tags, SENTENCES, SENTENCES)
    batch = make_batch(task.train, list(range(len(SENTENCES))))
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    first = None
    for _ in range(100):
        loss, stats = task.loss(model.train(), batch)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first / 10 and stats["tokens"] == sum(len(w) for w, _ in SENTENCES)
    predicted = NERTagger(model, tokenizer).tag([w for w, _ in SENTENCES] + [[]])
    assert predicted == [t for _, t in SENTENCES] + [[]]
    assert task.validate(model).score == pytest.approx(100)


# --- the command line ----------------------------------------------------------------------------------------------


CONLL_SENTENCES = SENTENCES + [
    ("Merkel met Chelsea fans in York .".split(), ["B-PER", "O", "B-ORG", "O", "O", "B-LOC", "O"]),
    ("German officials visited the EU".split(), ["B-MISC", "O", "O", "O", "B-ORG"]),
]


def conll_text(sentences) -> str:
    """CoNLL-2003 layout: word, POS, chunk, NER; documents start with -DOCSTART-."""
    lines = ["-DOCSTART- -X- -X- O", ""]
    for words, tags in sentences:
        lines += [f"{w} NNP I-NP {t}" for w, t in zip(words, tags)] + [""]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("tagger")
    (root / "train.txt").write_text(conll_text(CONLL_SENTENCES * 4), encoding="utf-8")
    (root / "dev.txt").write_text(conll_text(CONLL_SENTENCES[:3]), encoding="utf-8")
    result = run("train", "tag", "--train-file", root / "train.txt", "--dev-file", root / "dev.txt",
                 "--preset", "tiny", "--max-steps", 30, "--out", root / "run", "--set", "train.threads=1",
                 "--set", "train.optim.lr=0.02", "--set", "model.dropout=0", "--set", "model.word_dropout=0")
    assert result.exit_code == 0, result.output
    assert (root / "run" / "best.pt").exists() and (root / "run" / "last.pt").exists()
    return root


def test_cli_train_writes_metrics(trained):
    records = [json.loads(x) for x in (trained / "run" / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if r["type"] == "valid"]
    assert valid and valid[-1]["step"] == 30
    assert all(0 <= r["f1"] <= 100 and {"precision", "recall"} <= set(r) for r in valid)


def test_cli_tag_json_offsets(trained):
    model = trained / "run" / "best.pt"
    texts = ["Angela Merkel visited Paris.", "  Peter Blackburn lives in New York  ", "nothing here", "ÆØÅ 🙂 漢字"]
    result = run("tag", "-m", model, "--json", *texts)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["text"] for r in rows] == texts
    found = 0
    for row in rows:
        for ent in row["entities"]:
            assert row["text"][ent["start"]:ent["end"]] == ent["text"] and ent["text"] == ent["text"].strip()
            assert ent["type"] in {"PER", "LOC", "ORG", "MISC"}
            found += 1
    assert found > 0                                    # a model that has seen these sentences finds something
    plain = run("tag", "-m", model, *texts)             # piped: one bracketed line per input line
    assert plain.exit_code == 0 and plain.stdout.count("\n") == len(texts)


def test_cli_tag_conll_format(trained, tmp_path):
    model = trained / "run" / "best.pt"
    path = tmp_path / "in.txt"
    path.write_text(conll_text(CONLL_SENTENCES[:3]), encoding="utf-8")
    result = run("tag", "-m", model, "--format", "conll", "--input", path)
    assert result.exit_code == 0, result.output
    blocks = result.stdout.rstrip("\n").split("\n\n")
    assert len(blocks) == 3
    for block, (words, _) in zip(blocks, CONLL_SENTENCES):
        rows = [line.split() for line in block.split("\n")]      # the 4 input columns, then the prediction
        assert [r[0] for r in rows] == words
        assert all(len(r) == 5 and TAG_PATTERN.match(r[-1]) for r in rows)
    as_json = json.loads(run("tag", "-m", model, "--format", "conll", "--input", path, "--json").stdout)
    assert len(as_json) == 3 and as_json[0]["text"] == " ".join(CONLL_SENTENCES[0][0])
    one_line_error(run("tag", "-m", model, "--format", "conll", "x"), "--input")
    one_line_error(run("tag", "-m", model, "--format", "xml", "x"), "--format")


def test_cli_evaluate_json(trained):
    result = run("evaluate", "tag", "-m", trained / "run" / "best.pt", "--conll-file", trained / "dev.txt", "--json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert {"precision", "recall", "f1", "types"} <= set(scores)
    assert all(0 <= scores[k] <= 100 for k in ("precision", "recall", "f1"))
    assert set(scores["types"]) <= {"PER", "LOC", "ORG", "MISC"} and scores["support"] == 6
    table = run("evaluate", "tag", "-m", trained / "run" / "best.pt", "--conll-file", trained / "dev.txt")
    assert table.exit_code == 0 and "overall" in table.stdout


def test_cli_bad_inputs(trained, tmp_path):
    model = trained / "run" / "best.pt"
    columns = tmp_path / "columns.txt"
    columns.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP\n", encoding="utf-8")
    one_line_error(run("evaluate", "tag", "-m", model, "--conll-file", columns), "line 4", "3 columns")
    one_line_error(run("train", "tag", "--train-file", columns, "--dev-file", trained / "dev.txt", "--preset",
                       "tiny", "--out", tmp_path / "r", "--set", "train.threads=1"), "line 4")
    person = tmp_path / "person.txt"
    person.write_text("Angela NNP B-NP PERSON\nMerkel NNP I-NP PERSON\n", encoding="utf-8")
    one_line_error(run("evaluate", "tag", "-m", model, "--conll-file", person), "PERSON")
    one_line_error(run("train", "tag", "--train-file", trained / "train.txt", "--dev-file", person, "--preset",
                       "tiny", "--out", tmp_path / "r2", "--set", "train.threads=1"), "PERSON")
    markup = tmp_path / "markup.txt"                    # quoted user text is printed as text, not Rich markup
    markup.write_text("Angela NNP B-NP [/b]\n", encoding="utf-8")
    one_line_error(run("evaluate", "tag", "-m", model, "--conll-file", markup), "'[/b]'")
    unseen = tmp_path / "unseen.txt"
    unseen.write_text("Angela NNP B-NP B-EVENT\n", encoding="utf-8")
    one_line_error(run("train", "tag", "--train-file", trained / "train.txt", "--dev-file", unseen, "--preset",
                       "tiny", "--out", tmp_path / "r4", "--set", "train.threads=1"), "never seen", "B-EVENT")
    one_line_error(run("tag", "-m", model, ""), "empty")
    one_line_error(run("tag", "-m", model, "   ", ""), "empty")
    one_line_error(run("tag", "-m", tmp_path / "missing.pt", "x"), "not found")
    one_line_error(run("train", "tag", "--train-file", trained / "train.txt", "--preset", "tiny",
                       "--out", tmp_path / "r3", "--set", "train.threads=1"), "--dev-file")


def test_cli_other_task_checkpoint(trained, tmp_path):
    other = tmp_path / "charlm.pt"
    ckpt_io.save(other, ckpt_io.Checkpoint("charlm", {}, {}))
    one_line_error(run("tag", "-m", other, "Angela Merkel"), "not a 'tag'")
    one_line_error(run("evaluate", "tag", "-m", other, "--conll-file", trained / "dev.txt"), "not a 'tag'")
    shipped = Path(__file__).resolve().parents[1] / "checkpoints" / "multi30k-de-en.pt"
    if shipped.exists():
        one_line_error(run("tag", "-m", shipped, "Angela Merkel"), "'translate' checkpoint", "not a 'tag'")


def test_cli_tags_a_very_long_line(trained):
    line = " ".join(["Merkel", "visited", "Paris", "."] * 2500)             # 10,000 tokens
    result = run("tag", "-m", trained / "run" / "best.pt", "--json", line)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert all(line[e["start"]:e["end"]] == e["text"] for e in row["entities"])


# --- the real CoNLL-2003 dev set (skipped where shared/data is absent) -------------------------------------------

def test_real_conll2003_dev_is_iob2():
    path = SHARED / "conll2003" / "dev.txt"
    if not path.exists():
        pytest.skip(f"{path} not present")
    raw = read_conll(path)[:200]
    sentences = read_tagged(path)[:200]
    assert len(sentences) == 200 and all(len(w) == len(t) for w, t in sentences)
    assert detect_scheme(raw) == "iob2" and sentences == raw                 # already IOB2: nothing converted
    assert all(TAG_PATTERN.match(t) for _, tags in sentences for t in tags)
    assert {t[2:] for _, tags in sentences for t in tags if t != "O"} <= {"PER", "LOC", "ORG", "MISC"}
