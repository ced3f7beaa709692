"""The character-model task (nmt/tasks/charlm.py): truncated-BPTT streams, the 90/10 split, sharding, sampling,
overfitting, and the TextGenerator runner on the session's tiny model."""
import math

import pytest
import torch

from nmt.config import CharLMConfig, ConfigError, RNNConfig, SampleConfig
from nmt.models.charlm import CharLM, CharLMEnsemble, build
from nmt.tasks import make_setup
from nmt.tasks.charlm import (
    CharLMTask,
    TextGenerator,
    evaluate_dynamic,
    evaluate_ids,
    generate,
    generate_batch,
    split_text,
    stream_chunks,
)
from nmt.tokenizers import CharTokenizer
from tests.toydata import TEXT


def test_stream_chunks_are_contiguous():
    ids = torch.arange(101)
    chunks = stream_chunks(ids, streams=4, unroll=10)
    row0 = torch.cat([c.x[0] for c in chunks])
    assert torch.equal(row0, torch.arange(25)) and chunks[0].reset and not chunks[1].reset
    assert all(torch.equal(c.y, c.x + 1) for c in chunks)
    with pytest.raises(ValueError, match="too short"):
        stream_chunks(torch.arange(3), streams=8, unroll=4)


def test_split_text_is_90_10_or_the_share_given():
    train, valid = split_text("x" * 1000)
    assert len(train) == 900 and len(valid) == 100
    text = "abcdefghij" * 10
    train, valid = split_text(text, 0.75)
    assert (len(train), len(valid)) == (75, 25) and train + valid == text


def task_on(text: str, **overrides) -> CharLMTask:
    tok = CharTokenizer.train([text])
    setup = make_setup("charlm", "tiny", overrides=overrides)
    setup.model.vocab_size = tok.vocab_size
    return CharLMTask(setup, tok, text, text[:200])


def test_shard_splits_the_streams_not_the_chunks():
    """Each rank keeps its own streams (their hidden state stays on it), every chunk of the epoch in step."""
    whole = task_on(TEXT, **{"data.streams": 4, "data.unroll": 10})
    parts = [task_on(TEXT, **{"data.streams": 4, "data.unroll": 10}) for _ in range(2)]
    assert CharLMTask.shards_itself
    for rank, part in enumerate(parts):
        part.shard(rank, 2)
    full, halves = whole.batches(3), [p.batches(3) for p in parts]
    assert len(full) == len(halves[0]) == len(halves[1])
    for chunk, a, b in zip(full, *halves):
        assert torch.equal(torch.cat([a.x, b.x]), chunk.x) and torch.equal(torch.cat([a.y, b.y]), chunk.y)
        assert a.reset == b.reset == chunk.reset
    with pytest.raises(ConfigError, match="divisible"):
        task_on(TEXT, **{"data.streams": 4}).shard(0, 3)


def test_epochs_move_the_chunk_borders():
    task = task_on(TEXT, **{"data.streams": 2, "data.unroll": 16})
    assert [c.x.tolist() for c in task.batches(0)] == [c.x.tolist() for c in task.batches(0)]
    assert any(task.batches(e)[0].x[0, 0] != task.batches(0)[0].x[0, 0] for e in range(1, 6))


def test_seed_and_greedy_are_deterministic():
    tok = CharTokenizer.train([TEXT])
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


