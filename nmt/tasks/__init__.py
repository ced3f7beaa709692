"""The tasks, by the name their checkpoints carry. See base.py for what a task module provides.

Modules (and torch) are imported on first use, so `nmt translate` never pays for importing the summariser.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from nmt.config import ConfigError, build_setup

CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"
# the model each task uses when none is named: the ones shipped in checkpoints/ (with a model card beside each)
# the shipped translators by direction (Multi30k captions + Tatoeba everyday sentences); the caption-only models
# stay as multi30k-de-en.pt and multi30k-en-de.pt
TRANSLATORS = {"de-en": CHECKPOINTS / "everyday-de-en.pt", "en-de": CHECKPOINTS / "everyday-en-de.pt"}
SHIPPED = {
    "translate": TRANSLATORS["de-en"],
    "charlm": CHECKPOINTS / "shakespeare-charlm.pt",
    "tag": CHECKPOINTS / "conll2003-ner.pt",
    "summarize": CHECKPOINTS / "aeslc-summarizer.pt",
    "forecast": CHECKPOINTS / "etth1-h96.pt",
    "classify": CHECKPOINTS / "sst2-sentiment.pt",
    "namegen": CHECKPOINTS / "names-generator.pt",
}
# the named corpus (nmt/corpora.py) each task trains on when none is named: the shipped models'
CORPUS = {"translate": "multi30k+tatoeba", "charlm": "tinyshakespeare", "tag": "conll2003", "summarize": "aeslc",
          "forecast": "etth1", "classify": "sst2", "namegen": "names"}

TASKS = {
    "translate": "nmt.tasks.translate",
    "charlm": "nmt.tasks.charlm",
    "tag": "nmt.tasks.tag",
    "summarize": "nmt.tasks.summarize",
    "forecast": "nmt.tasks.forecast",
    "classify": "nmt.tasks.classify",
    "namegen": "nmt.tasks.namegen",
}


def module(name: str) -> ModuleType:
    """The module of task `name`."""
    if name not in TASKS:
        raise ConfigError(f"unknown task '{name}' (known: {', '.join(TASKS)})")
    return importlib.import_module(TASKS[name])


def load(path: str | Path):
    """The runner of any task's checkpoint (a Translator, TextGenerator, NERTagger, Summarizer, ...)."""
    from nmt import checkpoint as ckpt_io
    ckpt = ckpt_io.load(path)
    if ckpt.task not in TASKS:
        raise ckpt_io.CheckpointError(f"{path} is a '{ckpt.task}' checkpoint, which is not a task nmt can run")
    return module(ckpt.task).RUNNER.build(ckpt, str(path))


def make_setup(name: str, preset: str = "base", config_file: str | Path | None = None, overrides: dict | None = None):
    """Task `name`'s setup: defaults <- preset <- JSON config file <- dotted overrides, every value checked."""
    mod = module(name)
    return build_setup(mod.SETUP, mod.PRESETS, preset, config_file, overrides)
