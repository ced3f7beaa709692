"""Int8 weights (nmt/quantize.py): the rounding, the checkpoint round trip, the int8 products, every task."""
import json
import time

import pytest
import torch

from nmt import quantize
from nmt.quantize import SCALE, Int8Linear


def test_rows_round_to_within_half_a_step():
    w = torch.randn(64, 96) * torch.linspace(0.01, 3, 64)[:, None]     # rows of very different ranges
    q, scale = quantize.quantize_rows(w)
    assert q.dtype == torch.int8 and scale.shape == (64,)
    assert int(q.abs().max()) == 127                                   # each row's largest value maps to 127
    assert ((q.float() * scale[:, None] - w).abs() <= scale[:, None] / 2 + 1e-7).all()


def test_state_round_trip_keeps_ties_and_small_tensors():
    emb = torch.randn(300, 32)
    state = {"embed.weight": emb, "output.weight": emb, "bias": torch.randn(300), "crf": torch.randn(9, 9)}
    q = quantize.quantize_state(state)
    assert q["embed.weight"].dtype == torch.int8 and q["embed.weight"] is q["output.weight"]
    assert q["bias"] is state["bias"] and q["crf"] is state["crf"] and set(q) - set(state) == {
        "embed.weight" + SCALE, "output.weight" + SCALE}
    back = quantize.dequantize_state(q)
    assert set(back) == set(state) and back["embed.weight"] is back["output.weight"]
    assert (back["embed.weight"] - emb).abs().max() < emb.abs().max() / 127


def test_int8_linear_matches_the_float_product():
    linear = torch.nn.Linear(256, 384)
    q, scale = quantize.quantize_rows(linear.weight.detach())
    x = torch.randn(2, 7, 256)
    with torch.no_grad():
        y, ref = Int8Linear(q, scale, linear.bias.detach())(x), linear(x)
    assert y.shape == (2, 7, 384)
    assert float((y - ref).norm() / ref.norm()) < 0.03


def test_int8_translator_stays_close_to_float(cli, translate_model, tmp_path):
    from nmt.tasks.translate import Translator
    path = tmp_path / "int8.pt"
    result = cli.run("export", translate_model.checkpoint, path, "--quantize", "int8")
    assert result.exit_code == 0, result.output
    assert path.stat().st_size < 0.75 * translate_model.checkpoint.stat().st_size
    info = json.loads(cli.run("info", path, "--json").stdout)
    assert "int8" in info["weights"] and info["meta"]["quantized"].startswith("int8")
    assert all(name.startswith("float_") for name in info["scores"])  # the float model's, renamed
    assert info["parameters"] == json.loads(cli.run("info", translate_model.checkpoint, "--json").stdout)["parameters"]
    float_model, int8_model = Translator.load(translate_model.checkpoint), Translator.load(path)
    assert int8_model.model._hh_int8 is not None and isinstance(int8_model.model.output, Int8Linear)
    src = torch.tensor([[5, 9, 14, 22, 7, 3], [8, 11, 6, 2, 0, 0]])
    lengths, tgt = torch.tensor([6, 4]), torch.tensor([[1, 12, 30, 4], [1, 40, 9, 17]])
    with torch.inference_mode():
        a, b = float_model.model(src, lengths, tgt), int8_model.model(src, lengths, tgt)
        enc, state = int8_model.model.encode(src, lengths)
        step, _, _ = int8_model.model.decode(enc, tgt[:, :1], state)    # the decoding path: int8 recurrent step
        ref_enc, ref_state = float_model.model.encode(src, lengths)
        ref_step, _, _ = float_model.model.decode(ref_enc, tgt[:, :1], ref_state)
    assert float((a - b).norm() / a.norm()) < 0.05 and float((step - ref_step).norm() / ref_step.norm()) < 0.05
    out = cli.run("translate", "-m", path, "der hund", "ein kind spielt")
    assert out.exit_code == 0 and len(out.stdout.splitlines()) == 2


@pytest.mark.parametrize("name", ["translate", "charlm", "tag", "summarize"])
def test_every_task_exports_and_loads_int8(cli, trained_models, tmp_path, name):
    from nmt import tasks
    path = tmp_path / f"{name}-int8.pt"
    result = cli.run("export", trained_models[name].checkpoint, path, "--quantize", "int8")
    assert result.exit_code == 0, result.output
    assert tasks.module(name).RUNNER.load(path).checkpoint.meta["quantized"].startswith("int8")


