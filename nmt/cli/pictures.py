"""Looking inside: gradient flow through time, learning curves, and the copy-memory task."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from nmt.cli.common import JsonOut, UserError, app, err, friendly, out, print_json, train_app, writable
from nmt.cli.render import sparkline, table


@app.command()
@friendly
def gradients(
    cell: Annotated[str, typer.Option(help="rnn | lstm | gru")] = "rnn",
    length: Annotated[int, typer.Option("--length", "-T", help="Sequence length T.")] = 100,
    compare: Annotated[bool, typer.Option("--compare", help="Overlay rnn, lstm and gru.")] = False,
    hidden: Annotated[int, typer.Option(help="Hidden units H.")] = 64,
    radius: Annotated[float, typer.Option(help="Rescale recurrent weights to this spectral radius (0: keep).")] = 0.0,
    gate_bias: Annotated[float, typer.Option("--gate-bias", help="Added to LSTM forget / GRU update "
                                                                    "gate biases.")] = 1.0,
    input_scale: Annotated[float, typer.Option("--input-scale", help="Size of the random inputs.")] = 1.0,
    zero_bias: Annotated[bool, typer.Option("--zero-bias", help="Zero all biases.")] = False,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="Use a trained char LM's first "
                                                                  "layer.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the weights and inputs.")] = 0,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the curves to a PNG.")] = None,
    as_json: JsonOut = False,
):
    """Gradient flow through time: ||dL_T / da^t|| for every step t of a length-T sequence.

    Example: nmt gradients --compare --length 100 --plot flow.png
    """
    from nmt import gradients as gf
    writable(plot)
    if not (2 <= length <= 100_000 and 1 <= hidden <= 4096):
        raise UserError("--length must be from 2 to 100000 and --hidden from 1 to 4096")
    if not (radius >= 0 and math.isfinite(radius)) or not math.isfinite(gate_bias) or not math.isfinite(input_scale):
        raise UserError("--radius must be a finite number >= 0; --gate-bias and --input-scale finite numbers")
    curves = {}
    for name in ["rnn", "lstm", "gru"] if compare else [cell]:
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
        print_json({k: {"norms": v.tolist(), "decay_per_step": gf.decay_rate(v)} for k, v in curves.items()})
    else:
        _show_flow(curves, length)
    if plot:
        from nmt.plots import plot_flow
        plot_flow(curves, plot)
        err.print(f"wrote {plot}")


def _show_flow(curves: dict, length: int) -> None:
    from nmt import gradients as gf
    distances = [d for d in (0, 5, 10, 20, 50, 100, 200, 500, 1000) if d < length]
    rows = [(name, *[f"{float(norms[length - 1 - d]):.0e}" for d in distances], f"x{gf.decay_rate(norms):.3f}")
            for name, norms in curves.items()]
    out.print(table("||dL_T / da^t||: how much of the last step's loss reaches step t",
                    ["cell", *[f"T-{d}" if d else "T" for d in distances], "per step"], rows, right=False))
    out.print("[dim]per step: geometric factor per step back over the last 20 steps (< 1 vanishes, > 1 explodes)."
              "\nt = 1 ... T on a log scale:[/dim]")
    values = [float(x) for v in curves.values() for x in v if float(x) > 0]
    low, high = (math.log10(min(values)), math.log10(max(values))) if values else (0.0, 1.0)
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
    from nmt.plots import learning_curves, read_metrics, validation_rows
    writable(output)
    metrics = {str(run): read_metrics(run) for run in runs}
    for name, rows in metrics.items():
        keys, valid = validation_rows(rows)
        out.print(table(f"{name}: validation", ["step", "minutes", *keys],
                        [(r["step"], f"{r.get('train_minutes', 0):.1f}", *[f"{r.get(k, math.nan):.4g}" for k in keys])
                         for r in valid], right=False))
        train = [r.get("loss", math.nan) for r in rows if r.get("type") == "train"]
        if any(math.isfinite(v) for v in train):
            out.print(f"training loss {max(v for v in train if math.isfinite(v)):.3f} -> {train[-1]:.3f}  "
                      + sparkline(train[:: max(1, len(train) // 60)], log=False))
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
    from nmt import threads
    from nmt.copytask import CopyConfig, train_and_score
    threads.use("step")                  # 64-unit cells: small products, one thread (nmt/threads.py)
    try:
        names = [c.strip() for c in cells.split(",") if c.strip()]
        distances = [int(t) for t in lengths.split(",") if t.strip()]
    except ValueError:
        raise UserError(f"--lengths must be comma-separated integers, got '{lengths}'") from None
    if not names or not distances or min(distances) < 2 or max(distances) > 10_000 or not 1 <= steps <= 100_000 \
            or not 1 <= hidden <= 4096:
        raise UserError("need at least one cell, lengths from 2 to 10000, --steps from 1 to 100000 and --hidden "
                        "from 1 to 4096")
    results = []
    for name in names:
        for t in distances:
            try:
                results.append(train_and_score(CopyConfig(cell=name, length=t, steps=steps, hidden=hidden, seed=seed)))
            except ValueError as exc:
                raise UserError(str(exc)) from None
    if as_json:
        print_json(results)
        return
    out.print(table(f"copy-memory accuracy after {steps} updates (chance {results[0]['chance']:.3f})",
                    ["cell", *[f"T={t}" for t in distances]],
                    [(name, *[f"{r['accuracy']:.3f}" for r in results if r["cell"] == name]) for name in names],
                    right=False))
