"""ONNX export and ONNX Runtime (nmt/onnx): the padded recurrent layers equal the packed ones; every exported task
gives what the torch model gives (greedy and beam translations token for token, logits, emissions, scores,
samples and forecasts to 1e-4), also in padded batches. Models with random weights widen the configurations
covered beyond the session's trained ones."""
import dataclasses

import pytest
import torch

from nmt import checkpoint as ckpt_io
from nmt.config import DecodeConfig, RNNConfig, Seq2SeqConfig, from_dict, to_dict
from nmt.data import pad
from nmt.models.rnn import Recurrent
from nmt.onnx.graphs import PaddedRecurrent

SENTENCES = ["der hund läuft", "ein kind", "die katze sitzt auf der matte", "wo", "ein mann und eine frau laufen"]
TOL = 1e-4


@pytest.mark.parametrize("impl", ["fused", "scratch"])
@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_padded_recurrent_equals_the_packed_layers_and_ignores_padding(cell, bidirectional, impl):
    torch.manual_seed(0)
    config = RNNConfig(cell=cell, impl=impl, hidden_size=6, num_layers=2, bidirectional=bidirectional, dropout=0.0)
    packed = Recurrent(config, 5).eval()
    padded = PaddedRecurrent(packed).eval()
    x, lengths = torch.randn(3, 7, 5), torch.tensor([7, 2, 4])
    with torch.no_grad():
        want, want_state = packed(x, lengths)
        got, got_state = padded(x, lengths)
        alone, _ = padded(x[1:2, :2], lengths[1:2])
    hidden = lambda s: s[0] if isinstance(s, tuple) else s   # noqa: E731
    assert torch.allclose(got, want, atol=1e-6) and torch.allclose(hidden(got_state), hidden(want_state), atol=1e-6)
    assert torch.all(got[1, 2:] == 0) and torch.allclose(alone[0], got[1, :2], atol=1e-6)


# --- each task: export, load on ONNX Runtime, compare -----------------------------------------------------------

@pytest.fixture(scope="module")
def ort():
    return pytest.importorskip("onnxruntime")


def both(ckpt, folder, task):
    """The torch runner of a checkpoint and the ONNX Runtime runner of its export to `folder`."""
    from nmt import tasks
    from nmt.onnx.export import export
    from nmt.onnx.runtime import load
    export(ckpt, folder)
    return tasks.module(task).RUNNER.build(ckpt), load(folder, task)


def random_weights(ckpt, model, scale: float = 1.0, **config):
    """The checkpoint with `model`'s (random) weights, each floating tensor times `scale`, and its config."""
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return ckpt_io.Checkpoint(ckpt.task, {**ckpt.config, "model": to_dict(model.config), **config},
                              model.state_dict(), ckpt.tokenizers)


def translator_variant(ckpt, **changes):
    from nmt.models.seq2seq import Seq2Seq
    config = from_dict(Seq2SeqConfig, ckpt.config["model"])
    encoder = dataclasses.replace(config.encoder, **changes.pop("encoder", {}))
    if changes.get("attention") == "dot":     # the decoder state must be as wide as the encoder's two directions
        changes["decoder_hidden"] = 2 * encoder.hidden_size
    torch.manual_seed(0)
    return random_weights(ckpt, Seq2Seq(dataclasses.replace(config, encoder=encoder, **changes)), 4.0)


VARIANTS = {"trained": None, "gru": {}, "lstm-feeding-2-layers": dict(encoder=dict(cell="lstm", num_layers=2),
                                                                      input_feeding=True, decoder_layers=2),
            "dot-no-bridge-scratch": dict(attention="dot", bridge=False, encoder=dict(impl="scratch"))}


