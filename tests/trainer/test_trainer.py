"""The trainer (nmt/training.py) driven by a stub task, as minGPT tests its trainer: it knows nothing of real tasks.

The stub learns y = 2x with one linear weight. It checks what the trainer promises any task: the loss goes down,
validations write metrics.jsonl, best.pt and last.pt, patience stops a stalled run, a resumed run ends where a
straight one does, callbacks see the run, and a task's own sharding is used only when it declares it.
"""
import json
import subprocess
import sys

import pytest
import torch
from torch import nn

from nmt import checkpoint as ckpt_io
from nmt.config import ConfigError, TrainConfig, from_dict
from nmt.tasks.base import Task, Validation
from nmt.training import Trainer, learning_rate


class Double(Task):
    """y = 2x: 8 batches of 4 numbers an epoch (the same for the same epoch), validated by minus the MSE."""

    name = "double"

    def __init__(self, batches: int = 8, stalled: bool = False):
        self.n, self.stalled = batches, stalled
        self.valid_x = torch.linspace(-1, 1, 16)[:, None]
        self.shard_calls = []

    def batches(self, epoch):
        gen = torch.Generator().manual_seed(epoch)
        xs = torch.randn(self.n, 4, 1, generator=gen)
        return [(x, 2 * x) for x in xs]

    def loss(self, model, batch):
        x, y = batch
        loss = nn.functional.mse_loss(model(x), y)
        return loss, {"tokens": x.numel(), "nll": float(loss.detach()) * x.numel()}

    def validate(self, model):
        mse = float(nn.functional.mse_loss(model(self.valid_x), 2 * self.valid_x))
        return Validation({"valid_mse": mse}, 0.0 if self.stalled else -mse, [(f"{mse:.4f}",)])

    def make_checkpoint(self, model):
        return ckpt_io.Checkpoint(self.name, {"model": {}}, model.state_dict(), meta={"stub": "yes"})


class SelfSharding(Double):
    shards_itself = True

    def shard(self, rank, world):
        self.shard_calls.append((rank, world))


class Recorder:
    """A callback that writes down what the trainer tells it."""

    def __init__(self):
        self.events = []

    def on_start(self, state):
        self.events.append(("start", state.step))

    def on_log(self, record):
        self.events.append(("log", record["step"]))

    def on_validate(self, record, samples):
        self.events.append(("validate", record["step"], len(samples)))

    def on_end(self, state):
        self.events.append(("end", state.stopped))


def config(**overrides) -> TrainConfig:
    base = {"max_steps": 12, "eval_every": 4, "log_every": 2, "patience": 100, "label_smoothing": 0.0,
            "threads": 1, "optim": {"lr": 0.1, "schedule": "constant", "clip_norm": 0.0}}
    for key, value in overrides.items():
        if key == "optim":
            base["optim"] = {**base["optim"], **value}
        else:
            base[key] = value
    return from_dict(TrainConfig, base)


def fit(run_dir, task=None, callbacks=None, resume=False, **overrides):
    torch.manual_seed(0)
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    trainer = Trainer(model, task or Double(), config(**overrides), run_dir, callbacks)
    if resume:
        trainer.resume()
    return model, trainer.fit()


def records(run_dir, kind):
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if r["type"] == kind]


def test_the_loss_goes_down_and_the_run_folder_fills(tmp_path):
    model, state = fit(tmp_path)
    assert state.step == 12 and state.stopped == "max_steps"
    assert abs(model.weight.item() - 2.0) < abs(0.0 - 2.0) / 2                      # learned towards y = 2x
    train, valid = records(tmp_path, "train"), records(tmp_path, "valid")
    assert [r["step"] for r in train] == [2, 4, 6, 8, 10, 12]
    assert train[-1]["loss"] < train[0]["loss"]
    assert [r["step"] for r in valid] == [4, 8, 12]
    assert valid[-1]["valid_mse"] < valid[0]["valid_mse"] and valid[-1]["best"] == valid[-1]["score"]
    assert {"best.pt", "last.pt", "metrics.jsonl"} <= {p.name for p in tmp_path.iterdir()}
    best, last = ckpt_io.load(tmp_path / "best.pt", task="double"), ckpt_io.load(tmp_path / "last.pt")
    assert best.meta == {"stub": "yes"} and best.scores == {"valid_mse": valid[-1]["valid_mse"]}
    assert last.train_state["trainer"]["step"] == 12 and torch.equal(last.model["weight"], model.weight.detach())


class Scripted(Double):
    """Validation scores from a script, whatever the model does."""

    def __init__(self, scores):
        super().__init__()
        self.scores = iter(scores)

    def validate(self, model):
        score = next(self.scores)
        return Validation({"scripted": score}, score)


