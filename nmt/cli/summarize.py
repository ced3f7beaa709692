"""summarize, train summarize, evaluate summarize: the pointer-generator summariser."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from nmt.cli.common import (Beam, DataDir, JsonOut, LengthPenalty, Model, Run, UserError, app, config_options,
                            evaluate_app, friendly, load_runner, out, print_json, read_input, train_command)
from nmt.cli.render import table
from nmt.config import SummaryDecodeConfig

SrcField = Annotated[Optional[str], typer.Option("--src-field", help="JSONL field holding the document "
                                                 "(a named corpus knows its own).")]
MinLen = Annotated[Optional[int], typer.Option("--min-len", help="Fewest words before the summary may end.")]
MaxLen = Annotated[Optional[int], typer.Option("--max-len", help="Most words in a summary.")]
NoRepeat = Annotated[Optional[int], typer.Option("--no-repeat-ngram", help="Block repeated n-grams of this size "
                                                 "(0: off).")]


# beam 4, --min-len 4, --max-len 15 and --no-repeat-ngram 3 by default (SummaryDecodeConfig)
decode_options = config_options("decode", SummaryDecodeConfig, {
    "beam": (Beam, None), "min_len": (MinLen, None), "max_len": (MaxLen, None),
    "no_repeat_ngram": (NoRepeat, None), "length_penalty": (LengthPenalty, None)})


def _documents(text, input, input_lines, jsonl, field_name) -> list[str]:
    from nmt import data
    if input is not None:
        return [data.read_text(input)]
    if input_lines is not None:
        return read_input(None, input_lines)
    if jsonl is not None:
        if not field_name:
            raise UserError("--jsonl needs --field NAME (the field holding each document)")
        return [r[field_name] for r in data.read_jsonl(jsonl, (field_name,))]
    return read_input(text, None) if text else ["\n".join(read_input(None, None))]


@app.command()
@friendly
@decode_options
def summarize(
    decode,
    text: Annotated[Optional[list[str]], typer.Argument(help="Documents to summarise (each argument is one).")] = None,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="A file holding one document.")] = None,
    input_lines: Annotated[Optional[Path], typer.Option("--input-lines", help="One document per line.")] = None,
    jsonl: Annotated[Optional[Path], typer.Option("--jsonl", help="JSONL file: one summary per record.")] = None,
    field_name: Annotated[Optional[str], typer.Option("--field", help="JSONL field holding the document.")] = None,
    model: Model = None,
    as_json: JsonOut = False,
):
    """Write a short summary (a subject line) for each document; copied words are underlined in a terminal.

    Example: nmt summarize --input email.txt
    """
    documents = _documents(text, input, input_lines, jsonl, field_name)
    if not any(d.strip() for d in documents):
        raise UserError("empty input: nothing to summarise")
    summarizer = load_runner("summarize", model)
    results = summarizer.summarize_hyps(documents, decode)
    summaries = [summarizer.text(h, e) for h, e in results]
    if as_json:
        print_json([{"summary": s} for s in summaries])
    elif sys.stdout.isatty():
        for (hyp, example) in results:
            words = summarizer.copied(hyp, example)
            out.print(" ".join(f"[underline cyan]{escape(w)}[/underline cyan]" if c else escape(w) for w, c in words))
        out.print("[dim]underlined: words that also occur in the document (copied or generated)[/dim]")
    else:
        print("\n".join(summaries))


@train_command("summarize")
def train_summarize(
    run: Run,
    train_jsonl: Annotated[Optional[Path], typer.Option("--train-jsonl", help="JSONL training file instead.")] = None,
    dev_jsonl: Annotated[Optional[Path], typer.Option("--dev-jsonl", help="JSONL validation file.")] = None,
    src_field: SrcField = None,
    tgt_field: Annotated[Optional[str], typer.Option("--tgt-field", help="JSONL field holding the summary.")] = None,
    no_pointer: Annotated[bool, typer.Option("--no-pointer", help="Without the copy mechanism.")] = False,
    no_coverage: Annotated[bool, typer.Option("--no-coverage", help="Without coverage.")] = False,
):
    """Train a pointer-generator summariser with coverage; early stopping on validation ROUGE-1.

    Example: nmt train summarize --corpus aeslc --preset aeslc --out runs/aeslc
    """
    from nmt.corpora import VALIDATION
    from nmt.tasks.summarize import read_pairs
    setup = run.setup({"model.pointer": False if no_pointer else None,
                       "model.coverage": False if no_coverage else None})
    if train_jsonl:
        if dev_jsonl is None or not src_field or not tgt_field:
            raise UserError("--train-jsonl needs --dev-jsonl, --src-field and --tgt-field")
        train_pairs = read_pairs(jsonl=train_jsonl, src_field=src_field, tgt_fields=(tgt_field,))
        valid = read_pairs(jsonl=dev_jsonl, src_field=src_field, tgt_fields=(tgt_field,))
    else:
        train_pairs = read_pairs(run.corpus, "train", run.data_dir)
        valid = read_pairs(run.corpus, VALIDATION.get(run.corpus, "dev"), run.data_dir)
    run.train(setup, [(d, refs[0]) for d, refs in train_pairs], valid, str(train_jsonl or run.corpus),
              ("reference", "summary"), lambda score: f"best ROUGE-1 {score:.2f}")


@evaluate_app.command("summarize")
@friendly
@decode_options
def evaluate_summarize(
    decode,
    corpus: Annotated[Optional[str], typer.Option(help="Named corpus: aeslc (dev, 3 annotations) | gigaword.")] = None,
    split: Annotated[str, typer.Option(help="Split of --corpus.")] = "dev",
    jsonl: Annotated[Optional[Path], typer.Option("--jsonl", help="Or a JSONL file.")] = None,
    src_field: SrcField = None,
    ref_fields: Annotated[Optional[str], typer.Option("--ref-fields", help="Comma-separated reference fields "
                                                      "(a named corpus knows its own).")] = None,
    model: Model = None,
    lead: Annotated[str, typer.Option("--lead", help="Also score lead-N baselines, e.g. 8,12 ('' for none).")] = "",
    data_dir: DataDir = None,
    as_json: JsonOut = False,
):
    """ROUGE-1/2/L F1 (rouge-score, stemming), averaged over each document's references.

    Example: nmt evaluate summarize --corpus aeslc --split dev
    """
    from nmt.tasks.summarize import evaluate, evaluation_pairs
    if corpus is None and jsonl is None:
        raise UserError("give --corpus NAME or --jsonl FILE")
    try:
        leads = [int(x) for x in lead.split(",") if x.strip()]
    except ValueError:
        leads = [0]
    if any(n < 1 or n > 1000 for n in leads):
        raise UserError(f"--lead must be comma-separated word counts from 1 to 1000, got '{lead}'")
    fields = tuple(f.strip() for f in ref_fields.split(",") if f.strip()) if ref_fields else None
    pairs, extra = evaluation_pairs(corpus, split, data_dir, jsonl, src_field, fields)
    rows = evaluate(load_runner("summarize", model, "batch"), pairs, decode, leads, extra)
    if as_json:
        print_json(rows)
        return
    out.print(table(f"{jsonl or corpus + ' ' + split}: {len(pairs):,} documents (F1, stemmed)",
                    ("system", "ROUGE-1", "ROUGE-2", "ROUGE-L", "words"),
                    [(name, f"{r['1']:.2f}", f"{r['2']:.2f}", f"{r['L']:.2f}", f"{r['words']:.1f}")
                     for name, r in rows.items()], right=False))