@pytest.mark.parametrize("variant", VARIANTS)
def test_translations_agree_token_for_token(ort, translate_model, tmp_path, variant):
    ckpt = ckpt_io.load(translate_model.checkpoint)
    if VARIANTS[variant] is not None:
        ckpt = translator_variant(ckpt, **VARIANTS[variant])
    torch_runner, onnx_runner = both(ckpt, tmp_path / "t.onnx", "translate")
    for beam in (1, 3):
        decode = DecodeConfig(beam=beam, n_best=min(beam, 2))
        want = torch_runner.translate_hyps(SENTENCES, decode, keep_attention=True)
        got = onnx_runner.translate_hyps(SENTENCES, decode, keep_attention=True)
        assert [[h.tokens for h in hyps] for hyps in got] == [[h.tokens for h in hyps] for hyps in want]
        for hyps_got, hyps_want in zip(got, want):
            for g, w in zip(hyps_got, hyps_want):
                assert abs(g.score - w.score) < TOL * max(1.0, abs(w.score))          # summed log-probabilities
                assert torch.allclose(g.attention, w.attention, atol=TOL)
    if variant != "trained":          # random weights: long outputs, not the trained model's early </s>
        assert sum(len(h[0].tokens) for h in want) > 10
    ids = [torch_runner.src_tok.encode(s) for s in SENTENCES]
    src, lengths = pad(ids)
    tgt, _ = pad([[1] + x for x in ids])
    with torch.inference_mode():
        logits = onnx_runner.model(src, lengths, tgt)
        assert (logits - torch_runner.model(src, lengths, tgt)).abs().max() < TOL
        alone = onnx_runner.model(src[3:4, : lengths[3]], lengths[3:4], tgt[3:4, : len(ids[3]) + 1])
    assert torch.allclose(alone[0], logits[3, : len(ids[3]) + 1], atol=TOL)     # padding changes nothing
    confidence = [h[0].tokens for h in want]
    assert torch.allclose(torch.tensor(onnx_runner.confidence(SENTENCES, confidence, decode)),
                          torch.tensor(torch_runner.confidence(SENTENCES, confidence, decode)), atol=TOL)


TAGGED = [["John", "lives", "in", "New", "York"], ["Hi"], ["The", "EU", "said", "on", "Monday", "1999", "x"], []]


@pytest.mark.parametrize("variant", ["trained", "char-lstm-softmax"])
def test_tags_and_emissions_agree(ort, tag_model, tmp_path, variant):
    from nmt.config import TaggerConfig
    from nmt.models.tagger import Tagger
    from nmt.tasks.tag import encode, make_batch
    ckpt = ckpt_io.load(tag_model.checkpoint)
    if variant != "trained":
        config = dataclasses.replace(from_dict(TaggerConfig, ckpt.config["model"]), char_features="lstm",
                                     output="softmax")
        torch.manual_seed(0)
        ckpt = random_weights(ckpt, Tagger(config, ckpt.config["tags"]))
    torch_runner, onnx_runner = both(ckpt, tmp_path / "tag.onnx", "tag")
    assert onnx_runner.tag(TAGGED) == torch_runner.tag(TAGGED)
    items = [encode(torch_runner.tokenizer, words) for words in TAGGED[:3]]
    b = make_batch(items, [0, 1, 2])
    with torch.inference_mode():
        want = torch_runner.model(b.words, b.chars, b.casings, b.lengths, b.char_index)
        got = onnx_runner.model(b.words, b.chars, b.casings, b.lengths, b.char_index)
    assert (got - want).abs().max() < TOL


def classifier_checkpoint(**overrides):
    from nmt.config import to_dict
    from tests.tasks.test_classify import runner_for, toy_pairs
    torch.manual_seed(0)
    runner = runner_for(toy_pairs(40), **overrides)
    name = "chars" if runner.setup.model.unit == "char" else "words"
    return ckpt_io.Checkpoint("classify", {"model": to_dict(runner.model.config), "labels": runner.labels,
                                           "setup": to_dict(runner.setup)}, runner.model.state_dict(),
                              tokenizers={name: runner.tokenizer.to_state()})


@pytest.mark.parametrize("overrides", [{}, {"model.unit": "char", "model.ngram_buckets": 64, "model.pooling": "last",
                                            "model.rnn.cell": "gru"}], ids=["words-attention", "chars-ngrams-last"])
