"""One trainer for every task. It knows nothing about translation, characters or tags: a `Task` supplies batches,
the loss and validation; callbacks receive progress (the CLI draws it). The trainer never prints.

Each run folder holds `metrics.jsonl` (one JSON object per logged step and per validation), `last.pt` (written at
every validation and when the run stops, also on SIGINT / SIGTERM: everything needed for an exact resume) and
`best.pt` (the best validation score so far); with `keep_checkpoints` N, also the weights of the last N
validations as `step-N.pt`, for averaging (`export --average`). Rerunning the same command on the same folder
resumes where `last.pt` left off.

An update whose loss or gradient norm is not finite is skipped (the weights stay as they were) and counted;
`max_nonfinite` of them in a row stop the run as diverged, without writing over the last good checkpoints.
"""
from __future__ import annotations

import contextlib
import json
import math
import random
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from nmt import checkpoint as ckpt_io
from nmt import distributed as dist_io
from nmt.config import ConfigError, OptimConfig, TrainConfig
from nmt.precision import autocast
from nmt.stops import Signals, TrainingStopped
from nmt.tasks.base import Task, Validation  # noqa: F401  (Validation: for the tasks)


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
    nonfinite: int = 0            # updates skipped in a row for a non-finite loss or gradient norm
    skipped: int = 0              # all such updates of the run


def learning_rate(optim: OptimConfig, step: int, lr_scale: float, total_steps: int = 0,
                  time_progress: float = 0.0) -> float:
    """Warmup (linear) then the schedule: plateau (scaled on stalls), inverse_sqrt, cosine or constant. Cosine
    decays over `total_steps` or the time budget (`time_progress`: the share of max_minutes spent), whichever the
    run is further through, so it ends at min_lr on a slow day too."""
    warm = optim.warmup_steps
    if warm and step < warm:
        return optim.lr * (step + 1) / warm
    if optim.schedule == "inverse_sqrt":
        return optim.lr * math.sqrt(max(warm, 1) / max(step, 1))
    if optim.schedule == "cosine" and (total_steps or time_progress):
        by_steps = (step - warm) / max(1, total_steps - warm) if total_steps else 0.0
        progress = min(1.0, max(by_steps, time_progress))
        return optim.min_lr + 0.5 * (optim.lr - optim.min_lr) * (1 + math.cos(math.pi * progress))
    if optim.schedule == "plateau":
        return max(optim.min_lr, optim.lr * lr_scale)
    return optim.lr


class TaskLoss(nn.Module):
    """The model and its task's loss as one module, so DistributedDataParallel sees every use of the weights in
    its forward (tasks call model methods besides forward, e.g. the CRF's loss)."""

    def __init__(self, model: nn.Module, task: Task):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, batch):
        return self.task.loss(self.model, batch)


