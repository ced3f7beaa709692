"""The `nmt` command line: parse options, call one library function, render with Rich.

The only module that knows about the terminal. User errors become one red line on stderr and exit status 1.
"""
from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
CHECKPOINTS = REPO / "checkpoints"
DEFAULT_TRANSLATE = CHECKPOINTS / "multi30k-de-en.pt"
DEFAULT_CHARLM = CHECKPOINTS / "shakespeare-charlm.pt"
DEFAULT_TAGGER = CHECKPOINTS / "conll2003-ner.pt"
DEFAULT_SUMMARIZER = CHECKPOINTS / "aeslc-summarizer.pt"

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

app = typer.Typer(help="Recurrent sequence models: translate, train, evaluate, inspect.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]})
train_app = typer.Typer(help="Train a model (resumes when --out already holds a run).", no_args_is_help=True)
evaluate_app = typer.Typer(help="Score a model on a test set.", no_args_is_help=True)
data_app = typer.Typer(help="Look at corpora.", no_args_is_help=True)
tok_app = typer.Typer(help="Train and apply SentencePiece tokenizers.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(data_app, name="data")
app.add_typer(tok_app, name="tokenizer")

# --- options declared once --------------------------------------------------------------------------------
DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Root of named corpora (else $NMT_DATA, "
                                                 "data/, ../shared/data).")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]
Beam = Annotated[int, typer.Option("--beam", "-b", help="Beam size (1 = greedy).")]
MaxSteps = Annotated[int, typer.Option("--max-steps", help="Stop after this many updates (0: no limit).")]
MaxMinutes = Annotated[float, typer.Option("--max-minutes", help="Stop after this many minutes (0: no limit).")]
Device = Annotated[Optional[str], typer.Option("--device", help="cpu (default) | cuda | cuda:N | auto; bf16 "
                                              "mixed precision on GPUs that support it.")]
Accumulate = Annotated[Optional[int], typer.Option("--accumulate", min=1, help="Batches per update on each "
                                                   "process (gradient accumulation; default 1).")]
Sets = Annotated[Optional[list[str]], typer.Option("--set", help="Any hyperparameter as dotted KEY=VALUE, "
                                                   "e.g. --set train.optim.lr=0.002 (repeatable).")]


def report(message: str) -> None:
    """A training summary line, from rank 0 only when torchrun runs several processes."""
    if os.environ.get("RANK", "0") == "0":
        err.print(message)


class UserError(Exception):
    """Raised by the CLI itself for bad options."""


def _user_errors():
    from nmt.checkpoint import CheckpointError
    from nmt.config import ConfigError
    from nmt.data import DataError
    from nmt.tokenizers import TokenizerError
    return (UserError, CheckpointError, ConfigError, DataError, TokenizerError, UnicodeDecodeError)


def friendly(fn):
    """Turn user errors into one red line on stderr and exit status 1."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _user_errors() as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)   # messages quote user text
            raise typer.Exit(1)
        except KeyboardInterrupt:
            err.print("[red]interrupted[/red]")
            raise typer.Exit(130)
    return wrapper


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


def collect_overrides(options: dict, max_steps: int, max_minutes: float, sets: list[str] | None,
                      device: str | None = None, accumulate: int | None = None) -> dict:
    """Dotted overrides from explicit options (None = not given), the run options and --set items, in that order."""
    options = {**options, "train.device": device, "train.accumulate": accumulate}
    overrides = {k: v for k, v in options.items() if v is not None}
    if max_steps:
        overrides["train.max_steps"] = max_steps
    if max_minutes:
        overrides["train.max_minutes"] = max_minutes
    overrides.update(parse_sets(sets))
    return overrides


def read_input(texts: list[str] | None, input_file: Path | None) -> list[str]:
    """Lines from arguments, a file, or stdin, in that order of preference."""
    from nmt.data import check_text_file
    if texts:
        return list(texts)
    if input_file:
        check_text_file(input_file)
        return input_file.read_text(encoding="utf-8").splitlines()
    if sys.stdin is None or sys.stdin.isatty():
        raise UserError("no input: give TEXT arguments, --input FILE, or pipe text on stdin")
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UserError(f"stdin: line {line} is not valid UTF-8") from None


# --- translate ------------------------------------------------------------------------------------------------
@app.command()
@friendly
def translate(
    text: Annotated[Optional[list[str]], typer.Argument(help="Sentences to translate (else --input or stdin).")] = None,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="File with one sentence per line.")] = None,
    model: Annotated[Path, typer.Option("--model", "--checkpoint", "-m", help="Translation checkpoint.")] = DEFAULT_TRANSLATE,
    beam: Beam = 5,
    n_best: Annotated[int, typer.Option("--n-best", help="Print the N best translations of each line.")] = 1,
    length_penalty: Annotated[float, typer.Option("--length-penalty", help="GNMT alpha; 0 disables.")] = 1.0,
    max_len_ratio: Annotated[float, typer.Option("--max-len-ratio", help="Output cap: ratio * source length + 10.")] = 2.0,
    show_attention: Annotated[bool, typer.Option("--show-attention", help="Draw each attention matrix "
                                                 "in the terminal.")] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the attention matrix of the first "
                                                 "sentence to a PNG (several sentences: NAME-2.png, ...).")] = None,
    as_json: JsonOut = False,
):
    """Translate sentences: one output line per input line, in order, blank lines kept.

    Example: nmt translate "Ein Mann fährt Fahrrad."
    """
    from nmt.config import DecodeConfig
    from nmt.translation import Translator
    if beam < 1:
        raise UserError(f"--beam must be at least 1, got {beam}")
    if not 1 <= n_best <= beam:
        raise UserError(f"--n-best must be between 1 and --beam ({beam}), got {n_best}")
    lines = read_input(text, input)
    if not lines:
        raise UserError("empty input: nothing to translate")
    translator = Translator.load(model)
    decode = DecodeConfig(beam=beam, n_best=n_best, length_penalty=length_penalty, max_len_ratio=max_len_ratio)
    want_attention = show_attention or plot is not None
    results = translator.translate_hyps(lines, decode, keep_attention=want_attention)
    if want_attention:
        _attention_views(translator, lines, results, show_attention, plot)
        if show_attention:
            return
    if translator.truncated:
        err.print(f"[yellow]warning:[/yellow] {translator.truncated} line(s) longer than "
                  f"{translator.max_src_tokens} subwords were truncated")
    decoded = [[(translator.tgt_tok.decode(h.tokens), h.score) for h in hyps] for hyps in results]
    if as_json:
        rows = [{"source": s, "translations": [{"text": t, "score": sc} for t, sc in d]} for s, d in zip(lines, decoded)]
        print(json.dumps(rows, ensure_ascii=False))
        return
    if sys.stdout.isatty():       # a person is reading: show source and output together
        for source, d in zip(lines, decoded):
            out.print(f"[dim]{escape(source)}[/dim]")
            for t, sc in d or [("", 0.0)]:
                extra = f"  [dim]{sc:.3f}[/dim]" if n_best > 1 else ""
                out.print(f"[bold green]{escape(t)}[/bold green]{extra}")
        return
    for d in decoded:             # piped: exactly one line per input line (n-best: TAB-separated scores)
        if n_best == 1:
            print(d[0][0] if d else "")
        else:
            print("\n".join(f"{t}\t{sc:.4f}" for t, sc in d) if d else "")


def _attention_views(translator, lines: list[str], results, show: bool, plot: Path | None) -> None:
    """Rich shaded matrices and/or PNG files of the best hypothesis's attention, one per non-empty line."""
    from nmt.plots import plot_attention
    count = 0
    for line, hyps in zip(lines, results):
        if not hyps:
            continue
        hyp = hyps[0]
        source = translator.src_tok.pieces(line)[: translator.max_src_tokens]
        target = [translator.tgt_tok.id_to_piece(i) for i in hyp.tokens] + ["</s>"]
        weights = hyp.attention[:, : len(source)].float()                               # (T, S)
        if show:
            _show_attention(weights, source, target, translator.tgt_tok.decode(hyp.tokens))
        if plot is not None:
            count += 1
            path = plot if count == 1 else plot.with_name(f"{plot.stem}-{count}{plot.suffix}")
            plot_attention(weights.numpy(), source, target, path, title=translator.tgt_tok.decode(hyp.tokens))
            err.print(f"wrote {path}")


def _show_attention(weights, source: list[str], target: list[str], translation: str) -> None:
    """One row per output token, one shaded cell per source token (darker = more attention)."""
    table = Table(title=escape(translation), show_lines=False, pad_edge=False, box=None)
    table.add_column("")
    for piece in source:
        table.add_column(escape(piece), justify="center", no_wrap=True)
    for row, piece in zip(weights.tolist(), target):
        cells = []
        for w in row:
            level = int(round(w * 255))
            cells.append(f"[on rgb({255 - level},{255 - level // 2},255)]{w:4.2f}[/]" if w >= 0.005 else "")
        table.add_row(escape(piece), *cells)
    out.print(table)


# --- train translate ------------------------------------------------------------------------------------------
@train_app.command("translate")
@friendly
def train_translate(
    corpus: Annotated[Optional[str], typer.Option(help="Named corpus (multi30k).")] = "multi30k",
    src: Annotated[str, typer.Option(help="Source language of the named corpus.")] = "de",
    tgt: Annotated[str, typer.Option(help="Target language of the named corpus.")] = "en",
    train_src: Annotated[Optional[Path], typer.Option(help="Parallel training files instead of a corpus.")] = None,
    train_tgt: Annotated[Optional[Path], typer.Option()] = None,
    valid_src: Annotated[Optional[Path], typer.Option()] = None,
    valid_tgt: Annotated[Optional[Path], typer.Option()] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (metrics.jsonl, last.pt, best.pt).")] = Path("runs/translate"),
    preset: Annotated[str, typer.Option(help="base | multi30k | tiny (see nmt/config.py).")] = "base",
    config: Annotated[Optional[Path], typer.Option("--config", help="JSON file of settings.")] = None,
    cell: Annotated[Optional[str], typer.Option(help="rnn | lstm | gru")] = None,
    impl: Annotated[Optional[str], typer.Option(help="fused | scratch")] = None,
    attention: Annotated[Optional[str], typer.Option(help="bahdanau | dot | general")] = None,
    input_feeding: Annotated[Optional[bool], typer.Option("--input-feeding/--no-input-feeding")] = None,
    max_steps: MaxSteps = 0,
    max_minutes: MaxMinutes = 0.0,
    device: Device = None,
    accumulate: Accumulate = None,
    sets: Sets = None,
    data_dir: DataDir = None,
    valid_limit: Annotated[int, typer.Option(help="Validate on the first N pairs (0: all).")] = 0,
):
    """Train an attention encoder-decoder on a parallel corpus.

    Example: nmt train translate --corpus multi30k --src de --tgt en --preset multi30k --out runs/m30k
    """
    from nmt import data, translation
    overrides = collect_overrides({"model.encoder.cell": cell, "model.encoder.impl": impl,
                                   "model.attention": attention, "model.input_feeding": input_feeding},
                                  max_steps, max_minutes, sets, device, accumulate)
    setup = translation.make_setup(preset, str(config) if config else None, overrides)
    if train_src or train_tgt:
        if not (train_src and train_tgt and valid_src and valid_tgt):
            raise UserError("--train-src, --train-tgt, --valid-src and --valid-tgt go together")
        train_pairs = data.ParallelCorpus.from_files(train_src, train_tgt)     # memory-mapped Arrow
        valid_pairs = data.read_parallel(valid_src, valid_tgt)
        name = f"{train_src.name}->{train_tgt.name}"
    else:
        train_pairs = data.ParallelCorpus.from_files(*data.corpus_files(corpus, "train", data_dir, src, tgt)["paths"])
        valid_pairs = data.read_parallel(*data.corpus_files(corpus, "val", data_dir, src, tgt)["paths"])
        name = f"{corpus} {src}-{tgt}"
    if valid_limit:
        valid_pairs = valid_pairs[:valid_limit]
    from nmt.progress import RichProgress
    progress = RichProgress(err, total_steps=setup.train.max_steps, sample_headers=("source", "reference", "output"))
    meta = {"data": name, "command": " ".join(["python", "cli.py"] + sys.argv[1:])}
    state, run_dir = translation.train(setup, train_pairs, valid_pairs, out, [progress], meta)
    report(f"stopped ({state.stopped}) at step {state.step}; best validation score {state.best_score:.2f}; "
              f"checkpoints in {run_dir}")


# --- evaluate translate ---------------------------------------------------------------------------------------
@evaluate_app.command("translate")
@friendly
def evaluate_translate(
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="Source sentences, one per line.")] = None,
    ref: Annotated[Optional[Path], typer.Option("--ref", "-r", help="Reference translations, one per line.")] = None,
    corpus: Annotated[Optional[str], typer.Option(help="Or a named corpus (multi30k) ...")] = None,
    split: Annotated[str, typer.Option(help="... and its split (val, test_2016_flickr).")] = "test_2016_flickr",
    src: Annotated[str, typer.Option(help="Source language of the named corpus.")] = "de",
    tgt: Annotated[str, typer.Option(help="Target language of the named corpus.")] = "en",
    data_dir: DataDir = None,
    model: Annotated[Path, typer.Option("--model", "--checkpoint", "-m")] = DEFAULT_TRANSLATE,
    beam: Beam = 5,
    length_penalty: Annotated[float, typer.Option("--length-penalty")] = 1.0,
    output: Annotated[Optional[Path], typer.Option("--output", help="Also write the translations here.")] = None,
    as_json: JsonOut = False,
):
    """sacreBLEU BLEU and chrF of a model's detokenised, cased output against raw references (gzip allowed).

    Example: nmt evaluate translate --corpus multi30k --split test_2016_flickr --beam 5
    """
    from nmt import metrics
    from nmt.config import DecodeConfig
    from nmt.data import read_parallel
    from nmt.translation import Translator
    from nmt.data import corpus_files
    if beam < 1:
        raise UserError(f"--beam must be at least 1, got {beam}")
    if corpus:
        input, ref = corpus_files(corpus, split, data_dir, src, tgt)["paths"]
    elif not (input and ref):
        raise UserError("give --input SRC and --ref REF, or --corpus NAME [--split SPLIT]")
    pairs = read_parallel(input, ref)
    translator = Translator.load(model)
    hyps = translator.translate([s for s, _ in pairs], DecodeConfig(beam=beam, length_penalty=length_penalty))
    refs = [r for _, r in pairs]
    if output:
        output.write_text("\n".join(hyps) + "\n", encoding="utf-8")
    scores = [metrics.bleu(hyps, refs), metrics.chrf(hyps, refs)]
    if as_json:
        print(json.dumps({s.name.lower(): {"score": round(s.score, 2), "signature": s.signature} for s in scores}
                         | {"sentences": len(pairs), "beam": beam}))
        return
    table = Table(title=f"{input.name} -> {ref.name} ({len(pairs)} sentences, beam {beam})")
    for col in ("metric", "score", "signature"):
        table.add_column(col)
    for s in scores:
        table.add_row(s.name, f"{s.score:.2f}", s.signature)
    out.print(table)


