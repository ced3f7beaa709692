"""tag, train tag, evaluate tag: named-entity recognition."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from nmt.cli.common import (Cell, DataDir, InputFile, JsonOut, Model, Run, Runtime, Texts, UserError, app,
                            evaluate_app, friendly, load_runner, out, print_json, read_input, train_command)
from nmt.cli.render import show_entities, table

TagColumn = Annotated[int, typer.Option("--tag-column", help="Column holding the tags (-1: last).")]
Scheme = Annotated[str, typer.Option("--scheme", help="Tags in the files: auto | iob1 | iob2 | iobes.")]


def _tagged(corpus: str | None, path: Path | None, split: str, tag_column: int, scheme: str, data_dir):
    from nmt.corpora import corpus_files
    from nmt.tasks.tag import read_tagged
    if path is None:
        if corpus is None:
            raise UserError("give a CoNLL file or --corpus NAME")
        path = corpus_files(corpus, split, data_dir)["paths"][0]
    return read_tagged(path, tag_column, scheme)


@app.command()
@friendly
def tag(
    text: Texts = None,
    input: InputFile = None,
    fmt: Annotated[str, typer.Option("--format", help="text: sentences, tokenised for you; conll: one token "
                                     "per line, output adds a tag column.")] = "text",
    model: Model = None,
    as_json: JsonOut = False,
    runtime: Runtime = "torch",
):
    """Find named entities: coloured in a terminal, bracketed when piped, spans with offsets in --json.

    Example: nmt tag "Angela Merkel met Emmanuel Macron in Paris."
    """
    from nmt.data import check_text_file, conll_words
    from nmt.tasks.tag import mark_entities
    if fmt not in ("text", "conll"):
        raise UserError(f"--format must be text or conll, got '{fmt}'")
    if fmt == "conll" and input is None:
        raise UserError("--format conll needs --input FILE")
    if fmt == "conll":
        check_text_file(input)
        sentences = conll_words(input)
    else:
        lines = read_input(text, input)
    tagger = load_runner("tag", model, runtime=runtime)
    if fmt == "conll" and not as_json:
        sys.stdout.write(tagger.tag_conll(input))
        return
    records = tagger.tag_words(sentences) if fmt == "conll" else tagger.tag_text(lines)
    if not any(r["words"] for r in records):
        raise UserError("empty input: no words to tag")
    if as_json:
        print_json([{"text": r["text"], "entities": r["entities"]} for r in records])
    elif sys.stdout.isatty():
        show_entities(records)
    else:
        for r in records:
            print(mark_entities(r["text"], r["entities"]))


@train_command("tag")
def train_tag(
    run: Run,
    train_file: Annotated[Optional[Path], typer.Option("--train-file", help="CoNLL training file instead.")] = None,
    dev_file: Annotated[Optional[Path], typer.Option("--dev-file", help="CoNLL dev file (early stopping).")] = None,
    tag_column: TagColumn = -1,
    scheme: Scheme = "auto",
    cell: Cell = None,
    output: Annotated[Optional[str], typer.Option("--output", help="crf | softmax")] = None,
):
    """Train a BiLSTM-CRF named-entity tagger; early stopping on dev entity F1 (seqeval, strict IOB2).

    Example: nmt train tag --corpus conll2003 --preset conll2003 --out runs/conll2003
    """
    from nmt.corpora import VALIDATION
    setup = run.setup({"model.rnn.cell": cell, "model.output": output})
    corpus = None if train_file else run.corpus
    if train_file is not None and dev_file is None:
        raise UserError("--train-file needs --dev-file (early stopping uses dev F1)")
    train_sents = _tagged(corpus, train_file, "train", tag_column, scheme, run.data_dir)
    dev_sents = _tagged(corpus, dev_file, VALIDATION.get(corpus or "", "dev"), tag_column, scheme, run.data_dir)
    run.train(setup, train_sents, dev_sents, str(train_file or corpus), ("gold", "predicted"),
              lambda score: f"best dev F1 {score:.2f}")


@evaluate_app.command("tag")
@friendly
def evaluate_tag(
    conll_file: Annotated[Optional[Path], typer.Option("--conll-file", help="Gold CoNLL file.")] = None,
    corpus: Annotated[Optional[str], typer.Option(help="Or a named corpus: conll2003 | wnut17.")] = None,
    split: Annotated[str, typer.Option(help="Split of --corpus.")] = "dev",
    tag_column: TagColumn = -1,
    scheme: Scheme = "auto",
    model: Model = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
):
    """Entity precision, recall and F1 per type and overall (seqeval, strict IOB2).

    Example: nmt evaluate tag --corpus conll2003 --split dev
    """
    from nmt.metrics import entity_scores
    sentences = _tagged(corpus, conll_file, split, tag_column, scheme, data_dir)
    predicted = load_runner("tag", model, "batch").tag([w for w, _ in sentences])
    scores = entity_scores([t for _, t in sentences], predicted)
    if as_json:
        print_json(scores)
        return
    rows = [(kind, f"{s['precision']:.2f}", f"{s['recall']:.2f}", f"{s['f1-score']:.2f}", s["support"])
            for kind, s in sorted(scores["types"].items())]
    rows.append(("[bold]overall[/bold]", f"{scores['precision']:.2f}", f"{scores['recall']:.2f}",
                 f"[bold]{scores['f1']:.2f}[/bold]", scores["support"]))
    out.print(table(f"{conll_file or corpus + ' ' + split}: {len(sentences):,} sentences (seqeval strict IOB2)",
                    ("type", "precision", "recall", "F1", "support"), rows, right=False))