def test_classifier_scores_agree(ort, tmp_path, overrides):
    torch_runner, onnx_runner = both(classifier_checkpoint(**overrides), tmp_path / "c.onnx", "classify")
    texts = ["the film was good", "bad", "", "a dull and boring plot , really awful acting"]
    want, got = torch_runner.classify(texts, attention=True), onnx_runner.classify(texts, attention=True)
    for w, g in zip(want, got):
        assert g["label"] == w["label"] and len(g["attention"]) == len(w["attention"])
        assert all(abs(g["probabilities"][k] - p) < TOL for k, p in w["probabilities"].items())
        assert all(abs(a - b) < TOL for a, b in zip(g["attention"], w["attention"]))


@pytest.mark.parametrize("variant", ["trained", "ensemble", "weight-drop-gru-2-layers"])
def test_character_model_steps_agree(ort, charlm_model, tmp_path, variant):
    from nmt.config import CharLMConfig, SampleConfig
    from nmt.models.charlm import CharLM
    ckpt = ckpt_io.load(charlm_model.checkpoint)
    if variant == "ensemble":
        ckpt = ckpt_io.ensemble([ckpt, ckpt])
    elif variant != "trained":
        config = from_dict(CharLMConfig, ckpt.config["model"])
        config = dataclasses.replace(config, weight_drop=0.3, rnn=dataclasses.replace(config.rnn, cell="gru",
                                                                                     num_layers=2))
        torch.manual_seed(0)
        ckpt = random_weights(ckpt, CharLM(config).eval())
    torch_runner, onnx_runner = both(ckpt, tmp_path / "lm.onnx", "charlm")
    x = torch.tensor([torch_runner.tokenizer.encode("the cat sat."), torch_runner.tokenizer.encode("hello world!")])
    with torch.inference_mode():
        want, want_state = torch_runner.model(x)
        got, got_state = onnx_runner.model(x)
        assert (got - want).abs().max() < TOL
        want_next, _ = torch_runner.model(x[:, :1], want_state)
        got_next, _ = onnx_runner.model(x[:, :1], got_state)
    assert (got_next - want_next).abs().max() < TOL
    greedy = SampleConfig(prime="Th", length=30, temperature=0.0, num_samples=5)    # 5: float32 stepping in torch
    assert list(onnx_runner.sample(greedy, seed=0)) == list(torch_runner.sample(greedy, seed=0))
    text = "the quick brown fox jumps over the lazy dog"
    assert abs(onnx_runner.evaluate(text)["loss"] - torch_runner.evaluate(text)["loss"]) < TOL


@pytest.mark.parametrize("kind,cell", [("segment", "gru"), ("seq2seq", "lstm")])
def test_forecasts_agree(ort, tmp_path, kind, cell):
    import numpy as np
    from nmt.models.forecast import Forecaster
    from nmt.tasks.forecast import ForecastTask, Scaler
    from nmt.timeseries import read_csv, split_ends, split_series
    from tests.tasks.test_forecast import series_csv, tiny_setup
    parts = split_series(read_csv(series_csv(tmp_path / "s.csv", rows=120)), split_ends(120), 24, 12)
    setup = tiny_setup(**{"model.kind": kind, "model.rnn.cell": cell})
    setup.model.channels = 3
    torch.manual_seed(0)
    ckpt = ForecastTask(setup, Scaler.fit(parts["train"].values), parts["train"], parts["val"]).make_checkpoint(
        Forecaster(setup.model))
    torch_runner, onnx_runner = both(ckpt, tmp_path / "f.onnx", "forecast")
    history = parts["val"].values
    assert np.abs(onnx_runner.forecast(history) - torch_runner.forecast(history)).max() < TOL
    windows = torch.randn(5, 24, 3)
    assert (onnx_runner.model(windows) - torch_runner.model.eval()(windows)).abs().max() < TOL