def test_bad_quantize_requests(cli, translate_model, tmp_path):
    path = tmp_path / "int8.pt"
    cli.run("export", translate_model.checkpoint, path, "--quantize", "int8")
    cli.one_line_error(cli.run("export", path, tmp_path / "again.pt", "--quantize", "int8"), "already quantised")
    cli.one_line_error(cli.run("export", translate_model.checkpoint, tmp_path / "x.pt", "--quantize", "int4"),
                       "only int8")
    assert not (tmp_path / "again.pt").exists() and not (tmp_path / "x.pt").exists()


def test_int8_tagger_runs_its_bilstm_on_int8_kernels(cli, tag_model, tmp_path):
    from nmt.tasks.tag import NERTagger
    path = tmp_path / "tag-int8.pt"
    assert cli.run("export", tag_model.checkpoint, path, "--quantize", "int8").exit_code == 0
    runner = NERTagger.load(path)
    assert not isinstance(runner.model.encoder.rnn, torch.nn.LSTM)      # torch's dynamic int8 LSTM
    result = cli.run("tag", "-m", path, "Angela Merkel met Emmanuel Macron in Paris .")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 1


def test_int8_character_model_samples_on_int8_products(cli, charlm_model, tmp_path):
    from nmt import tasks
    from nmt.models.charlm import stepper
    path = tmp_path / "charlm-int8.pt"
    assert cli.run("export", charlm_model.checkpoint, path, "--quantize", "int8").exit_code == 0
    runner, reference = (tasks.module("charlm").RUNNER.load(p) for p in (path, charlm_model.checkpoint))
    int8, float_ = stepper(runner.model), stepper(reference.model)
    assert int8.int8 and not float_.int8
    token = torch.tensor([3, 5])
    with torch.inference_mode():
        H, lstm = float_.layers[0][1].size(1), reference.model.config.rnn.cell == "lstm"
        fresh = lambda: [(torch.zeros(2, H), torch.zeros(2, H)) if lstm else torch.zeros(2, H)  # noqa: E731
                         for _ in float_.layers]
        a, b = float_(token, fresh()), int8(token, fresh())
    assert float((a - b).norm() / a.norm()) < 0.05
    result = cli.run("generate", "-m", path, "--length", 20, "--seed", 1)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_int8_classifier_runs_its_recurrent_products_on_int8_kernels(cell):
    """use_int8 moves the input terms, the recurrent products (each direction, each layer) and the attention's
    projection onto int8 products; the label scores stay close to the float model's on the same int8 weights."""
    from nmt import checkpoint as ckpt_io
    from nmt.config import ClassifierConfig, RNNConfig
    from nmt.models.classifier import Classifier
    torch.manual_seed(0)
    config = ClassifierConfig(word_vocab_size=300, char_vocab_size=40, word_embed=64, char_embed=16, char_hidden=32,
                              rnn=RNNConfig(cell=cell, hidden_size=64, bidirectional=True, num_layers=2),
                              attention_size=64, emb_dropout=0.0, dropout=0.0)
    state = quantize.quantize_state(Classifier(config, 3).state_dict())
    float_model, int8_model = Classifier(config, 3).eval(), Classifier(config, 3).eval()
    for model in (float_model, int8_model):
        model.load_state_dict(ckpt_io.state_dict_float(quantize.dequantize_state(state)))
    int8_model.use_int8(quantize.int8_parts(state))
    assert {"weight_ih_l0", "hh_l0", "hh_l1_reverse", "weight_ih_l1"} <= set(int8_model._int8)
    assert isinstance(int8_model.attention.proj, Int8Linear)
    tokens = torch.randint(1, 300, (8, 9))                               # 8 texts: the int8 recurrent loop
    lengths = torch.tensor([9, 5, 1, 7, 9, 2, 3, 8])
    chars = torch.randint(1, 40, (8 * 9, 6))
    index = torch.arange(72).view(8, 9)
    with torch.inference_mode():
        (a, wa), (b, wb) = (m(tokens, lengths, chars, index) for m in (float_model, int8_model))
    assert a.shape == b.shape == (8, 3)
    assert float((a - b).norm() / a.norm()) < 0.05
    assert (wb[1, 5:] == 0).all() and torch.allclose(wb.sum(-1), torch.ones(8))   # padding still ignored
    with torch.inference_mode():                  # 3 texts: float products on the same (doubled) weights
        (a3, _), (b3, _) = (m(tokens[:3], lengths[:3], chars[:27], index[:3]) for m in (float_model, int8_model))
    assert float((a3 - b3).norm() / a3.norm()) < 0.05


