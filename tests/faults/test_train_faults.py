"""Issue 16, the training side: Ctrl-C and SIGTERM save last.pt and exit 130 / 143 (a real signal to a real
`python cli.py train` process), one run per folder (run.lock: the second trainer refused, a stale lock taken
over), a killed save's temporary files and duplicated metrics rows cleaned up on restart, and the NaN guard
(a stub task whose loss or gradient is NaN: skipped updates, unchanged weights, `max_nonfinite` stops the run).

Tests that start a training subprocess are marked slow.
"""
from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from nmt import checkpoint as ckpt_io
from nmt import runs
from nmt.config import TrainConfig, from_dict
from nmt.stops import TrainingStopped
from nmt.tasks.base import Task, Validation
from nmt.training import Trainer
from tests.toydata import TEXT

ROOT = Path(__file__).resolve().parents[2]


def one_liner(text: str) -> str:
    return " ".join(text.split())


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().split("\n") if line]


def step_of(path: Path) -> int:
    return ckpt_io.load(path).train_state["trainer"]["step"]


# === real signals to a training process ============================================================================

@pytest.fixture
def long_text(tmp_path) -> Path:
    """Enough text that a tiny char model trains for minutes (it is stopped long before)."""
    path = tmp_path / "text.txt"
    path.write_text(TEXT * 40, encoding="utf-8")
    return path


def train_args(text: Path, out: Path, *extra) -> list[str]:
    """A tiny char-model run that logs every step and never validates on its own."""
    return [str(a) for a in ("train", "charlm", "--text-file", text, "--preset", "tiny", "--set", "train.threads=1",
                             "--set", "data.streams=2", "--set", "train.log_every=1",
                             "--set", "train.eval_every=1000000", "--out", out, *extra)]


