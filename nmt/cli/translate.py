"""translate, train translate, evaluate translate."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from nmt.cli.common import (Beam, Cell, DataDir, Impl, InputFile, JsonOut, LengthPenalty, Model, Run, Runtime, Texts,
                            UserError, app, config_options, err, evaluate_app, friendly, load_runner, out, print_json,
                            read_input, train_command, writable)
from nmt.cli.render import shaded_matrix, table
from nmt.config import DecodeConfig

Src = Annotated[str, typer.Option(help="Source language of the named corpus.")]
Tgt = Annotated[str, typer.Option(help="Target language of the named corpus.")]
NBest = Annotated[Optional[int], typer.Option("--n-best", help="Print the N best translations of each line.")]
MaxLenRatio = Annotated[Optional[float], typer.Option("--max-len-ratio", help="Output cap: ratio * source length "
                                                      "+ 10.")]


# beam 5 and length penalty 1.0 by default (DecodeConfig)
decode_options = config_options("decode", DecodeConfig, {
    "beam": (Beam, None), "n_best": (NBest, None), "length_penalty": (LengthPenalty, None),
    "max_len_ratio": (MaxLenRatio, None),
    "warn_confidence": (Annotated[Optional[float], typer.Option("--warn-confidence", help="Warn about outputs whose "
                        "confidence is below this (default -1.0; 0: never).")], None)})


@app.command()
@friendly
@decode_options
def translate(
    decode,
    text: Texts = None,
    input: InputFile = None,
    model: Model = None,
    direction: Annotated[Optional[str], typer.Option("--direction", "-d", help="Which shipped model: de-en "
                                                     "(default) or en-de.")] = None,
    show_attention: Annotated[bool, typer.Option("--show-attention", help="Draw each attention matrix "
                                                 "in the terminal.")] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the attention matrix of the first "
                                                 "sentence to a PNG (several sentences: NAME-2.png, ...).")] = None,
    as_json: JsonOut = False,
    runtime: Runtime = "torch",
):
    """Translate sentences: one output line per input line, in order, blank lines kept (beam 5 by default).

    The shipped models know image captions (Multi30k) and short everyday sentences (Tatoeba: greetings,
    questions, plans). Each output gets a confidence (mean log-probability per token; --json, and beside it in a
    terminal); lines below --warn-confidence (most news and e-mail) are named in a warning on stderr.

    Example: nmt translate "Wo ist der Bahnhof?"; nmt translate -d en-de "Where is the station?"
    """
    writable(plot)
    lines = read_input(text, input)
    if not lines:
        raise UserError("empty input: nothing to translate")
    if model and direction:
        raise UserError("give --model or --direction, not both")
    translator = load_runner("translate", model or shipped_translator(direction), runtime=runtime)
    want_attention = show_attention or plot is not None
    results = translator.translate_hyps(lines, decode, keep_attention=want_attention)
    if want_attention:
        _attention_views(translator, lines, results, decode, show_attention, plot)
        if show_attention:
            return
    if translator.truncated:
        err.print(f"[yellow]warning:[/yellow] {translator.truncated} line(s) longer than "
                  f"{decode.max_src_tokens} subwords were truncated")
    decoded = [[(translator.tgt_tok.decode(h.tokens), h.score) for h in hyps] for hyps in results]
    confidence = translator.confidence(lines, [hyps[0].tokens if hyps else [] for hyps in results], decode)
    _warn_out_of_domain(confidence, decode.warn_confidence)
    _print_translations(lines, decoded, confidence, decode.n_best, as_json)


def shipped_translator(direction: str | None) -> Path | None:
    """The shipped checkpoint of `direction` like "en-de" (None: the default de-en)."""
    from nmt.tasks import TRANSLATORS
    if direction is None:
        return None
    if direction not in TRANSLATORS:
        raise UserError(f"no shipped translator for {direction!r}: choose {' or '.join(TRANSLATORS)}, or give "
                        "--model")
    return TRANSLATORS[direction]


def _print_translations(lines: list[str], decoded, confidence: list, n_best: int, as_json: bool) -> None:
    """JSON for scripts; source, output and confidence in a terminal; exactly one line per input when piped."""
    if as_json:
        print_json([{"source": s, "confidence": c, "translations": [{"text": t, "score": sc} for t, sc in d]}
                    for s, c, d in zip(lines, confidence, decoded)])
    elif sys.stdout.isatty():       # a person is reading: show source, output and confidence together
        for source, c, d in zip(lines, confidence, decoded):
            out.print(f"[dim]{escape(source)}[/dim]")
            for rank, (t, sc) in enumerate(d or [("", 0.0)]):
                extra = f"  [dim]{sc:.3f}[/dim]" if n_best > 1 else ""
                sure = f"  [dim]confidence {c:.2f}[/dim]" if rank == 0 and c is not None else ""
                out.print(f"[bold green]{escape(t)}[/bold green]{extra}{sure}")
    else:                           # piped: exactly one line per input line (n-best: TAB-separated scores)
        for d in decoded:
            if n_best == 1:
                print(d[0][0] if d else "")
            else:
                print("\n".join(f"{t}\t{sc:.4f}" for t, sc in d) if d else "")


def _warn_out_of_domain(confidence: list[float | None], threshold: float) -> None:
    """One warning on stderr naming the lines whose output the model is unsure of (see DecodeConfig)."""
    low = [i for i, c in enumerate(confidence, 1) if c is not None and c < threshold]
    if low and threshold < 0:
        shown = ", ".join(map(str, low[:10])) + (", ..." if len(low) > 10 else "")
        err.print(f"[yellow]warning:[/yellow] {len(low)} of {sum(c is not None for c in confidence)} line(s) look "
                  f"unlike the model's training data (confidence below {threshold:g}: line {shown}); the shipped "
                  "models know image captions and short everyday sentences, so these translations are likely "
                  "wrong", soft_wrap=True)


def _attention_views(translator, lines: list[str], results, decode, show: bool, plot: Path | None) -> None:
    """Rich shaded matrices and/or PNG files of the best hypothesis's attention, one per non-empty line."""
    from nmt.plots import plot_attention
    views = [translator.attention_view(line, hyps[0], decode) for line, hyps in zip(lines, results) if hyps]
    for count, view in enumerate(views, 1):
        if show:
            out.print(shaded_matrix(view["weights"], view["source"], view["target"], view["translation"]))
        if plot is not None:
            path = plot if count == 1 else plot.with_name(f"{plot.stem}-{count}{plot.suffix}")
            plot_attention(view["weights"], view["source"], view["target"], path, title=view["translation"])
            err.print(f"wrote {path}")