def test_tanh_through_the_sigmoid_matches_torch():
    from nmt.models.cells import tanh
    x = torch.linspace(-20, 20, 10001)
    assert (tanh(x) - torch.tanh(x)).abs().max() < 5e-7
    y = x.clone().requires_grad_()
    tanh(y).sum().backward()                                             # with autograd: torch's own tanh
    assert (y.grad - (1 - torch.tanh(x) ** 2)).abs().max() < 1e-6


def test_serve_loads_an_int8_checkpoint(cli, tag_model, tmp_path):
    from fastapi.testclient import TestClient

    from nmt.server.app import create_app
    from nmt.server.settings import ServeSettings
    path = tmp_path / "tag-int8.pt"
    assert cli.run("export", tag_model.checkpoint, path, "--quantize", "int8").exit_code == 0
    with TestClient(create_app(ServeSettings(models={"tag": str(path)}))) as client:
        for _ in range(600):                                             # the models load in the background
            if client.get("/health").status_code == 200:
                break
            time.sleep(0.05)
        answer = client.post("/v1/tag", json={"text": "Angela Merkel met Emmanuel Macron in Paris ."})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["tags"]) == 8
        assert client.get("/health").json()["status"] == "ready"


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_int8_stepper_of_a_two_layer_model_follows_the_float_one(cell):
    """The int8 sampling stepper (the LSTM's upper layer on one product over [x, a], candidate rows doubled)
    stays close to the float stepper on the same int8-rounded weights, step after step with the state carried."""
    from nmt import checkpoint as ckpt_io
    from nmt.config import CharLMConfig, RNNConfig
    from nmt.models.charlm import CharLM, stepper
    torch.manual_seed(0)
    config = CharLMConfig(vocab_size=40, embed_size=32, dropout=0.0, emb_dropout=0.0,
                          rnn=RNNConfig(cell=cell, hidden_size=96, num_layers=2, bidirectional=False))
    state = quantize.quantize_state(CharLM(config).state_dict())
    models = [CharLM(config).eval(), CharLM(config).eval()]
    for model in models:
        model.load_state_dict(ckpt_io.state_dict_float(quantize.dequantize_state(state)))
    models[1].use_int8()
    float_, int8 = stepper(models[0]), stepper(models[1])
    with torch.inference_mode():
        _, start = models[0](torch.tensor([[3, 7, 9], [4, 4, 2]]))
        a_layers, b_layers = float_.split(start), int8.split(start)
        for token in ([5, 6], [7, 1], [2, 9], [11, 3]):
            a, b = float_(torch.tensor(token), a_layers), int8(torch.tensor(token), b_layers)
            assert a.shape == b.shape == (2, 40)
            assert float((a - b).norm() / a.norm()) < 0.05


