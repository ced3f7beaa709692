"""The task interface: what every task provides, declared in one place.

A task is one module under nmt/tasks/ holding four things:

1. `SETUP` and `PRESETS`: its setup dataclass and named overrides (both defined in nmt/config/tasks.py).
2. A `Task` subclass, the training side. It turns data into `batches(epoch)`, computes the `loss` of a batch,
   `validate`s a model (one score, higher is better, for early stopping and best.pt) and `make_checkpoint`s it
   (config, tokenizers, weights). The trainer (nmt/training.py) sees tasks only through this class.
3. A `Runner` subclass, the inference side: `Runner.load(path)` (or `nmt.tasks.load(path)` for any task) turns a
   checkpoint into an object with the task's verbs (`translate`, `generate`, `tag`, `summarize`, ...).
4. `train(setup, train, valid, run_dir, callbacks=(), meta=None) -> (TrainState, run_dir)`: builds the
   tokenizers (or takes the resumed run's), the model and the Task, and runs the trainer (`fit_task`).

Metrics are pure functions in nmt/metrics.py; the command-line file of the task is nmt/cli/<task>.py.
"""
from __future__ import annotations

import functools
import gc

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch
from torch import nn

from nmt import checkpoint as ckpt_io


@dataclass
class Validation:
    metrics: dict[str, float]                   # every number worth logging
    score: float                                # the one used for early stopping (higher is better)
    samples: list[tuple[str, ...]] = field(default_factory=list)   # rows for a sample table


class Task(ABC):
    """The training side of a task: data -> batches -> loss; validation; checkpoints."""

    name: ClassVar[str]                         # as written in checkpoints, e.g. "translate"
    # Data parallelism: by default rank r of W takes its share of each group of consecutive batches. A task that
    # must keep some data on one rank (the character model's streams carry their hidden state from batch to
    # batch) sets this and implements `shard`; each rank then walks its own batch list in step.
    shards_itself: ClassVar[bool] = False

    @abstractmethod
    def batches(self, epoch: int) -> Sequence[Any]:
        """The batches of one epoch, the same sequence for the same epoch (on every rank)."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict]:
        """Mean loss of a batch and {"tokens": units it averages over, "nll": summed negative log-likelihood}."""

    @abstractmethod
    def validate(self, model: nn.Module) -> Validation:
        """Scores of the model on the validation data (called without gradients, model in eval mode)."""

    @abstractmethod
    def make_checkpoint(self, model: nn.Module) -> ckpt_io.Checkpoint:
        """The model's checkpoint: config, tokenizers and weights, enough to load a Runner."""

    def checkpoint_of(self, model: nn.Module, model_config, tokenizers: dict, **extra) -> ckpt_io.Checkpoint:
        """The usual checkpoint: config {"model", "setup", **extra}, the tokenizers' states, the weights and the
        task's meta (tasks keep their setup in `self.setup` and their meta in `self.meta`)."""
        from nmt.config import to_dict
        config = {"model": to_dict(model_config), **extra, "setup": to_dict(self.setup)}
        return ckpt_io.Checkpoint(self.name, config, model.state_dict(), meta=dict(self.meta),
                                  tokenizers={k: v.to_state() for k, v in tokenizers.items()})

    def shard(self, rank: int, world: int) -> None:
        """Keep this rank's part of the data (only called when `shards_itself`)."""
        raise NotImplementedError(f"task '{self.name}' does not shard its own data")


class Runner(ABC):
    """The inference side of a task: a trained model and what it needs (tokenizers, tags, settings)."""

    task: ClassVar[str]
    checkpoint: ckpt_io.Checkpoint | None = None     # the checkpoint it was loaded from

    def __init__(self, model: nn.Module, tokenizer: Any, setup: Any):
        """The common case: one model, one tokenizer and the task's setup (a task may take other parts)."""
        self.model, self.tokenizer, self.setup = model, tokenizer, setup

    # the common case's parts: the model's class, its config's class, the tokenizer's name, the setup's class
    parts: ClassVar[tuple[type, type, str, type]]

    @classmethod
    def from_checkpoint(cls, ckpt: ckpt_io.Checkpoint) -> "Runner":
        """Build the runner from a checkpoint of this task (the common case: from `parts`)."""
        from nmt.config import from_dict
        from nmt.tokenizers import tokenizer_from_state
        model_cls, config_cls, tokenizer, setup_cls = cls.parts
        return cls(model_weights(ckpt, model_cls, config_cls), tokenizer_from_state(ckpt.tokenizers[tokenizer]),
                   from_dict(setup_cls, ckpt.config["setup"]))

    @classmethod
    def load(cls, path: str | Path) -> "Runner":
        """The runner of a checkpoint file; one line of CheckpointError for a missing, foreign or other-task file."""
        return cls.build(ckpt_io.load(path, task=cls.task), str(path))

    @classmethod
    def build(cls, ckpt: ckpt_io.Checkpoint, source: str = "the checkpoint") -> "Runner":
        """The runner of a loaded checkpoint; a CheckpointError naming `source` when its parts do not fit (a
        missing key, a weight of the wrong shape, corrupt tokenizer bytes, weights that are not finite)."""
        from nmt.config import ConfigError
        try:
            runner = cls.from_checkpoint(ckpt)
        except ConfigError as exc:
            raise ckpt_io.CheckpointError(f"{source}: its configuration does not fit this nmt: {exc}") from None
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
            reason = " ".join(str(exc).split())[:240] or type(exc).__name__
            raise ckpt_io.CheckpointError(f"{source} is not a usable '{cls.task}' checkpoint ({reason})") from None
        runner.checkpoint = ckpt
        # a loaded model, its tokenizers and vocabularies live as long as the process: moved out of the cyclic
        # collector's reach, full collections no longer walk them. Without this, the collections that batch work
        # triggers cost the fast tagger up to a third of a pass over CoNLL dev, every other pass
        gc.freeze()
        return runner


def batch_work(method):
    """Run a runner's batch method with Python's cyclic garbage collector paused. A batch builds many short-lived
    lists and records, whose allocations trigger full collections mid-call; with the loaded models frozen out of
    its reach (`Runner.build`) those still cost the fast tagger a quarter of its rate every other pass over
    CoNLL dev (int8 against float x1.65-1.78 steady with the collector off, x1.01-1.86 with it on). The objects
    of a call are freed by reference counting; anything cyclic is collected after it, as usual."""
    @functools.wraps(method)
    def paused(*args, **kwargs):
        if not gc.isenabled():
            return method(*args, **kwargs)
        gc.disable()
        try:
            return method(*args, **kwargs)
        finally:
            gc.enable()
    return paused


def model_weights(ckpt: ckpt_io.Checkpoint, model_cls: type, config_cls: type, *args) -> nn.Module:
    """`model_cls(config, *args)` built from the checkpoint's model config, with its weights (float32), in eval
    mode. An int8 checkpoint (nmt/quantize.py) loads dequantised, then the model's int8 products where it has
    them (`use_int8`)."""
    from nmt import quantize
    from nmt.config import from_dict
    model = model_cls(from_dict(config_cls, ckpt.config["model"]), *args)
    int8 = quantize.is_int8(ckpt)
    model.load_state_dict(ckpt_io.state_dict_float(quantize.dequantize_state(ckpt.model) if int8 else ckpt.model))
    ckpt_io.check_finite(ckpt.model)
    model.eval()
    if int8 and hasattr(model, "use_int8"):
        model.use_int8(quantize.int8_parts(ckpt.model))
    return model
