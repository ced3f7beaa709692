"""forecast, train forecast, evaluate forecast: time-series forecasting from CSV files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from nmt.cli.common import (Cell, DataDir, Impl, JsonOut, Model, Run, Runtime, UserError, app, err, evaluate_app,
                            friendly, load_runner, option_group, out, print_json, train_command)
from nmt.cli.render import table

Csv = Annotated[Optional[Path], typer.Option("--csv", help="A CSV file: a date column and numeric channels.")]
SplitRows = Annotated[Optional[str], typer.Option("--split-rows", help="Rows of train, val and test, e.g. "
                                                  "8640,2880,2880 (a named corpus knows its own).")]
SplitRatios = Annotated[Optional[str], typer.Option("--split-ratios", help="Shares of train, val and test "
                                                    "(default 0.7,0.1,0.2) when --split-rows is not given.")]
Columns = Annotated[Optional[str], typer.Option("--columns", help="The channels, comma-separated (default: every "
                                                "column but the date).")]
Target = Annotated[Optional[str], typer.Option("--target", help="Univariate: forecast this column alone.")]
DateColumn = Annotated[Optional[str], typer.Option("--date-column", help="The date column (default: one named "
                                                   "date/time/timestamp, or a first column of dates).")]
Missing = Annotated[Optional[str], typer.Option("--missing", help="Empty or NaN cells: error (default) | "
                                                "interpolate | drop.")]
CorpusName = Annotated[Optional[str], typer.Option("--corpus", help="A named series (etth1).")]


@dataclass
class Source:
    """Where a series comes from and how to read it (options left None take the config's or the model's)."""
    csv: Path | None
    corpus: str | None
    split_rows: str | None
    split_ratios: str | None
    columns: str | None
    target: str | None
    date_column: str | None
    missing: str | None

    def path_and_rows(self, default_corpus: str | None = None, data_dir: Path | None = None):
        """(the CSV file, the row split of a named corpus or None for a plain file)."""
        from nmt.corpora import corpus_files
        if self.csv and self.corpus:
            raise UserError("give --csv FILE or --corpus NAME, not both")
        if self.csv:
            return self.csv, None
        name = self.corpus or default_corpus
        if not name:
            raise UserError("give --csv FILE or --corpus NAME")
        files = corpus_files(name, "train", data_dir)
        if files["kind"] != "csv":
            raise UserError(f"corpus '{name}' is not a time series")
        return files["paths"][0], tuple(files["split_rows"])

    def data_options(self, corpus_rows: tuple | None) -> dict:
        """The setting of `data.*` each given option asks for (None: not given)."""
        rows = _numbers(self.split_rows, int, "--split-rows") or corpus_rows
        return {"data.split_rows": list(rows) if rows else None,
                "data.split_ratios": _numbers(self.split_ratios, float, "--split-ratios"),
                "data.columns": self.columns.split(",") if self.columns else None, "data.target": self.target,
                "data.date_column": self.date_column, "data.missing": self.missing}


def _numbers(text: str | None, kind: type, option: str) -> list | None:
    if not text:
        return None
    try:
        values = [kind(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"{option} expects three comma-separated numbers, got '{text}'") from None
    if len(values) != 3:
        raise UserError(f"{option} expects three comma-separated numbers (train, val, test), got '{text}'")
    return values


source_options = option_group("source", Source, {
    "csv": (Csv, None), "corpus": (CorpusName, None), "split_rows": (SplitRows, None),
    "split_ratios": (SplitRatios, None), "columns": (Columns, None), "target": (Target, None),
    "date_column": (DateColumn, None), "missing": (Missing, None)})


def read_parts(path: Path, data, lookback: int, horizon: int, forecaster=None) -> dict:
    """The train / val / test parts of a CSV file read with the data settings `data` (the channels of
    `forecaster`, when given)."""
    from nmt.timeseries import read_csv, split_ends, split_series
    if forecaster is None:
        series = read_csv(path, data.columns, data.target, data.date_column, data.missing)
    else:
        series = forecaster.read(path, data.date_column, data.missing)
    for note in series.notes:
        err.print(f"[yellow]note:[/yellow] {path}: {note}")
    return split_series(series, split_ends(len(series), data.split_rows, data.split_ratios), lookback, horizon)


def _data_setup(data, options: dict):
    """The data settings `data` with the given options applied."""
    from nmt.config import override
    for key, value in options.items():
        if value is not None:
            data = override(data, key.removeprefix("data."), value)
    return data


@app.command()
@friendly
def forecast(
    csv: Csv = None,
    corpus: CorpusName = None,
    at: Annotated[Optional[str], typer.Option("--at", help="Forecast from this date on (the rows before it are "
                                              "read; the truth is drawn where the file has it).")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Draw history, forecast and truth as a PNG.")] = None,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Steps shown in the table.")] = 12,
    date_column: DateColumn = None,
    missing: Missing = None,
    model: Model = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
    runtime: Runtime = "torch",
):
    """Forecast the H steps after a CSV file's last row (or from --at DATE), in the data's own units.

    Example: nmt forecast --csv ETTh1.csv --at "2018-02-01 00:00" --plot forecast.png
    """
    import pandas as pd
    forecaster = load_runner("forecast", model, runtime=runtime)
    path, _ = Source(csv, corpus, None, None, None, None, None, None).path_and_rows(data_dir=data_dir)
    when = None
    if at is not None:
        try:
            when = pd.Timestamp(at)
        except ValueError:
            raise UserError(f"--at expects a date, got '{at}'") from None
    series = forecaster.read(path, date_column, missing)
    for note in series.notes:
        err.print(f"[yellow]note:[/yellow] {path}: {note}")
    result = forecaster.forecast_at(series, when)
    dates, values, truth = result["dates"], result["forecast"], result["truth"]
    labels = [str(d) for d in dates] if dates is not None else [f"+{i + 1}" for i in range(len(values))]
    shown = [d.strftime("%Y-%m-%d %H:%M") for d in dates] if dates is not None else labels
    if plot:
        from nmt.timeseries import plot_forecast
        plot_forecast(result["history"], values, dates, truth, plot)
        err.print(f"wrote {plot}")
    if as_json:
        print_json({"columns": forecaster.columns, "horizon": forecaster.horizon, "dates": labels,
                    "forecast": values.tolist(), "truth": None if truth is None else truth.tolist()})
        return
    rows = [(shown[i], *(f"{v:.3f}" for v in values[i])) for i in range(min(steps, len(values)))]
    out.print(table(f"{path.name}: the first {len(rows)} of {forecaster.horizon} steps forecast",
                    ("date" if dates is not None else "step", *forecaster.columns), rows))


@train_command("forecast")
@source_options
def train_forecast(
    run: Run,
    source: Source,
    horizon: Annotated[Optional[int], typer.Option("--horizon", help="H, steps to forecast (default 96).")] = None,
    lookback: Annotated[Optional[int], typer.Option("--lookback", help="L, steps read (default 96).")] = None,
    model_type: Annotated[Optional[str], typer.Option("--model-type", help="segment (SegRNN, default) | "
                                                      "seq2seq (recurrent multi-step).")] = None,
    cell: Cell = None,
    impl: Impl = None,
):
    """Train a recurrent forecaster; early stopping on validation MSE, the baselines shown at each validation.

    Example: nmt train forecast --corpus etth1 --preset etth1 --horizon 96 --out runs/etth1-96
    """
    path, rows = source.path_and_rows(None if source.csv else run.corpus, run.data_dir)
    setup = run.setup({"model.horizon": horizon, "model.lookback": lookback, "model.kind": model_type,
                       "model.rnn.cell": cell, "model.rnn.impl": impl, **source.data_options(rows)})
    parts = read_parts(path, setup.data, setup.model.lookback, setup.model.horizon)
    run.train(setup, parts["train"], parts["val"], str(source.csv or source.corpus or run.corpus),
              ("forecaster", "valid MSE", "valid MAE"), lambda score: f"best validation MSE {-score:.4f}")


@evaluate_app.command("forecast")
@friendly
@source_options
def evaluate_forecast(
    source: Source,
    split: Annotated[str, typer.Option(help="val | test")] = "test",
    model: Model = None,
    data_dir: DataDir = None,
    as_json: JsonOut = False,
):
    """MSE and MAE on every window of a split (stride 1, z-scored with the training rows), beside the baselines.

    Example: nmt evaluate forecast --model checkpoints/etth1-h96.pt --corpus etth1 --split test
    """
    if split not in ("val", "test"):
        raise UserError(f"--split must be val or test, got '{split}'")
    forecaster = load_runner("forecast", model, "batch")
    if source.columns or source.target:
        raise UserError(f"the model forecasts its own columns ({', '.join(forecaster.columns)}): evaluate takes no "
                        "--columns or --target")
    path, rows = source.path_and_rows(data_dir=data_dir)
    options = source.data_options(rows)
    if source.csv and not source.split_rows:             # a plain file: the general split, not the model's
        options["data.split_rows"] = []
    data = _data_setup(forecaster.setup.data, options)
    parts = read_parts(path, data, forecaster.lookback, forecaster.horizon, forecaster)
    result = forecaster.evaluate(parts, split)
    model_scores = result.pop("model")
    windows = result.pop("windows")
    if as_json:
        print_json({"mse": model_scores["mse"], "mae": model_scores["mae"], "horizon": forecaster.horizon,
                    "lookback": forecaster.lookback, "windows": windows, "split": split, "baselines": result})
        return
    rows = [("model", f"{model_scores['mse']:.4f}", f"{model_scores['mae']:.4f}")]
    rows += [(name, f"{s['mse']:.4f}", f"{s['mae']:.4f}") for name, s in result.items()]
    shown = table(f"{path.name} {split}: {windows:,} windows", ("forecaster", "MSE", "MAE"), rows)
    shown.caption = f"L = {forecaster.lookback}, H = {forecaster.horizon}; z-scored with the training rows"
    out.print(shown)
