"""One trainer for every task. It knows nothing about translation, characters or tags: a `Task` supplies batches,
the loss and validation; callbacks receive progress (the CLI draws it). The trainer never prints.

Each run folder holds `metrics.jsonl` (one JSON object per logged step and per validation), `last.pt` (written at
every validation and when the run stops: everything needed for an exact resume) and `best.pt` (the best
validation score so far). Rerunning the same command on the same folder resumes where `last.pt` left off.
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field, asdict
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import nn

from nmt import checkpoint as ckpt_io
from nmt.config import OptimConfig, TrainConfig


@dataclass
class Validation:
    metrics: dict[str, float]                   # every number worth logging
    score: float                                # the one used for early stopping (higher is better)
    samples: list[tuple[str, ...]] = field(default_factory=list)   # rows for a sample table


class Task(Protocol):
    name: str

    def batches(self, epoch: int) -> list: ...                                  # the same list for the same epoch
    def loss(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict]: ...   # mean loss, {"tokens", "nll"}
    def validate(self, model: nn.Module) -> Validation: ...
    def make_checkpoint(self, model: nn.Module) -> ckpt_io.Checkpoint: ...     # config + tokenizers + weights


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_index: int = 0          # position inside the epoch's batch list
    best_score: float = -math.inf
    bad_validations: int = 0      # validations since the best
    lr_scale: float = 1.0         # plateau decay factor so far
    plateau_bad: int = 0
    train_seconds: float = 0.0    # over all resumed runs
    stopped: str = ""             # why the last run stopped


def learning_rate(optim: OptimConfig, step: int, lr_scale: float, total_steps: int = 0) -> float:
    """Warmup (linear) then the schedule: plateau (scaled on stalls), inverse_sqrt, cosine or constant."""
    warm = optim.warmup_steps
    if warm and step < warm:
        return optim.lr * (step + 1) / warm
    if optim.schedule == "inverse_sqrt":
        return optim.lr * math.sqrt(max(warm, 1) / max(step, 1))
    if optim.schedule == "cosine" and total_steps:
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        return optim.min_lr + 0.5 * (optim.lr - optim.min_lr) * (1 + math.cos(math.pi * progress))
    if optim.schedule == "plateau":
        return max(optim.min_lr, optim.lr * lr_scale)
    return optim.lr


class Trainer:
    def __init__(self, model: nn.Module, task: Task, config: TrainConfig, run_dir: str | Path,
                 callbacks: list[Any] | None = None):
        self.model, self.task, self.config = model, task, config
        self.run_dir = Path(run_dir)
        self.callbacks = callbacks or []
        o = config.optim
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=tuple(o.betas),
                                           weight_decay=o.weight_decay)
        self.state = TrainState()

    # --- persistence -----------------------------------------------------------------------------------------
    def _save(self, name: str, scores: dict | None = None) -> None:
        ckpt = self.task.make_checkpoint(self.model)
        ckpt.scores.update(scores or {})
        ckpt.train_state = {
            "trainer": asdict(self.state),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
        }
        ckpt_io.save(self.run_dir / name, ckpt)

    def resume(self) -> bool:
        """Load `last.pt` of the run folder if there is one (model, optimizer, RNG, data position, patience)."""
        path = self.run_dir / "last.pt"
        if not path.exists():
            return False
        ckpt = ckpt_io.load(path, task=self.task.name)
        self.model.load_state_dict(ckpt_io.state_dict_float(ckpt.model))
        ts = ckpt.train_state or {}
        self.optimizer.load_state_dict(ts["optimizer"])
        self.state = TrainState(**ts["trainer"])
        torch.set_rng_state(ts["torch_rng"])
        random.setstate(_as_tuple(ts["python_rng"]))
        return True

    def _log(self, record: dict) -> None:
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def _emit(self, event: str, *args) -> None:
        for cb in self.callbacks:
            fn: Callable | None = getattr(cb, event, None)
            if fn:
                fn(*args)

    # --- the loop --------------------------------------------------------------------------------------------
    def fit(self) -> TrainState:
        c, s = self.config, self.state
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if s.step == 0:
            torch.manual_seed(c.seed)
        start = time.time()
        self._emit("on_start", s)
        reason = ""
        window = {"loss": 0.0, "nll": 0.0, "tokens": 0, "t0": time.time(), "steps": 0}
        while not reason and s.epoch < c.max_epochs:
            batches = self.task.batches(s.epoch)
            while s.batch_index < len(batches):
                batch = batches[s.batch_index]
                stats = self._step(batch)
                s.batch_index += 1
                s.step += 1
                for k in ("loss", "nll", "tokens"):
                    window[k] += stats[k]
                window["steps"] += 1
                if s.step % c.log_every == 0:
                    self._report(window)
                    window = {"loss": 0.0, "nll": 0.0, "tokens": 0, "t0": time.time(), "steps": 0}
                reason = self._limits(start)
                if s.step % c.eval_every == 0 or reason:
                    reason = self._validate(start) or reason
                if reason:
                    break
            else:
                s.epoch += 1
                s.batch_index = 0
        s.stopped = reason or "max_epochs"
        if not reason:
            self._validate(start)
        self._emit("on_end", s)
        return s

    def _step(self, batch) -> dict:
        self.model.train()
        lr = learning_rate(self.config.optim, self.state.step, self.state.lr_scale, self.config.max_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss, stats = self.task.loss(self.model, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.clip_norm or math.inf)
        self.optimizer.step()
        tokens = stats["tokens"]
        return {"loss": float(loss.detach()) * tokens, "nll": stats["nll"], "tokens": tokens, "lr": lr,
                "grad_norm": float(grad_norm)}

    def _report(self, window: dict) -> None:
        s, tokens = self.state, max(1, window["tokens"])
        seconds = max(1e-9, time.time() - window["t0"])
        record = {"type": "train", "step": s.step, "epoch": s.epoch, "loss": window["loss"] / tokens,
                  "ppl": math.exp(min(50.0, window["nll"] / tokens)), "tokens_per_s": tokens / seconds,
                  "lr": self.optimizer.param_groups[0]["lr"], "time": time.time()}
        self._log(record)
        self._emit("on_log", record)

    def _limits(self, start: float) -> str:
        c, s = self.config, self.state
        if c.max_steps and s.step >= c.max_steps:
            return "max_steps"
        if c.max_minutes and time.time() - start >= c.max_minutes * 60:
            return "max_minutes"
        return ""

    def _validate(self, start: float) -> str:
        """Validate, checkpoint, update patience and the plateau schedule; return a stop reason or ''."""
        c, s = self.config, self.state
        s.train_seconds += time.time() - start - getattr(self, "_counted", 0.0)
        self._counted = time.time() - start
        self.model.eval()
        with torch.inference_mode():
            result = self.task.validate(self.model)
        improved = result.score > s.best_score
        if improved:
            s.best_score, s.bad_validations = result.score, 0
            s.plateau_bad = 0
        else:
            s.bad_validations += 1
            s.plateau_bad += 1
            if c.optim.schedule == "plateau" and s.plateau_bad >= c.optim.plateau_patience:
                s.lr_scale *= c.optim.plateau_factor
                s.plateau_bad = 0
        record = {"type": "valid", "step": s.step, "epoch": s.epoch, **result.metrics, "score": result.score,
                  "best": s.best_score, "train_minutes": s.train_seconds / 60, "time": time.time()}
        self._log(record)
        reason = "early_stopping" if s.bad_validations >= c.patience else ""
        s.stopped = reason
        scores = {k: v for k, v in result.metrics.items()}
        if improved:
            self._save("best.pt", scores)
        self._save("last.pt", scores)
        self._emit("on_validate", record, result.samples)
        return reason


def _as_tuple(value):
    """torch.load returns lists where random.getstate() had tuples."""
    if isinstance(value, list):
        return tuple(_as_tuple(v) for v in value)
    return value


def start_run(setup, run_dir: str | Path, task: str, setup_cls):
    """Threads and seed for a run, then `load_run`: (the run's setup, its tokenizers) or (setup, None) if new."""
    set_threads(setup.train.threads)
    torch.manual_seed(setup.train.seed)      # same seed, same initial weights
    resumed = load_run(run_dir, task, setup_cls, setup)
    return resumed if resumed else (setup, None)


def fit_run(model: nn.Module, task: Task, config: TrainConfig, run_dir: str | Path, callbacks=()):
    """Train (resuming from run_dir/last.pt when it exists) -> (final state, run_dir)."""
    trainer = Trainer(model, task, config, run_dir, list(callbacks))
    trainer.resume()
    return trainer.fit(), Path(run_dir)


def load_run(run_dir: str | Path, task: str, setup_cls, new_setup):
    """For a run folder holding last.pt: the run's own setup (with the new run limits) and tokenizers.

    Returns (setup, tokenizers) or None when there is nothing to resume. Resuming keeps the tokenizers and
    hyperparameters the run started with; only --max-steps / --max-minutes come from the new command.
    """
    from nmt.config import from_dict
    from nmt.tokenizers import tokenizer_from_state
    last = Path(run_dir) / "last.pt"
    if not last.exists():
        return None
    ckpt = ckpt_io.load(last, task=task)
    setup = from_dict(setup_cls, ckpt.config["setup"])
    setup.train.max_steps, setup.train.max_minutes = new_setup.train.max_steps, new_setup.train.max_minutes
    toks, seen = {}, {}
    for name, state in ckpt.tokenizers.items():   # a joint tokenizer stays one object
        key = next((k for k, v in seen.items() if _same_state(v, state)), None)
        toks[name] = toks[key] if key else tokenizer_from_state(state)
        seen[name] = state
    return setup, toks


def _same_state(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    return all(a[k].equal(b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


def set_threads(threads: int = 0) -> None:
    torch.set_num_threads(threads or os.cpu_count() or 1)
