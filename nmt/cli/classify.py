"""classify, train classify, evaluate classify: many-to-one text classification."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from nmt.cli.common import (Cell, DataDir, InputFile, JsonOut, Model, Run, Runtime, Texts, UserError, app, err,
                            evaluate_app, friendly, load_runner, out, print_json, read_input, train_command, writable)
from nmt.cli.render import table

TextField = Annotated[str, typer.Option("--text-field", help="JSONL field (or TSV header column) of the text.")]
LabelField = Annotated[str, typer.Option("--label-field", help="JSONL field (or TSV header column) of the label.")]
BAR = 30


@app.command()
@friendly
def classify(
    text: Texts = None,
    input: InputFile = None,
    model: Model = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Show the K most probable labels (0: all).")] = 0,
    show_attention: Annotated[bool, typer.Option("--show-attention", help="Shade each word by its attention "
                                                 "weight (models with attention pooling).")] = False,
    as_json: JsonOut = False,
    runtime: Runtime = "torch",
):
    """Label texts (the shipped SST-2 sentiment model by default): label, probability and a bar per label.

    One label a line when piped or reading --input (an empty line stays empty).

    Example: nmt classify "a gripping, beautifully acted film"
    """
    lines = read_input(text, input)
    if not any(line.strip() for line in lines):
        raise UserError("empty text: nothing to classify")
    classifier = load_runner("classify", model, runtime=runtime)
    if show_attention and classifier.setup.model.pooling != "attention":
        raise UserError(f"--show-attention needs a model with attention pooling; this one pools by "
                        f"{classifier.setup.model.pooling}")
    records = classifier.classify(lines, top, show_attention)
    _notes(classifier, lines, records)
    if as_json:
        keep = ("text", "label", "probability", "probabilities") + (("steps", "attention") if show_attention else ())
        print_json([{k: r[k] for k in keep} for r in records])
    elif sys.stdout.isatty() and input is None:
        for r in records:
            _show(r, show_attention)
    else:
        for r in records:
            _plain(r, top, show_attention)


def _notes(classifier, lines: list[str], records: list[dict]) -> None:
    """Notes on stderr: unseen characters, truncated texts, empty lines."""
    unknown = classifier.unknown(lines)
    if unknown:
        err.print(f"[yellow]note:[/yellow] the model never saw {escape(repr(''.join(sorted(unknown))[:40]))}; "
                  "those characters are read as <unk>", soft_wrap=True)
    cut = [r for r in records if r["truncated"]]
    if cut:
        unit = "characters" if classifier.setup.model.unit == "char" else "words"
        err.print(f"[yellow]note:[/yellow] {len(cut)} text(s) longer than {classifier.setup.data.max_tokens} {unit} "
                  f"were classified on their first {classifier.setup.data.max_tokens} (longest: "
                  f"{max(len(r['steps']) + r['truncated'] for r in cut):,} {unit})", soft_wrap=True)
    empty = sum(r["label"] is None for r in records)
    if empty:
        err.print(f"[yellow]note:[/yellow] {empty} empty line(s) left without a label (an empty output line each)",
                  soft_wrap=True)


def _show(record: dict, attention: bool) -> None:
    """The text, its label and probability, and a bar per label."""
    if record["label"] is None:
        out.print("[dim](empty)[/dim]")
        return
    if attention:
        out.print(_shaded(record["steps"], record["attention"]))
    else:
        out.print(f"[dim]{escape(record['text'])}[/dim]")
    out.print(f"[bold green]{escape(record['label'])}[/bold green] {record['probability']:.3f}")
    t = Table(show_header=False, box=None, pad_edge=False)
    for label, p in record["probabilities"].items():
        t.add_row(escape(label), "█" * round(p * BAR) + "[dim]" + "·" * (BAR - round(p * BAR)) + "[/dim]", f"{p:.3f}")
    out.print(t)


def _shaded(steps: list[str], weights: list[float]) -> Text:
    """Words on a background as dark as their attention weight (relative to the largest)."""
    line = Text()
    top = max(weights, default=1.0) or 1.0
    joiner = "" if all(len(s) == 1 for s in steps) else " "
    for step, w in zip(steps, weights):
        level = int(200 * w / top)
        shade = f"on rgb({255 - level},{255 - level // 3},255)" if level > 10 else ""
        line.append(step, style=f"bold {shade}" if level >= 100 else shade)    # bold: at least half the largest
        line.append(joiner)
    ranked = sorted(zip(weights, steps), reverse=True)[:3]
    line.append("  (most weight: " + ", ".join(f"{s} {w:.2f}" for w, s in ranked) + ")", style="dim")
    return line


def _plain(record: dict, top: int, attention: bool) -> None:
    """One line per text: the label; with --top, TAB-separated label / probability pairs; with --show-attention,
    then TAB and each step with its weight."""
    if record["label"] is None:
        print()
        return
    fields = [record["label"]] if not top else [f"{k}\t{p:.4f}" for k, p in record["probabilities"].items()]
    if attention:
        fields.append(" ".join(f"{s}/{w:.3f}" for s, w in zip(record["steps"], record["attention"])))
    print("\t".join(fields))


@train_command("classify")
def train_classify(
    run: Run,
    train_file: Annotated[Optional[Path], typer.Option("--train-file", help="Labelled training file: LABEL TEXT "
                                                       "lines, .tsv or .jsonl.")] = None,
    dev_file: Annotated[Optional[Path], typer.Option("--dev-file", help="Labelled dev file (early stopping).")] = None,
    text_field: TextField = "text",
    label_field: LabelField = "label",
    cell: Cell = None,
    pooling: Annotated[Optional[str], typer.Option(help="attention | max | mean | last")] = None,
):
    """Train a BiLSTM/BiGRU text classifier; early stopping on dev accuracy (or macro F1: data.select).

    Example: nmt train classify --corpus sst2 --preset sst2 --out runs/sst2
    """
    from nmt.tasks.classify import corpus_pairs, read_labelled
    setup = run.setup({"model.rnn.cell": cell, "model.pooling": pooling})
    if train_file is not None or dev_file is not None:
        if train_file is None or dev_file is None:
            raise UserError("--train-file and --dev-file go together (early stopping uses dev accuracy)")
        train_pairs = read_labelled(train_file, text_field, label_field)
        dev_pairs = read_labelled(dev_file, text_field, label_field)
    else:
        train_pairs = corpus_pairs(run.corpus, "train", setup.data, run.data_dir)
        dev_pairs = corpus_pairs(run.corpus, "dev", setup.data, run.data_dir)
    run.train(setup, train_pairs, dev_pairs, str(train_file or run.corpus), ("text", "gold", "predicted"),
              lambda score: f"best dev {setup.data.select.replace('_', ' ')} {score:.2f}")


@evaluate_app.command("classify")
@friendly
def evaluate_classify(
    file: Annotated[Optional[Path], typer.Option("--file", help="Labelled file: LABEL TEXT lines, .tsv or "
                                                 ".jsonl.")] = None,
    corpus: Annotated[Optional[str], typer.Option(help="Or a named corpus: sst2 | trec | names.")] = None,
    split: Annotated[str, typer.Option(help="Split of --corpus (dev; names: also test).")] = "dev",
    text_field: TextField = "text",
    label_field: LabelField = "label",
    model: Model = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the confusion matrix to a PNG.")] = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
):
    """Accuracy, macro F1, each label's precision / recall / F1 and the confusion matrix.

    Example: nmt evaluate classify --corpus sst2 --split dev
    """
    from nmt.tasks.classify import corpus_pairs, read_labelled
    writable(plot)
    if (file is None) == (corpus is None):
        raise UserError("give --file FILE or --corpus NAME")
    classifier = load_runner("classify", model, "batch")
    if file:
        pairs = read_labelled(file, text_field, label_field)
    else:
        pairs = corpus_pairs(corpus, split, classifier.setup.data, data_dir)
    scores = classifier.evaluate(pairs)
    name = str(file) if file else f"{corpus} {split}"
    if plot:
        _plot_confusion(scores["confusion"], scores["labels"], plot, f"{name}: accuracy {scores['accuracy']:.2f}")
        err.print(f"wrote {plot}")
    if as_json:
        print_json(scores)
        return
    rows = [(escape(k), f"{s['precision']:.2f}", f"{s['recall']:.2f}", f"{s['f1']:.2f}", s["support"])
            for k, s in scores["per_label"].items()]
    out.print(table(f"{escape(name)}: {scores['examples']:,} texts, accuracy [bold]{scores['accuracy']:.2f}[/bold], "
                    f"macro F1 [bold]{scores['macro_f1']:.2f}[/bold]", ("label", "precision", "recall", "F1",
                                                                         "support"), rows))
    out.print(_confusion(scores["confusion"], scores["labels"]))


def _confusion(matrix: list[list[int]], labels: list[str]) -> Table:
    """Rows: gold labels; columns: predicted; the diagonal in bold green, other non-zero cells in red. Over 10
    labels (too wide for a terminal): the 12 largest confusions instead."""
    if len(labels) > 10:
        pairs = sorted(((n, labels[i], labels[j]) for i, row in enumerate(matrix) for j, n in enumerate(row)
                        if i != j and n), reverse=True)[:12]
        return table("largest confusions (the full matrix: --json or --plot)", ("gold", "predicted", "texts"),
                     [(escape(g), escape(p), n) for n, g, p in pairs])
    t = Table(title="confusion matrix (rows: gold, columns: predicted)")
    t.add_column("gold \\ predicted")
    for label in labels:
        t.add_column(escape(label), justify="right")
    for i, (label, row) in enumerate(zip(labels, matrix)):
        t.add_row(escape(label), *[f"[bold green]{n}[/]" if i == j else (f"[red]{n}[/]" if n else "[dim]0[/]")
                                   for j, n in enumerate(row)])
    return t


def _plot_confusion(matrix: list[list[int]], labels: list[str], path: str | Path, title: str = "") -> None:
    """The confusion matrix as a PNG: rows gold, columns predicted, each row shaded by its share."""
    from nmt.plots import _pyplot, _save
    plt, n = _pyplot(), len(labels)
    shares = [[v / max(1, sum(row)) for v in row] for row in matrix]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * n + 2), max(3.5, 0.45 * n + 1.5)))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(n), labels, rotation=60 if n > 6 else 0, ha="right" if n > 6 else "center")
    ax.set_yticks(range(n), labels)
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if shares[i][j] > 0.5 else "k")
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the gold label")
    _save(fig, path)
