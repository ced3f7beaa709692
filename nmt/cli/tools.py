"""data stats, tokenizer train/encode/decode, info, export."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from nmt.cli.common import (DataDir, InputFile, JsonOut, UserError, app, err, friendly, option_group, out, parse_sets,
                            read_input, writable)
from nmt.cli.render import print_table

data_app = typer.Typer(help="Look at corpora.", no_args_is_help=True)
tok_app = typer.Typer(help="Train and apply SentencePiece tokenizers.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(tok_app, name="tokenizer")
TokModel = Annotated[Optional[Path], typer.Option("--model", "-m", help="Tokenizer or model checkpoint "
                                                  "(default: the shipped translation model).")]
Side = Annotated[Optional[str], typer.Option(help="src | tgt: which tokenizer of a translation checkpoint (encode: "
                                             "src, decode: tgt); a checkpoint with one tokenizer uses it.")]
Lines = Annotated[Optional[list[str]], typer.Argument(help="Lines (else --input or stdin).")]


@data_app.command("stats")
@friendly
def data_stats(
    name: Annotated[str, typer.Argument(help="Corpus name (multi30k, tinyshakespeare, conll2003, wnut17, aeslc, "
                                        "gigaword) or a file path.")],
    split: Annotated[str, typer.Option(help="Split of a named corpus.")] = "train",
    data_dir: DataDir = None,
    as_json: JsonOut = False,
):
    """Sentences, tokens, length percentiles and vocabulary size (whitespace tokens).

    Example: nmt data stats multi30k --split val
    """
    from nmt.corpora import corpus_stats
    stats = corpus_stats(name, data_dir, split)
    if as_json:
        print(json.dumps(stats))
        return
    keys = ["count", "total", "vocab", "mean", "min", "p50", "p90", "p99", "max"]
    rows = [(column, *[f"{st[k]:.1f}" if isinstance(st.get(k), float) else str(st.get(k, "")) for k in keys])
            for column, st in stats["columns"].items()]
    print_table(f"{stats['name']} ({split})", ["column", "sentences", "tokens", "vocabulary", "mean len", "min",
                                               "p50", "p90", "p99", "max"], rows)


@tok_app.command("train")
@friendly
def tokenizer_train(
    files: Annotated[list[Path], typer.Argument(help="Text files (gzip allowed), one sentence per line.")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write.")] = Path("tokenizer.pt"),
    vocab_size: Annotated[int, typer.Option("--vocab-size")] = 8000,
    model_type: Annotated[str, typer.Option("--model-type", help="unigram | bpe")] = "unigram",
    character_coverage: Annotated[float, typer.Option("--character-coverage")] = 1.0,
):
    """Train one SentencePiece model on the given files (joint when several files are given).

    Example: nmt tokenizer train train.de train.en --vocab-size 8000 --out spm.pt
    """
    from nmt.config import TokenizerConfig, make
    from nmt.tokenizers import save_tokenizer, train_on_files
    writable(out_path)
    c = make(TokenizerConfig, vocab_size=vocab_size, model_type=model_type, character_coverage=character_coverage)
    tok, lines = train_on_files(files, c.vocab_size, c.model_type, c.character_coverage)
    save_tokenizer(out_path, tok, {"model_type": c.model_type, "vocab_size": c.vocab_size,
                                   "character_coverage": c.character_coverage, "files": [str(f) for f in files]})
    err.print(f"trained a {c.model_type} model with {tok.vocab_size} pieces on {lines} lines -> {out_path}")


def tokenizer_io(default_side: str):
    """The options of `tokenizer encode` and `decode`, handed over as (tokenizer, input lines)."""
    def build(model: Path | None, side: str | None, text: list[str] | None, input: Path | None):
        from nmt.tasks import SHIPPED
        from nmt.tokenizers import load_tokenizer
        return load_tokenizer(model or SHIPPED["translate"], side, default_side), read_input(text, input)
    return option_group("io", build, {"model": (TokModel, None), "side": (Side, None), "text": (Lines, None),
                                      "input": (InputFile, None)})


@tok_app.command("encode")
@friendly
@tokenizer_io("src")
def tokenizer_encode(
    io,
    ids: Annotated[bool, typer.Option("--ids", help="Print ids instead of pieces.")] = False,
):
    """Split text into subword pieces (or ids), one line per input line.

    Example: nmt tokenizer encode "Ein Hund läuft." --ids
    """
    tok, lines = io
    from nmt.tokenizers import encode_text
    for line in lines:
        if ids or not hasattr(tok, "pieces"):
            print(" ".join(map(str, encode_text(tok, line))))
        else:
            print(" ".join(tok.pieces(line)))


@tok_app.command("decode")
@friendly
@tokenizer_io("tgt")
def tokenizer_decode(io):
    """Turn lines of space-separated ids back into text.

    Example: nmt tokenizer decode "45 9 812 3"
    """
    from nmt.tokenizers import decode_text
    tok, lines = io
    for line in lines:
        try:
            ids = [int(x) for x in line.split()]
        except ValueError:
            raise UserError(f"decode expects space-separated integer ids, got '{line[:40]}'") from None
        bad = [i for i in ids if not 0 <= i < tok.vocab_size]
        if bad:
            raise UserError(f"id {bad[0]} is outside the vocabulary (0..{tok.vocab_size - 1})")
        print(decode_text(tok, ids))


@app.command()
@friendly
def info(
    checkpoint: Annotated[Path, typer.Argument(help="Any nmt checkpoint.")],
    as_json: JsonOut = False,
):
    """Task, configuration, vocabulary sizes, parameter count and recorded scores of a checkpoint.

    Example: nmt info checkpoints/multi30k-de-en.pt
    """
    from nmt import checkpoint as ckpt_io
    from nmt.tokenizers import TokenizerError
    try:
        summary = ckpt_io.describe(ckpt_io.load(checkpoint))
    except TokenizerError as exc:
        raise TokenizerError(f"{checkpoint}: {exc}") from None
    if as_json:
        print(json.dumps(summary, default=str))
        return
    t = Table(title=str(checkpoint), show_header=False)
    t.add_column("key", style="bold")
    t.add_column("value", overflow="fold")
    t.add_row("task", summary["task"])
    t.add_row("parameters", f"{summary['parameters']:,} ({', '.join(summary['weights']) or 'none'})")
    t.add_row("vocabulary", ", ".join(f"{k} {v}" for k, v in summary["vocab"].items()) or "-")
    t.add_row("scores", ", ".join(f"{k} {v:.5g}" if isinstance(v, float) else f"{k} {v}"
                                  for k, v in summary["scores"].items()) or "-")
    for k, v in summary["meta"].items():
        t.add_row(k, str(v))
    t.add_row("resumable", "yes" if summary["resumable"] else "no (released)")
    t.add_row("config", json.dumps(summary["config"], indent=1))
    out.print(t)


@app.command()
@friendly
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A run's best.pt or last.pt.")],
    out_path: Annotated[Path, typer.Argument(help="Where to write the released model.")],
    fp32: Annotated[bool, typer.Option("--fp32", help="Keep float32 weights (default: float16).")] = False,
    quantize: Annotated[Optional[str], typer.Option("--quantize", help="int8: the matrices as int8 with one scale "
                                                    "per row; models run their hot products on int8 kernels "
                                                    "(see README, Fast inference).")] = None,
    score: Annotated[Optional[list[str]], typer.Option("--score", help="Record a score NAME=VALUE "
                                                                 "(repeatable).")] = None,
    casing_from: Annotated[Optional[str], typer.Option("--casing-from", help="Summariser: learn the commonest "
                                                      "spelling of each word from this corpus's training text "
                                                      "(for checkpoints trained before it was recorded).")] = None,
    only_given: Annotated[bool, typer.Option("--only-given-scores", help="Record only the --score values, not the "
                                             "run's training-time validation scores.")] = False,
    average: Annotated[int, typer.Option("--average", min=1, help="Average the weights of the N kept validation "
                                         "checkpoints (step-*.pt beside it) that end at this checkpoint's step.")] = 1,
    ensemble: Annotated[Optional[list[Path]], typer.Option("--ensemble", help="Character models: join this "
                        "checkpoint with another run's (repeatable) into one model predicting the mean of their "
                        "distributions.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="pt: an nmt checkpoint (default); onnx: a folder of ONNX "
                                     "graphs and the tokenizers, for --runtime onnx (float32).")] = "pt",
):
    """Write a compact release of a checkpoint: no training state, float16 weights.

    Example: nmt export runs/m30k/best.pt checkpoints/multi30k-de-en.pt
    Averaged: nmt export runs/m30k/best.pt checkpoints/multi30k-de-en.pt --average 5 (train with
    --set train.keep_checkpoints=N to keep them)
    Ensemble: nmt export runs/a/best.pt checkpoints/lm.pt --ensemble runs/b/best.pt
    ONNX: nmt export runs/m30k/best.pt de-en.onnx --format onnx; then nmt translate --runtime onnx -m de-en.onnx
    """
    from nmt import checkpoint as ckpt_io
    from nmt import tasks
    if fmt == "onnx":
        if quantize is not None:
            raise UserError("--format onnx writes float32 graphs: drop --quantize")
        if casing_from or score or only_given:
            raise UserError("--format onnx keeps the checkpoint's scores as they are: drop --score, --casing-from "
                            "and --only-given-scores")
        return _export_onnx(checkpoint, writable(out_path, folder=True), average, ensemble or [])
    if fmt != "pt":
        raise UserError(f"--format must be pt or onnx, got '{fmt}'")
    writable(out_path)
    ckpt = _released_weights(checkpoint, average, ensemble or [])
    if ckpt.task in tasks.TASKS:            # the model must build from it: a damaged file is refused, not released
        tasks.module(ckpt.task).RUNNER.build(ckpt, str(checkpoint))
    ckpt = ckpt_io.release(ckpt, half=not fp32)
    if quantize is not None:
        _quantize(ckpt, quantize, checkpoint)
    if only_given:
        ckpt.scores.clear()
    if casing_from:
        from nmt.tasks.summarize import learn_casing
        learn_casing(ckpt, casing_from)
    for name, value in parse_sets(score).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UserError(f"--score {name}= needs a finite number, got {value!r}")
        ckpt.scores[name] = float(value)
    ckpt_io.save(out_path, ckpt)
    err.print(f"wrote {out_path} ({out_path.stat().st_size / 1e6:.1f} MB)")


def _quantize(ckpt, kind: str, source: Path) -> None:
    """Replace the checkpoint's matrices by int8 ones (nmt/quantize.py), in place, and say so in its meta."""
    from nmt import quantize, tasks
    if kind != "int8":
        raise UserError(f"--quantize {kind}: only int8 is supported")
    if quantize.is_int8(ckpt):
        raise UserError(f"{source} is already quantised (int8); quantise its float checkpoint instead")
    before = quantize.size_report(ckpt.model)["bytes"]
    ckpt.model = quantize.quantize_state(ckpt.model)
    sizes = quantize.size_report(ckpt.model)
    ckpt.meta["quantized"] = (f"int8, one scale per row: {sizes['int8_bytes'] / 1e6:.1f}M of the weights "
                              f"({sizes['bytes'] / 1e6:.1f} MB, {before / 1e6:.1f} MB before)")
    # the float model's scores are not this model's: kept under float_NAME until measured (export --score)
    ckpt.scores = {f"float_{k}" if not k.startswith("float_") else k: v for k, v in ckpt.scores.items()}
    if ckpt.task in tasks.TASKS:
        tasks.module(ckpt.task).RUNNER.build(ckpt, str(source))


