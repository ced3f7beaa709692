"""The classification task (nmt/tasks/classify.py) and its model (nmt/models/classifier.py): labelled files and
splits, words, the model's shapes and padding invariance, overfitting, the TextClassifier runner and bad input;
real corpora (SST-2, TREC, names) where they are present."""
import json
import random

import pytest
import torch

from nmt import checkpoint as ckpt_io
from nmt.config import ClassifierConfig, RNNConfig
from nmt.data import DataError
from nmt.models.classifier import Classifier
from nmt.tasks import make_setup
from nmt.tasks.classify import (ClassifyTask, TextClassifier, build_tokenizer, check_labels, corpus_pairs,
                                hashed_ngrams, make_batch, read_labelled, read_names, stratified_split, words)

POSITIVE, NEGATIVE = "good great fine lovely superb".split(), "bad awful poor dull boring".split()
FILLER = "the film was a and plot acting story".split()


def toy_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """A learnable toy: label 1 when the text holds a positive word, 0 when a negative one."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        y = rng.randint(0, 1)
        text = rng.choices(FILLER, k=rng.randint(1, 5)) + [rng.choice(POSITIVE if y else NEGATIVE)]
        rng.shuffle(text)
        pairs.append((str(y), " ".join(text)))
    return pairs


def tiny_setup(**overrides):
    return make_setup("classify", "tiny", overrides={"train.threads": 1, **overrides})


def runner_for(pairs, **overrides) -> TextClassifier:
    """An untrained classifier over `pairs`' vocabulary and labels."""
    setup = tiny_setup(**overrides)
    tokenizer = build_tokenizer(setup, pairs)
    c = setup.model
    c.char_vocab_size = (tokenizer if c.unit == "char" else tokenizer.chars).vocab_size
    c.word_vocab_size = tokenizer.vocab_size if c.unit == "word" else 0
    labels = sorted({y for y, _ in pairs})
    return TextClassifier(Classifier(c, len(labels)).eval(), tokenizer, setup, labels)


# --- files, splits, words --------------------------------------------------------------------------------------

