"""What every command shares: the Typer apps, the consoles, options declared once, input reading, user errors,
and the tail of every `train` command. Commands parse options, call one library function and render the result.

Options that set a config value default to None, meaning "the config's value" (nmt/config/ holds every default).
"""
from __future__ import annotations

import dataclasses
import errno
import functools
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape

from nmt.cli.apps import app, evaluate_app, train_app  # noqa: F401  (the apps every command file registers on)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def model_option(help: str = "Checkpoint (default: the shipped model).") -> object:
    return typer.Option("--model", "--checkpoint", "-m", help=help)


# --- options declared once --------------------------------------------------------------------------------
Model = Annotated[Optional[Path], model_option()]
DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Root of named corpora (else $NMT_DATA, "
                                                 "data/, ../shared/data).")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]
InputFile = Annotated[Optional[Path], typer.Option("--input", "-i", help="A file with one input per line.")]
Texts = Annotated[Optional[list[str]], typer.Argument(help="Inputs (else --input or stdin), one result each.")]
Beam = Annotated[Optional[int], typer.Option("--beam", "-b", help="Beam size (1 = greedy).")]
LengthPenalty = Annotated[Optional[float], typer.Option("--length-penalty", help="GNMT alpha; 0 disables.")]
Out = Annotated[Optional[Path], typer.Option("--out", "-o", help="Run folder (metrics.jsonl, last.pt, best.pt); "
                                             "default runs/TASK.")]
Corpus = Annotated[Optional[str], typer.Option("--corpus", help="Named corpus (nmt/corpora.py): multi30k, "
                                              "tatoeba, tinyshakespeare, conll2003, wnut17, aeslc, gigaword; "
                                              "translate mixes several as a+b; default: the one the task's "
                                              "shipped model was trained on.")]
Preset = Annotated[str, typer.Option(help="Named settings of nmt/config/tasks.py (base, tiny, ...).")]
ConfigFile = Annotated[Optional[Path], typer.Option("--config", help="JSON file of settings.")]
Cell = Annotated[Optional[str], typer.Option(help="rnn | lstm | gru")]
Impl = Annotated[Optional[str], typer.Option(help="fused (default) | torch | scratch (see README).")]
MaxSteps = Annotated[int, typer.Option("--max-steps", help="Stop after this many updates (0: no limit).")]
MaxMinutes = Annotated[float, typer.Option("--max-minutes", help="Stop after this many minutes (0: no limit).")]
Device = Annotated[Optional[str], typer.Option("--device", help="cpu (default) | cuda | cuda:N | auto; bf16 "
                                              "mixed precision on GPUs that support it.")]
Accumulate = Annotated[Optional[int], typer.Option("--accumulate", help="Batches per update on each process "
                                                   "(gradient accumulation; default 1).")]
Runtime = Annotated[str, typer.Option("--runtime", help="torch (default) | onnx: run an ONNX export folder "
                                       "(nmt export CKPT OUT --format onnx) on ONNX Runtime; needs --model.")]
Sets = Annotated[Optional[list[str]], typer.Option("--set", help="Any setting as dotted KEY=VALUE, e.g. "
                                                   "--set train.optim.lr=0.002 (repeatable).")]


class UserError(Exception):
    """Raised by the CLI itself for bad options."""


def _user_errors() -> tuple:
    from nmt.checkpoint import CheckpointError
    from nmt.config import ConfigError
    from nmt.data import DataError
    from nmt.threads import ThreadsError
    from nmt.tokenizers import TokenizerError
    return (UserError, CheckpointError, ConfigError, DataError, ThreadsError, TokenizerError, UnicodeDecodeError)


