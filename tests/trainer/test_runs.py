"""Run folders (nmt/runs.py): kept validation checkpoints and their average, resuming a run's own setup,
shared tokenizers, threads, and the memory settings a training run applies."""
import os

import pytest
import torch

from nmt import checkpoint as ckpt_io
from nmt import runs
from nmt.tasks import make_setup
from nmt.tasks.translate import SETUP


def test_kept_checkpoints_in_step_order(tmp_path):
    for name in ("step-12.pt", "step-3.pt", "step-40.pt", "step-x.pt", "best.pt", "step-7.pt.tmp"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in runs.kept_checkpoints(tmp_path)] == ["step-3.pt", "step-12.pt", "step-40.pt"]
    assert [p.name for p in runs.kept_checkpoints(tmp_path, up_to=12)] == ["step-3.pt", "step-12.pt"]
    assert runs.kept_checkpoints(tmp_path / "missing") == []


def test_average_kept_is_the_mean_of_the_window(translate_model):
    run = translate_model.run
    averaged, window = runs.average_kept(run / "step-40.pt", 2)
    assert [p.name for p in window] == ["step-20.pt", "step-40.pt"]
    a, b = (ckpt_io.load(p).model for p in window)
    for name, tensor in averaged.model.items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, (a[name] + b[name]) / 2, atol=1e-6), name
    assert averaged.meta["averaged"] == 2 and averaged.train_state is None
    _, window = runs.average_kept(run / "last.pt", 1)                  # the step comes from the training state
    assert [p.name for p in window] == ["step-40.pt"]
    with pytest.raises(ckpt_io.CheckpointError, match="keeps 1 validation checkpoints up to step 20"):
        runs.average_kept(run / "step-20.pt", 2)


def test_a_resumed_run_keeps_its_setup_and_takes_the_run_options(translate_model):
    saved = ckpt_io.load(translate_model.run / "last.pt").config["setup"]
    new = make_setup("translate", "tiny", overrides={"tokenizer.vocab_size": 120, "train.max_steps": 99,
                                                     "train.threads": 1, "train.eval_every": 7})
    setup, toks, *_ = runs.load_run(translate_model.run, "translate", SETUP, new)
    assert setup.train.max_steps == 99 and setup.train.threads == 1                       # how to run: the command
    assert setup.train.eval_every == saved["train"]["eval_every"] == 20                   # what to learn: the run
    assert setup.train.keep_checkpoints == 5
    assert toks["src"] is toks["tgt"]                                  # a joint vocabulary stays one object
    assert runs.load_run(translate_model.data, "translate", SETUP, new) is None          # no last.pt: a new run
    with pytest.raises(ckpt_io.CheckpointError, match="not a 'tag' one"):
        runs.load_run(translate_model.run, "tag", SETUP, new)


def test_tokenizers_from_states_share_equal_states():
    from nmt.tokenizers import CharTokenizer
    a, b = CharTokenizer.train(["abc"]).to_state(), CharTokenizer.train(["xyz"]).to_state()
    toks = runs.tokenizers_from_states({"src": a, "tgt": dict(a), "chars": b})
    assert toks["src"] is toks["tgt"] and toks["chars"] is not toks["src"]
    assert toks["chars"].encode("xyz") == CharTokenizer.train(["xyz"]).encode("xyz")


def test_set_threads(monkeypatch):
    threads = torch.get_num_threads()
    try:
        runs.set_threads(1)
        assert torch.get_num_threads() == 1
        monkeypatch.setattr(os, "cpu_count", lambda: 8)
        runs.set_threads(0, processes=2)                      # this process's share of the machine
        assert torch.get_num_threads() == 4
        runs.set_threads(0, processes=16)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def test_start_run_applies_the_memory_settings(tmp_path, monkeypatch):
    called = []
    monkeypatch.setattr(runs.allocator, "configure", lambda: called.append(True) or True)
    setup = make_setup("translate", "tiny", overrides={"train.threads": 1})
    threads = torch.get_num_threads()
    try:
        got, toks = runs.start_run(setup, tmp_path / "new", "translate", SETUP)
    finally:
        torch.set_num_threads(threads)
    assert called == [True] and got is setup and toks is None
