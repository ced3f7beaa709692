"""`cost`: the course's cost claims, measured: time and backward memory of each cell against T (nmt/cost.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from nmt.cli.common import Impl, JsonOut, UserError, app, err, friendly, out, print_json, writable
from nmt.cli.render import table
from nmt.config import CostConfig, make, to_dict

DEFAULT = CostConfig()


def _numbers(text: str | None, option: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UserError(f"{option} must be comma-separated whole numbers, got '{text}'") from None


@app.command()
@friendly
def cost(
    cells: Annotated[Optional[str], typer.Option(help="Comma-separated layers: rnn, lstm, gru, and conv, attention "
                                                 f"(no recurrence); default {','.join(DEFAULT.cells)}.")] = None,
    lengths: Annotated[Optional[str], typer.Option(help="Comma-separated increasing lengths T; default "
                                                   f"{','.join(map(str, DEFAULT.lengths))}.")] = None,
    hidden: Annotated[Optional[int], typer.Option(help=f"Width H of every layer; default {DEFAULT.hidden}.")] = None,
    batch: Annotated[Optional[int], typer.Option(help=f"Sequences B; default {DEFAULT.batch}.")] = None,
    impl: Impl = None,
    repeats: Annotated[Optional[int], typer.Option(help="Timed runs after a warm-up (the median is shown); "
                                                   f"default {DEFAULT.repeats}.")] = None,
    tbptt: Annotated[Optional[int], typer.Option(help="Also measure --tbptt-cell with truncated BPTT in chunks of "
                                                 f"K steps (0: off); default {DEFAULT.tbptt}.")] = None,
    tbptt_cell: Annotated[Optional[str], typer.Option("--tbptt-cell", help="rnn | lstm | gru; default "
                                                      f"{DEFAULT.tbptt_cell}.")] = None,
    max_memory: Annotated[Optional[float], typer.Option("--max-memory", help="Refuse when one run's saved "
                                                        "activations are estimated above this many MiB (default: "
                                                        "half the available memory).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the weights and inputs.")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write time and memory against T (log-log) to a "
                                                 "PNG.")] = None,
    as_json: JsonOut = False,
):
    """BPTT's cost against the sequence length T: time of a forward and of a forward + backward, memory saved for
    backward, and the fitted exponent k of cost ~ T^k (the course predicts 1); beside layers without recurrence.

    Example: nmt cost --cells rnn,lstm,gru --lengths 25,50,100,200,400,800 --plot cost.png
    """
    from nmt import cost as measured
    from nmt import threads
    writable(plot)
    if plot and plot.suffix.lower() != ".png":
        raise UserError(f"{plot}: plots are written as PNG files (give a name ending in .png)")
    names = None if cells is None else tuple(c.strip() for c in cells.split(",") if c.strip())
    config = make(CostConfig, cells=names, lengths=_numbers(lengths, "--lengths"), hidden=hidden, batch=batch,
                  impl=impl, repeats=repeats, tbptt=tbptt, tbptt_cell=tbptt_cell, max_memory_mb=max_memory, seed=seed)
    threads.use("batch")
    try:
        measured.check_memory(config)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    with err.status("measuring") as status:
        result = measured.measure(config, lambda name, row: status.update(f"measured {name} at T={row['T']}"))
    if as_json:
        print_json({"config": to_dict(config), **result})
    else:
        _show(config, result)
    if plot:
        from nmt.plots import plot_cost
        plot_cost(result, plot)
        err.print(f"wrote {plot}")


def _show(config: CostConfig, result: dict) -> None:
    rows, last = [], None
    for r in result["rows"]:
        rows.append((r["layer"] if r["layer"] != last else "", r["T"], f"{r['forward_ms']:.3g}", f"{r['train_ms']:.3g}",
                     f"{r['ms_per_position']:.3g}", f"{r['saved_bytes'] / 2**20:.3g}", r["critical_path"]))
        last = r["layer"]
    out.print(table(f"cost against T (B={config.batch}, H={config.hidden}, impl {config.impl}, "
                    f"{result['threads']} thread{'s' * (result['threads'] > 1)}, median of {config.repeats})",
                    ["layer", "T", "fwd ms", "fwd+bwd ms", "ms / T", "saved MiB", "critical path"], rows))
    fits = [(name, f"{f['forward']:.2f}", f"{f['train']:.2f}", f"{f['memory']:.2f}",
             "T" if f["critical_path"] > 0.5 else "1", ",".join(map(str, f["lengths"])))
            for name, f in result["fits"].items()]
    out.print(table("fitted exponent k of cost ~ T^k (least squares on log-log axes; the course predicts 1)",
                    ["layer", "forward", "fwd+bwd", "memory", "critical path", "fitted over T"], fits))
    out.print("[dim]memory: " + result["memory_method"] + ".\ncritical path: steps that must run one after "
              "another. A cell needs a^{t-1} before a^t: T small steps; conv and attention compute all positions "
              "at once.[/dim]")