def friendly(fn: Callable) -> Callable:
    """Turn user errors, unwritable outputs and early stops into one line on stderr and a non-zero exit status
    (1; 130 after Ctrl-C, 143 after SIGTERM)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from nmt.stops import TrainingStopped
        try:
            return fn(*args, **kwargs)
        except _user_errors() as exc:
            fail(str(exc))
        except TrainingStopped as exc:
            fail(str(exc), exc.exit_code, "error" if exc.exit_code == 1 else "stopped")
        except BrokenPipeError:              # the reader left (e.g. `| head`): nothing more to say
            raise typer.Exit(0)
        except OSError as exc:               # an output that cannot be written, a file that cannot be read
            if exc.filename:
                fail(f"{exc.filename}: {exc.strerror}")
            fail(f"cannot write the output: {exc.strerror}" if exc.errno == errno.ENOSPC else exc.strerror or str(exc))
        except KeyboardInterrupt:
            fail("interrupted", 130, "stopped")
    return wrapper


def fail(message: str, code: int = 1, label: str = "error") -> None:
    """One line on stderr (user text is never read as markup), then exit with `code`."""
    colour = "red" if label == "error" else "yellow"
    err.print(f"[{colour}]{label}:[/{colour}] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def parse_sets(items: list[str] | None) -> dict:
    """['a.b=1', 'c=x'] -> {'a.b': 1, 'c': 'x'} (values parsed as JSON where they are JSON)."""
    result = {}
    for item in items or []:
        if "=" not in item:
            raise UserError(f"--set expects KEY=VALUE, got '{item}'")
        key, value = item.split("=", 1)
        try:
            result[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            result[key.strip()] = value
    return result


def read_input(texts: list[str] | None, input_file: Path | None) -> list[str]:
    """Lines from arguments, a file, or stdin, in that order of preference (lines end at \\n or \\r\\n only)."""
    from nmt.data import read_lines, split_lines
    if texts:
        return list(texts)
    if input_file:
        return read_lines(input_file)
    if sys.stdin is None or sys.stdin.isatty():
        raise UserError("no input: give TEXT arguments, --input FILE, or pipe text on stdin")
    data = sys.stdin.buffer.read()
    try:
        return split_lines(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UserError(f"stdin: line {line} is not valid UTF-8") from None


def writable(path: Path | None, folder: bool = False) -> Path | None:
    """Fail before any work when `path` cannot be written: a directory given as a file (or a file as a folder),
    a folder that cannot be made (a file in its way), no permission. Creates nothing."""
    if path is None:
        return None
    if path.exists() and path.is_dir() != folder:
        raise UserError(f"{path} is {'not a folder' if folder else 'a directory'}: cannot write "
                        f"{'into' if folder else 'to'} it")
    existing = next(p for p in [path, *path.parents] if p.exists())
    if not existing.is_dir() and existing != path:
        raise UserError(f"cannot create {path}: {existing} is a file")
    if not os.access(existing, os.W_OK):
        raise UserError(f"{path}: permission denied (cannot write there)")
    return path


def print_json(value) -> None:
    print(json.dumps(value, ensure_ascii=False))


# --- options given to a command as one object ------------------------------------------------------------
def option_group(name: str, build: Callable, params: dict[str, tuple]) -> Callable:
    """Decorator: add the options `params` ({name: (annotated type, default)}) to a command, and hand their values
    to it as one object `build(**values)` in its parameter `name`. Options several commands share are declared
    once this way (Typer reads the command's signature, so the signature is extended)."""
    def decorate(fn: Callable) -> Callable:
        sig = inspect.signature(fn, eval_str=True)
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sig.parameters.values() if p.name != name]
        added = [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, annotation=a, default=d)
                 for k, (a, d) in params.items()]

        @functools.wraps(fn)
        def command(**kwargs):
            group = build(**{k: kwargs.pop(k) for k in params})
            return fn(**kwargs, **{name: group})
        command.__signature__ = sig.replace(parameters=own + added)
        command.__annotations__ = {p.name: p.annotation for p in own + added}
        return command
    return decorate


def config_options(name: str, config_cls: type, params: dict[str, tuple]) -> Callable:
    """`option_group` whose object is the config `config_cls` with the options given (None: the config's value)."""
    def build(**values):
        from nmt.config import make
        return make(config_cls, **values)
    return option_group(name, build, params)