def fit(task: CharLMTask, model, epochs: int, lr: float = 0.01) -> None:
    """Plain Adam over the task's chunks, the state carried as in training."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for epoch in range(epochs):
        for chunk in task.batches(epoch):
            loss, _ = task.loss(model.train(), chunk)
            opt.zero_grad()
            loss.backward()
            opt.step()


def test_overfits_and_evaluates():
    """A short repeated text is learned to well under a nat per character."""
    tok = CharTokenizer.train([TEXT])
    setup = make_setup("charlm", "tiny", overrides={"model.dropout": 0.0, "model.emb_dropout": 0.0, "data.streams": 4,
                                          "data.unroll": 20})
    setup.model.vocab_size = tok.vocab_size
    model = CharLM(setup.model)
    task = CharLMTask(setup, tok, TEXT, TEXT[:200])
    fit(task, model, epochs=12)
    result = evaluate_ids(model, task.valid_ids, streams=1, unroll=50)
    assert result["loss"] < 0.5
    assert result["bpc"] == pytest.approx(result["loss"] / math.log(2))
    assert result["perplexity"] == pytest.approx(math.exp(result["loss"]))


def test_greedy_generation_is_reproducible_from_the_same_prime():
    tok = CharTokenizer.train([TEXT])
    torch.manual_seed(0)
    model = CharLM(CharLMConfig(vocab_size=tok.vocab_size, embed_size=8, weight_drop=0.2,
                                rnn=RNNConfig(cell="lstm", hidden_size=16, num_layers=2, bidirectional=False)))
    a = "".join(generate(model, tok, "to be", 50, temperature=0))
    b = "".join(generate(model, tok, "to be", 50, temperature=0))
    assert a == b and len(a) == 50
    assert a == "".join(generate(model, tok, "to be", 50, temperature=0, seed=123))   # the seed plays no part


# --- the runner on the tiny trained model --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generator(charlm_model):
    return TextGenerator.load(charlm_model.checkpoint)


def test_sample_follows_the_options(generator):
    options = SampleConfig(length=12, num_samples=3, prime="to ", temperature=1.0)
    steps = list(generator.sample(options, seed=5))
    assert len(steps) == 12 and all(len(chars) == 3 for chars in steps)
    assert steps == list(generator.sample(options, seed=5))                    # same seed, same samples
    greedy = SampleConfig(length=12, temperature=0.0)
    assert list(generator.sample(greedy, seed=1)) == list(generator.sample(greedy, seed=2))


def test_evaluate_and_unknown(generator):
    scores = generator.evaluate(TEXT[:300])
    assert scores["characters"] == 299                        # each character but the first is predicted
    assert scores["bpc"] == pytest.approx(scores["loss"] / math.log(2))
    assert scores["perplexity"] == pytest.approx(math.exp(scores["loss"]))
    assert generator.unknown("to be, Ωmega!") == {"Ω", "m", "g", "!"}
    assert generator.unknown(TEXT) == set()


def test_evaluation_unroll_comes_from_the_setup(generator):
    """The whole text is one stream whatever the chunk length: the state carries across chunks."""
    one = generator.evaluate(TEXT[:300])
    generator.setup.data.eval_unroll = 7
    try:
        assert generator.evaluate(TEXT[:300])["loss"] == pytest.approx(one["loss"], rel=1e-4)
    finally:
        generator.setup.data.eval_unroll = make_setup("charlm", "tiny").data.eval_unroll


def test_dynamic_evaluation_learns_as_it_reads_and_leaves_the_model_alone(generator):
    """With rate 0 it is the static one-stream loss; on a text that repeats a line the model has never seen, the
    model that learns from each chunk after scoring it predicts the repeats better; the runner's model is kept."""
    before = {k: v.clone() for k, v in generator.model.state_dict().items()}
    text = TEXT[:300]
    ids = torch.tensor(generator.tokenizer.encode(text))
    assert evaluate_dynamic(generator.model, ids, 0.0)["loss"] == pytest.approx(generator.evaluate(text)["loss"],
                                                                                  rel=1e-4)
    repeated = "be not afraid of greatness, some are born great. " * 12
    static = generator.evaluate(repeated)["loss"]
    dynamic = generator.evaluate(repeated, dynamic_lr=0.5, dynamic_decay=0.0)
    assert dynamic["loss"] < static and dynamic["characters"] == len(repeated) - 1
    assert all(torch.equal(v, generator.model.state_dict()[k]) for k, v in before.items())


def test_an_ensemble_trains_each_member_on_its_own_loss():
    """model.members=2: the training loss is the mean of the members' own cross-entropies (not the mixture's), both
    members learn, and validation scores the mixture."""
    task = task_on(TEXT, **{"model.members": 2, "model.dropout": 0.0, "model.emb_dropout": 0.0,
                            "data.streams": 4, "data.unroll": 20})
    model = build(task.setup.model)
    assert isinstance(model, CharLMEnsemble) and len(model.members) == 2
    chunk = task.batches(0)[0]
    with torch.no_grad():
        loss, _ = task.loss(model.eval(), chunk)
        own = [torch.nn.functional.cross_entropy(m(chunk.x)[0].flatten(0, 1), chunk.y.flatten())
                for m in model.members]
    assert float(loss) == pytest.approx(float(sum(own) / 2), abs=1e-5)
    assert len(task.state) == 2                                             # each member's state carried
    before = [evaluate_ids(m, task.valid_ids, unroll=50)["loss"] for m in model.members]
    fit(task, model, epochs=3)
    after = [evaluate_ids(m, task.valid_ids, unroll=50)["loss"] for m in model.members]
    assert all(a < b - 0.3 for a, b in zip(after, before))
    mixture = evaluate_ids(model, task.valid_ids, unroll=50)["loss"]
    assert mixture <= sum(after) / 2 + 1e-6