def _export_onnx(checkpoint: Path, out_path: Path, average: int, ensemble: list[Path]) -> None:
    """`export --format onnx`: the graphs of nmt/onnx/export.py in the folder out_path."""
    from nmt.onnx.export import export as export_onnx
    files = export_onnx(_released_weights(checkpoint, average, ensemble), out_path, str(checkpoint))
    size = sum(f.stat().st_size for f in files) / 1e6
    err.print(f"wrote {out_path}/ ({', '.join(f.name for f in files)}; {size:.1f} MB)")


def _released_weights(checkpoint: Path, average: int, ensemble: list[Path]):
    """The checkpoint to release: as it is, averaged over its run's last N validations, or joined with others."""
    from nmt import checkpoint as ckpt_io
    from nmt.runs import average_kept
    if average > 1:
        ckpt, window = average_kept(checkpoint, average)
        err.print(f"averaged {', '.join(path.name for path in window)}")
    else:
        ckpt = ckpt_io.load(checkpoint)
    if ensemble:
        others = [ckpt_io.load(path) for path in ensemble]
        if ckpt.task != "charlm":
            raise UserError(f"--ensemble joins character models (charlm), not '{ckpt.task}' checkpoints")
        ckpt = ckpt_io.ensemble([ckpt, *others])
        err.print(f"joined {len(others) + 1} models")
    return ckpt
