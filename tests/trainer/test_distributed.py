"""Data-parallel training: torchrun + gloo on this machine, gradient accumulation, resume across rank counts, and
a run killed mid-training. Tests that start torchrun or train in a child process are marked slow."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nmt.data import bucket_batches, make_seq2seq_batch
from nmt.tasks import make_setup
from nmt.tasks.translate import TranslationTask, build_model
from nmt.tokenizers import SentencePieceTokenizer
from nmt.training import Trainer

REPO = Path(__file__).resolve().parents[2]
WORDS = "a b c d e f g h i j k l".split()
# no dropout: the runs compared below must differ only in how the work is split
TINY = ["--preset", "tiny", "--set", "train.threads=1", "--set", "tokenizer.vocab_size=40", "--set", "model.dropout=0",
        "--set", "model.emb_dropout=0", "--set", "train.log_every=1", "--set", "train.batch_tokens=100"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    rng = random.Random(0)
    src = [" ".join(rng.choices(WORDS, k=rng.randint(2, 6))) for _ in range(200)]
    (folder / "train.src").write_text("\n".join(src) + "\n")
    (folder / "train.tgt").write_text("\n".join(" ".join(reversed(s.split())) for s in src) + "\n")
    return folder


def train_cli(files, out, *extra, procs=1, timeout=240):
    """`python cli.py train translate ...` on the tiny corpus, under torchrun when procs > 1."""
    data = ["--train-src", files / "train.src", "--train-tgt", files / "train.tgt", "--valid-src", files / "train.src",
            "--valid-tgt", files / "train.tgt", "--valid-limit", "8"]
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"] \
        if procs > 1 else [sys.executable]
    cmd = launch + ["cli.py", "train", "translate", *data, *TINY, "--out", out, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([str(c) for c in cmd], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "last.pt", weights_only=True)["model"]


def assert_same(a: dict, b: dict, tol: float = 1e-5):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=tol), key


def records(run_dir: Path, kind: str) -> list[dict]:
    """The complete lines of metrics.jsonl of this kind (a running process may be writing the last one)."""
    path = run_dir / "metrics.jsonl"
    text = path.read_text() if path.exists() else ""
    lines = text.split("\n")[:-1]                     # the part after the last newline is not a line yet
    return [r for r in map(json.loads, lines) if r["type"] == kind]


@pytest.fixture(scope="module")
def accumulated(files, tmp_path_factory):
    """One process, 4 updates of 2 accumulated batches each."""
    out = tmp_path_factory.mktemp("accumulated")
    train_cli(files, out, "--max-steps", "4", "--set", "train.eval_every=2", "--accumulate", "2")
    return out


@pytest.mark.slow
def test_two_processes_equal_one_process_accumulating_two_batches(files, accumulated, tmp_path):
    """2 gloo ranks x 1 batch == 1 process x 2 accumulated batches (the same global batch); only rank 0 writes."""
    two = train_cli(files, tmp_path / "two", "--max-steps", "4", "--set", "train.eval_every=2", procs=2)
    assert_same(weights(tmp_path / "two"), weights(accumulated))
    ckpt = torch.load(tmp_path / "two" / "last.pt", weights_only=True)
    assert ckpt["train_state"]["optimizer"]["state"][0]["step"] == 4       # 4 real updates, not idle copies
    # rank 0 alone logs and reports: every step once, one summary line
    assert [r["step"] for r in records(tmp_path / "two", "train")] == [1, 2, 3, 4]
    assert [r["step"] for r in records(tmp_path / "two", "valid")] == [2, 4]
    assert (two.stdout + two.stderr).count("stopped (max_steps)") == 1
    assert len(ckpt["train_state"]["rank_rngs"]) == 2


@pytest.mark.slow
def test_resume_with_another_number_of_processes(files, accumulated, tmp_path):
    """Stop a 2-process run at step 2, resume it on 1 process accumulating 2: same weights as never stopping."""
    train_cli(files, tmp_path / "moved", "--max-steps", "2", "--set", "train.eval_every=2", procs=2)
    train_cli(files, tmp_path / "moved", "--max-steps", "4", "--accumulate", "2")
    assert_same(weights(accumulated), weights(tmp_path / "moved"))
    assert [r["step"] for r in records(tmp_path / "moved", "train")] == [1, 2, 3, 4]


@pytest.mark.slow
def test_killed_run_resumes(files, tmp_path):
    """SIGKILL in the middle of training loses at most the steps since the last checkpoint.

    Validation runs every step, so patience is set out of reach: with the default a kill late in a stalled run
    let the resumed run stop early, before the two steps asked for (a flaky [7, 7] != [7, 8])."""
    out = tmp_path / "killed"
    data = ["--train-src", files / "train.src", "--train-tgt", files / "train.tgt", "--valid-src", files / "train.src",
            "--valid-tgt", files / "train.tgt", "--valid-limit", "2"]
    never_stop = ["--set", "train.eval_every=1", "--set", "train.patience=100000"]
    cmd = [sys.executable, "cli.py", "train", "translate", *data, *TINY, *never_stop, "--max-steps", "500",
           "--out", out]
    proc = subprocess.Popen([str(c) for c in cmd], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 300
        while not ((out / "last.pt").exists() and len(records(out, "valid")) >= 3):
            assert proc.poll() is None and time.time() < deadline, "training ended before it could be killed"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = torch.load(out / "last.pt", weights_only=True)["train_state"]["trainer"]["step"]
    assert saved >= 2
    result = train_cli(files, out, "--max-steps", str(saved + 2), *never_stop, "--valid-limit", "2")
    assert "stopped (max_steps)" in result.stderr
    steps = [r["step"] for r in records(out, "train")]
    assert steps[-2:] == [saved + 1, saved + 2]     # resumed from the checkpoint, not from scratch


class PairedTask(TranslationTask):
    """Each batch is two consecutive batches of the plain task, merged: the 'doubled batch'."""

    def batches(self, epoch):
        c = self.setup.train
        groups = bucket_batches(self.lengths, c.batch_tokens, c.batch_size, shuffle=True, seed=c.seed + epoch)
        return [make_seq2seq_batch(self.train, groups[i] + groups[i + 1]) for i in range(0, len(groups) - 1, 2)]


def test_accumulating_two_batches_equals_one_doubled_batch(files, tmp_path):
    src = (files / "train.src").read_text().splitlines()
    pairs = list(zip(src, (files / "train.tgt").read_text().splitlines()))
    tok = SentencePieceTokenizer.train([p for pair in pairs for p in pair], vocab_size=40)
    toks = {"src": tok, "tgt": tok}
    finals = []
    for task_cls, accumulate in ((TranslationTask, 2), (PairedTask, 1)):
        setup = make_setup("translate", "tiny", overrides={
            "train.max_steps": 3, "train.eval_every": 3, "train.batch_tokens": 100, "model.dropout": 0.0,
            "model.emb_dropout": 0.0, "train.accumulate": accumulate})
        torch.manual_seed(0)
        model = build_model(setup, toks)
        Trainer(model, task_cls(setup, toks, pairs, pairs[:4]), setup.train, tmp_path / task_cls.__name__).fit()
        finals.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    assert_same(*finals, tol=1e-5)


def test_too_few_batches_for_the_update_is_a_clear_error(files, tmp_path, cli):
    result = cli.run("train", "translate", "--train-src", files / "train.src", "--train-tgt", files / "train.tgt",
                     "--valid-src", files / "train.src", "--valid-tgt", files / "train.tgt", *TINY,
                     "--set", "train.batch_tokens=0", "--set", "train.batch_size=500", "--accumulate", "2",
                     "--max-steps", "2", "--out", tmp_path / "few")
    cli.one_line_error(result, "fewer than")


def test_cuda_without_a_gpu_is_a_clear_error(files, tmp_path, cli):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = cli.run("train", "translate", "--train-src", files / "train.src", "--train-tgt", files / "train.tgt",
                 "--valid-src", files / "train.src", "--valid-tgt", files / "train.tgt", *TINY, "--device", "cuda",
                 "--max-steps", "1", "--out", tmp_path / "cuda")
    cli.one_line_error(result, "cuda")


@pytest.mark.slow
def test_character_model_splits_its_streams_across_processes(tmp_path):
    """The char LM shards its B parallel streams (each keeps its hidden state on one rank): 2 ranks x B/2
    streams make the same updates as 1 process with all B."""
    text = tmp_path / "text.txt"
    rng = random.Random(1)
    text.write_text("".join(rng.choice("abcde fgh\n") for _ in range(20000)))
    args = ["cli.py", "train", "charlm", "--text-file", text, "--preset", "tiny", "--max-steps", "3",
            "--set", "train.eval_every=3", "--set", "model.dropout=0", "--set", "model.emb_dropout=0",
            "--set", "model.rnn.dropout=0", "--set", "train.threads=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name, launch in (("one", [sys.executable]),
                         ("two", [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"])):
        subprocess.run([str(a) for a in launch + args + ["--out", tmp_path / name]], cwd=REPO, check=True,
                       capture_output=True, env=env, timeout=240)
    assert_same(weights(tmp_path / "one"), weights(tmp_path / "two"))