TsvFiles = Annotated[Optional[list[Path]], typer.Option(help="Pair files (TSV: English<TAB>German, or the columns "
                                                  "of --tsv-columns / a header line); repeat to mix several.")]


@train_command("translate")
def train_translate(
    run: Run,
    src: Src = "de",
    tgt: Tgt = "en",
    train_src: Annotated[Optional[Path], typer.Option(help="Parallel training files instead of a corpus.")] = None,
    train_tgt: Annotated[Optional[Path], typer.Option()] = None,
    valid_src: Annotated[Optional[Path], typer.Option()] = None,
    valid_tgt: Annotated[Optional[Path], typer.Option()] = None,
    train_tsv: TsvFiles = None,
    valid_tsv: Annotated[Optional[list[Path]], typer.Option(help="Validation pair files (TSV); without them each "
                                                            "--train-tsv holds out a dev share by sentence.")] = None,
    tsv_columns: Annotated[Optional[str], typer.Option(help="Column languages of the TSV files, like en,de or "
                                                       "de,en,- (- skips a column); default: a header, else en,de.")
                           ] = None,
    tsv_skip_bad: Annotated[bool, typer.Option("--tsv-skip-bad", help="Skip (and count) malformed TSV lines "
                                               "instead of stopping at the first.")] = False,
    mix: Annotated[Optional[str], typer.Option(help="Weights of the sources, like multi30k=3,tatoeba=1: times each "
                                               "source's pairs are seen per epoch (default 1 each).")] = None,
    cell: Cell = None,
    impl: Impl = None,
    attention: Annotated[Optional[str], typer.Option(help="bahdanau | dot | general")] = None,
    no_input_feeding: Annotated[bool, typer.Option("--no-input-feeding", help="Decoder without input feeding.")
                                ] = False,
    valid_limit: Annotated[int, typer.Option(help="Validate on the first N pairs of each source (0: all).")] = 0,
):
    """Train an attention encoder-decoder on parallel corpora: named (`--corpus multi30k+tatoeba`), line-aligned
    files (--train-src ...), TSV pair files (--train-tsv, repeatable), or a mixture of them (--mix weights).

    Example: nmt train translate --corpus multi30k+tatoeba --mix multi30k=3 --src de --tgt en --preset everyday
    """
    from nmt.corpora import VALIDATION, check_name, corpus_pairs
    from nmt.data import DataError, read_parallel
    from nmt.pairs import Source, mix as mix_sources, parse_weights
    setup = run.setup({"model.encoder.cell": cell, "model.encoder.impl": impl, "model.attention": attention,
                       "model.input_feeding": False if no_input_feeding else None})
    files = [train_src, train_tgt, valid_src, valid_tgt]
    if any(files) and not all(files):
        raise UserError("--train-src, --train-tgt, --valid-src and --valid-tgt go together")
    if valid_tsv and not train_tsv:
        raise UserError("--valid-tsv needs --train-tsv")
    sources: list[tuple[str, list, list]] = []       # (name, train pairs, validation pairs)
    if all(files):
        sources.append((f"{train_src.name}->{train_tgt.name}", read_parallel(train_src, train_tgt),
                        read_parallel(valid_src, valid_tgt)))
    sources += _tsv_sources(train_tsv or [], valid_tsv or [], src, tgt, tsv_columns, tsv_skip_bad)
    named = run.corpus_name.split("+") if run.corpus_name else [] if sources else run.corpus.split("+")
    for name in named:                               # every name known before any corpus is read
        check_name(name)
    for name in named:
        sources.append((name, corpus_pairs(name, "train", run.data_dir, src, tgt),
                        corpus_pairs(name, VALIDATION.get(name, "val"), run.data_dir, src, tgt)))
    weights = parse_weights(mix, [name for name, _, _ in sources])
    train_pairs, description = mix_sources([Source(n, t, weights[n]) for n, t, _ in sources], setup.train.seed)
    valid_pairs = [p for _, _, v in sources for p in (v[:valid_limit] if valid_limit else v)]
    if not valid_pairs:
        raise DataError("no validation pairs: give --valid-tsv (or --valid-src/--valid-tgt)")
    name = "+".join(n for n, _, _ in sources) + f" {src}-{tgt}"
    run.train(setup, train_pairs, valid_pairs, name, ("source", "reference", "output"),
              lambda score: f"best validation score {score:.2f}", meta={"mix": description},
              intro=f"training data: {description}; validation: {len(valid_pairs):,} pairs" if len(sources) > 1
              else None)


