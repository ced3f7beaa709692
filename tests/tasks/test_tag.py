"""The tagging task (nmt/tasks/tag.py): tagging schemes, spans, tokens, the loss (CRF or softmax), overfitting,
and the NERTagger runner on the session's tiny model."""
import pytest
import torch
import torch.nn.functional as F

from nmt.data import DataError, read_conll
from nmt.models.tagger import Tagger
from nmt.tasks import make_setup
from nmt.tasks.tag import (
    TAG_PATTERN,
    NERTagger,
    TagTask,
    check_tags,
    detect_scheme,
    make_batch,
    normalise_scheme,
    read_tagged,
    mark_entities,
    render_plain,
    spans,
    tag_vocabulary,
    to_iob2,
    tokenize,
    words_with_offsets,
)
from nmt.tokenizers import WordTokenizer
from tests.toydata import TAGGED, conll_text

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


def test_tag_vocabulary():
    sents = [(["a", "b"], ["B-PER", "I-PER"]), (["c"], ["B-LOC"]), (["d"], ["O"])]
    assert tag_vocabulary(sents) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert tag_vocabulary([(["x"], ["O"])]) == ["O"]


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

SENTENCES = TAGGED[:4]


def tiny_task(output="crf", context=None, **overrides):
    """A tiny untrained tagger (no dropout) and its task on SENTENCES (with context: an alphabet, contextual
    LM features from random LMs)."""
    torch.manual_seed(0)
    tokenizer = WordTokenizer.train([w for w, _ in SENTENCES])
    tags = tag_vocabulary(SENTENCES)
    setup = make_setup("tag", "tiny", overrides={"model.dropout": 0.0, "model.word_dropout": 0.0,
                                                 "model.output": output, **overrides})
    c = setup.model
    c.word_vocab_size, c.char_vocab_size, c.num_tags = tokenizer.vocab_size, tokenizer.chars.vocab_size, len(tags)
    if context is not None:
        c.context_vocab, c.context_embed, c.context_hidden = context.vocab_size, 6, 10
    model = Tagger(c, tags)
    return model, TagTask(setup, tokenizer, tags, SENTENCES, SENTENCES, context=context)


@pytest.mark.parametrize("output", ["crf", "softmax"])
def test_overfits_tiny_batch(output):
    model, task = tiny_task(output)
    assert (model.crf is not None) == (output == "crf")
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
    predicted = NERTagger(model, task.tokenizer, task.setup).tag([w for w, _ in SENTENCES] + [[]])
    assert predicted == [t for _, t in SENTENCES] + [[]]
    assert task.validate(model).score == pytest.approx(100)


# --- the loss -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("output", ["crf", "softmax"])
def test_loss_is_per_word_and_padding_invariant(output):
    """The task's loss: the CRF's sentence NLL summed over the batch, or the cross-entropy of each word, both
    divided by the real words; padding adds nothing."""
    model, task = tiny_task(output)
    model.eval()
    both = make_batch(task.train, [0, 2])                             # 5 and 6 words: the first is padded
    with torch.no_grad():
        loss, stats = task.loss(model, both)
    words = [len(SENTENCES[0][0]), len(SENTENCES[2][0])]
    assert stats["tokens"] == sum(words) and stats["nll"] == pytest.approx(float(loss) * sum(words))
    with torch.no_grad():
        alone = [task.loss(model, make_batch(task.train, [i]))[0] for i in (0, 2)]
        emissions = model(both.words, both.chars, both.casings, both.lengths, both.char_index)
        if output == "crf":
            expected = model.crf.nll(emissions, both.tags, both.mask).sum() / sum(words)
        else:
            expected = F.cross_entropy(emissions[both.mask], both.tags[both.mask])
    assert float(loss) == pytest.approx(sum(float(a) * n for a, n in zip(alone, words)) / sum(words), rel=1e-5)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)


def test_word_lm_targets_are_the_neighbours_and_the_boundary():
    """The auxiliary LM (Rei 2017): the forward half at word t is scored on word t+1, the backward half on word
    t-1, the sentence's ends on the boundary class; padding adds nothing."""
    from nmt.models.tagger import WordLM
    lm = WordLM(hidden=4, layer=3, classes=9)
    h = torch.randn(2, 4, 8)                                                         # (B, S, 2H)
    targets = torch.tensor([[5, 6, 7, 8], [3, 4, 0, 0]])                             # (B, S), row 2 padded
    mask = targets != 0
    forward = [(0, 0, 6), (0, 1, 7), (0, 2, 8), (0, 3, 0), (1, 0, 4), (1, 1, 0)]     # (row, word, next word)
    backward = [(0, 0, 0), (0, 1, 5), (0, 2, 6), (0, 3, 7), (1, 0, 0), (1, 1, 3)]
    with torch.no_grad():
        expected = sum(F.cross_entropy(lm.next(h[b, t, :4]), torch.tensor(y), reduction="sum")
                       for b, t, y in forward) / 6
        expected += sum(F.cross_entropy(lm.prev(h[b, t, 4:]), torch.tensor(y), reduction="sum")
                        for b, t, y in backward) / 6
        assert float(lm.loss(h, targets, mask)) == pytest.approx(float(expected) / 2, rel=1e-5)
        h2 = h.clone()
        h2[1, 2:] = 1e3                                                              # padding positions
        assert float(lm.loss(h2, targets, mask)) == pytest.approx(float(expected) / 2, rel=1e-5)