# --- data, tokenizer, info, export ----------------------------------------------------------------------------
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
    from nmt.data import corpus_stats
    stats = corpus_stats(name, data_dir, split)
    if as_json:
        print(json.dumps(stats))
        return
    table = Table(title=f"{stats['name']} ({split})")
    keys = ["count", "total", "vocab", "mean", "min", "p50", "p90", "p99", "max"]
    heads = ["column", "sentences", "tokens", "vocabulary", "mean len", "min", "p50", "p90", "p99", "max"]
    for h in heads:
        table.add_column(h, justify="left" if h == "column" else "right")
    for column, st in stats["columns"].items():
        table.add_row(column, *[f"{st[k]:.1f}" if isinstance(st.get(k), float) else str(st.get(k, "")) for k in keys])
    out.print(table)


@tok_app.command("train")
@friendly
def tokenizer_train(
    files: Annotated[list[Path], typer.Argument(help="Text files (gzip allowed), one sentence per line.")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Where to write the tokenizer checkpoint.")] = Path("tokenizer.pt"),
    vocab_size: Annotated[int, typer.Option("--vocab-size")] = 8000,
    model_type: Annotated[str, typer.Option("--model-type", help="unigram | bpe")] = "unigram",
    character_coverage: Annotated[float, typer.Option("--character-coverage")] = 1.0,
):
    """Train one SentencePiece model on the given files (joint when several files are given).

    Example: nmt tokenizer train train.de train.en --vocab-size 8000 --out spm.pt
    """
    from nmt import checkpoint as ckpt_io
    from nmt.data import read_lines
    from nmt.tokenizers import SentencePieceTokenizer
    lines = [line for f in files for line in read_lines(f)]
    tok = SentencePieceTokenizer.train(lines, vocab_size, model_type, character_coverage)
    config = {"model_type": model_type, "vocab_size": vocab_size, "character_coverage": character_coverage,
              "files": [str(f) for f in files]}
    ckpt_io.save(out_path, ckpt_io.Checkpoint("tokenizer", config, {}, {"src": tok.to_state()}))
    err.print(f"trained a {model_type} model with {tok.vocab_size} pieces on {len(lines)} lines -> {out_path}")


def _load_tokenizer(path: Path, side: str):
    from nmt import checkpoint as ckpt_io
    from nmt.tokenizers import tokenizer_from_state
    ckpt = ckpt_io.load(path)
    if side not in ckpt.tokenizers:
        raise UserError(f"{path} has no '{side}' tokenizer (it has: {', '.join(ckpt.tokenizers) or 'none'})")
    return tokenizer_from_state(ckpt.tokenizers[side])


@tok_app.command("encode")
@friendly
def tokenizer_encode(
    text: Annotated[Optional[list[str]], typer.Argument(help="Text (else --input or stdin).")] = None,
    model: Annotated[Path, typer.Option("--model", "-m", help="Tokenizer or model checkpoint.")] = DEFAULT_TRANSLATE,
    side: Annotated[str, typer.Option(help="src | tgt (for model checkpoints).")] = "src",
    input: Annotated[Optional[Path], typer.Option("--input", "-i")] = None,
    ids: Annotated[bool, typer.Option("--ids", help="Print ids instead of pieces.")] = False,
):
    """Split text into subword pieces (or ids), one line per input line.

    Example: nmt tokenizer encode "Ein Hund läuft." --ids
    """
    tok = _load_tokenizer(model, side)
    for line in read_input(text, input):
        if ids or not hasattr(tok, "pieces"):
            print(" ".join(map(str, tok.encode(line))))
        else:
            print(" ".join(tok.pieces(line)))


@tok_app.command("decode")
@friendly
def tokenizer_decode(
    text: Annotated[Optional[list[str]], typer.Argument(help="Lines of space-separated ids (else stdin).")] = None,
    model: Annotated[Path, typer.Option("--model", "-m")] = DEFAULT_TRANSLATE,
    side: Annotated[str, typer.Option(help="src | tgt")] = "tgt",
    input: Annotated[Optional[Path], typer.Option("--input", "-i")] = None,
):
    """Turn lines of ids back into text.

    Example: nmt tokenizer decode "45 9 812 3"
    """
    tok = _load_tokenizer(model, side)
    for line in read_input(text, input):
        try:
            ids = [int(x) for x in line.split()]
        except ValueError:
            raise UserError(f"decode expects space-separated integer ids, got '{line[:40]}'") from None
        bad = [i for i in ids if not 0 <= i < tok.vocab_size]
        if bad:
            raise UserError(f"id {bad[0]} is outside the vocabulary (0..{tok.vocab_size - 1})")
        print(tok.decode(ids))


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
    from nmt.tokenizers import tokenizer_from_state
    ckpt = ckpt_io.load(checkpoint)
    vocab = {k: tokenizer_from_state(v).vocab_size for k, v in ckpt.tokenizers.items()}
    dtypes = sorted({str(t.dtype).replace("torch.", "") for t in ckpt.model.values()})
    summary = {"task": ckpt.task, "parameters": ckpt.num_parameters(), "weights": dtypes, "vocab": vocab,
               "scores": ckpt.scores, "meta": ckpt.meta, "resumable": ckpt.train_state is not None,
               "config": ckpt.config}
    if as_json:
        print(json.dumps(summary, default=str))
        return
    table = Table(title=str(checkpoint), show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("task", ckpt.task)
    table.add_row("parameters", f"{summary['parameters']:,} ({', '.join(dtypes) or 'none'})")
    table.add_row("vocabulary", ", ".join(f"{k} {v}" for k, v in vocab.items()) or "-")
    table.add_row("scores", ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in ckpt.scores.items()) or "-")
    for k, v in ckpt.meta.items():
        table.add_row(k, str(v))
    table.add_row("resumable", "yes" if summary["resumable"] else "no (released)")
    table.add_row("config", json.dumps(ckpt.config, indent=1))
    out.print(table)


@app.command()
@friendly
def export(
    checkpoint: Annotated[Path, typer.Argument(help="A run's best.pt or last.pt.")],
    out_path: Annotated[Path, typer.Argument(help="Where to write the released model.")],
    fp32: Annotated[bool, typer.Option("--fp32", help="Keep float32 weights (default: float16).")] = False,
    score: Annotated[Optional[list[str]], typer.Option("--score", help="Record a score NAME=VALUE (repeatable).")] = None,
    average: Annotated[int, typer.Option("--average", min=1, help="Average the weights of the N kept validation "
                                         "checkpoints (step-*.pt beside it) that end at this checkpoint's step.")] = 1,
):
    """Write a compact release of a checkpoint: no training state, float16 weights.

    Example: nmt export runs/m30k/best.pt checkpoints/multi30k-de-en.pt
    Averaged: nmt export runs/m30k/best.pt checkpoints/multi30k-de-en.pt --average 5 (train with
    --set train.keep_checkpoints=N to keep them)
    """
    from nmt import checkpoint as ckpt_io
    ckpt = ckpt_io.load(checkpoint)
    if average > 1:
        from nmt.training import kept_checkpoints
        step = ckpt.meta.get("step") or (ckpt.train_state or {}).get("trainer", {}).get("step")
        window = kept_checkpoints(checkpoint.parent, up_to=step)[-average:]
        if step is None or len(window) < average or window[-1].name != f"step-{step}.pt":
            raise ckpt_io.CheckpointError(
                f"--average {average}: {checkpoint.parent} keeps {len(window)} validation checkpoints up to step "
                f"{step} (train with --set train.keep_checkpoints=N)")
        ckpt = ckpt_io.average([ckpt_io.load(path) for path in window])
        err.print(f"averaged {', '.join(path.name for path in window)}")
    ckpt = ckpt_io.release(ckpt, half=not fp32)
    ckpt.scores.update({k: float(v) for k, v in parse_sets(score).items()})
    ckpt_io.save(out_path, ckpt)
    err.print(f"wrote {out_path} ({out_path.stat().st_size / 1e6:.1f} MB)")


# --- character language model ------------------------------------------------------------------------------
@train_app.command("charlm")
@friendly
def train_charlm(
    corpus: Annotated[str, typer.Option(help="Named corpus (tinyshakespeare).")] = "tinyshakespeare",
    text_file: Annotated[Optional[Path], typer.Option("--text-file", help="Any UTF-8 text instead (90/10 split).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder.")] = Path("runs/charlm"),
    preset: Annotated[str, typer.Option(help="base | shakespeare | tiny (see nmt/config.py).")] = "base",
    config: Annotated[Optional[Path], typer.Option("--config", help="JSON file of settings.")] = None,
    cell: Annotated[Optional[str], typer.Option(help="rnn | lstm | gru")] = None,
    impl: Annotated[Optional[str], typer.Option(help="fused | scratch")] = None,
    max_steps: MaxSteps = 0,
    max_minutes: MaxMinutes = 0.0,
    device: Device = None,
    accumulate: Accumulate = None,
    sets: Sets = None,
    data_dir: DataDir = None,
):
    """Train a character-level language model with truncated BPTT.

    Example: nmt train charlm --corpus tinyshakespeare --preset shakespeare --out runs/shakespeare
    """
    from nmt import charlm, data
    overrides = collect_overrides({"model.rnn.cell": cell, "model.rnn.impl": impl}, max_steps, max_minutes, sets,
                                  device, accumulate)
    setup = charlm.make_setup(preset, str(config) if config else None, overrides)
    path = text_file or data.corpus_files(corpus, "train", data_dir)["paths"][0]
    text = data.read_text(path)
    from nmt.progress import RichProgress
    progress = RichProgress(err, total_steps=setup.train.max_steps, sample_headers=("sample (temperature 0.8)",))
    meta = {"data": str(text_file or corpus), "command": " ".join(["python", "cli.py"] + sys.argv[1:])}
    state, run_dir = charlm.train(setup, text, out, [progress], meta)
    report(f"stopped ({state.stopped}) at step {state.step}; best validation loss {-state.best_score:.4f} "
              f"nats/char; checkpoints in {run_dir}")


@app.command()
@friendly
def generate(
    model: Annotated[Path, typer.Option("--model", "--checkpoint", "-m", help="Character LM checkpoint.")] = DEFAULT_CHARLM,
    temperature: Annotated[float, typer.Option("--temperature", "-t", help="0 = greedy; higher = more random.")] = 0.8,
    length: Annotated[int, typer.Option("--length", "-n", help="Characters to generate.")] = 500,
    prime: Annotated[str, typer.Option("--prime", "-p", help="Text the sample continues.")] = "\n",
    top_k: Annotated[int, typer.Option("--top-k", help="Sample among the K most likely (0: all).")] = 0,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus sampling mass in (0, 1].")] = 1.0,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Same seed, same text.")] = None,
    num_samples: Annotated[int, typer.Option("--num-samples", help="Independent samples.")] = 1,
    as_json: JsonOut = False,
):
    """Generate text character by character, streamed as it is produced.

    Example: nmt generate --temperature 0.8 --prime "ROMEO:" --length 300
    """
    import math
    from nmt import charlm
    if not (temperature >= 0 and math.isfinite(temperature)):
        raise UserError(f"--temperature must be a finite number >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise UserError(f"--top-p must be in (0, 1], got {top_p}")
    if length < 1:
        raise UserError(f"--length must be at least 1, got {length}")
    if top_k < 0 or num_samples < 1:
        raise UserError("--top-k must be >= 0 and --num-samples >= 1")
    prime = prime.replace("\\n", "\n")
    lm, tok, _ = charlm.load(model)
    unknown = tok.unknown(prime)
    if unknown:
        err.print(f"[yellow]note:[/yellow] the model never saw {''.join(sorted(unknown))!r}; "
                  "those characters of the prime are read as <unk>")
    steps = charlm.generate_batch(lm, tok, prime, length, temperature, top_k, top_p, seed, num_samples)
    if num_samples == 1 and not as_json:
        sys.stdout.write(prime)
        for chars in steps:
            sys.stdout.write(chars[0])
            sys.stdout.flush()
        sys.stdout.write("\n")
        return
    samples = [prime] * num_samples
    for chars in steps:
        samples = [s + c for s, c in zip(samples, chars)]
    if as_json:
        print(json.dumps({"samples": samples}, ensure_ascii=False))
        return
    for i, sample in enumerate(samples):
        out.rule(f"sample {i + 1}")
        print(sample)


@evaluate_app.command("charlm")
@friendly
def evaluate_charlm(
    text_file: Annotated[Optional[Path], typer.Option("--text-file", help="UTF-8 text to score.")] = None,
    corpus: Annotated[Optional[str], typer.Option(help="Or a named corpus's validation split (last 10%).")] = None,
    model: Annotated[Path, typer.Option("--model", "--checkpoint", "-m")] = DEFAULT_CHARLM,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
):
    """Loss (nats/char), bits per character and perplexity, hidden state carried through the whole text.

    Example: nmt evaluate charlm --corpus tinyshakespeare
    """
    import torch
    from nmt import charlm, data
    if not (text_file or corpus):
        raise UserError("give --text-file FILE or --corpus NAME")
    if text_file:
        text = data.read_text(text_file)
    else:
        text = charlm.split_text(data.read_text(data.corpus_files(corpus, "val", data_dir)["paths"][0]))[1]
    lm, tok, _ = charlm.load(model)
    unknown = tok.unknown(text)
    if unknown:
        err.print(f"[yellow]note:[/yellow] {len(unknown)} character type(s) unseen in training are scored as <unk>")
    result = charlm.evaluate_ids(lm, torch.tensor(tok.encode(text)), streams=1, unroll=256)
    if as_json:
        print(json.dumps({k: result[k] for k in ("loss", "bpc", "perplexity")}))
        return
    table = Table(title=f"{text_file or corpus + ' (last 10%)'}: {result['characters']:,} characters")
    for col in ("loss (nats/char)", "bits/char", "perplexity"):
        table.add_column(col, justify="right")
    table.add_row(f"{result['loss']:.4f}", f"{result['bpc']:.4f}", f"{result['perplexity']:.3f}")
    out.print(table)


# --- named-entity tagging -------------------------------------------------------------------------------------
ENTITY_STYLES = {"PER": "bold magenta", "ORG": "bold cyan", "LOC": "bold green", "MISC": "bold yellow"}
TagColumn = Annotated[int, typer.Option("--tag-column", help="Column holding the tags (-1: last).")]
Scheme = Annotated[str, typer.Option("--scheme", help="Tags in the files: auto | iob1 | iob2 | iobes.")]


def _tagged_corpus(corpus: str | None, path: Path | None, split: str, tag_column: int, scheme: str, data_dir):
    from nmt import data, tagging
    if path is None:
        if corpus is None:
            raise UserError("give a CoNLL file or --corpus NAME")
        path = data.corpus_files(corpus, split, data_dir)["paths"][0]
    data.check_text_file(path)
    return tagging.read_tagged(path, tag_column, scheme)


@train_app.command("tag")
@friendly
def train_tag(
    corpus: Annotated[Optional[str], typer.Option(help="Named corpus: conll2003 | wnut17.")] = "conll2003",
    train_file: Annotated[Optional[Path], typer.Option("--train-file", help="CoNLL training file instead.")] = None,
    dev_file: Annotated[Optional[Path], typer.Option("--dev-file", help="CoNLL dev file (early stopping).")] = None,
    tag_column: TagColumn = -1,
    scheme: Scheme = "auto",
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder.")] = Path("runs/tagger"),
    preset: Annotated[str, typer.Option(help="base | conll2003 | wnut17 | tiny (see nmt/config.py).")] = "base",
    config: Annotated[Optional[Path], typer.Option("--config", help="JSON file of settings.")] = None,
    cell: Annotated[Optional[str], typer.Option(help="lstm | gru | rnn")] = None,
    output: Annotated[Optional[str], typer.Option("--output", help="crf | softmax")] = None,
    max_steps: MaxSteps = 0,
    max_minutes: MaxMinutes = 0.0,
    device: Device = None,
    accumulate: Accumulate = None,
    sets: Sets = None,
    data_dir: DataDir = None,
):
    """Train a BiLSTM-CRF named-entity tagger; early stopping on dev entity F1 (seqeval, strict IOB2).

    Example: nmt train tag --corpus conll2003 --preset conll2003 --out runs/conll2003
    """
    from nmt import tagging
    from nmt.progress import RichProgress
    overrides = collect_overrides({"model.rnn.cell": cell, "model.output": output}, max_steps, max_minutes, sets,
                                  device, accumulate)
    setup = tagging.make_setup(preset, str(config) if config else None, overrides)
    corpus = None if train_file else corpus
    train_sents = _tagged_corpus(corpus, train_file, "train", tag_column, scheme, data_dir)
    if dev_file is None and corpus is None:
        raise UserError("--train-file needs --dev-file (early stopping uses dev F1)")
    dev_sents = _tagged_corpus(corpus, dev_file, "dev", tag_column, scheme, data_dir)
    progress = RichProgress(err, total_steps=setup.train.max_steps, sample_headers=("gold", "predicted"))
    meta = {"data": str(train_file or corpus), "command": " ".join(["python", "cli.py"] + sys.argv[1:])}
    state, run_dir = tagging.train(setup, train_sents, dev_sents, out, [progress], meta)
    report(f"stopped ({state.stopped}) at step {state.step}; best dev F1 {state.best_score:.2f}; "
              f"checkpoints in {run_dir}")


def _read_conll_lines(path: Path) -> list[list[str]]:
    """Token lines (all columns kept) of a file with one token per line, blank lines between sentences."""
    from nmt.data import read_lines
    sentences, current = [], []
    for line in read_lines(path):
        if not line.split() or line.split()[0] == "-DOCSTART-":
            if current:
                sentences.append(current)
            current = []
            continue
        current.append(line.rstrip())
    return sentences + ([current] if current else [])


@app.command()
@friendly
def tag(
    text: Annotated[Optional[list[str]], typer.Argument(help="Sentences to tag (else --input or stdin).")] = None,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="One sentence per line (or CoNLL).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text: sentences, tokenised for you; conll: one token "
                                     "per line, output adds a tag column.")] = "text",
    model: Annotated[Path, typer.Option("--model", "--checkpoint", "-m", help="Tagger checkpoint.")] = DEFAULT_TAGGER,
    as_json: JsonOut = False,
):
    """Find named entities: coloured in a terminal, bracketed when piped, spans with offsets in --json.

    Example: nmt tag "Angela Merkel met Emmanuel Macron in Paris."
    """
    from nmt import tagging
    if fmt not in ("text", "conll"):
        raise UserError(f"--format must be text or conll, got '{fmt}'")
    if fmt == "conll":
        if input is None:
            raise UserError("--format conll needs --input FILE")
        from nmt.data import check_text_file
        check_text_file(input)
        conll_lines = _read_conll_lines(input)
        sentences = [[line.split()[0] for line in sent] for sent in conll_lines]
        lines = [" ".join(words) for words in sentences]
        tokens = [tagging.words_with_offsets(words) for words in sentences]
    else:
        lines = read_input(text, input)
        tokens = [tagging.tokenize(line) for line in lines]
    if not any(tokens):
        raise UserError("empty input: no words to tag")
    tagger = tagging.NERTagger.load(model)
    predicted = tagger.tag([[w for w, _, _ in sent] for sent in tokens])
    if fmt == "conll" and not as_json:
        sep = "\t" if "\t" in conll_lines[0][0] else " "
        for sent, tags in zip(conll_lines, predicted):     # the input columns, then the predicted tag
            print("\n".join(f"{line}{sep}{t}" for line, t in zip(sent, tags)) + "\n")
        return
    results = []
    for line, sent, tags in zip(lines, tokens, predicted):
        ents = [{"text": line[sent[a][1]:sent[b - 1][2]], "type": kind, "start": sent[a][1], "end": sent[b - 1][2]}
                for kind, a, b in tagging.spans(tags)]
        results.append({"text": line, "entities": ents})
    if as_json:
        print(json.dumps(results, ensure_ascii=False))
    elif sys.stdout.isatty():
        _show_entities(results)
    else:
        for (line, sent, tags) in zip(lines, tokens, predicted):
            print(tagging.render_plain([w for w, _, _ in sent], tags))