def test_best_pt_holds_the_best_validation_and_last_pt_the_latest(tmp_path):
    _, state = fit(tmp_path, task=Scripted([1.0, 3.0, 2.0, 0.5]), max_steps=16, patience=5)
    best, last = ckpt_io.load(tmp_path / "best.pt"), ckpt_io.load(tmp_path / "last.pt")
    assert best.scores == {"scripted": 3.0} and best.train_state["trainer"]["step"] == 8
    assert last.scores == {"scripted": 0.5} and last.train_state["trainer"]["step"] == 16
    assert state.best_score == 3.0 and state.bad_validations == 2
    assert [r["best"] for r in records(tmp_path, "valid")] == [1.0, 3.0, 3.0, 3.0]


def test_patience_stops_a_stalled_run(tmp_path):
    """The score never improves after the first validation: patience 2 stops at the third."""
    _, state = fit(tmp_path, task=Double(stalled=True), max_steps=100, patience=2)
    assert state.stopped == "early_stopping" and state.step == 12
    assert [r["step"] for r in records(tmp_path, "valid")] == [4, 8, 12]


def test_max_epochs_ends_a_run_with_a_final_validation(tmp_path):
    _, state = fit(tmp_path, max_steps=0, max_epochs=2, eval_every=5)
    assert state.stopped == "max_epochs" and state.step == 16 and state.epoch == 2
    assert [r["step"] for r in records(tmp_path, "valid")] == [5, 10, 15, 16]


def test_plateau_schedule_decays_on_stalls(tmp_path):
    _, state = fit(tmp_path, task=Double(stalled=True), max_steps=12,
                   optim={"schedule": "plateau", "plateau_patience": 1, "plateau_factor": 0.5, "min_lr": 0.0})
    assert state.lr_scale == 0.25                            # two stalled validations after the first
    lrs = {r["step"]: r["lr"] for r in records(tmp_path, "train")}
    assert lrs[6] == pytest.approx(0.1) and lrs[10] == pytest.approx(0.05) and lrs[12] == pytest.approx(0.05)


def test_resume_ends_where_a_straight_run_ends(tmp_path):
    straight, _ = fit(tmp_path / "straight", max_steps=12)
    fit(tmp_path / "split", max_steps=6)                     # stops mid-epoch, after a validation at step 4
    resumed, state = fit(tmp_path / "split", resume=True, max_steps=12)
    assert state.step == 12
    assert torch.allclose(straight.weight, resumed.weight, atol=1e-7)
    assert records(tmp_path / "split", "valid")[-1]["step"] == 12


def test_callbacks_see_the_whole_run(tmp_path):
    recorder = Recorder()
    fit(tmp_path, callbacks=[recorder], max_steps=8)
    assert recorder.events == [("start", 0), ("log", 2), ("log", 4), ("validate", 4, 1), ("log", 6), ("log", 8),
                               ("validate", 8, 1), ("end", "max_steps")]


def test_shard_is_called_only_when_the_task_declares_it(tmp_path):
    plain = Double()
    plain.shard = lambda rank, world: pytest.fail("shard called on a task that does not shard itself")
    fit(tmp_path / "plain", task=plain, max_steps=2)
    sharding = SelfSharding()
    fit(tmp_path / "sharding", task=sharding, max_steps=2)
    assert sharding.shard_calls == [(0, 1)]                    # rank 0 of 1, once
    with pytest.raises(NotImplementedError, match="does not shard"):
        Double().shard(0, 2)


def test_accumulating_batches_takes_several_per_update(tmp_path):
    _, state = fit(tmp_path, max_steps=0, max_epochs=1, accumulate=2, eval_every=100)
    assert state.step == 4                                   # 8 batches, 2 per update
    with pytest.raises(ConfigError, match="fewer than the 16"):
        fit(tmp_path / "few", accumulate=16)


def test_bad_settings_built_around_the_config_checks_are_refused(tmp_path):
    """The trainer checks what a hand-built TrainConfig (no from_dict) can still get wrong."""
    model = nn.Linear(1, 1)
    with pytest.raises(ConfigError, match="keep_checkpoints"):
        Trainer(model, Double(), TrainConfig(keep_checkpoints=-1), tmp_path)
    with pytest.raises(ConfigError, match="accumulate"):
        Trainer(model, Double(), TrainConfig(accumulate=0), tmp_path)


def test_kept_checkpoints_are_weights_only(tmp_path):
    from nmt.runs import kept_checkpoints
    fit(tmp_path, max_steps=16, keep_checkpoints=2)          # validations at 4, 8, 12, 16
    kept = kept_checkpoints(tmp_path)
    assert [p.name for p in kept] == ["step-12.pt", "step-16.pt"]
    ckpt = ckpt_io.load(kept[-1])
    assert ckpt.train_state is None and ckpt.meta["step"] == 16