def test_lm_weight_adds_the_lm_loss_and_reads_the_words_before_dropout():
    model, task = tiny_task(**{"model.lm_weight": 0.5, "model.lm_vocab": 3})
    assert model.lm is not None and sorted(set(task.lm_classes.tolist())) == [1, 2, 3, 4]
    batch = make_batch(task.train, [0, 1], torch.ones_like(task.drop_rates))
    assert not torch.equal(batch.words, batch.plain)                 # singletons dropped, targets kept
    model.eval()
    with torch.no_grad():
        loss, stats = task.loss(model, batch)
        h = model.encode(batch.words, batch.chars, batch.casings, batch.lengths, batch.char_index)
        lm = model.lm.loss(h, task.lm_classes[batch.plain], batch.mask)
    assert float(loss) == pytest.approx(stats["nll"] / stats["tokens"] + 0.5 * float(lm), rel=1e-5)
    with pytest.raises(ValueError, match="bidirectional"):
        tiny_task(**{"model.lm_weight": 0.5, "model.rnn.bidirectional": False})


def test_word_dropout_rates_singletons_and_every_word():
    counts = {}
    for words, _ in SENTENCES:
        for w in words:
            counts[w.lower()] = counts.get(w.lower(), 0) + 1
    _, task = tiny_task(**{"model.word_dropout": 0.5, "model.unk_rate": 0.1})
    ids = {w: task.tokenizer.encode([w])[0][0] for w in counts}
    assert all(float(task.drop_rates[ids[w]]) == pytest.approx(0.5 if n == 1 else 0.1) for w, n in counts.items())
    assert float(task.drop_rates[0]) == 0.0
    _, task = tiny_task(**{"model.word_dropout": 0.0})
    batches = task.batches(0)
    assert all(torch.equal(b.words, b.plain) for b in batches)