def _show_entities(results: list[dict]) -> None:
    from rich.text import Text
    table = Table("entity", "type", "start", "end", title="entities")
    for result in results:
        line = Text(result["text"])
        for ent in result["entities"]:
            line.stylize(ENTITY_STYLES.get(ent["type"], "bold blue"), ent["start"], ent["end"])
            table.add_row(escape(ent["text"]), ent["type"], str(ent["start"]), str(ent["end"]))
        out.print(line)
    if table.row_count:
        out.print(table)


@evaluate_app.command("tag")
@friendly
def evaluate_tag(
    conll_file: Annotated[Optional[Path], typer.Option("--conll-file", help="Gold CoNLL file.")] = None,
    corpus: Annotated[Optional[str], typer.Option(help="Or a named corpus: conll2003 | wnut17.")] = None,
    split: Annotated[str, typer.Option(help="Split of --corpus.")] = "dev",
    tag_column: TagColumn = -1,
    scheme: Scheme = "auto",
    model: Annotated[Path, typer.Option("--model", "--checkpoint", "-m")] = DEFAULT_TAGGER,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
):
    """Entity precision, recall and F1 per type and overall (seqeval, strict IOB2).

    Example: nmt evaluate tag --corpus conll2003 --split dev
    """
    from nmt import tagging
    sentences = _tagged_corpus(corpus, conll_file, split, tag_column, scheme, data_dir)
    tagger = tagging.NERTagger.load(model)
    predicted = tagger.tag([w for w, _ in sentences])
    scores = tagging.entity_scores([t for _, t in sentences], predicted)
    if as_json:
        print(json.dumps(scores))
        return
    table = Table("type", "precision", "recall", "F1", "support",
                  title=f"{conll_file or corpus + ' ' + split}: {len(sentences):,} sentences (seqeval strict IOB2)")
    for kind, s in sorted(scores["types"].items()):
        table.add_row(kind, f"{s['precision']:.2f}", f"{s['recall']:.2f}", f"{s['f1-score']:.2f}", str(s["support"]))
    table.add_row("[bold]overall[/bold]", f"{scores['precision']:.2f}", f"{scores['recall']:.2f}",
                  f"[bold]{scores['f1']:.2f}[/bold]", str(scores["support"]))
    out.print(table)