def test_read_label_text_lines(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes("1 a fine film\r\n\n0 dull\x85 and long\nNUM:dist How far ?\n".encode())
    assert read_labelled(path) == [("1", "a fine film"), ("0", "dull\x85 and long"), ("NUM:dist", "How far ?")]
    path.write_text("1 ok\n0\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2 has a label and no text"):
        read_labelled(path)
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no labelled examples"):
        read_labelled(path)


def test_read_tsv_with_and_without_header(tmp_path):
    plain, header = tmp_path / "a.tsv", tmp_path / "b.tsv"
    plain.write_text("pos\tgood film\nneg\tbad, bad film\n", encoding="utf-8")
    header.write_text("sentence\tlabel\ngood film\t1\n", encoding="utf-8")
    assert read_labelled(plain) == [("pos", "good film"), ("neg", "bad, bad film")]
    assert read_labelled(header, text_field="sentence") == [("1", "good film")]
    plain.write_text("pos\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1 has no text"):
        read_labelled(plain)


def test_read_jsonl_fields(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text(json.dumps({"review": "fine", "stars": 5}) + "\n" + json.dumps({"review": "meh", "stars": "1"})
                    + "\n", encoding="utf-8")
    assert read_labelled(path, "review", "stars") == [("5", "fine"), ("1", "meh")]
    with pytest.raises(DataError, match="line 1 has no field 'text'"):
        read_labelled(path)
    path.write_text('{"text": "x", "label": [1]}\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 1"):
        read_labelled(path)


def test_stratified_split_is_seeded_disjoint_and_stratified():
    pairs = [("a", f"a{i}") for i in range(100)] + [("b", f"b{i}") for i in range(20)]
    train, dev, test = stratified_split(pairs, (0.1, 0.1), seed=3)
    assert stratified_split(pairs, (0.1, 0.1), seed=3) == [train, dev, test]
    assert sorted(train + dev + test) == sorted(pairs)
    assert sum(y == "a" for y, _ in dev) == 10 and sum(y == "b" for y, _ in dev) == 2
    assert sum(y == "b" for y, _ in test) == 2
    assert stratified_split(pairs, (0.1, 0.1), seed=4)[1] != dev


def test_read_names_drops_duplicates_within_a_language(tmp_path):
    (tmp_path / "Czech.txt").write_text("Abl\nNovak\nAbl\n", encoding="utf-8")
    (tmp_path / "German.txt").write_text("Abl\n\n", encoding="utf-8")
    assert read_names(sorted(tmp_path.glob("*.txt"))) == [("Czech", "Abl"), ("Czech", "Novak"), ("German", "Abl")]


def test_ptb_words():
    assert words("I didn't like it (at all)...") == ["I", "did", "n't", "like", "it", "-lrb-", "at", "all", "-rrb-",
                                                    "..."]
    assert words("It's the U.S. film's 1,000 minutes.", lowercase=True) == ["it", "'s", "the", "u.s.", "film", "'s",
                                                                            "1,000", "minutes", "."]
    sst = "the re-imagining of beauty and the beast -lrb- 1930s -rrb- wo n't sit still ."
    assert words(sst) == sst.split()                    # SST-2 and TREC are already written this way
    assert words("a  b\tc", "whitespace") == ["a", "b", "c"]


def test_check_labels():
    assert check_labels([("b", "x"), ("a", "y")], [("a", "z")]) == ["a", "b"]
    with pytest.raises(DataError, match="one class only"):
        check_labels([("a", "x"), ("a", "y")], [("a", "z")])
    with pytest.raises(DataError, match="dev labels never seen in training: c"):
        check_labels([("a", "x"), ("b", "y")], [("c", "z")])


# --- the model ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pooling", ["attention", "max", "mean", "last"])
@pytest.mark.parametrize("unit,cell", [("word", "lstm"), ("char", "gru")])
def test_shapes_and_padding_invariance(pooling, unit, cell):
    torch.manual_seed(0)
    runner = runner_for(toy_pairs(50), **{"model.pooling": pooling, "model.unit": unit, "model.rnn.cell": cell})
    texts = ["the film was superb", "bad", "a lovely and fine story of the plot"]
    together, items, weights = runner.run(texts, attention=True)
    assert together.shape == (3, 2) and torch.allclose(together.sum(-1), torch.ones(3))
    for i, text in enumerate(texts):
        alone, _, w = runner.run([text], attention=True)
        assert torch.allclose(alone[0], together[i], atol=1e-5)
        if pooling == "attention":
            assert len(weights[i]) == len(items[i].tokens) and abs(sum(weights[i]) - 1) < 1e-5
            assert torch.allclose(torch.tensor(w[0]), torch.tensor(weights[i]), atol=1e-5)


@pytest.mark.parametrize("cell,layers,bidirectional,pooling", [("lstm", 1, True, "attention"), ("gru", 2, True, "last"),
                                                               ("lstm", 2, False, "last"), ("rnn", 1, True, "max")])
def test_padded_inference_equals_the_packed_encoder(cell, layers, bidirectional, pooling):
    """At inference each direction runs unpacked (the backward one over texts reversed within their lengths)."""
    torch.manual_seed(0)
    runner = runner_for(toy_pairs(50), **{"model.rnn.cell": cell, "model.rnn.num_layers": layers,
                                          "model.rnn.bidirectional": bidirectional, "model.pooling": pooling})
    texts = ["the film was superb", "bad", "a lovely and fine story of the plot", "dull dull"]
    fast = runner.run(texts)[0]
    runner.model.config.rnn.impl = "torch"                  # packed sequences through torch's module
    assert torch.allclose(runner.run(texts)[0], fast, atol=1e-5)


@pytest.mark.parametrize("unit,cell", [("word", "lstm"), ("char", "gru")])
def test_the_ngram_bag_keeps_padding_invariance_and_the_fast_path(unit, cell):
    """With a bag of hashed n-grams beside the RNN: each text alone scores as in a batch, and the inference path
    from input terms equals the model's own (packed) encoder."""
    torch.manual_seed(0)
    runner = runner_for(toy_pairs(50), **{"model.unit": unit, "model.rnn.cell": cell, "model.ngram_buckets": 97,
                                          "model.ngram_dim": 8})
    texts = ["the film was superb", "bad", "a lovely and fine story of the plot", "dull dull"]
    together = runner.run(texts)[0]
    for i, text in enumerate(texts):
        assert torch.allclose(runner.run([text])[0][0], together[i], atol=1e-5)
    runner.model.config.rnn.impl = "torch"
    assert torch.allclose(runner.run(texts)[0], together, atol=1e-5)


def test_hashed_ngrams_are_stable_distinct_and_bounded():
    grams = hashed_ngrams(list("anna"), 3, 1000)
    # ^ a n a $ -> 1-grams {^, a, n, $}, 2-grams {^a, an, nn, na, a$}, 3-grams {^an, ann, nna, na$}: 13 distinct
    assert grams == sorted(set(grams)) and len(grams) <= 13 and all(0 <= g < 1000 for g in grams)
    assert grams == hashed_ngrams(list("anna"), 3, 1000)
    assert hashed_ngrams(["a", "good", "film"], 2, 2 ** 20) != hashed_ngrams(["a", "film", "good"], 2, 2 ** 20)


def test_attention_weights_are_zero_on_padding():
    torch.manual_seed(0)
    runner = runner_for(toy_pairs(20))
    batch = make_batch([runner.steps.encode(runner.steps.split(t)) for t in ("a b c d", "a")], [0, 1])
    logits, weights = runner.model(batch.tokens, batch.lengths, batch.chars, batch.char_index)
    assert logits.shape == (2, 2) and weights.shape == (2, 4)
    assert weights[1, 1:].abs().sum() == 0 and torch.allclose(weights.sum(-1), torch.ones(2))


def test_a_classifier_needs_some_input():
    with pytest.raises(ValueError, match="word embeddings or character features"):
        Classifier(ClassifierConfig(word_vocab_size=5, char_vocab_size=5, word_embed=0, char_features="none",
                                    rnn=RNNConfig(hidden_size=4)), 2)


def test_a_tiny_batch_overfits():
    torch.manual_seed(0)
    pairs = toy_pairs(40)
    setup = tiny_setup(**{"model.emb_dropout": 0.0, "model.dropout": 0.0, "model.word_dropout": 0.0})
    runner = runner_for(pairs, **{"model.emb_dropout": 0.0, "model.dropout": 0.0})
    task = ClassifyTask(setup, runner.tokenizer, runner.labels, pairs, pairs)
    model = runner.model.train()
    optim = torch.optim.Adam(model.parameters(), lr=0.02)
    batch = make_batch(task.train, list(range(len(task.train))))
    for _ in range(60):
        loss, stats = task.loss(model, batch)
        optim.zero_grad()
        loss.backward()
        optim.step()
    assert float(loss.detach()) < 0.05 and stats["tokens"] == 40
    assert task.validate(model.eval()).score == 100.0


# --- the runner --------------------------------------------------------------------------------------------------

def test_classify_records_empty_and_long_texts():
    runner = runner_for(toy_pairs(30))
    long = " ".join(["good"] * 10_000)
    records = runner.classify(["the film was good", "", "   ", long], top=1, attention=True)
    assert records[0]["label"] in ("0", "1") and list(records[0]["probabilities"]) == [records[0]["label"]]
    assert records[1]["label"] is None and records[2]["label"] is None and records[1]["probabilities"] == {}
    assert records[3]["truncated"] == 10_000 - runner.setup.data.max_tokens
    assert len(records[3]["steps"]) == len(records[3]["attention"]) == runner.setup.data.max_tokens
    assert runner.predict(["", "good"])[0] is None
    assert runner.unknown(["good Ω film"]) == {"Ω"}


def test_evaluate_counts_and_unknown_labels():
    pairs = toy_pairs(30)
    runner = runner_for(pairs)
    scores = runner.evaluate(pairs)
    assert sum(map(sum, scores["confusion"])) == 30 and scores["labels"] == ["0", "1"]
    assert sum(s["support"] for s in scores["per_label"].values()) == 30
    correct = sum(scores["confusion"][i][i] for i in range(2))
    assert scores["accuracy"] == pytest.approx(100 * correct / 30)
    with pytest.raises(DataError, match="labels the model does not know: maybe"):
        runner.evaluate(pairs + [("maybe", "a film")])


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    pairs = toy_pairs(30)
    runner = runner_for(pairs)
    task = ClassifyTask(runner.setup, runner.tokenizer, runner.labels, pairs, pairs)
    ckpt_io.save(tmp_path / "c.pt", ckpt_io.release(task.make_checkpoint(runner.model), half=False))
    loaded = TextClassifier.load(tmp_path / "c.pt")
    texts = [t for _, t in pairs]
    assert torch.equal(loaded.run(texts)[0], runner.run(texts)[0]) and loaded.labels == ["0", "1"]
    with pytest.raises(ckpt_io.CheckpointError, match="is a 'classify' checkpoint, not a 'tag' one"):
        ckpt_io.load(tmp_path / "c.pt", task="tag")


# --- real corpora (skipped where absent) -------------------------------------------------------------------------

def test_sst2_and_trec_splits(shared_data):
    shared_data("sst2", "train.txt")
    shared_data("trec", "train.txt")
    setup = make_setup("classify").data
    sst_train, sst_dev = corpus_pairs("sst2", "train", setup), corpus_pairs("sst2", "dev", setup)
    assert (len(sst_train), len(sst_dev)) == (6920, 872) and {y for y, _ in sst_dev} == {"0", "1"}
    trec_train, trec_dev = corpus_pairs("trec", "train", setup), corpus_pairs("trec", "dev", setup)
    assert len(trec_train) + len(trec_dev) == 5452 and 530 <= len(trec_dev) <= 560
    assert {y for y, _ in trec_dev} == {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}
    with pytest.raises(DataError, match="test set is held out"):
        corpus_pairs("sst2", "test", setup)


def test_names_split(shared_data):
    shared_data("names", "Russian.txt")
    setup = make_setup("classify", "names").data
    parts = [corpus_pairs("names", split, setup) for split in ("train", "dev", "test")]
    assert len({y for y, _ in parts[0]}) == 20 and all(len({y for y, _ in p}) == 20 for p in parts[1:])
    assert not set(parts[0]) & set(parts[2]) and not set(parts[1]) & set(parts[2])
    assert abs(len(parts[2]) / sum(map(len, parts)) - 0.1) < 0.01


def test_ngram_baseline_learns_the_toy_task():
    from bench.ngram_baseline import fit, ngrams
    assert ngrams("ab", 2) == {"^", "a", "b", "$", "^a", "ab", "b$"}
    train, dev = toy_pairs(200), toy_pairs(40, seed=1)
    predict, log = fit(train, dev, max_n=3, epochs=5)
    assert len(log) == 5 and max(log) >= 90
    assert predict(["a superb film", "an awful film"]) == ["1", "0"]
