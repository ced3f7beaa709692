"""Scores (nmt/metrics.py) as pure functions, on hand-computed values."""
import math

import pytest

from nmt import metrics
from nmt.metrics import accuracy, bits_per_char, entity_scores, macro_f1, mae, mse, perplexity, rouge


def test_accuracy():
    assert accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == pytest.approx(75.0)
    assert accuracy(["a"], ["a"]) == 100.0 and accuracy(["a", "b"], ["b", "a"]) == 0.0
    for gold, predicted in (([1, 2], [1]), ([], [])):
        with pytest.raises(ValueError, match="equally many"):
            accuracy(gold, predicted)


def test_macro_f1_weights_each_gold_label_equally():
    gold, predicted = ["a", "a", "b", "c"], ["a", "b", "b", "b"]
    # a: tp 1, fp 0, fn 1 -> 2/3;  b: tp 1, fp 2, fn 0 -> 1/2;  c: tp 0, fn 1 -> 0
    assert macro_f1(gold, predicted) == pytest.approx(100 * (2 / 3 + 1 / 2 + 0) / 3)
    assert macro_f1(gold, gold) == pytest.approx(100.0)
    assert macro_f1([1, 1, 1, 2], [1, 1, 1, 1]) == pytest.approx(100 * (6 / 7 + 0) / 2)   # the rare label counts
    assert macro_f1(["x"], ["y"]) == 0.0                   # a predicted label no gold row has adds no class


def test_mse_and_mae():
    gold, predicted = [1.0, 2.0, 3.0], [1.0, 4.0, 0.0]
    assert mse(gold, predicted) == pytest.approx(13 / 3)
    assert mae(gold, predicted) == pytest.approx(5 / 3)
    assert mse([0.5], [0.5]) == 0.0 and mae([-1.0, 1.0], [1.0, -1.0]) == pytest.approx(2.0)
    for fn in (mse, mae):
        with pytest.raises(ValueError):
            fn([1.0, 2.0], [1.0])


def test_perplexity_and_bits():
    assert perplexity(math.log(5)) == pytest.approx(5.0)
    assert perplexity(0.0) == 1.0
    assert math.isfinite(perplexity(1e6))                  # a diverged loss reads huge, never OverflowError
    assert bits_per_char(math.log(2)) == pytest.approx(1.0)
    assert bits_per_char(math.log(8)) == pytest.approx(3.0)


def test_bleu_and_chrf_carry_their_signatures():
    hyps, refs = ["a dog runs in the park", "two cats sleep"], ["a dog runs in the park", "two cats sleep"]
    bleu, chrf = metrics.bleu(hyps, refs), metrics.chrf(hyps, refs)
    assert bleu.score == pytest.approx(100.0) and chrf.score == pytest.approx(100.0)
    assert "nrefs:1" in bleu.signature and "case:mixed" in bleu.signature and bleu.name == "BLEU"
    assert metrics.bleu(["completely different words here"], ["a dog runs in the park"]).score < 10
    assert 0 < metrics.chrf(["a dog run in park"], ["a dog runs in the park"]).score < 100


def test_entity_scores_are_strict_iob2():
    gold = [["B-PER", "I-PER"], ["B-LOC"], ["O"]]
    perfect = entity_scores(gold, gold)
    assert perfect["f1"] == pytest.approx(100) and set(perfect["types"]) == {"PER", "LOC"}
    half = entity_scores(gold, [["B-PER", "O"], ["B-LOC"], ["O"]])                  # PER boundary wrong: strict
    assert half["precision"] == pytest.approx(50) and half["recall"] == pytest.approx(50)
    assert half["types"]["LOC"]["f1-score"] == pytest.approx(100) and half["types"]["PER"]["support"] == 1
    assert entity_scores(gold + [[]], gold + [[]])["support"] == 2                     # empty sentences skipped


def test_rouge_identical_is_100():
    scores = rouge([["meeting moved to friday"]], ["meeting moved to friday"])
    assert scores["1"] == pytest.approx(100) and scores["2"] == pytest.approx(100)
    assert scores["L"] == pytest.approx(100) and scores["words"] == 4


def test_rouge_averages_references_and_documents():
    from rouge_score import rouge_scorer
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    refs = [["budget meeting on friday", "friday meetings moved", "quarterly budget review"], ["team lunch"]]
    hyps = ["budget meetings friday", "lunch with the team today"]
    scores = rouge(refs, hyps)
    for key in ("1", "2", "L"):
        per_doc = [sum(scorer.score(r, h)[f"rouge{key}"].fmeasure for r in rs) / len(rs) for rs, h in zip(refs, hyps)]
        assert scores[key] == pytest.approx(100 * sum(per_doc) / 2)
    assert scores["words"] == pytest.approx(4.0)
    assert 0 < scores["1"] < 100
    assert rouge([["a b"]], [""])["1"] == 0