def test_the_compiled_int8_lstm_step_equals_the_python_one():
    """compiled(lstm_int8_step) is the step compiled by TorchScript (or the function itself): same outputs and
    states, and the caller's state lists are left as they were (the new states are returned)."""
    from nmt.models.charlm import lstm_int8_step
    from nmt.models.int8_rnn import compiled
    torch.manual_seed(0)
    H = 16
    packed = [Int8Linear(*quantize.quantize_rows(torch.randn(4 * H, H)))._packed,
              Int8Linear(*quantize.quantize_rows(torch.randn(4 * H, 2 * H)))._packed]
    out = Int8Linear(*quantize.quantize_rows(torch.randn(10, H)))._packed
    x, hs, cs = torch.randn(3, 4 * H), [torch.randn(3, H), torch.randn(3, H)], [torch.randn(3, H), torch.randn(3, H)]
    before = [h.clone() for h in hs]
    a, b = compiled(lstm_int8_step)(x, hs, cs, packed, out), lstm_int8_step(x, hs, cs, packed, out)
    assert all(torch.allclose(u, v, atol=1e-6) for u, v in zip([a[0], *a[1], *a[2]], [b[0], *b[1], *b[2]]))
    assert all(torch.equal(h, h0) for h, h0 in zip(hs, before)) and a[0].shape == (3, 10)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_int8_segment_forecaster_stays_close_to_float(cell):
    """use_int8 puts the encoder on Int8RNN and the decoding step's recurrent product, the segment embedding and
    the head on int8 products; forecasts stay within a few percent of the float model on the same weights."""
    from nmt import checkpoint as ckpt_io
    from nmt.config import ForecastConfig, RNNConfig
    from nmt.models.forecast import Forecaster
    from nmt.models.int8_rnn import Int8RNN
    torch.manual_seed(0)
    config = ForecastConfig(lookback=96, horizon=96, channels=3, segment=48, dropout=0.0,   # head 48 x 128: int8
                            rnn=RNNConfig(cell=cell, hidden_size=128, bidirectional=False))
    state = quantize.quantize_state(Forecaster(config).state_dict())
    float_model, int8_model = Forecaster(config).eval(), Forecaster(config).eval()
    for model in (float_model, int8_model):
        model.load_state_dict(ckpt_io.state_dict_float(quantize.dequantize_state(state)))
    int8_model.use_int8(quantize.int8_parts(state))
    assert isinstance(int8_model.rnn.rnn, Int8RNN) and isinstance(int8_model.head[1], Int8Linear)
    x = torch.randn(6, 96, 3)                                            # 18 channel rows: the int8 loop
    with torch.inference_mode():
        a, b = float_model(x), int8_model(x)
    assert a.shape == b.shape == (6, 96, 3)
    assert float((a - b).norm() / a.norm()) < 0.05


def test_int8_summariser_decodes_on_int8_products(cli, summarize_model, tmp_path):
    from nmt.models.int8_rnn import Int8RNN
    from nmt.tasks.summarize import Summarizer
    path = tmp_path / "summarize-int8.pt"
    assert cli.run("export", summarize_model.checkpoint, path, "--quantize", "int8").exit_code == 0
    runner = Summarizer.load(path)
    assert isinstance(runner.model.decoder.rnn, Int8RNN)                 # (the tiny output layer stays float)
    result = cli.run("summarize", "-m", path, "please send the budget report by friday", "the meeting moves to monday")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 2


def test_int8_names_generator_stays_close_to_float():
    from nmt import checkpoint as ckpt_io
    from nmt.config import NameGenConfig, RNNConfig
    from nmt.models.int8_rnn import Int8RNN
    from nmt.models.namegen import NameGenerator
    torch.manual_seed(0)
    config = NameGenConfig(vocab_size=60, embed_size=32, dropout=0.0,
                           rnn=RNNConfig(cell="gru", hidden_size=96, num_layers=2, bidirectional=False))
    state = quantize.quantize_state(NameGenerator(config, 4).state_dict())
    float_model, int8_model = NameGenerator(config, 4).eval(), NameGenerator(config, 4).eval()
    for model in (float_model, int8_model):
        model.load_state_dict(ckpt_io.state_dict_float(quantize.dequantize_state(state)))
    int8_model.use_int8(quantize.int8_parts(state))
    assert isinstance(int8_model.rnn.rnn, Int8RNN) and isinstance(int8_model.output, Int8Linear)
    conditions, chars = torch.arange(10) % 4, torch.randint(3, 60, (10,))        # 10 names: the int8 loop
    with torch.inference_mode():
        (a, sa), (b, sb) = float_model.start(conditions), int8_model.start(conditions)
        (a, _), (b, _) = float_model.step(chars, sa), int8_model.step(chars, sb)
    assert float((a - b).norm() / a.norm()) < 0.05


def test_the_int8_step_loops_compile_with_torchscript():
    """compiled() falls back to the Python function where TorchScript refuses one; with torch's TorchScript present,
    both loops (and the cell helpers they call) must compile, or they silently lose their speed."""
    from nmt.models.charlm import lstm_int8_step
    from nmt.models.int8_rnn import compiled, lstm_int8_sweep
    assert all(isinstance(compiled(f), torch.jit.ScriptFunction) for f in (lstm_int8_step, lstm_int8_sweep))
