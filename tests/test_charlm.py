"""Character LM: shapes, truncated-BPTT streams, state carrying, sampling rules, overfitting, the CLI."""
import json
import math

import pytest
import torch
from typer.testing import CliRunner

from nmt.charlm import CharLMTask, evaluate_ids, generate, generate_batch, make_setup, split_text, stream_chunks
from nmt.cli import app
from nmt.config import CharLMConfig, RNNConfig
from nmt.decoding import sample_logits
from nmt.models.charlm import CharLM
from nmt.tokenizers import CharTokenizer

TEXT = "to be or not to be, that is the question.\n" * 20


def tiny(cell="lstm", impl="fused", **kw):
    torch.manual_seed(0)
    rnn = RNNConfig(cell=cell, impl=impl, hidden_size=16, num_layers=2, bidirectional=False)
    return CharLM(CharLMConfig(vocab_size=30, embed_size=8, rnn=rnn, dropout=0.0, emb_dropout=0.0, **kw)).eval()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_shapes_and_state_carry(cell):
    model = tiny(cell)
    x = torch.randint(4, 30, (3, 10))
    logits, state = model(x)
    assert logits.shape == (3, 10, 30)
    first, mid = model(x[:, :4])
    second, _ = model(x[:, 4:], mid)
    assert torch.allclose(torch.cat([first, second], 1), logits, atol=1e-5)   # chunks + carried state = whole


def test_tied_weights_with_projection():
    model = tiny(tie_weights=True)
    assert model.output.weight is model.embed.weight and model.proj is not None
    assert model(torch.randint(4, 30, (2, 5)))[0].shape == (2, 5, 30)


def test_weight_drop_only_in_training():
    model = tiny(weight_drop=0.5)
    x = torch.randint(4, 30, (2, 6))
    assert torch.equal(model(x)[0], model(x)[0])
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])


def test_fused_equals_scratch():
    fused, scratch = tiny(), tiny(impl="scratch")
    scratch.load_state_dict(fused.state_dict())
    x = torch.randint(4, 30, (2, 7))
    assert torch.allclose(fused(x)[0], scratch(x)[0], atol=1e-5)


def test_stream_chunks_are_contiguous():
    ids = torch.arange(101)
    chunks = stream_chunks(ids, streams=4, unroll=10)
    row0 = torch.cat([c.x[0] for c in chunks])
    assert torch.equal(row0, torch.arange(25)) and chunks[0].reset and not chunks[1].reset
    assert all(torch.equal(c.y, c.x + 1) for c in chunks)
    with pytest.raises(ValueError, match="too short"):
        stream_chunks(torch.arange(3), streams=8, unroll=4)


def test_split_text_is_90_10():
    train, valid = split_text("x" * 1000)
    assert len(train) == 900 and len(valid) == 100


def test_sampling_rules():
    logits = torch.tensor([[0.0, 1.0, 3.0, 2.0]] * 200)
    assert torch.equal(sample_logits(logits, 0.0), torch.full((200,), 2))
    top1 = sample_logits(logits, 1.0, top_k=1, generator=torch.Generator().manual_seed(0))
    assert torch.all(top1 == 2)
    nucleus = sample_logits(logits, 1.0, top_p=0.7, generator=torch.Generator().manual_seed(0))
    assert set(nucleus.tolist()) <= {2, 3}       # p(2)=0.64 < 0.7, so the next one (3) is kept too
    free = sample_logits(logits, 5.0, generator=torch.Generator().manual_seed(0))
    assert len(set(free.tolist())) == 4


def test_seed_and_greedy_are_deterministic():
    model, tok = tiny(), CharTokenizer.train([TEXT])
    model = CharLM(CharLMConfig(vocab_size=tok.vocab_size, embed_size=8,
                                rnn=RNNConfig(cell="gru", hidden_size=16, num_layers=1, bidirectional=False))).eval()
    a = "".join(generate(model, tok, "to", 40, temperature=0.8, seed=3))
    b = "".join(generate(model, tok, "to", 40, temperature=0.8, seed=3))
    c = "".join(generate(model, tok, "to", 40, temperature=0.8, seed=4))
    assert a == b and a != c and len(a) == 40
    assert "".join(generate(model, tok, "to", 30, temperature=0, seed=1)) == \
        "".join(generate(model, tok, "to", 30, temperature=0, seed=2))
    batch = list(generate_batch(model, tok, "to", 5, num_samples=3, seed=0))
    assert len(batch) == 5 and all(len(step) == 3 for step in batch)
    assert all(ch not in ("<pad>", "<s>", "</s>", "<unk>") for step in batch for ch in step)


def test_overfits_and_evaluates():
    """A short repeated text is learned to well under a nat per character."""
    tok = CharTokenizer.train([TEXT])
    setup = make_setup("tiny", overrides={"model.dropout": 0.0, "model.emb_dropout": 0.0, "data.streams": 4,
                                          "data.unroll": 20})
    setup.model.vocab_size = tok.vocab_size
    model = CharLM(setup.model)
    task = CharLMTask(setup, tok, TEXT, TEXT[:200])
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for epoch in range(12):
        for chunk in task.batches(epoch):
            loss, _ = task.loss(model.train(), chunk)
            opt.zero_grad()
            loss.backward()
            opt.step()
    result = evaluate_ids(model, task.valid_ids, streams=1, unroll=50)
    assert result["loss"] < 0.5
    assert result["bpc"] == pytest.approx(result["loss"] / math.log(2))
    assert result["perplexity"] == pytest.approx(math.exp(result["loss"]))


runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("charlm")
    (root / "text.txt").write_text(TEXT, encoding="utf-8")
    result = runner.invoke(app, ["train", "charlm", "--text-file", str(root / "text.txt"), "--preset", "tiny",
                                 "--max-steps", "20", "--set", "train.eval_every=10", "--set", "data.streams=2",
                                 "--out", str(root / "run")])
    assert result.exit_code == 0, result.output
    return root


def test_cli_generate_and_evaluate(trained):
    model = str(trained / "run" / "best.pt")
    out = runner.invoke(app, ["generate", "-m", model, "--length", "30", "--seed", "1", "--prime", "to be"])
    assert out.exit_code == 0 and out.stdout.startswith("to be") and len(out.stdout) >= 35
    again = runner.invoke(app, ["generate", "-m", model, "--length", "30", "--seed", "1", "--prime", "to be"])
    assert again.stdout == out.stdout
    many = runner.invoke(app, ["generate", "-m", model, "--length", "10", "--num-samples", "3", "--json"])
    assert len(json.loads(many.stdout)["samples"]) == 3
    unseen = runner.invoke(app, ["generate", "-m", model, "--length", "5", "--prime", "Ωmega"])
    assert unseen.exit_code == 0 and "<unk>" in unseen.stderr
    scores = json.loads(runner.invoke(app, ["evaluate", "charlm", "-m", model, "--text-file",
                                            str(trained / "text.txt"), "--json"]).stdout)
    assert set(scores) == {"loss", "bpc", "perplexity"} and scores["loss"] > 0


@pytest.mark.parametrize("args,needle", [(["--temperature", "-1"], "--temperature"),
                                         (["--temperature", "nan"], "--temperature"),
                                         (["--top-p", "0"], "--top-p"), (["--top-p", "1.5"], "--top-p"),
                                         (["--length", "0"], "--length")])
def test_cli_generate_rejects_bad_values(trained, args, needle):
    result = runner.invoke(app, ["generate", "-m", str(trained / "run" / "best.pt"), *args])
    assert result.exit_code == 1 and needle in result.stderr and "Traceback" not in result.output


def test_cli_wrong_task_checkpoint(trained, tmp_path):
    result = runner.invoke(app, ["translate", "-m", str(trained / "run" / "best.pt"), "hallo"])
    assert result.exit_code == 1 and "'charlm' checkpoint" in result.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    result = runner.invoke(app, ["evaluate", "charlm", "-m", str(trained / "run" / "best.pt"), "--text-file", str(empty)])
    assert result.exit_code == 1 and "empty" in result.stderr


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("tie_weights", [False, True])
@pytest.mark.parametrize("weight_drop", [0.0, 0.3])
def test_stepper_matches_forward_from_a_carried_state(cell, tie_weights, weight_drop):
    """Sampling's fast path (embedding table, folded tied projection, raw weight-dropped matrices in eval mode)
    gives the logits of the model's own forward for one step after a prefix."""
    from nmt.models.charlm import Stepper
    torch.manual_seed(0)
    rnn = RNNConfig(cell=cell, hidden_size=16, num_layers=2, bidirectional=False, dropout=0.2)
    model = CharLM(CharLMConfig(vocab_size=30, embed_size=8, rnn=rnn, dropout=0.3, emb_dropout=0.1,
                                tie_weights=tie_weights, weight_drop=weight_drop))
    if weight_drop:       # a training forward first installs a dropped copy; eval must go back to the raw weights
        model.train()(torch.randint(4, 30, (2, 3)))
    model.eval()
    x = torch.randint(4, 30, (3, 7))
    with torch.no_grad():
        _, state = model(x[:, :6])
        expected, _ = model(x[:, 6:], state)
        stepper, layers = Stepper(model), Stepper.split(state)
        got = stepper(x[:, 6], layers)
        assert torch.allclose(got, expected[:, 0], atol=1e-5)
        expected2, _ = model(x[:, :1], model(x[:, 6:], state)[1])          # the updated layers carry on too
        assert torch.allclose(stepper(x[:, 0], layers), expected2[:, 0], atol=1e-5)


def test_greedy_generation_is_reproducible_from_the_same_prime():
    tok = CharTokenizer.train([TEXT])
    torch.manual_seed(0)
    model = CharLM(CharLMConfig(vocab_size=tok.vocab_size, embed_size=8, weight_drop=0.2,
                                rnn=RNNConfig(cell="lstm", hidden_size=16, num_layers=2, bidirectional=False)))
    a = "".join(generate(model, tok, "to be", 50, temperature=0))
    b = "".join(generate(model, tok, "to be", 50, temperature=0))
    assert a == b and len(a) == 50
    assert a == "".join(generate(model, tok, "to be", 50, temperature=0, seed=123))   # the seed plays no part


def test_half_precision_stepper_stays_close_to_the_model():
    """Generation's float16 matrices: logits within a small tolerance of the float32 forward, for a few steps."""
    torch.manual_seed(0)
    from nmt.models.charlm import CharLM, Stepper
    model = CharLM(CharLMConfig(vocab_size=20, embed_size=8, rnn=RNNConfig(cell="lstm", hidden_size=16,
                                                                            num_layers=2, bidirectional=False))).eval()
    with torch.inference_mode():
        logits, state = model(torch.tensor([[4, 5, 6]]))
        layers = Stepper.split(state)
        stepper = Stepper(model, half=True)
        for token in (7, 8, 9):
            expected, state = model(torch.tensor([[token]]), state)
            got = stepper(torch.tensor([token]), layers)
            assert torch.allclose(got, expected[:, -1], atol=2e-2)