# --- summarisation --------------------------------------------------------------------------------------------
SrcField = Annotated[str, typer.Option("--src-field", help="JSONL field holding the document.")]


@train_app.command("summarize")
@friendly
def train_summarize(
    corpus: Annotated[Optional[str], typer.Option(help="Named corpus: aeslc | gigaword.")] = "aeslc",
    train_jsonl: Annotated[Optional[Path], typer.Option("--train-jsonl", help="JSONL training file instead.")] = None,
    dev_jsonl: Annotated[Optional[Path], typer.Option("--dev-jsonl", help="JSONL validation file.")] = None,
    src_field: SrcField = "email_body",
    tgt_field: Annotated[str, typer.Option("--tgt-field", help="JSONL field holding the summary.")] = "subject_line",
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder.")] = Path("runs/summarizer"),
    preset: Annotated[str, typer.Option(help="base | aeslc | tiny (see nmt/config.py).")] = "base",
    config: Annotated[Optional[Path], typer.Option("--config", help="JSON file of settings.")] = None,
    pointer: Annotated[Optional[bool], typer.Option("--pointer/--no-pointer", help="Copy mechanism.")] = None,
    coverage: Annotated[Optional[bool], typer.Option("--coverage/--no-coverage", help="Coverage.")] = None,
    max_steps: MaxSteps = 0,
    max_minutes: MaxMinutes = 0.0,
    device: Device = None,
    accumulate: Accumulate = None,
    sets: Sets = None,
    data_dir: DataDir = None,
):
    """Train a pointer-generator summariser with coverage; early stopping on validation ROUGE-1.

    Example: nmt train summarize --corpus aeslc --preset aeslc --out runs/aeslc
    """
    from nmt import summarization as summ
    from nmt.progress import RichProgress
    overrides = collect_overrides({"model.pointer": pointer, "model.coverage": coverage}, max_steps, max_minutes, sets,
                                  device, accumulate)
    setup = summ.make_setup(preset, str(config) if config else None, overrides)
    if train_jsonl:
        if dev_jsonl is None:
            raise UserError("--train-jsonl needs --dev-jsonl (early stopping uses validation ROUGE)")
        train_pairs = summ.read_pairs(jsonl=train_jsonl, src_field=src_field, tgt_fields=(tgt_field,))
        valid = summ.read_pairs(jsonl=dev_jsonl, src_field=src_field, tgt_fields=(tgt_field,))
    elif corpus == "aeslc":
        train_pairs = summ.read_pairs("aeslc", "train", data_dir)
        valid = summ.read_pairs("aeslc", "dev", data_dir, tgt_fields=("ann0", "ann1", "ann2"))
    else:
        train_pairs = summ.read_pairs(corpus, "train", data_dir)
        valid = summ.read_pairs(corpus, "valid", data_dir)
    train_pairs = [(d, refs[0]) for d, refs in train_pairs]
    progress = RichProgress(err, total_steps=setup.train.max_steps, sample_headers=("reference", "summary"))
    meta = {"data": str(train_jsonl or corpus), "command": " ".join(["python", "cli.py"] + sys.argv[1:])}
    state, run_dir = summ.train(setup, train_pairs, valid, out, [progress], meta)
    report(f"stopped ({state.stopped}) at step {state.step}; best ROUGE-1 {state.best_score:.2f}; "
              f"checkpoints in {run_dir}")