class TrainerProcess:
    """`python cli.py train ...` in the background, stopped (by pid) when the test ends."""

    def __init__(self, args: list[str]):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *args], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_training(self, run: Path, steps: int = 3, timeout: float = 180) -> None:
        """Until metrics.jsonl shows `steps` logged updates (the trainer's loop, with its signal handlers, runs)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                _, err = self.proc.communicate()
                pytest.fail(f"the trainer ended early ({self.proc.returncode}):\n{err[-3000:]}")
            log = run / "metrics.jsonl"
            if log.exists() and sum(1 for r in log.read_text().split("\n") if '"train"' in r) >= steps:
                return
            time.sleep(0.1)
        pytest.fail("the trainer logged no updates in time")

    def stop(self, signum: int, timeout: float = 120) -> tuple[int, str]:
        self.proc.send_signal(signum)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def background():
    started = []

    def start(args):
        started.append(TrainerProcess(args))
        return started[-1]
    yield start
    for process in started:
        process.close()


@pytest.mark.slow
def test_ctrl_c_saves_last_pt_exits_130_and_the_run_resumes_there(cli, long_text, tmp_path, background):
    run = tmp_path / "run"
    args = train_args(long_text, run, "--max-steps", 100000)
    trainer = background(args)
    trainer.wait_training(run)
    assert not (run / "last.pt").exists()                  # no validation yet: only the signal writes last.pt
    code, err = trainer.stop(signal.SIGINT)
    assert code == 130, err
    last = err.strip().split("\n")[-1]
    assert last.startswith("stopped: interrupted at step") and "Traceback" not in err, err
    step = step_of(run / "last.pt")
    assert f"at step {step};" in last and str(run / "last.pt") in last
    assert step >= max(r["step"] for r in rows(run)) >= 3
    assert not (run / "run.lock").exists() and not list(run.glob(".*.tmp"))

    resumed = cli.run(*args[:-2], "--max-steps", step + 3)
    assert resumed.exit_code == 0, resumed.output
    notes = one_liner(resumed.stderr)
    assert f"resuming {run / 'last.pt'} at step {step}" in notes
    assert f"stopped (max_steps) at step {step + 3}" in notes
    assert step_of(run / "last.pt") == step + 3
    steps = [r["step"] for r in rows(run) if r["type"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == step + 3     # each update logged once, in order


@pytest.mark.slow
def test_sigterm_saves_last_pt_and_a_second_trainer_is_refused_meanwhile(cli, long_text, tmp_path, background):
    run = tmp_path / "run"
    trainer = background(train_args(long_text, run, "--max-steps", 100000))
    trainer.wait_training(run)
    owner = json.loads((run / "run.lock").read_text())
    assert owner["pid"] == trainer.proc.pid and owner["host"] == socket.gethostname()

    second = cli.run(*train_args(long_text, run, "--max-steps", 5))
    cli.one_line_error(second, f"process {trainer.proc.pid}", "run.lock", str(run))
    other_cell = cli.run(*train_args(long_text, run, "--max-steps", 5, "--cell", "gru"))   # refused the same way
    cli.one_line_error(other_cell, f"process {trainer.proc.pid}")
    assert json.loads((run / "run.lock").read_text()) == owner            # the first run keeps its lock

    code, err = trainer.stop(signal.SIGTERM)
    assert code == 143, err
    assert err.strip().split("\n")[-1].startswith("stopped: terminated at step") and "Traceback" not in err
    assert step_of(run / "last.pt") >= 3 and not (run / "run.lock").exists()
    steps = [r["step"] for r in rows(run) if r["type"] == "train"]
    assert steps == sorted(set(steps))                                     # nothing interleaved


# === the run lock, in process ======================================================================================

@pytest.fixture
def text_file(tmp_path) -> Path:
    path = tmp_path / "text.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def short_run(text: Path, out: Path) -> list:
    return ["train", "charlm", "--text-file", text, "--preset", "tiny", "--set", "train.threads=1", "--set",
            "data.streams=2", "--set", "train.eval_every=2", "--max-steps", 2, "--out", out]


def write_lock(run: Path, **owner) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "run.lock").write_text(json.dumps(owner))


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


@pytest.mark.parametrize("owner", ["dead", "reused", "garbage", "partial"])
def test_a_stale_lock_is_taken_over(cli, text_file, tmp_path, owner):
    """A dead pid; a live pid that started at another time (the pid was reused); an unreadable lock file."""
    run = tmp_path / "run"
    if owner == "dead":
        write_lock(run, host=socket.gethostname(), pid=dead_pid(), started="12345")
    elif owner == "reused":
        write_lock(run, host=socket.gethostname(), pid=os.getpid(), started="0")
    elif owner == "garbage":
        run.mkdir()
        (run / "run.lock").write_bytes(b"\x00\xff not json")
    else:
        write_lock(run, pid=os.getpid())
    result = cli.run(*short_run(text_file, run))
    assert result.exit_code == 0, result.output
    assert (run / "last.pt").exists() and not (run / "run.lock").exists()


def test_a_live_lock_is_respected(cli, text_file, tmp_path):
    run = tmp_path / "run"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        started = runs._start_time(sleeper.pid)
        write_lock(run, host=socket.gethostname(), pid=sleeper.pid, started=started)
        result = cli.run(*short_run(text_file, run))
        cli.one_line_error(result, f"process {sleeper.pid} on {socket.gethostname()}", "run.lock")
        assert not (run / "last.pt").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    write_lock(run, host="another-machine", pid=1, started="1")          # cannot be checked from here: respected
    cli.one_line_error(cli.run(*short_run(text_file, run)), "process 1 on another-machine")


def test_run_lock_acquire_and_release(tmp_path):
    lock = runs.RunLock(tmp_path / "run")
    lock.acquire()
    lock.acquire()                                                          # the holder may take it again
    assert json.loads((tmp_path / "run" / "run.lock").read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / "run" / "run.lock").exists()
    write_lock(tmp_path / "run", host="another-machine", pid=1, started="1")
    runs.RunLock(tmp_path / "run").release()                               # never removes another's lock
    assert (tmp_path / "run" / "run.lock").exists()


# === a killed save and duplicated metrics rows ==================================================================

def test_tidy_removes_temporary_files_and_rows_after_the_step(tmp_path):
    for name in (".last.pt.abc123.tmp", ".best.pt.x.tmp", ".metrics.jsonl.y.tmp"):
        (tmp_path / name).write_bytes(b"half a checkpoint")
    (tmp_path / "notes.txt").write_text("kept")
    (tmp_path / "last.pt").write_bytes(b"kept")
    lines = [json.dumps({"type": "train", "step": s, "loss": 1.0}) for s in (5, 10)] + \
        [json.dumps({"type": "valid", "step": 10, "score": 1.0})] + \
        [json.dumps({"type": "train", "step": s, "loss": 1.0}) for s in (15, 20)] + ['{"type": "train", "st']
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines))               # a torn last line, no newline
    runs.tidy(tmp_path, 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "metrics.jsonl", "notes.txt"]
    assert [(r["type"], r["step"]) for r in rows(tmp_path)] == [("train", 5), ("train", 10), ("valid", 10)]
    assert (tmp_path / "metrics.jsonl").read_text().endswith("\n")
    runs.tidy(tmp_path, 10)                                                 # nothing more to do
    assert len(rows(tmp_path)) == 3
    runs.tidy(tmp_path / "missing", 0)                                      # no folder: nothing to tidy


def test_a_restart_cleans_up_after_a_killed_run(cli, charlm_model, tmp_path):
    """As if a run were killed after step 20's checkpoint, mid-save, having logged steps 21-25: the restart
    removes the temporary file and the rows after step 20, then logs those steps once."""
    run = charlm_model.copy_to(tmp_path / "run")
    assert step_of(run / "last.pt") == 20
    (run / ".last.pt.k1ll3d.tmp").write_bytes((run / "last.pt").read_bytes()[:1000])
    with open(run / "metrics.jsonl", "a") as log:
        log.writelines(json.dumps({"type": "train", "step": step, "loss": 9.0, "ghost": True}) + "\n"
                       for step in range(21, 26))
        log.write(json.dumps({"type": "valid", "step": 25, "score": 99.0, "ghost": True}) + "\n")
        log.write('{"type": "train", "step": 26, "lo')
    result = cli.run("train", "charlm", "--text-file", charlm_model.data / "text.txt", "--preset", "tiny",
                     "--max-steps", 24, "--set", "train.eval_every=10", "--set", "data.streams=2",
                     "--set", "train.threads=1", "--out", run)
    assert result.exit_code == 0, result.output
    assert not list(run.glob(".*.tmp"))
    records = rows(run)
    assert not any(r.get("ghost") for r in records)
    for kind in ("train", "valid"):
        steps = [r["step"] for r in records if r["type"] == kind]
        assert steps == sorted(set(steps)), (kind, steps)
    assert [r["step"] for r in records if r["type"] == "train"] == [20]         # logged every 20 (the run's own)
    assert [r["step"] for r in records if r["type"] == "valid"] == [10, 20, 24]


# === the NaN guard, with a stub task ============================================================================

class Doubling(Task):
    """y = 2x with one weight; the loss (`nan_loss`) or the gradient (`nan_grad`) is NaN at the listed updates
    (counted from 1). Records the weight at the start of every update. `signal_at`: send this process a signal
    (signum) during that update."""

    name = "doubling"

    def __init__(self, nan_loss=(), nan_grad=(), scores=None, signal_at=None):
        self.nan_loss, self.nan_grad = set(nan_loss), set(nan_grad)
        self.scores = iter(scores) if scores is not None else None
        self.signal_at = signal_at
        self.update = 0
        self.weights: list[float] = []
        self.valid_x = torch.linspace(-1, 1, 8)[:, None]

    def batches(self, epoch):
        xs = torch.randn(8, 4, 1, generator=torch.Generator().manual_seed(epoch))
        return [(x, 2 * x) for x in xs]

    def loss(self, model, batch):
        self.update += 1
        self.weights.append(model.weight.item())
        x, y = batch
        loss = nn.functional.mse_loss(model(x), y)
        if self.update in self.nan_loss:
            loss = loss * math.nan
        if self.update in self.nan_grad:        # the value stays finite (0 * 0); its gradient is 0 * inf = NaN
            loss = loss + 0 * torch.sqrt(model.weight - model.weight.detach()).sum()
        if self.signal_at and self.update == self.signal_at[0]:
            signum = self.signal_at[1]
            handler = signal.getsignal(signum)
            assert handler not in (signal.SIG_DFL, signal.default_int_handler), "the trainer catches no signals"
            os.kill(os.getpid(), signum)
        return loss, {"tokens": x.numel(), "nll": float(loss.detach()) * x.numel()}

    def validate(self, model):
        mse = float(nn.functional.mse_loss(model(self.valid_x), 2 * self.valid_x))
        score = next(self.scores) if self.scores is not None else -mse
        return Validation({"valid_mse": mse}, score)

    def make_checkpoint(self, model):
        return ckpt_io.Checkpoint(self.name, {"model": {}}, model.state_dict())


def trainer(run_dir, task, **overrides) -> tuple[nn.Module, Trainer]:
    base = {"max_steps": 12, "eval_every": 4, "log_every": 1, "patience": 100, "label_smoothing": 0.0,
            "threads": 1, "max_nonfinite": 3, "optim": {"lr": 0.1, "schedule": "constant", "clip_norm": 0.0}}
    torch.manual_seed(0)
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    return model, Trainer(model, task, from_dict(TrainConfig, base | overrides), run_dir)


@pytest.mark.parametrize("kind", ["nan_loss", "nan_grad"])
def test_a_non_finite_update_is_skipped_and_the_weights_stay(tmp_path, kind):
    task = Doubling(**{kind: (3, 4)})
    model, t = trainer(tmp_path, task)
    state = t.fit()
    assert state.stopped == "max_steps" and state.step == 12
    assert state.skipped == 2 and state.nonfinite == 0
    w = task.weights                                      # w[k] is the weight at the start of update k + 1
    assert w[2] == w[3] == w[4]                           # updates 3 and 4 changed nothing
    assert w[1] != w[2] and w[4] != w[5]                  # the others did
    assert w[1] < w[5] < model.weight.item() < 2.5       # and the run still learns y = 2x
    logged = [json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in metrics.jsonl"))
              for line in (tmp_path / "metrics.jsonl").read_text().split("\n") if line]
    train = [r for r in logged if r["type"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 5, 6, 7, 8, 9, 10, 11, 12]      # skipped updates are not logged
    assert all(math.isfinite(r["loss"]) for r in train)
    assert finite_weights(tmp_path / "best.pt") and finite_weights(tmp_path / "last.pt")


def finite_weights(path: Path) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in ckpt_io.load(path).model.values())


def test_max_nonfinite_in_a_row_stop_the_run_as_diverged(tmp_path):
    """NaN from update 6 on: updates 6, 7, 8 are skipped, the third stops the run; the checkpoints stay those of
    step 4, the last good validation."""
    task = Doubling(nan_loss=range(6, 100))
    model, t = trainer(tmp_path, task, max_steps=100)
    with pytest.raises(TrainingStopped, match="diverged") as stopped:
        t.fit()
    assert stopped.value.exit_code == 1
    assert "3 updates in a row" in str(stopped.value) and "train.max_nonfinite" in str(stopped.value)
    assert t.state.step == 8 and t.state.stopped == "diverged" and t.state.skipped == 3
    assert step_of(tmp_path / "last.pt") == step_of(tmp_path / "best.pt") == 4
    assert finite_weights(tmp_path / "last.pt") and finite_weights(tmp_path / "best.pt")
    assert model.weight.item() == task.weights[5]        # the weight of the last good update
    assert not list(tmp_path.glob(".*.tmp"))


def test_non_finite_updates_apart_never_stop_the_run(tmp_path):
    """Two NaN updates, then a good one, then two more: never 3 in a row."""
    _, t = trainer(tmp_path, Doubling(nan_loss=(2, 3, 5, 6)))
    assert t.fit().stopped == "max_steps" and t.state.skipped == 4


def test_a_run_that_diverges_before_any_validation_writes_no_checkpoint(tmp_path):
    _, t = trainer(tmp_path, Doubling(nan_loss=range(1, 100)))
    with pytest.raises(TrainingStopped, match="no checkpoint was written"):
        t.fit()
    assert not (tmp_path / "best.pt").exists() and not (tmp_path / "last.pt").exists()


@pytest.mark.parametrize("scores, best_step", [([1.0, math.nan, 2.0], 12), ([1.0, math.nan, 0.5], 4),
                                               ([math.nan, math.nan, math.nan], None),
                                               ([math.inf, 1.0, math.nan], 8), ([-math.inf, -1.0, math.nan], 8)])
def test_a_non_finite_score_never_becomes_best(tmp_path, scores, best_step):
    _, t = trainer(tmp_path, Doubling(scores=scores))
    state = t.fit()
    assert math.isfinite(state.best_score) or best_step is None
    if best_step is None:
        assert not (tmp_path / "best.pt").exists() and state.best_score == -math.inf
    else:
        assert step_of(tmp_path / "best.pt") == best_step
    valid = [r for r in rows(tmp_path) if r["type"] == "valid"]             # NaN is logged as null, valid JSON
    assert [r["score"] if r["score"] is not None else "null" for r in valid] == \
        [s if math.isfinite(s) else "null" for s in scores]


@pytest.mark.parametrize("signum, code, reason", [(signal.SIGINT, 130, "interrupted"),
                                                  (signal.SIGTERM, 143, "terminated")])
def test_a_signal_during_an_update_saves_last_pt_and_resumes_there(tmp_path, signum, code, reason):
    """The update in progress finishes (the stop is agreed at the next update's start, so it may take one more),
    last.pt holds it (no validation since step 4), the handlers are back to what they were; a new trainer resumes
    there and ends where an uninterrupted run ends."""
    before = signal.getsignal(signum)
    task = Doubling(signal_at=(6, signum))
    _, t = trainer(tmp_path / "run", task)
    with pytest.raises(TrainingStopped, match=reason) as stopped:
        t.fit()
    stop = t.state.step
    assert stop in (6, 7) and f"{reason} at step {stop};" in str(stopped.value)   # at most one update later
    assert stopped.value.exit_code == code and signal.getsignal(signum) == before
    assert step_of(tmp_path / "run" / "last.pt") == stop and step_of(tmp_path / "run" / "best.pt") == 4
    resumed_model, again = trainer(tmp_path / "run", Doubling())
    assert again.resume() and again.state.step == stop
    assert again.fit().step == 12
    straight, t2 = trainer(tmp_path / "straight", Doubling())
    t2.fit()
    assert torch.allclose(resumed_model.weight, straight.weight, atol=1e-6)
