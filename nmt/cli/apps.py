"""The Typer apps (`nmt`, `nmt train`, `nmt evaluate`), their help and the options every command takes."""
from __future__ import annotations

import os
from typing import Annotated

import typer
from typer.core import TyperOption


def _flags_without_type(option: TyperOption, ctx) -> str | None:
    """Help shows no `<bool>` beside a flag: it takes no value (`--json true` would read "true" as an input)."""
    return None if option.is_flag else _option_type(option, ctx)


_option_type, TyperOption.display_type_rich = TyperOption.display_type_rich, _flags_without_type

app = typer.Typer(help="Recurrent sequence models: translate, generate, tag, summarise, classify, forecast, train, "
                  "evaluate, inspect.\n\nExamples:\n  nmt translate \"Ein Mann fährt Fahrrad.\"\n  nmt generate "
                  "--temperature 0.8\n  nmt tag \"Angela Merkel visited Paris.\"\n  nmt train --help",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
train_app = typer.Typer(help="Train a model (resumes when --out already holds a run).\n\nExamples:\n  nmt train "
                        "translate --corpus multi30k --preset multi30k --out runs/m30k\n  nmt train charlm --corpus "
                        "tinyshakespeare --preset shakespeare --out runs/shakespeare\n  nmt train tag --help",
                        no_args_is_help=True)
evaluate_app = typer.Typer(help="Score a model on a test set.\n\nExamples:\n  nmt evaluate translate --corpus "
                           "multi30k --split test_2016_flickr\n  nmt evaluate charlm --corpus tinyshakespeare",
                           no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(evaluate_app, name="evaluate")


@app.callback()
def _every_command(threads: Annotated[int, typer.Option("--threads", min=0, max=1024, help="torch threads for "
                   "the command (default: 1 for step-by-step work, the cores for training and batch scoring; "
                   "also NMT_THREADS=N).")] = 0) -> None:
    if threads:
        os.environ["NMT_THREADS"] = str(threads)    # read by nmt/threads.py, inherited by worker processes