def _decode_options(beam: int, min_len: int, max_len: int, no_repeat: int, length_penalty: float):
    from nmt.config import SummaryDecodeConfig
    if beam < 1 or min_len < 0 or max_len < 1 or min_len > max_len or no_repeat < 0:
        raise UserError("need --beam >= 1, 0 <= --min-len <= --max-len, --max-len >= 1, --no-repeat-ngram >= 0")
    return SummaryDecodeConfig(beam=beam, min_len=min_len, max_len=max_len, no_repeat_ngram=no_repeat,
                               length_penalty=length_penalty)


MinLen = Annotated[int, typer.Option("--min-len", help="Fewest words before the summary may end.")]
MaxLen = Annotated[int, typer.Option("--max-len", help="Most words in a summary.")]
NoRepeat = Annotated[int, typer.Option("--no-repeat-ngram", help="Block repeated n-grams of this size (0: off).")]
LengthPenalty = Annotated[float, typer.Option("--length-penalty", help="GNMT alpha; 0 disables.")]


@app.command()
@friendly
def summarize(
    text: Annotated[Optional[list[str]], typer.Argument(help="Documents to summarise (each argument is one).")] = None,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="A file holding one document.")] = None,
    input_lines: Annotated[Optional[Path], typer.Option("--input-lines", help="One document per line.")] = None,
    jsonl: Annotated[Optional[Path], typer.Option("--jsonl", help="JSONL file: one summary per record.")] = None,
    field_name: Annotated[str, typer.Option("--field", help="JSONL field holding the document.")] = "email_body",
    model: Annotated[Path, typer.Option("--model", "--checkpoint", "-m", help="Summariser checkpoint.")] = DEFAULT_SUMMARIZER,
    beam: Beam = 4,
    min_len: MinLen = 4,
    max_len: MaxLen = 15,
    no_repeat_ngram: NoRepeat = 3,
    length_penalty: LengthPenalty = 1.0,
    as_json: JsonOut = False,
):
    """Write a short summary (a subject line) for each document; copied words are underlined in a terminal.

    Example: nmt summarize --input email.txt
    """
    from nmt import data
    from nmt import summarization as summ
    decode = _decode_options(beam, min_len, max_len, no_repeat_ngram, length_penalty)
    if input is not None:
        documents = [data.read_text(input)]
    elif input_lines is not None:
        data.check_text_file(input_lines)
        documents = input_lines.read_text(encoding="utf-8").splitlines()
    elif jsonl is not None:
        documents = [r[field_name] for r in data.read_jsonl(jsonl, (field_name,))]
    else:
        documents = read_input(text, None) if text else ["\n".join(read_input(None, None))]
    if not any(d.strip() for d in documents):
        raise UserError("empty input: nothing to summarise")
    summarizer = summ.Summarizer.load(model)
    results = summarizer.summarize_hyps(documents, decode)
    summaries = [summarizer.tokenizer.decode(h.tokens, e.oovs) for h, e in results]
    if as_json:
        print(json.dumps([{"summary": s} for s in summaries], ensure_ascii=False))
    elif sys.stdout.isatty():
        for (hyp, example) in results:
            words = summarizer.copied(hyp, example)
            out.print(" ".join(f"[underline cyan]{escape(w)}[/underline cyan]" if c else escape(w) for w, c in words))
        out.print("[dim]underlined: words that also occur in the document (copied or generated)[/dim]")
    else:
        print("\n".join(summaries))


