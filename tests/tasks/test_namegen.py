"""The one-to-many task (nmt/tasks/namegen.py, nmt/models/namegen.py): the unfolded formulation checked against
the code (the step-0 state depends on the condition alone; steps t and T as written in the README), sampling,
likelihoods, the conditioning table, training through the command line, and bad input."""
import json
import random

import pytest
import torch

from nmt.config import NameGenConfig, RNNConfig, SampleConfig
from nmt.models.namegen import NameGenerator, name_hash
from nmt.tasks import make_setup
from nmt.tasks.namegen import ANY, NameSampler, NameGenTask, conditioning, make_batch
from nmt.tokenizers import EOS, CharTokenizer

LANGS = {"Alpha": ("Ab", "ov"), "Beta": ("Ka", "ski"), "Gamma": ("Mo", "ini")}


def toy_names(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Names whose language shows in their first and last letters."""
    rng = random.Random(seed)
    return [(lang, pre + "".join(rng.choices("aeiourtnl", k=rng.randint(1, 3))) + suf)
            for _ in range(n) for lang, (pre, suf) in LANGS.items()]


def sampler_for(pairs, cell: str = "gru", layers: int = 1, conditional: bool = True) -> NameSampler:
    setup = make_setup("namegen", "tiny", overrides={"model.rnn.cell": cell, "model.rnn.num_layers": layers,
                                                      "model.dropout": 0.0})
    tokenizer = CharTokenizer.train(n for _, n in pairs)
    setup.model.vocab_size = tokenizer.vocab_size
    conditions = sorted({c for c, _ in pairs}) if conditional else [ANY]
    return NameSampler(NameGenerator(setup.model, len(conditions)).eval(), tokenizer, setup, conditions)


# --- the formulation, checked against the code ----------------------------------------------------------------

def test_step_zero_depends_only_on_the_condition():
    """a^0 = tanh(W_ax x^0 + b_a) with a^{-1} = 0: the same for every name of a language, whatever follows."""
    torch.manual_seed(0)
    sampler = sampler_for(toy_names(5), cell="rnn")
    model, v = sampler.model, sampler.model.config.vocab_size
    names = [sampler.tokenizer.encode(n) for n in ("Abov", "Kaski", "Moini")]
    for k in range(3):
        batch = make_batch([(v + k, ids) for ids in names], [0, 1, 2])
        h, _ = model.rnn(model.embed(batch.inputs), batch.lengths)                    # (3, T, H)
        assert torch.allclose(h[0, 0], h[1, 0]) and torch.allclose(h[0, 0], h[2, 0])
        x0 = model.embed.weight[v + k]                                                # e(x^0): the condition's row
        rnn = model.rnn.rnn
        a0 = torch.tanh(rnn.weight_ih_l0 @ x0 + rnn.bias_ih_l0 + rnn.bias_hh_l0)      # W_aa a^{-1} = 0
        assert torch.allclose(h[0, 0], a0, atol=1e-6)
        _, state = model.start(torch.tensor([k]))
        assert torch.allclose(state[0, 0], a0, atol=1e-6)
    inputs = model.embed.weight.detach().clone().requires_grad_(True)
    out, _ = model.rnn(inputs[batch.inputs], batch.lengths)
    out[:, 0].sum().backward()
    assert inputs.grad[:v].abs().sum() == 0 and inputs.grad[v + 2].abs().sum() > 0   # only x^0's row moves a^0


def test_steps_t_and_T_follow_the_formulas():
    """a^t = tanh(W_aa a^{t-1} + W_ax x^t + b_a) with x^t = y^{t-1}; y_hat^t = softmax(W_ya a^t + b_y); the last
    step's target is </s>, which ends the name."""
    torch.manual_seed(1)
    sampler = sampler_for(toy_names(5), cell="rnn")
    model, v = sampler.model, sampler.model.config.vocab_size
    rnn = model.rnn.rnn
    ids = sampler.tokenizer.encode("Kaski")
    batch = make_batch([(v + 1, ids)], [0])
    logits, _ = model(batch.inputs, batch.lengths)                                    # (1, T + 1, V)
    a = torch.zeros(rnn.hidden_size)
    for t, x in enumerate(batch.inputs[0].tolist()):                                  # x^0 = condition, x^t = y^{t-1}
        a = torch.tanh(rnn.weight_hh_l0 @ a + rnn.weight_ih_l0 @ model.embed.weight[x] + rnn.bias_ih_l0
                       + rnn.bias_hh_l0)
        y_hat = torch.softmax(model.output.weight @ a + model.output.bias, dim=-1)
        assert torch.allclose(y_hat, logits[0, t].softmax(-1), atol=1e-5)
    assert batch.targets[0].tolist() == ids + [EOS]                                   # y^T = </s>


def test_sampling_ends_at_eos_and_is_seeded():
    torch.manual_seed(0)
    sampler = sampler_for(toy_names(10))
    options = SampleConfig(num_samples=6, length=12, temperature=1.0)
    names = sampler.sample("beta", options, seed=3)
    assert len(names) == 6 and all(len(n) <= 12 for n in names)
    assert sampler.sample("Beta", options, seed=3) == names                            # case-insensitive, seeded
    primed = sampler.sample("Alpha", SampleConfig(num_samples=3, length=8, prime="Ab"), seed=1)
    assert all(n.startswith("Ab") for n in primed)
    with pytest.raises(Exception, match=r"unknown condition 'Klingon' \(valid: Alpha, Beta, Gamma\)"):
        sampler.sample("Klingon", options)
    with pytest.raises(Exception, match="needs a --condition"):
        sampler.sample(None, options)


def test_likelihoods_and_conditioning_table():
    torch.manual_seed(0)
    pairs = toy_names(4)
    sampler = sampler_for(pairs)
    nats = sampler.nats(pairs)
    chars = sum(len(n) + 1 for _, n in pairs)
    assert nats.shape == (len(pairs),) and sampler.nll(pairs) == pytest.approx(float(nats.sum()) / chars, rel=1e-5)
    alone = sampler.nats(pairs[:1])
    assert torch.allclose(alone, nats[:1], atol=1e-5)                                  # padding does not count
    table = conditioning(sampler, pairs, sampler_for(pairs, conditional=False))
    assert set(table["languages"]) == set(LANGS) and table["all"]["names"] == len(pairs)
    assert {"right", "wrong_mean", "wrong_best", "unconditional"} <= set(table["all"])


def test_training_learns_what_the_condition_says():
    torch.manual_seed(0)
    pairs = toy_names(30)
    sampler = sampler_for(pairs)
    setup = sampler.setup
    task = NameGenTask(setup, sampler.tokenizer, sampler.conditions, pairs, pairs[:9])
    model = sampler.model.train()
    optim = torch.optim.Adam(model.parameters(), lr=0.02)
    for epoch in range(25):
        for batch in task.batches(epoch):
            loss, _ = task.loss(model, batch)
            optim.zero_grad()
            loss.backward()
            optim.step()
    table = conditioning(sampler, pairs[:30])
    assert table["all"]["right"] < table["all"]["wrong_best"] - 0.3
    names = sampler.sample("Gamma", SampleConfig(num_samples=20, temperature=0.5), seed=0)
    assert sum(n.startswith("Mo") for n in names) >= 15


def test_known_names_and_a_bidirectional_model():
    model = NameGenerator(NameGenConfig(vocab_size=8, rnn=RNNConfig(hidden_size=4, bidirectional=False)), 2, 2)
    model.known.copy_(torch.tensor(sorted([name_hash("Abov"), name_hash("Kaski")])))
    assert model.is_known(["Kaski", "Kasky"]) == [True, False]
    with pytest.raises(ValueError, match="left to right"):
        NameGenerator(NameGenConfig(vocab_size=8, rnn=RNNConfig(hidden_size=4, bidirectional=True)), 2)


# --- the command line ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def names_model(tmp_path_factory):
    from tests.conftest import Cli
    root = tmp_path_factory.mktemp("namegen")
    folder = root / "data" / "names"
    folder.mkdir(parents=True)
    for lang in LANGS:
        folder.joinpath(f"{lang}.txt").write_text("\n".join(n for c, n in toy_names(40) if c == lang) + "\n",
                                                  encoding="utf-8")
    folder.joinpath("SOURCE.md").write_text("toy\n", encoding="utf-8")
    run = Cli.run("train", "namegen", "--data-dir", root / "data", "--preset", "tiny", "--max-steps", 30,
                  "--out", root / "run", "--set", "train.threads=1", "--set", "train.optim.lr=0.01")
    assert run.exit_code == 0, run.output
    return root


def test_generate_with_a_condition(cli, names_model):
    model = names_model / "run" / "best.pt"
    out = cli.run("generate", "-m", model, "--condition", "Beta", "--num-samples", 5, "--seed", 1)
    assert out.exit_code == 0 and len(out.stdout.split("\n")) == 6
    again = cli.run("generate", "-m", model, "--condition", "beta", "--num-samples", 5, "--seed", 1)
    assert again.stdout == out.stdout
    data = json.loads(cli.run("generate", "-m", model, "-c", "Beta", "--num-samples", 30, "--json").stdout)
    assert data["condition"] == "Beta" and len(data["samples"]) == len(data["in_training"]) == 30
    marked = [s for s, known in zip(data["samples"], data["in_training"]) if known]
    plain = cli.run("generate", "-m", model, "-c", "Beta", "--num-samples", 30, "--seed", 4).stdout.split("\n")
    assert all(line.endswith(" *") == (line[:-2] in {n for _, n in toy_names(40)}) for line in plain if line)
    assert marked == [] or all(n in {x for _, x in toy_names(40)} for n in marked)


def test_generate_bad_input(cli, names_model, tmp_path):
    model = names_model / "run" / "best.pt"
    cli.one_line_error(cli.run("generate", "-m", model, "-c", "Klingon"), "unknown condition 'Klingon'",
                       "valid: Alpha, Beta, Gamma")
    cli.one_line_error(cli.run("generate", "-m", model), "needs a --condition")
    from nmt import checkpoint as ckpt_io
    other = tmp_path / "tag.pt"
    ckpt_io.save(other, ckpt_io.Checkpoint("tag", {}, {}))
    cli.one_line_error(cli.run("generate", "-m", other), "is a 'tag' checkpoint, not a 'charlm' or 'namegen' one")


def test_evaluate_namegen(cli, names_model):
    model = names_model / "run" / "best.pt"
    data = json.loads(cli.run("evaluate", "namegen", "-m", model, "--data-dir", names_model / "data",
                              "--json").stdout)
    assert set(data["nll"]["languages"]) == set(LANGS) and data["nll"]["all"]["right"] > 0
    shown = cli.run("evaluate", "namegen", "-m", model, "--data-dir", names_model / "data")
    assert shown.exit_code == 0 and "wrong (mean)" in shown.stdout


def test_shipped_generator(cli, shipped):
    shipped("namegen")
    data = json.loads(cli.run("generate", "--condition", "Japanese", "--num-samples", 20, "--seed", 1,
                              "--json").stdout)
    assert data["condition"] == "Japanese" and len(data["samples"]) == 20
    assert sum(name[-1] in "aeiou" for name in data["samples"]) >= 15      # Japanese surnames end in a vowel
    cli.one_line_error(cli.run("generate", "--condition", "Klingon"), "valid: Arabic, Chinese")