def test_learning_rate_schedules():
    from nmt.config import OptimConfig
    warm = OptimConfig(lr=1.0, warmup_steps=10, schedule="inverse_sqrt")
    assert learning_rate(warm, 0, 1.0) == pytest.approx(0.1)
    assert learning_rate(warm, 40, 1.0) == pytest.approx(0.5)
    cosine = OptimConfig(lr=1.0, min_lr=0.0, schedule="cosine")
    assert learning_rate(cosine, 50, 1.0, total_steps=100) == pytest.approx(0.5)
    assert learning_rate(cosine, 100, 1.0, total_steps=100) == pytest.approx(0.0)
    plateau = OptimConfig(lr=1.0, min_lr=0.1, schedule="plateau")
    assert learning_rate(plateau, 5, 0.5) == 0.5 and learning_rate(plateau, 5, 0.01) == 0.1
    assert learning_rate(OptimConfig(lr=0.3, schedule="constant"), 3, 0.01) == 0.3
    # cosine over the time budget: whichever of steps and time is further through decides
    assert learning_rate(cosine, 50, 1.0, total_steps=100, time_progress=0.25) == pytest.approx(0.5)
    assert learning_rate(cosine, 50, 1.0, total_steps=100, time_progress=1.0) == pytest.approx(0.0)
    assert learning_rate(cosine, 7, 1.0, time_progress=0.5) == pytest.approx(0.5)
    assert learning_rate(cosine, 7, 1.0) == pytest.approx(1.0)                      # neither: no decay


class Clock:
    """A stand-in for the time module whose clock moves 10 s at every training step (the task's loss)."""

    def __init__(self):
        self.now = 1000.0

    def time(self):
        return self.now


class Timed(Double):
    def __init__(self, clock: Clock):
        super().__init__()
        self.clock = clock

    def loss(self, model, batch):
        self.clock.now += 10.0
        return super().loss(model, batch)


def test_cosine_runs_to_the_time_budget_and_the_budget_spans_resumes(tmp_path, monkeypatch):
    import nmt.training
    clock = Clock()
    monkeypatch.setattr(nmt.training, "time", clock)
    cosine = {"lr": 1.0, "min_lr": 0.0, "schedule": "cosine"}
    _, state = fit(tmp_path / "a", Timed(clock), max_steps=0, max_minutes=1.0, log_every=1, optim=cosine)
    assert state.stopped == "max_minutes" and state.step == 7         # 60 s of 10 s steps, seen the step after
    lrs = [r["lr"] for r in records(tmp_path / "a", "train")]
    assert lrs[0] == 1.0 and all(a > b for a, b in zip(lrs, lrs[1:])) and lrs[-1] == pytest.approx(0.0)
    # the budget counts over all resumed parts: 40 s in the first, so the resumed run has 20 s left
    _, first = fit(tmp_path / "b", Timed(clock), max_steps=4, max_minutes=1.0, optim=cosine)
    assert first.stopped == "max_steps"
    _, resumed = fit(tmp_path / "b", Timed(clock), resume=True, max_steps=0, max_minutes=1.0, optim=cosine)
    assert resumed.stopped == "max_minutes" and resumed.step == 7


class DtypeSeen(Double):
    def loss(self, model, batch):
        self.seen = model(batch[0]).dtype
        return super().loss(model, batch)


@pytest.mark.parametrize("precision, dtype", [("bfloat16", torch.bfloat16), ("float32", torch.float32),
                                              ("auto", torch.float32)])
def test_precision_sets_the_products_dtype_on_the_cpu(tmp_path, precision, dtype):
    task = DtypeSeen()
    model, _ = fit(tmp_path, task, max_steps=2, precision=precision)
    assert task.seen == dtype and model.weight.dtype == torch.float32            # float32 master weights


def test_native_precision_follows_the_cpu(monkeypatch):
    from nmt import precision
    cpu = torch.device("cpu")
    for native in (True, False):
        monkeypatch.setattr(precision, "cpu_bfloat16", lambda native=native: native)
        assert precision.uses_bfloat16(cpu, "native") is native
        assert precision.uses_bfloat16(cpu, "auto") is False and precision.uses_bfloat16(cpu, "bfloat16")
    with pytest.raises(ValueError, match="unknown precision"):
        precision.uses_bfloat16(cpu, "fp8")


def test_the_trainer_imports_no_task():
    """nmt.training sees tasks only through nmt.tasks.base: importing it loads no task module."""
    code = ("import sys, nmt.training; "
            "print(sorted(m for m in sys.modules if m.startswith('nmt.tasks.') and m != 'nmt.tasks.base'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