@evaluate_app.command("summarize")
@friendly
def evaluate_summarize(
    corpus: Annotated[Optional[str], typer.Option(help="Named corpus: aeslc (dev, 3 annotations) | gigaword.")] = None,
    split: Annotated[str, typer.Option(help="Split of --corpus.")] = "dev",
    jsonl: Annotated[Optional[Path], typer.Option("--jsonl", help="Or a JSONL file.")] = None,
    src_field: SrcField = "email_body",
    ref_fields: Annotated[str, typer.Option("--ref-fields", help="Comma-separated reference fields.")] = "ann0,ann1,ann2",
    model: Annotated[Path, typer.Option("--model", "--checkpoint", "-m")] = DEFAULT_SUMMARIZER,
    beam: Beam = 4,
    min_len: MinLen = 4,
    max_len: MaxLen = 15,
    no_repeat_ngram: NoRepeat = 3,
    length_penalty: LengthPenalty = 1.0,
    lead: Annotated[str, typer.Option("--lead", help="Also score lead-N baselines, e.g. 8,12 ('' for none).")] = "",
    data_dir: DataDir = None,
    as_json: JsonOut = False,
):
    """ROUGE-1/2/L F1 (rouge-score, stemming), averaged over each document's references.

    Example: nmt evaluate summarize --corpus aeslc --split dev
    """
    from nmt import summarization as summ
    decode = _decode_options(beam, min_len, max_len, no_repeat_ngram, length_penalty)
    fields = tuple(f.strip() for f in ref_fields.split(",") if f.strip())
    if corpus == "aeslc" or jsonl is not None:
        extra = ("subject_line",) if "subject_line" not in fields else ()
        pairs = summ.read_pairs(corpus, split, data_dir, jsonl, src_field, fields + extra)
    elif corpus is not None:
        pairs, extra = summ.read_pairs(corpus, split, data_dir), ()
    else:
        raise UserError("give --corpus NAME or --jsonl FILE")
    documents = [d for d, _ in pairs]
    summarizer = summ.Summarizer.load(model)
    systems = {"model": summarizer.summarize(documents, decode)}
    for n in (int(x) for x in lead.split(",") if x.strip()):
        systems[f"lead-{n}"] = summ.lead_baseline(documents, n)
    n_refs = len(pairs[0][1]) - len(extra)
    rows = {}
    for name, hyps in systems.items():
        rows[name] = summ.rouge([refs[:n_refs] for _, refs in pairs], hyps)
        if extra:
            rows[name + " vs subject_line"] = summ.rouge([refs[n_refs:] for _, refs in pairs], hyps)
    if as_json:
        print(json.dumps(rows))
        return
    table = Table("system", "ROUGE-1", "ROUGE-2", "ROUGE-L", "words",
                  title=f"{jsonl or corpus + ' ' + split}: {len(pairs):,} documents (F1, stemmed)")
    for name, r in rows.items():
        table.add_row(name, f"{r['1']:.2f}", f"{r['2']:.2f}", f"{r['L']:.2f}", f"{r['words']:.1f}")
    out.print(table)


