"""generate, train charlm, evaluate charlm: the character-level language model."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from nmt.cli.common import (Cell, DataDir, Impl, JsonOut, Model, Run, Runtime, UserError, app, err, evaluate_app,
                            friendly, load_runner, out, print_json, train_command)
from nmt.cli.render import table


@app.command()
@friendly
def generate(
    model: Model = None,
    temperature: Annotated[Optional[float], typer.Option("--temperature", "-t", help="0 = greedy; higher = more "
                                                         "random (default 0.8).")] = None,
    length: Annotated[Optional[int], typer.Option("--length", "-n", help="Characters to generate.")] = None,
    prime: Annotated[Optional[str], typer.Option("--prime", "-p", help="Text the sample continues.")] = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", help="Sample among the K most likely (0: all).")] = None,
    top_p: Annotated[Optional[float], typer.Option("--top-p", help="Nucleus sampling mass in (0, 1].")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Same seed, same text.")] = None,
    num_samples: Annotated[Optional[int], typer.Option("--num-samples", help="Independent samples.")] = None,
    condition: Annotated[Optional[str], typer.Option("--condition", "-c", help="Names of this language (a namegen "
                                                     "model; default: the shipped names generator).")] = None,
    as_json: JsonOut = False,
    runtime: Runtime = "torch",
):
    """Generate text character by character, streamed as it is produced.

    Example: nmt generate --temperature 0.8 --prime "ROMEO:" --length 300
    """
    from nmt.config import SampleConfig, make
    if seed is not None and not 0 <= seed < 2**63:
        raise UserError(f"--seed must be from 0 to 2**63 - 1, got {seed}")
    prime = prime.replace("\\n", "\n") if prime is not None else None
    options = make(SampleConfig, temperature=temperature, length=length, prime=prime, top_k=top_k, top_p=top_p,
                   num_samples=num_samples)
    generator = _runner(model, condition) if runtime == "torch" else load_runner("charlm", model, runtime=runtime)
    if generator.task == "namegen":
        from nmt.cli.namegen import show_names
        return show_names(generator, condition, options, seed, as_json)
    unknown = generator.unknown(options.prime)
    if unknown:
        err.print(f"[yellow]note:[/yellow] the model never saw {''.join(sorted(unknown))!r}; "
                  "those characters of the prime are read as <unk>")
    steps = generator.sample(options, seed)
    if options.num_samples == 1 and not as_json:
        sys.stdout.write(options.prime)
        for chars in steps:
            sys.stdout.write(chars[0])
            sys.stdout.flush()
        sys.stdout.write("\n")
        return
    samples = [options.prime] * options.num_samples
    for chars in steps:
        samples = [s + c for s, c in zip(samples, chars)]
    if as_json:
        print_json({"samples": samples})
        return
    for i, sample in enumerate(samples):
        out.rule(f"sample {i + 1}")
        print(sample)


def _runner(model: Path | None, condition: str | None):
    """The runner of a charlm or namegen checkpoint, by the task it holds (--condition alone: the names model)."""
    from nmt import checkpoint as ckpt_io
    from nmt import tasks, threads
    threads.use("step")                  # sampling is a chain of small steps (nmt/threads.py)
    path = model or tasks.SHIPPED["namegen" if condition is not None else "charlm"]
    ckpt = ckpt_io.load(path)
    if ckpt.task not in ("charlm", "namegen"):
        raise ckpt_io.CheckpointError(f"{path} is a '{ckpt.task}' checkpoint, not a 'charlm' or 'namegen' one")
    if ckpt.task == "charlm" and condition is not None:
        raise UserError(f"--condition needs a namegen model; {path} is a character language model")
    return tasks.module(ckpt.task).RUNNER.build(ckpt, str(path))


@train_command("charlm")
def train_charlm(
    run: Run,
    text_file: Annotated[Optional[Path], typer.Option("--text-file", help="Any UTF-8 text instead (90/10 "
                                                          "split).")] = None,
    cell: Cell = None,
    impl: Impl = None,
):
    """Train a character-level language model with truncated BPTT.

    Example: nmt train charlm --corpus tinyshakespeare --preset shakespeare --out runs/shakespeare
    """
    from nmt import corpora, data
    from nmt.tasks.charlm import split_text
    setup = run.setup({"model.rnn.cell": cell, "model.rnn.impl": impl})
    path = text_file or corpora.corpus_files(run.corpus, "train", run.data_dir)["paths"][0]
    train_text, valid_text = split_text(data.read_text(path), setup.data.train_share)
    run.train(setup, train_text, valid_text, str(text_file or run.corpus), ("sample (temperature 0.8)",),
              lambda score: f"best validation loss {-score:.4f} nats/char")


@evaluate_app.command("charlm")
@friendly
def evaluate_charlm(
    corpus: Annotated[Optional[str], typer.Option(help="A named corpus's validation split (last 10%) ...")] = None,
    text_file: Annotated[Optional[Path], typer.Option("--text-file", help="... or any UTF-8 text.")] = None,
    model: Model = None,
    data_dir: DataDir = None,
    dynamic_lr: Annotated[float, typer.Option(help="> 0: dynamic evaluation, the model takes an SGD step of this "
                                              "rate on each 50-character chunk after scoring it (a different "
                                              "measure: say so when you report it).", min=0.0)] = 0.0,
    dynamic_decay: Annotated[float, typer.Option(help="Dynamic evaluation: each step also pulls the weights "
                                                 "this share of the way back to the trained ones.",
                                                 min=0.0, max=1.0)] = 0.0,
    as_json: JsonOut = False,
):
    """Loss (nats/char), bits per character and perplexity, hidden state carried through the whole text.

    Example: nmt evaluate charlm --corpus tinyshakespeare
    """
    from nmt import corpora, data
    from nmt.tasks.charlm import split_text
    if not (text_file or corpus):
        raise UserError("give --text-file FILE or --corpus NAME")
    generator = load_runner("charlm", model)
    if text_file:
        text = data.read_text(text_file)
    else:
        path = corpora.corpus_files(corpus, "val", data_dir)["paths"][0]
        text = split_text(data.read_text(path), generator.setup.data.train_share)[1]
    unknown = generator.unknown(text)
    if unknown:
        err.print(f"[yellow]note:[/yellow] {len(unknown)} character type(s) unseen in training are scored as <unk>")
    result = generator.evaluate(text, dynamic_lr, dynamic_decay)
    if as_json:
        print_json({k: result[k] for k in ("loss", "bpc", "perplexity")})
        return
    how = f", dynamic evaluation (lr {dynamic_lr:g}, decay {dynamic_decay:g})" if dynamic_lr else ""
    out.print(table(f"{text_file or corpus + ' (last 10%)'}: {result['characters']:,} characters{how}",
                    ("loss (nats/char)", "bits/char", "perplexity"),
                    [(f"{result['loss']:.4f}", f"{result['bpc']:.4f}", f"{result['perplexity']:.3f}")]))
