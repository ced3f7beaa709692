"""The trainer with a real task (translation): exact resume, metrics log, early stopping, kept checkpoints."""
import json
import random

import pytest
import torch

from nmt import checkpoint as ckpt_io
from nmt.config import ConfigError
from nmt.runs import kept_checkpoints
from nmt.tasks import make_setup
from nmt.tasks.translate import TranslationTask, build_model
from nmt.tokenizers import SentencePieceTokenizer
from nmt.training import Trainer

WORDS = "a b c d e f g h i j k l".split()


@pytest.fixture(scope="module")
def corpus():
    rng = random.Random(0)
    src = [" ".join(rng.choices(WORDS, k=rng.randint(2, 5))) for _ in range(120)]
    pairs = [(s, " ".join(reversed(s.split()))) for s in src]
    tok = SentencePieceTokenizer.train([p for pair in pairs for p in pair], vocab_size=40)
    return pairs, {"src": tok, "tgt": tok}


def run(corpus, out, max_steps, **overrides):
    pairs, toks = corpus
    setup = make_setup("translate", "tiny", overrides={"train.max_steps": max_steps, "train.eval_every": 3,
                                          "train.batch_tokens": 60, "train.log_every": 1, **overrides})
    task = TranslationTask(setup, toks, pairs, pairs[:8])
    torch.manual_seed(setup.train.seed)
    model = build_model(setup, toks)
    trainer = Trainer(model, task, setup.train, out)
    trainer.resume()
    state = trainer.fit()
    return model, state


def test_resume_is_exact(corpus, tmp_path):
    straight, _ = run(corpus, tmp_path / "a", 8)
    run(corpus, tmp_path / "b", 5)                   # stops after 5 steps, mid-epoch
    resumed, state = run(corpus, tmp_path / "b", 8)  # continues from last.pt
    assert state.step == 8
    for (name, p), q in zip(straight.named_parameters(), resumed.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name


def test_metrics_log_and_checkpoints(corpus, tmp_path):
    run(corpus, tmp_path, 6)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["type"] == "train"]
    assert [r["step"] for r in train] == list(range(1, 7))
    assert all(r["ppl"] > 1 and r["tokens_per_s"] > 0 and r["lr"] > 0 for r in train)
    assert [r["step"] for r in records if r["type"] == "valid"] == [3, 6]
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()
    assert not list(tmp_path.glob("*.tmp"))


def test_early_stopping(corpus, tmp_path):
    # lr 1e-12 (0 is refused): the weights cannot move, so the score never improves after the first validation
    # and patience 2 stops at the third
    _, state = run(corpus, tmp_path, 100, **{"train.patience": 2, "train.optim.lr": 1e-12,
                                             "train.optim.schedule": "constant"})
    assert state.stopped == "early_stopping" and state.step == 9


def test_keep_checkpoints_keeps_the_last_n_validations(corpus, tmp_path):
    run(corpus, tmp_path, 12, **{"train.keep_checkpoints": 2})       # validations at 3, 6, 9, 12
    kept = kept_checkpoints(tmp_path)
    assert [p.name for p in kept] == ["step-9.pt", "step-12.pt"]
    ckpt = ckpt_io.load(kept[-1])
    assert ckpt.train_state is None and ckpt.meta["step"] == 12     # weights only
    assert [p.name for p in kept_checkpoints(tmp_path, up_to=10)] == ["step-9.pt"]


def test_negative_keep_checkpoints_is_a_config_error(corpus, tmp_path):
    with pytest.raises(ConfigError, match="config key 'train.keep_checkpoints' must be >= 0, got -1"):
        run(corpus, tmp_path, 2, **{"train.keep_checkpoints": -1})