# --- looking inside: gradient flow, learning curves ----------------------------------------------------------
SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], low: float, high: float) -> str:
    """Log-scale sparkline between 10**low and 10**high."""
    import math
    cells = []
    for v in values:
        x = (math.log10(max(v, 1e-300)) - low) / max(high - low, 1e-9)
        cells.append(SPARK[min(len(SPARK) - 1, max(0, int(x * len(SPARK))))])
    return "".join(cells)


@app.command()
@friendly
def gradients(
    cell: Annotated[str, typer.Option(help="rnn | lstm | gru")] = "rnn",
    length: Annotated[int, typer.Option("--length", "-T", help="Sequence length T.")] = 100,
    compare: Annotated[bool, typer.Option("--compare", help="Overlay rnn, lstm and gru.")] = False,
    hidden: Annotated[int, typer.Option(help="Hidden units H.")] = 64,
    radius: Annotated[float, typer.Option(help="Rescale recurrent weights to this spectral radius (0: keep).")] = 0.0,
    gate_bias: Annotated[float, typer.Option("--gate-bias", help="Added to LSTM forget / GRU update gate biases.")] = 1.0,
    input_scale: Annotated[float, typer.Option("--input-scale", help="Size of the random inputs.")] = 1.0,
    zero_bias: Annotated[bool, typer.Option("--zero-bias", help="Zero all biases.")] = False,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="Use a trained char LM's first layer.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the weights and inputs.")] = 0,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the curves to a PNG.")] = None,
    as_json: JsonOut = False,
):
    """Gradient flow through time: ||dL_T / da^t|| for every step t of a length-T sequence.

    Example: nmt gradients --compare --length 100 --plot flow.png
    """
    from nmt import gradients as gf
    if length < 2 or hidden < 1:
        raise UserError("--length must be at least 2 and --hidden at least 1")
    cells = ["rnn", "lstm", "gru"] if compare else [cell]
    curves = {}
    for name in cells:
        config = gf.FlowConfig(cell=name, length=length, hidden=hidden, seed=seed, radius=radius,
                               gate_bias=gate_bias, input_scale=input_scale, zero_bias=zero_bias)
        try:
            if checkpoint:
                net, inputs, config = gf.cell_from_charlm(str(checkpoint), config)
                curves[f"{config.cell} ({checkpoint.name})"] = gf.gradient_norms(net, config, inputs)
            else:
                curves[name] = gf.flow(config)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if as_json:
        print(json.dumps({k: {"norms": v.tolist(), "decay_per_step": gf.decay_rate(v)} for k, v in curves.items()}))
    else:
        _show_flow(curves, length)
    if plot:
        from nmt.plots import plot_flow
        plot_flow(curves, plot)
        err.print(f"wrote {plot}")