def test_shared_dropout_drops_a_feature_for_the_whole_sentence():
    from nmt.models.tagger import SharedDropout
    drop = SharedDropout(0.5)
    x = torch.ones(3, 7, 64)                                                         # (B, S, D)
    y = drop.train()(x)
    assert set(y.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(y, y[:, :1].expand_as(y)) and not torch.equal(y[0], y[1])   # per sentence, not per word
    assert torch.equal(drop.eval()(x), x)
    model, _ = tiny_task(**{"model.shared_dropout": True, "model.dropout": 0.5})
    assert isinstance(model.dropout, SharedDropout)


def test_overfits_with_the_lm_loss():
    model, task = tiny_task(**{"model.lm_weight": 0.1})
    batch = make_batch(task.train, list(range(len(SENTENCES))))
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(100):
        loss, _ = task.loss(model.train(), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert NERTagger(model, task.tokenizer, task.setup).tag([w for w, _ in SENTENCES]) == [t for _, t in SENTENCES]


def test_validation_scores_entities_and_shows_samples():
    model, task = tiny_task()
    result = task.validate(model.eval())
    assert set(result.metrics) == {"f1", "precision", "recall"} and result.score == result.metrics["f1"]
    assert 0 <= result.score <= 100 and len(result.samples) == 3
    assert result.samples[0][0] == render_plain(*SENTENCES[0])


# --- the runner on the tiny trained model --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tagger(tag_model):
    return NERTagger.load(tag_model.checkpoint)


def test_batch_size_comes_from_the_setup_and_changes_nothing(tagger):
    sentences = [w for w, _ in TAGGED] + [[], ["Paris"]]
    assert tagger.setup.data.eval_batch_size == make_setup("tag", "tiny").data.eval_batch_size
    together = tagger.tag(sentences)
    tagger.setup.data.eval_batch_size = 1
    try:
        assert tagger.tag(sentences) == together
    finally:
        tagger.setup.data.eval_batch_size = make_setup("tag", "tiny").data.eval_batch_size
    assert [len(t) for t in together] == [len(s) for s in sentences] and together[-2] == []
    assert all(TAG_PATTERN.match(t) for tags in together for t in tags)


def test_tag_text_and_tag_words_give_entities_with_offsets(tagger):
    texts = ["Angela Merkel visited Paris.", "  Peter Blackburn lives in New York  ", "", "ÆØÅ 🙂 漢字"]
    records = tagger.tag_text(texts)
    assert [r["text"] for r in records] == texts and records[2]["words"] == []
    assert records[0]["words"] == ["Angela", "Merkel", "visited", "Paris", "."]
    for record in records:
        assert len(record["tags"]) == len(record["words"])
        for ent in record["entities"]:
            assert record["text"][ent["start"]:ent["end"]] == ent["text"]
    words = tagger.tag_words([w for w, _ in TAGGED[:2]])
    assert [r["text"] for r in words] == [" ".join(w) for w, _ in TAGGED[:2]]
    assert [r["tags"] for r in words] == tagger.tag([w for w, _ in TAGGED[:2]])
    assert all(r["text"][e["start"]:e["end"]] == e["text"] for r in words for e in r["entities"])


@pytest.mark.parametrize("sep", [" ", "\t"])
def test_tag_conll_appends_a_column(tagger, tmp_path, sep):
    path = tmp_path / "in.conll"
    path.write_text(conll_text(TAGGED[:3]).replace(" ", sep), encoding="utf-8")
    blocks = tagger.tag_conll(path).rstrip("\n").split("\n\n")
    assert len(blocks) == 4 and blocks.pop(0).split()[0] == "-DOCSTART-"      # kept, with the tag O
    for block, (words, _) in zip(blocks, TAGGED):
        rows = [line.split(sep) for line in block.split("\n")]
        assert [r[0] for r in rows] == words and all(len(r) == 5 and TAG_PATTERN.match(r[-1]) for r in rows)


def test_tag_conll_keeps_every_line(tagger, tmp_path):
    """-DOCSTART- lines and blank lines stay where they were: the output lines up with the input file."""
    lines = conll_text(TAGGED[:2]).rstrip("\n").split("\n")
    text = "\n".join(["-DOCSTART- -X- -X- O", ""] + lines + ["", "-DOCSTART- -X- -X- O", ""]) + "\n"
    path = tmp_path / "docs.conll"
    path.write_text(text, encoding="utf-8")
    out = tagger.tag_conll(path).split("\n")
    given = text.split("\n")
    assert len(out) == len(given)
    for got, line in zip(out, given):
        assert got == line if not line else got.startswith(line + " ") and len(got.split()) == len(line.split()) + 1
    assert out[0] == "-DOCSTART- -X- -X- O O"


def test_mark_entities_keeps_the_text():
    text = "Angela Merkel visited Paris, then Berlin."
    entities = [{"type": "LOC", "start": 34, "end": 40}, {"type": "PER", "start": 0, "end": 13},
                {"type": "LOC", "start": 22, "end": 27}]
    assert mark_entities(text, entities) == "[PER Angela Merkel] visited [LOC Paris], then [LOC Berlin]."
    assert mark_entities("nothing", []) == "nothing"


# --- the real CoNLL-2003 dev set (skipped where no data folder holds it) -----------------------------------------

def test_real_conll2003_dev_is_iob2(shared_data):
    path = shared_data("conll2003", "dev.txt")
    raw = read_conll(path)[:200]
    sentences = read_tagged(path)[:200]
    assert len(sentences) == 200 and all(len(w) == len(t) for w, t in sentences)
    assert detect_scheme(raw) == "iob2" and sentences == raw                 # already IOB2: nothing converted
    assert all(TAG_PATTERN.match(t) for _, tags in sentences for t in tags)
    assert {t[2:] for _, tags in sentences for t in tags if t != "O"} <= {"PER", "LOC", "ORG", "MISC"}


def test_context_features_are_computed_once_per_sentence_from_the_text_before_dropout():
    from nmt.tokenizers import CharTokenizer
    alphabet = CharTokenizer.train([" ".join(w).lower() for w, _ in SENTENCES])
    model, task = tiny_task(context=alphabet, **{"model.word_dropout": 1.0})
    assert model.context is not None and task.features == {}
    batch = make_batch(task.train, [1, 0], torch.ones_like(task.drop_rates))
    with torch.no_grad():
        first = task.context_features(model, batch)                                          # (2, S, 20)
        again = task.context_features(model, make_batch(task.train, [0, 2], task.drop_rates))
        torch.testing.assert_close(first, model.context(*batch.context))
        torch.testing.assert_close(again[0, :len(task.train[0].words)], first[1, :len(task.train[0].words)])
        assert sorted(task.features) == [0, 1, 2]
        loss, _ = task.loss(model, batch)
    assert torch.isfinite(loss)
