"""Run folders: starting or resuming a run, the checkpoints a run keeps, threads and memory settings.

A run folder holds metrics.jsonl, last.pt (everything for an exact resume), best.pt and, with
`train.keep_checkpoints` N, the weights of the last N validations as step-N.pt (for `export --average`).
"""
from __future__ import annotations

import json
import math
import os
import socket
from pathlib import Path

import torch
from torch import nn

from nmt import allocator
from nmt import checkpoint as ckpt_io
from nmt import distributed as dist_io
from nmt.config import ConfigError, TrainConfig, from_dict, to_dict
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


def start_run(setup, run_dir: str | Path, task: str, setup_cls, callbacks=()):
    """Memory settings, process group, threads and seed for a run, then `load_run`: (the run's setup, its
    tokenizers), or (setup, None) if new; what a resume keeps and takes goes to the callbacks' `on_note`. Under
    torchrun every rank calls this; the processes of one machine share its cores."""
    allocator.configure()
    ctx = dist_io.init(setup.train.device)
    set_threads(setup.train.threads, ctx.local_world)
    torch.manual_seed(setup.train.seed)      # same seed, same initial weights
    resumed = load_run(run_dir, task, setup_cls, setup)
    if not resumed:
        return setup, None
    setup, tokenizers, notes = resumed
    for note in notes if ctx.is_main else ():
        for cb in callbacks:
            getattr(cb, "on_note", lambda _text: None)(note)
    return setup, tokenizers


def fit_run(model: nn.Module, task: Task, config: TrainConfig, run_dir: str | Path, callbacks=()):
    """Train (resuming from run_dir/last.pt when it exists) -> (final state, run_dir), holding the run folder's
    lock throughout (a second run on the folder is refused)."""
    ctx = dist_io.init(config.device)
    if ctx.is_main:
        RunLock(run_dir).acquire()
    try:
        trainer = Trainer(model, task, config, run_dir, list(callbacks), ctx)
        trainer.resume()
        if ctx.is_main:
            tidy(run_dir, trainer.state.step)
        return trainer.fit(), Path(run_dir)
    finally:
        if ctx.is_main:
            RunLock(run_dir).release()
        dist_io.shutdown(ctx)


def tidy(run_dir: str | Path, step: int) -> None:
    """Before (re)starting at `step`: remove the temporary files of a save that was killed, and the metrics.jsonl
    rows logged after the checkpoint being resumed (they will be logged again)."""
    run_dir = Path(run_dir)
    for tmp in run_dir.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    log = run_dir / "metrics.jsonl"
    if log.exists():
        lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if _step_of(line) <= step]
        if len(kept) < len(lines):
            ckpt_io.write_atomic(log, "".join(kept).encode("utf-8"))


def _step_of(line: str) -> float:
    try:
        return json.loads(line).get("step", 0)
    except (ValueError, AttributeError):
        return math.inf                       # a torn last line: dropped


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


RUN_OPTIONS = ("max_steps", "max_minutes", "device", "precision", "threads", "accumulate")
# model sizes filled in from the tokenizers (or the tagger's context LMs) when a run starts: never a
# difference the user asked for
FILLED = {"src_vocab_size", "tgt_vocab_size", "vocab_size", "word_vocab_size", "char_vocab_size", "num_tags",
          "tie_src_tgt", "context_vocab", "context_embed", "context_hidden", "context_layers"}


def load_run(run_dir: str | Path, task: str, setup_cls, new_setup):
    """For a run folder holding last.pt: the run's own setup (with the new run options), its tokenizers, and
    notes saying which settings came from where.

    Returns (setup, tokenizers, notes) or None when there is nothing to resume. A resume keeps the model, the
    tokenizers and every hyperparameter the run started with; only the RUN_OPTIONS (limits, device, threads,
    accumulation) come from the new command. A command that asks for another model or tokenizer is refused.
    """
    last = Path(run_dir) / "last.pt"
    if not last.exists():
        return None
    ckpt = ckpt_io.load(last, task=task)
    setup = from_dict(setup_cls, ckpt.config["setup"])
    step = (ckpt.train_state or {}).get("trainer", {}).get("step", 0)
    kept, taken = _differences(to_dict(setup), to_dict(new_setup))
    refused = [k for k in kept if k.split(".")[0] in ("model", "tokenizer")]
    if refused:
        raise ConfigError(f"{last} was trained with {_settings(refused, kept, 0)}; this command asks for "
                          f"{_settings(refused, kept, 1)}: a resumed run keeps its model (use another --out)")
    for key in RUN_OPTIONS:                 # how to run, not what to learn: the new command decides
        setattr(setup.train, key, getattr(new_setup.train, key))
    notes = [f"resuming {last} at step {step}"]
    if kept:
        notes.append(f"kept from the saved run: {_settings(kept, kept, 0)} (this command: {_settings(kept, kept, 1)})")
    if taken:
        notes.append(f"from this command: {_settings(taken, taken, 1)}")
    return setup, tokenizers_from_states(ckpt.tokenizers), notes


def _differences(saved: dict, new: dict, prefix: str = "") -> tuple[dict, dict]:
    """Dotted keys whose values differ, as {key: (saved, new)}: those a resume keeps, and the run options."""
    kept, taken = {}, {}
    for key, value in saved.items():
        dotted = prefix + key
        if isinstance(value, dict):
            k, t = _differences(value, new.get(key, {}), dotted + ".")
            kept, taken = kept | k, taken | t
        elif not (dotted.startswith("model.") and key in FILLED) and new.get(key) != value:
            run_option = dotted.startswith("train.") and key in RUN_OPTIONS
            (taken if run_option else kept)[dotted] = (value, new.get(key))
    return kept, taken


def _settings(keys, values: dict, side: int) -> str:
    return ", ".join(f"{k}={values[k][side]}" for k in keys)


class RunLock:
    """`run.lock` in a run folder: the host, pid and start time of the process training there. A second run on
    the folder is refused while that process lives; the lock of a dead process (kill -9) is taken over."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / "run.lock"
        self.me = {"host": socket.gethostname(), "pid": os.getpid(), "started": _start_time(os.getpid())}

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner == self.me:
                    return                                   # this process holds it already
                if owner is None or self._dead(owner):
                    self.path.unlink(missing_ok=True)
                    continue
                raise ckpt_io.CheckpointError(
                    f"{self.path.parent} is in use by process {owner['pid']} on {owner['host']} (its run.lock); "
                    "wait for that run to end, or train into another --out")
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(self.me))
            return
        raise ckpt_io.CheckpointError(f"cannot take the lock {self.path}")

    def release(self) -> None:
        if self._owner() == self.me:
            self.path.unlink(missing_ok=True)

    def _owner(self) -> dict | None:
        try:
            owner = json.loads(self.path.read_text(encoding="utf-8"))
            return owner if isinstance(owner, dict) and {"host", "pid", "started"} <= set(owner) else None
        except (OSError, ValueError):
            return None

    def _dead(self, owner: dict) -> bool:
        """Only a process of this machine can be checked: alive means that pid runs, started when it did."""
        if owner["host"] != self.me["host"]:
            return False
        return _start_time(owner["pid"]) != owner["started"] or _start_time(owner["pid"]) is None


def _start_time(pid: int) -> str | None:
    """When process `pid` started (Linux: /proc/PID/stat field 22), "alive" elsewhere, None when it is gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "alive"


def set_threads(threads: int = 0, processes: int = 1) -> None:
    """`threads` torch threads, else NMT_THREADS, else this process's share of the machine's cores."""
    from nmt import threads as threads_io
    threads_io.use("batch", threads, processes)