class Trainer:
    """The training loop, on one process or on each of N data-parallel processes (see nmt.distributed).

    One update consumes `accumulate` batches on every process. Batches come from one list per epoch, the same on
    every rank; rank r of W takes its share of each group of W * accumulate consecutive batches, so `batch_index`
    is a position in that global list and a run resumes with any number of ranks. A task that declares
    `shards_itself` splits its data itself (the character model splits its parallel streams, whose hidden state
    must follow them) and then every rank walks its own list in step.
    """

    def __init__(self, model: nn.Module, task: Task, config: TrainConfig, run_dir: str | Path,
                 callbacks: list[Any] | None = None, ctx: dist_io.Context | None = None):
        self.ctx = ctx or dist_io.Context(device=dist_io.resolve_device(config.device))
        self.model, self.task, self.config = model.to(self.ctx.device), task, config
        self.run_dir = Path(run_dir)
        self.callbacks = callbacks or []
        self.net: nn.Module = TaskLoss(self.model, task)
        if self.ctx.distributed:
            from torch.nn.parallel import DistributedDataParallel
            ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.net, device_ids=ids)    # broadcasts rank 0's weights
        self.self_sharded = task.shards_itself
        if self.self_sharded:
            task.shard(self.ctx.rank, self.ctx.world)
        if config.accumulate < 1:
            raise ConfigError(f"train.accumulate must be at least 1, got {config.accumulate}")
        if config.keep_checkpoints < 0:
            raise ConfigError(f"train.keep_checkpoints must be 0 or more, got {config.keep_checkpoints}")
        o = config.optim
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=tuple(o.betas),
                                           weight_decay=o.weight_decay)
        self.state = TrainState()

    # --- persistence -----------------------------------------------------------------------------------------
    def _rng(self) -> dict:
        return {"torch": torch.get_rng_state(), "python": random.getstate()}

    def _checkpoint(self, scores: dict | None) -> ckpt_io.Checkpoint:
        """The task's checkpoint of the model, weights on the CPU, with these scores."""
        ckpt = self.task.make_checkpoint(self.model)
        ckpt.model = {k: v.cpu() for k, v in ckpt.model.items()}
        ckpt.scores.update(scores or {})
        return ckpt

    def _save(self, name: str, scores: dict | None, rngs: list[dict]) -> None:
        ckpt = self._checkpoint(scores)
        ckpt.train_state = {
            "trainer": asdict(self.state),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": rngs[0]["torch"],
            "python_rng": rngs[0]["python"],
            "rank_rngs": rngs,              # one per rank: an exact resume on the same number of ranks
        }
        ckpt_io.save(self.run_dir / name, ckpt)

    def _keep(self, scores: dict) -> None:
        """The weights alone as step-N.pt (for `export --average`), keeping the last `keep_checkpoints` of them."""
        ckpt = ckpt_io.release(self._checkpoint(scores), half=False)
        ckpt.meta["step"] = self.state.step
        ckpt_io.save(self.run_dir / f"step-{self.state.step}.pt", ckpt)
        from nmt.runs import kept_checkpoints
        for old in kept_checkpoints(self.run_dir)[: -self.config.keep_checkpoints]:
            old.unlink(missing_ok=True)

    def resume(self) -> bool:
        """Load `last.pt` of the run folder if there is one (model, optimizer, RNG, data position, patience)."""
        path = self.run_dir / "last.pt"
        if not path.exists():
            return False
        ckpt = ckpt_io.load(path, task=self.task.name)
        ckpt_io.check_finite(ckpt.model)
        self.model.load_state_dict(ckpt_io.state_dict_float(ckpt.model))
        ts = ckpt.train_state or {}
        self.optimizer.load_state_dict(ts["optimizer"])
        self.state = TrainState(**ts["trainer"])
        rngs = ts.get("rank_rngs") or [{"torch": ts["torch_rng"], "python": ts["python_rng"]}]
        if len(rngs) == self.ctx.world:
            torch.set_rng_state(rngs[self.ctx.rank]["torch"])
            random.setstate(_as_tuple(rngs[self.ctx.rank]["python"]))
        else:       # another number of ranks: fresh, distinct streams (the data position is still exact)
            torch.manual_seed(self.config.seed + 7919 * self.state.step + self.ctx.rank)
            random.seed(self.config.seed + 7919 * self.state.step + self.ctx.rank)
        return True

    def _log(self, record: dict) -> None:
        """One JSON line; non-finite numbers are written as null (JSON has no NaN)."""
        record = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
        with open(self.run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def _emit(self, event: str, *args) -> None:
        if not self.ctx.is_main:             # only rank 0 draws progress
            return
        for cb in self.callbacks:
            fn: Callable | None = getattr(cb, event, None)
            if fn:
                fn(*args)

    # --- the loop --------------------------------------------------------------------------------------------
    def _my_batches(self, batches, index: int) -> tuple[list, int]:
        """This rank's batches for the update starting at `index`, and how far the update moves the index."""
        k, world = self.config.accumulate, self.ctx.world
        if self.self_sharded or world == 1:
            take = [batches[i] for i in range(index, min(len(batches), index + k))]
            return take, len(take)
        group = k * world                      # the tail shorter than a full group is skipped (shuffled anew)
        if index + group > len(batches):
            return [], len(batches) - index
        first = index + self.ctx.rank * k
        return [batches[i] for i in range(first, first + k)], group

    def fit(self) -> TrainState:
        """Train until a limit, early stopping or max_epochs; raises TrainingStopped on a signal or divergence."""
        c, s = self.config, self.state
        if self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        dist_io.barrier(self.ctx)
        if s.step == 0:
            torch.manual_seed(c.seed + self.ctx.rank)      # distinct dropout masks on each rank
        start = self._start = time.time()
        self._time_progress = s.train_seconds / (c.max_minutes * 60) if c.max_minutes else 0.0
        self._emit("on_start", s)
        self._window = {"loss": 0.0, "nll": 0.0, "tokens": 0, "t0": time.time(), "steps": 0}
        reason = ""
        with Signals() as signals:
            while not reason and s.epoch < c.max_epochs:
                reason = self._epoch(start, signals)
        if reason in ("interrupted", "terminated", "diverged"):
            self._stop_early(reason, start)
        if not reason:
            self._validate(start)
        s.stopped = reason or "max_epochs"
        self._emit("on_end", s)
        return s

    def _epoch(self, start: float, signals: Signals) -> str:
        """The rest of the current epoch; returns a stop reason or '' when the epoch ends."""
        c, s = self.config, self.state
        batches = self.task.batches(s.epoch)
        if len(batches) < c.accumulate * (1 if self.self_sharded else self.ctx.world):
            raise ConfigError(f"an epoch has {len(batches)} batches, fewer than the {c.accumulate} x "
                              f"{self.ctx.world} one update needs (accumulate x processes): use smaller batches")
        while s.batch_index < len(batches):
            mine, advance = self._my_batches(batches, s.batch_index)
            s.batch_index += advance
            if not mine:
                continue
            time_up = self.ctx.is_main and self._spent() >= 1.0
            stats = self._step(mine, time_up, signals.caught)
            s.step += 1
            self._account(stats)
            reason = self._limits(stats)
            if reason in ("interrupted", "terminated", "diverged"):
                return reason
            if s.step % c.eval_every == 0 or reason:
                reason = self._validate(start) or reason
            if reason:
                return reason
        s.epoch += 1
        s.batch_index = 0
        return ""

    def _spent(self) -> float:
        """The share of max_minutes trained, resumed parts included (0 without a time limit)."""
        if not self.config.max_minutes:
            return 0.0
        seconds = self.state.train_seconds + time.time() - self._start - getattr(self, "_counted", 0.0)
        return seconds / (self.config.max_minutes * 60)

    def _account(self, stats: dict) -> None:
        """Count a skipped update, or add a good one to the logging window (and log it every log_every steps)."""
        s, w = self.state, self._window
        if not stats["finite"]:
            s.nonfinite, s.skipped = s.nonfinite + 1, s.skipped + 1
            return
        s.nonfinite = 0
        for k in ("loss", "nll", "tokens"):
            w[k] += stats[k]
        w["steps"] += 1
        if s.step % self.config.log_every == 0:
            self._report(w)
            self._window = {"loss": 0.0, "nll": 0.0, "tokens": 0, "t0": time.time(), "steps": 0}

    def _stop_early(self, reason: str, start: float) -> None:
        """On a signal: save last.pt (every rank reaches this at the same step) and raise. On divergence: keep the
        checkpoints of the last good validation and raise."""
        s = self.state
        s.stopped = reason
        if reason == "diverged":
            self._emit("on_end", s)
            kept = (f"the checkpoints in {self.run_dir} are those of the last good validation"
                    if (self.run_dir / "last.pt").exists() else "no checkpoint was written")
            raise TrainingStopped(
                f"training diverged: {s.nonfinite} updates in a row had a non-finite loss or gradient norm (step "
                f"{s.step}); {kept}: lower train.optim.lr, or raise train.max_nonfinite", 1)
        rngs = dist_io.gather(self._rng(), self.ctx)
        if self.ctx.is_main:
            s.train_seconds += time.time() - start - getattr(self, "_counted", 0.0)
            self._save("last.pt", getattr(self, "_scores", {}), rngs)
        dist_io.barrier(self.ctx)
        self._emit("on_end", s)
        raise TrainingStopped(f"{reason} at step {s.step}; saved {self.run_dir / 'last.pt'}: run the same "
                              "command again to resume", 130 if reason == "interrupted" else 143)

    def _step(self, micro: list, time_up: bool = False, caught: int = 0) -> dict:
        """One update from this rank's micro-batches; the gradient is the token-weighted mean over all ranks.
        `time_up`, a caught signal and the budget share spent (rank 0's clock) are summed with the counts, so every
        rank learns them in one call. A non-finite loss or gradient norm skips the update (the same on every rank)."""
        self.net.train()
        lr = learning_rate(self.config.optim, self.state.step, self.state.lr_scale, self.config.max_steps,
                           self._time_progress)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        weighted = len(micro) * self.ctx.world > 1
        loss_sum, nll, tokens = 0.0, 0.0, 0
        for i, batch in enumerate(micro):
            last = i == len(micro) - 1
            sync = contextlib.nullcontext() if last or not self.ctx.distributed else self.net.no_sync()
            with sync:
                with autocast(self.ctx.device, self.config.precision):
                    loss, stats = self.net(dist_io.to_device(batch, self.ctx.device))
                # weighted: each micro-batch's mean loss counts by its tokens; the sum is divided below
                (loss * stats["tokens"] if weighted else loss).backward()
            loss_sum += float(loss.detach()) * stats["tokens"]
            nll, tokens = nll + stats["nll"], tokens + stats["tokens"]
        loss_sum, nll, tokens, stop, sigint, sigterm, self._time_progress = dist_io.all_sum(
            [loss_sum, nll, tokens, float(time_up), float(caught == signal.SIGINT), float(caught == signal.SIGTERM),
             self._spent() if self.ctx.is_main else 0.0], self.ctx)
        if weighted:            # DDP averaged the rank sums; turn them into the mean over every token
            scale = self.ctx.world / max(1.0, tokens)
            for p in self.model.parameters():
                if p.grad is not None:
                    p.grad.mul_(scale)
        grad_norm = float(nn.utils.clip_grad_norm_(self.model.parameters(), self.config.optim.clip_norm or math.inf))
        finite = math.isfinite(loss_sum) and math.isfinite(grad_norm)
        if finite:
            self.optimizer.step()
        return {"loss": loss_sum, "nll": nll, "tokens": int(tokens), "lr": lr, "grad_norm": grad_norm,
                "time_up": stop > 0, "finite": finite,
                "signal": "terminated" if sigterm else "interrupted" if sigint else ""}

    def _report(self, window: dict) -> None:
        s, tokens = self.state, max(1, window["tokens"])
        seconds = max(1e-9, time.time() - window["t0"])
        record = {"type": "train", "step": s.step, "epoch": s.epoch, "loss": window["loss"] / tokens,
                  "ppl": math.exp(min(50.0, window["nll"] / tokens)), "tokens_per_s": tokens / seconds,
                  "lr": self.optimizer.param_groups[0]["lr"], "time": time.time()}
        if self.ctx.is_main:
            self._log(record)
        self._emit("on_log", record)

    def _limits(self, stats: dict) -> str:
        """A stop reason every rank agrees on: steps are counted alike, and time is rank 0's (summed in the step)."""
        c, s = self.config, self.state
        if c.max_steps and s.step >= c.max_steps:
            return "max_steps"
        if stats["signal"]:
            return stats["signal"]
        if s.nonfinite >= c.max_nonfinite:
            return "diverged"
        if stats["time_up"]:
            return "max_minutes"
        return ""

    def _validate(self, start: float) -> str:
        """Rank 0 validates, checkpoints and updates patience and the plateau schedule; every rank then takes its
        decisions. Returns a stop reason or ''."""
        rngs = dist_io.gather(self._rng(), self.ctx)
        reason = self._validate_main(start, rngs) if self.ctx.is_main else ""
        reason, state = dist_io.broadcast((reason, asdict(self.state)), self.ctx)
        for key, value in state.items():       # in place: the loop holds this object
            setattr(self.state, key, value)
        return reason

    def _validate_main(self, start: float, rngs: list[dict]) -> str:
        c, s = self.config, self.state
        s.train_seconds += time.time() - start - getattr(self, "_counted", 0.0)
        self._counted = time.time() - start
        model = self._eval_model()
        with torch.inference_mode():
            result = self.task.validate(model)
        improved = math.isfinite(result.score) and result.score > s.best_score   # NaN never becomes "best"
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
        scores = self._scores = {k: v for k, v in result.metrics.items()}
        if improved:
            self._save("best.pt", scores, rngs)
        self._save("last.pt", scores, rngs)
        if c.keep_checkpoints:
            self._keep(scores)
        self._emit("on_validate", record, result.samples)
        return reason

    def _eval_model(self) -> nn.Module:
        """The model for validation, in eval mode. Tasks validate on CPU tensors, so a GPU model is copied back."""
        if self.ctx.device.type == "cpu":
            return self.model.eval()
        import copy
        return copy.deepcopy(self.model).float().cpu().eval()


def _as_tuple(value):
    """torch.load returns lists where random.getstate() had tuples."""
    if isinstance(value, list):
        return tuple(_as_tuple(v) for v in value)
    return value
