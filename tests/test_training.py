"""The shared trainer: exact resume, early stopping, schedules, metrics log."""
import json
import math
import random

import pytest
import torch

from nmt.config import OptimConfig
from nmt.tokenizers import SentencePieceTokenizer
from nmt.training import Trainer, learning_rate
from nmt.translation import TranslationTask, build_model, make_setup

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
    setup = make_setup("tiny", overrides={"train.max_steps": max_steps, "train.eval_every": 3,
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
    # lr 0: the score never improves after the first validation, so patience 2 stops at the third
    _, state = run(corpus, tmp_path, 100, **{"train.patience": 2, "train.optim.lr": 0.0})
    assert state.stopped == "early_stopping" and state.step == 9


def test_learning_rate_schedules():
    warm = OptimConfig(lr=1.0, warmup_steps=10, schedule="inverse_sqrt")
    assert learning_rate(warm, 0, 1.0) == pytest.approx(0.1)
    assert learning_rate(warm, 40, 1.0) == pytest.approx(0.5)
    cosine = OptimConfig(lr=1.0, min_lr=0.0, schedule="cosine")
    assert learning_rate(cosine, 50, 1.0, total_steps=100) == pytest.approx(0.5)
    plateau = OptimConfig(lr=1.0, min_lr=0.1, schedule="plateau")
    assert learning_rate(plateau, 5, 0.5) == 0.5 and learning_rate(plateau, 5, 0.01) == 0.1
    assert not math.isnan(learning_rate(OptimConfig(schedule="constant"), 3, 1.0))


def test_keep_checkpoints_keeps_the_last_n_validations(corpus, tmp_path):
    from nmt import checkpoint as ckpt_io
    from nmt.training import kept_checkpoints
    run(corpus, tmp_path, 12, **{"train.keep_checkpoints": 2})       # validations at 3, 6, 9, 12
    kept = kept_checkpoints(tmp_path)
    assert [p.name for p in kept] == ["step-9.pt", "step-12.pt"]
    ckpt = ckpt_io.load(kept[-1])
    assert ckpt.train_state is None and ckpt.meta["step"] == 12     # weights only
    assert [p.name for p in kept_checkpoints(tmp_path, up_to=10)] == ["step-9.pt"]


def test_negative_keep_checkpoints_is_a_config_error(corpus, tmp_path):
    from nmt.config import ConfigError
    with pytest.raises(ConfigError, match="keep_checkpoints"):
        run(corpus, tmp_path, 2, **{"train.keep_checkpoints": -1})
