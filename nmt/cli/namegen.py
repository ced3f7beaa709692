"""train namegen, evaluate namegen, and the names that `generate` prints for a namegen model (one-to-many)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from nmt.cli.common import (Cell, DataDir, JsonOut, Model, Run, UserError, err, evaluate_app, friendly, load_runner,
                            out, print_json, train_command)
from nmt.cli.render import table


def show_names(sampler, condition: str | None, options, seed: int | None, as_json: bool) -> None:
    """Sampled names, one a line; a name that is also a training name is marked (* when piped)."""
    if condition is not None and not sampler.conditional:
        raise UserError("this model is unconditional: it takes no --condition")
    unknown = sampler.unknown(options.prime.strip())
    if unknown:
        err.print(f"[yellow]note:[/yellow] the model never saw {escape(repr(''.join(sorted(unknown))))}; those "
                  "characters of the prime are read as <unk>", soft_wrap=True)
    names = sampler.sample(condition, options, seed)
    known = sampler.model.is_known(names)
    language = sampler.conditions[sampler.condition(condition)]
    if as_json:
        print_json({"condition": language, "samples": names, "in_training": known})
        return
    tty = sys.stdout.isatty()
    for name, copy in zip(names, known):
        if tty:
            out.print(escape(name) + ("  [dim](in the training data)[/dim]" if copy else ""))
        else:
            print(f"{name} *" if copy else name)
    if any(known) and not tty:
        err.print(f"* {sum(known)} of {len(names)} names are in the training data", soft_wrap=True)


@train_command("namegen")
def train_namegen(
    run: Run,
    cell: Cell = None,
    unconditional: Annotated[bool, typer.Option("--unconditional", help="Names without the language (the "
                             "baseline); by default each name is conditioned on its language.")] = False,
):
    """Train a conditional character model of names (one-to-many: a language in, a name out).

    Example: nmt train namegen --corpus names --preset names --out runs/namegen
    """
    from nmt.tasks.classify import corpus_pairs
    if run.corpus_name not in (None, "names"):
        raise UserError(f"namegen trains on the names corpus, not '{run.corpus_name}'")
    setup = run.setup({"model.rnn.cell": cell, "data.conditional": False if unconditional else None})
    train_pairs = corpus_pairs("names", "train", setup.data, run.data_dir)
    dev_pairs = corpus_pairs("names", "dev", setup.data, run.data_dir)
    run.train(setup, train_pairs, dev_pairs, "names", ("condition", "samples (temperature 0.8)"),
              lambda score: f"best dev NLL {-score:.4f} nats/char")


@evaluate_app.command("namegen")
@friendly
def evaluate_namegen(
    model: Model = None,
    split: Annotated[str, typer.Option(help="Split of the names corpus: dev | test.")] = "test",
    baseline: Annotated[Optional[Path], typer.Option("--baseline", help="An unconditional namegen checkpoint to "
                                                     "score beside it.")] = None,
    classifier: Annotated[Optional[Path], typer.Option("--classifier", help="A names classify checkpoint: the "
                                                       "share of samples it assigns to their language.")] = None,
    samples: Annotated[int, typer.Option("--samples", min=1, max=1000, help="Names sampled per language.")] = 100,
    seed: Annotated[int, typer.Option("--seed")] = 1,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
):
    """NLL per character of held-out names with the right language, a wrong one and (--baseline) none; with
    --classifier, how often the language classifier recognises the language of sampled and of real names.

    Example: nmt evaluate namegen -m checkpoints/names-generator.pt --classifier checkpoints/names-language.pt
    """
    from nmt.tasks.classify import corpus_pairs
    from nmt.tasks.namegen import conditioning, recognised
    sampler = load_runner("namegen", model)
    base = load_runner("namegen", baseline) if baseline else None
    if base is not None and base.conditional:
        raise UserError(f"--baseline {baseline} is a conditional model; give an unconditional one")
    pairs = corpus_pairs("names", split, sampler.setup.data, data_dir)
    result = {"nll": conditioning(sampler, pairs, base)}
    if classifier:
        result["recognised"] = recognised(sampler, load_runner("classify", classifier), pairs, samples, seed)
    if as_json:
        print_json(result)
        return
    _tables(result, split)


def _tables(result: dict, split: str) -> None:
    nll = result["nll"]
    keys = [k for k in ("right", "wrong_mean", "wrong_best", "unconditional") if k in nll["all"]]
    heads = {"right": "right language", "wrong_mean": "wrong (mean)", "wrong_best": "wrong (best)",
             "unconditional": "unconditional"}
    rec = result.get("recognised", {}).get("languages", {})
    rows = [(lang, r["names"], *[f"{r[k]:.3f}" for k in keys],
             *([f"{rec[lang]['generated']:.1f}", f"{rec[lang]['real']:.1f}"] if lang in rec else []))
            for lang, r in [*nll["languages"].items(), ("[bold]all[/bold]", nll["all"])]]
    columns = ["language", "names", *[heads[k] + " nats/char" for k in keys]]
    if rec:
        macro = result["recognised"]["macro"]
        columns += ["generated recognised %", "real recognised %"]
        rows[-1] = (*rows[-1], f"{macro['generated']:.1f} (macro)", f"{macro['real']:.1f} (macro)")
    out.print(table(f"names {split}: NLL per character (</s> included)", columns, rows))
    if rec:
        out.print(f"{result['recognised']['copied']:.1f}% of the sampled names are training names")