def _show_flow(curves: dict, length: int) -> None:
    import math
    from nmt import gradients as gf
    distances = [d for d in (0, 5, 10, 20, 50, 100, 200, 500, 1000) if d < length]
    table = Table("cell", *[f"T-{d}" if d else "T" for d in distances], "per step",
                  title="||dL_T / da^t||: how much of the last step's loss reaches step t")
    values = [float(x) for v in curves.values() for x in v if float(x) > 0]
    low, high = (math.log10(min(values)), math.log10(max(values))) if values else (0.0, 1.0)
    for name, norms in curves.items():
        table.add_row(name, *[f"{float(norms[length - 1 - d]):.0e}" for d in distances],
                      f"x{gf.decay_rate(norms):.3f}")
    out.print(table)
    out.print("[dim]per step: geometric factor per step back over the last 20 steps (< 1 vanishes, > 1 explodes)."
              "\nt = 1 ... T on a log scale:[/dim]")
    for name, norms in curves.items():
        points = [float(norms[round(i * (length - 1) / 59)]) for i in range(60)] if length > 60 else norms.tolist()
        out.print(f"{name:>5} {sparkline(points, low, high)}")


@app.command()
@friendly
def plot(
    runs: Annotated[list[Path], typer.Argument(help="Run folders holding metrics.jsonl.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="PNG file to write.")] = None,
):
    """Learning curves of one or more runs: training and validation loss and scores against steps and minutes.

    Example: nmt plot runs/multi30k-de-en -o curves.png
    """
    from nmt.plots import learning_curves, read_metrics
    metrics = {str(run): read_metrics(run) for run in runs}
    for name, rows in metrics.items():
        valid = [r for r in rows if r.get("type") == "valid"]
        keys = [k for k in (valid[0] if valid else {}) if k not in ("type", "step", "epoch", "time", "best",
                                                                    "score", "train_minutes")]
        table = Table("step", "minutes", *keys, title=f"{name}: validation")
        for r in valid:
            table.add_row(str(r["step"]), f"{r.get('train_minutes', 0):.1f}", *[f"{r[k]:.4g}" for k in keys])
        out.print(table)
        train = [r["loss"] for r in rows if r.get("type") == "train"]
        if train:
            lo, hi = min(train), max(train)
            out.print(f"training loss {hi:.3f} -> {train[-1]:.3f}  " + "".join(
                SPARK[min(7, int((v - lo) / max(hi - lo, 1e-9) * 8))] for v in train[:: max(1, len(train) // 60)]))
    if output:
        learning_curves(metrics, output)
        err.print(f"wrote {output}")


@train_app.command("copy")
@friendly
def train_copy(
    cells: Annotated[str, typer.Option(help="Comma-separated cells.")] = "rnn,lstm,gru",
    lengths: Annotated[str, typer.Option(help="Comma-separated distances T to remember over.")] = "5,10,20,40",
    steps: Annotated[int, typer.Option(help="Adam updates per (cell, T).")] = 400,
    hidden: Annotated[int, typer.Option(help="Hidden units.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    as_json: JsonOut = False,
):
    """The copy-memory task: remember a symbol seen T steps earlier; accuracy of each cell against T.

    Example: nmt train copy --cells rnn,lstm,gru --lengths 5,10,20,40
    """
    from nmt.copytask import CopyConfig, train_and_score
    try:
        names = [c.strip() for c in cells.split(",") if c.strip()]
        distances = [int(t) for t in lengths.split(",") if t.strip()]
    except ValueError:
        raise UserError(f"--lengths must be comma-separated integers, got '{lengths}'") from None
    if not names or not distances or min(distances) < 2 or steps < 1:
        raise UserError("need at least one cell, lengths >= 2 and --steps >= 1")
    results = []
    for name in names:
        for t in distances:
            try:
                results.append(train_and_score(CopyConfig(cell=name, length=t, steps=steps, hidden=hidden, seed=seed)))
            except ValueError as exc:
                raise UserError(str(exc)) from None
    if as_json:
        print(json.dumps(results))
        return
    table = Table("cell", *[f"T={t}" for t in distances],
                  title=f"copy-memory accuracy after {steps} updates (chance {results[0]['chance']:.3f})")
    for name in names:
        table.add_row(name, *[f"{r['accuracy']:.3f}" for r in results if r["cell"] == name])
    out.print(table)


def main() -> None:
    """Run the app, then exit without the interpreter's teardown: unloading torch takes longer (about half a
    second here) than most commands need after their work is done. Output is flushed first, and every file the
    commands write is closed (and checkpoints fsynced) before they return."""
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:          # e.g. piped into `head`
        pass
    os._exit(code or 0)