@dataclasses.dataclass
class Run:
    """The options of every `train` command: where the run goes, its settings, its limits."""
    task: str
    corpus_name: str | None
    out_dir: Path | None
    preset: str
    config: Path | None
    max_steps: int
    max_minutes: float
    device: str | None
    accumulate: int | None
    sets: list[str] | None
    data_dir: Path | None

    @property
    def corpus(self) -> str:
        """The named corpus to train on: --corpus, else the task's own (nmt.tasks.CORPUS)."""
        from nmt.tasks import CORPUS
        return self.corpus_name or CORPUS[self.task]

    def setup(self, options: dict):
        """The task's setup: defaults <- preset <- config file <- explicit options (None: not given) <- --set."""
        from nmt import tasks
        options = {**options, "train.device": self.device, "train.accumulate": self.accumulate}
        overrides = {k: v for k, v in options.items() if v is not None}
        if self.max_steps:
            overrides["train.max_steps"] = self.max_steps
        if self.max_minutes:
            overrides["train.max_minutes"] = self.max_minutes
        overrides.update(parse_sets(self.sets))
        setup = tasks.make_setup(self.task, self.preset, self.config, overrides)
        writable(self.out_dir or Path("runs") / self.task, folder=True)
        return setup

    def train(self, setup, train, valid, data_name: str, headers: tuple[str, ...],
              best: Callable[[float], str], meta: dict | None = None, intro: str | None = None) -> None:
        """Train (or resume) with a progress bar and sample tables, then one summary line; `best` words the score;
        `meta` adds to what the checkpoints record (the data, the command); `intro` is printed once training
        starts (after every check has passed, so a refused run prints its one error line only)."""
        from nmt import tasks
        from nmt.progress import RichProgress
        progress = RichProgress(err, total_steps=setup.train.max_steps, sample_headers=headers, best=best)
        meta = {"data": data_name, "command": " ".join(["python", "cli.py"] + sys.argv[1:]), **(meta or {})}
        out_dir = self.out_dir or Path("runs") / self.task
        callbacks = ([_Intro(intro)] if intro else []) + [progress]
        state, run_dir = tasks.module(self.task).train(setup, train, valid, out_dir, callbacks, meta)
        if os.environ.get("RANK", "0") == "0":           # under torchrun, rank 0 alone reports
            err.print(f"stopped ({state.stopped}) at step {state.step}; {best(state.best_score)}; "
                      f"checkpoints in {run_dir}")


class _Intro:
    """A training callback that prints one line when training starts."""

    def __init__(self, text: str):
        self.text = text

    def on_start(self, state) -> None:
        err.print(self.text, soft_wrap=True)


def train_command(task: str) -> Callable:
    """Register `train TASK`: the command gets the shared options as `run: Run` besides its own."""
    options = {"corpus_name": (Corpus, None), "out_dir": (Out, None), "preset": (Preset, "base"),
               "config": (ConfigFile, None),
               "max_steps": (MaxSteps, 0), "max_minutes": (MaxMinutes, 0.0), "device": (Device, None),
               "accumulate": (Accumulate, None), "sets": (Sets, None), "data_dir": (DataDir, None)}
    group = option_group("run", functools.partial(Run, task), options)
    return lambda fn: train_app.command(task)(friendly(group(fn)))


def load_runner(task: str, path: Path | None, workload: str = "step", runtime: str = "torch"):
    """The runner of a checkpoint of `task`, the shipped model when no path is given; torch's threads set for the
    workload (nmt/threads.py: one thread for step-by-step work, the cores for batch work, or --threads), and as
    many for ONNX Runtime with runtime "onnx" (an export folder; nmt/onnx)."""
    from nmt import tasks, threads
    count = threads.use(workload)
    if runtime == "onnx":
        return load_onnx(task, path, count)
    if runtime != "torch":
        raise UserError(f"--runtime must be torch or onnx, got '{runtime}'")
    return tasks.module(task).RUNNER.load(path or tasks.SHIPPED[task])


def load_onnx(task: str | None, path: Path | None, threads: int):
    """The runner of an ONNX export folder (`--runtime onnx`), with `threads` ONNX Runtime threads."""
    from nmt.onnx import INSTALL, missing
    if missing("onnxruntime"):
        raise UserError(f"--runtime onnx needs onnxruntime: {INSTALL}")
    if path is None:
        raise UserError("--runtime onnx needs --model: an ONNX export folder (nmt export CKPT OUT --format onnx)")
    from nmt.onnx.runtime import load
    return load(path, task, threads)