def _tsv_sources(train: list[Path], valid: list[Path], src: str, tgt: str, columns: str | None,
                 skip_bad: bool) -> list[tuple[str, list, list]]:
    """(name, train pairs, validation pairs) of each --train-tsv file: validation from --valid-tsv (all of them,
    with the first file), else a grouped dev share of the file itself (by its English side, else its source)."""
    from nmt.pairs import group_split, read_tsv
    read = [read_tsv(p, src, tgt, columns, skip_bad) for p in [*train, *valid]]
    for r in read:
        if r.skipped:
            err.print(f"[yellow]warning:[/yellow] {r.path}: skipped {r.skipped} malformed line(s)")
    held = [p for r in read[len(train):] for p in r.pairs]
    sources, seen = [], set()
    for i, r in enumerate(read[:len(train)]):
        name = r.path.name.split(".")[0] or f"tsv{i + 1}"
        name = name if name not in seen else f"{name}{i + 1}"
        seen.add(name)
        if valid:
            sources.append((name, r.pairs, held if i == 0 else []))
        else:
            key = (src, tgt).index("en") if "en" in (src, tgt) else 0
            sources.append((name, group_split(r.pairs, key, DEV_SHARE, "train"),
                            group_split(r.pairs, key, DEV_SHARE, "dev")))
    return sources


