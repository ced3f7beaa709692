"""Run folders: starting or resuming a run, the checkpoints a run keeps, threads and memory settings.

A run folder holds metrics.jsonl, last.pt (everything for an exact resume), best.pt and, with
`train.keep_checkpoints` N, the weights of the last N validations as step-N.pt (for `export --average`).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from nmt import allocator
from nmt import checkpoint as ckpt_io
from nmt import distributed as dist_io
from nmt.config import TrainConfig, from_dict
from nmt.tasks.base import Task
from nmt.training import Trainer


def kept_checkpoints(run_dir: str | Path, up_to: int | None = None) -> list[Path]:
    """The step-N.pt files of a run folder, oldest first (those of steps <= up_to, when given)."""
    found = []
    for path in Path(run_dir).glob("step-*.pt"):
        step = path.stem.removeprefix("step-")
        if step.isdigit() and (up_to is None or int(step) <= up_to):
            found.append((int(step), path))
    return [path for _, path in sorted(found)]


def average_kept(path: str | Path, n: int) -> tuple[ckpt_io.Checkpoint, list[Path]]:
    """The mean weights of the n kept validation checkpoints (step-*.pt beside `path`) ending at `path`'s step,
    and their paths. A CheckpointError says how many there are when fewer than n."""
    path = Path(path)
    ckpt = ckpt_io.load(path)
    step = ckpt.meta.get("step") or (ckpt.train_state or {}).get("trainer", {}).get("step")
    window = kept_checkpoints(path.parent, up_to=step)[-n:] if step is not None else []
    if len(window) < n or window[-1].name != f"step-{step}.pt":
        raise ckpt_io.CheckpointError(
            f"--average {n}: {path.parent} keeps {len(window)} validation checkpoints up to step {step} "
            "(train with --set train.keep_checkpoints=N)")
    return ckpt_io.average([ckpt_io.load(p) for p in window]), window


def start_run(setup, run_dir: str | Path, task: str, setup_cls):
    """Memory settings, process group, threads and seed for a run, then `load_run`: (the run's setup, its
    tokenizers), or (setup, None) if new. Under torchrun every rank calls this; the processes of one machine share
    its cores."""
    allocator.configure()
    ctx = dist_io.init(setup.train.device)
    set_threads(setup.train.threads, ctx.local_world)
    torch.manual_seed(setup.train.seed)      # same seed, same initial weights
    resumed = load_run(run_dir, task, setup_cls, setup)
    return resumed if resumed else (setup, None)


def fit_run(model: nn.Module, task: Task, config: TrainConfig, run_dir: str | Path, callbacks=()):
    """Train (resuming from run_dir/last.pt when it exists) -> (final state, run_dir)."""
    ctx = dist_io.init(config.device)
    trainer = Trainer(model, task, config, run_dir, list(callbacks), ctx)
    trainer.resume()
    try:
        return trainer.fit(), Path(run_dir)
    finally:
        dist_io.shutdown(ctx)


def main_tokenizers(make, ctx_device: str = "cpu") -> dict:
    """Tokenizers built by rank 0 (`make()` -> {name: tokenizer}) and sent to every rank, so all ranks share one
    vocabulary even where training a tokenizer is not deterministic. Shared objects stay shared."""
    ctx = dist_io.init(ctx_device)
    if not ctx.distributed:
        return make()
    toks = make() if ctx.is_main else None
    states = dist_io.broadcast({k: v.to_state() for k, v in toks.items()} if toks else None, ctx)
    if toks:
        return toks
    return tokenizers_from_states(states)


def tokenizers_from_states(states: dict) -> dict:
    """{name: tokenizer state} -> {name: tokenizer}; equal states (a joint vocabulary) give one shared object."""
    from nmt.tokenizers import tokenizer_from_state
    built, seen = {}, {}
    for name, state in states.items():
        key = next((k for k, v in seen.items() if ckpt_io.same_state(v, state)), None)
        built[name] = built[key] if key else tokenizer_from_state(state)
        seen[name] = state
    return built


RUN_OPTIONS = ("max_steps", "max_minutes", "device", "threads", "accumulate")


def load_run(run_dir: str | Path, task: str, setup_cls, new_setup):
    """For a run folder holding last.pt: the run's own setup (with the new run limits) and tokenizers.

    Returns (setup, tokenizers) or None when there is nothing to resume. Resuming keeps the tokenizers and
    hyperparameters the run started with; only the RUN_OPTIONS (limits, device, threads, accumulation) come from
    the new command.
    """
    last = Path(run_dir) / "last.pt"
    if not last.exists():
        return None
    ckpt = ckpt_io.load(last, task=task)
    setup = from_dict(setup_cls, ckpt.config["setup"])
    for key in RUN_OPTIONS:                 # how to run, not what to learn: the new command decides
        setattr(setup.train, key, getattr(new_setup.train, key))
    return setup, tokenizers_from_states(ckpt.tokenizers)


def set_threads(threads: int = 0, processes: int = 1) -> None:
    """`threads` torch threads, or (0) this process's share of the machine's cores."""
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // processes))