DEV_SHARE = 0.02      # share of a --train-tsv file's sentences held out for validation when no --valid-tsv is given


@evaluate_app.command("translate")
@friendly
@decode_options
def evaluate_translate(
    decode,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="Source sentences, one per line.")] = None,
    ref: Annotated[Optional[Path], typer.Option("--ref", "-r", help="Reference translations, one per line.")] = None,
    corpus: Annotated[Optional[str], typer.Option(help="Or a named corpus (multi30k, tatoeba) ...")] = None,
    split: Annotated[str, typer.Option(help="... and its split (multi30k: val, test_2016_flickr; tatoeba: dev).")
                     ] = "test_2016_flickr",
    tsv: Annotated[Optional[Path], typer.Option("--tsv", help="Or a TSV pair file (see train translate).")] = None,
    tsv_columns: Annotated[Optional[str], typer.Option(help="Column languages of --tsv, like en,de.")] = None,
    src: Src = "de",
    tgt: Tgt = "en",
    data_dir: DataDir = None,
    model: Model = None,
    output: Annotated[Optional[Path], typer.Option("--output", help="Also write the translations here.")] = None,
    as_json: JsonOut = False,
):
    """sacreBLEU BLEU and chrF of a model's detokenised, cased output against raw references (gzip allowed).

    Without --model, the shipped translator of --src/--tgt (de-en or en-de).

    Example: nmt evaluate translate --corpus multi30k --split test_2016_flickr --beam 5
    """
    from nmt import metrics
    from nmt.corpora import corpus_pairs
    from nmt.data import read_parallel
    from nmt.pairs import read_tsv
    from nmt.tasks import TRANSLATORS
    if sum(x is not None for x in (corpus, tsv, input or ref)) != 1:
        raise UserError("give one of --input SRC --ref REF, --corpus NAME [--split SPLIT], or --tsv FILE")
    if corpus:
        if corpus == "tatoeba" and split == "test_2016_flickr":
            split = "dev"
        pairs, title = corpus_pairs(corpus, split, data_dir, src, tgt), f"{corpus} {split} {src}->{tgt}"
    elif tsv:
        pairs, title = read_tsv(tsv, src, tgt, tsv_columns).pairs, f"{tsv.name} {src}->{tgt}"
    elif not (input and ref):
        raise UserError("give --input SRC and --ref REF together")
    else:
        pairs, title = read_parallel(input, ref), f"{input.name} -> {ref.name}"
    writable(output)
    if model is None and f"{src}-{tgt}" not in TRANSLATORS:
        raise UserError(f"no shipped translator for {src}->{tgt}: give --model")
    model = model or TRANSLATORS[f"{src}-{tgt}"]
    hyps = load_runner("translate", model, "batch").translate([s for s, _ in pairs], decode)
    scores = [metrics.bleu(hyps, [r for _, r in pairs]), metrics.chrf(hyps, [r for _, r in pairs])]
    if as_json:
        print_json({s.name.lower(): {"score": round(s.score, 2), "signature": s.signature} for s in scores}
                   | {"sentences": len(pairs), "beam": decode.beam})
    else:
        out.print(table(f"{title} ({len(pairs)} sentences, beam {decode.beam})",
                        ("metric", "score", "signature"), [(s.name, f"{s.score:.2f}", s.signature) for s in scores],
                        right=False))
    if output:                      # after the scores: a failed write loses nothing computed
        try:
            output.write_text("\n".join(hyps) + "\n", encoding="utf-8")
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(output)) from None
