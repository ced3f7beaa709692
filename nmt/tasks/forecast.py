"""Time-series forecasting: L past steps of C channels -> the H next steps, scored by MSE and MAE.

The protocol is the one every long-horizon forecasting paper reports (Informer, DLinear, PatchTST, SegRNN): rows
split into train / val / test (ETT: 8640 / 2880 / 2880 rows; any other CSV: 70 / 10 / 20 %), every channel
z-scored with the training rows' mean and std, windows at every start (stride 1) whose inputs may reach L rows
back into the previous split, errors averaged over every window, step and channel of the normalised values.

`ForecastTask` trains on the training windows with the MSE loss and validates on every validation window (score:
-MSE, higher is better); `Forecast` turns a checkpoint into forecasts in the data's own units and into scores
beside three baselines (repeat the last value, repeat the last day, a least-squares linear map).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt import checkpoint as ckpt_io
from nmt.config import FORECAST_PRESETS, ConfigError, ForecastConfig, ForecastSetup, from_dict
from nmt.data import DataError, LazyBatches
from nmt.models.forecast import Forecaster
from nmt.tasks.base import Runner, Task, Validation, model_weights
from nmt.timeseries import LinearBaseline, Scaler, Series, repeat_last, score, seasonal_naive, windows

TASK = "forecast"
SETUP, PRESETS = ForecastSetup, FORECAST_PRESETS
BASELINES = ("repeat last value", "seasonal naive", "linear (least squares)")


@dataclass
class Batch:
    x: Tensor            # (B, L, C) past values, z-scored
    y: Tensor            # (B, H, C) the values to forecast


def check_setup(setup: ForecastSetup) -> None:
    """Settings the model cannot work with, as one ConfigError."""
    m = setup.model
    if m.lookback % m.segment:
        raise ConfigError(f"model.lookback ({m.lookback}) must be a multiple of model.segment ({m.segment})")
    if setup.data.period > m.lookback:
        raise ConfigError(f"data.period ({setup.data.period}) must not exceed model.lookback ({m.lookback}): the "
                          "seasonal baseline repeats the last period of the lookback")


@torch.inference_mode()
def scores(model: nn.Module | None, train: Tensor, part: Tensor, lookback: int, horizon: int, period: int,
           batch_size: int = 512) -> dict:
    """MSE and MAE over every window of `part` (T, C) (z-scored), of the model and of the baselines (the linear
    one fitted on `train`): {name: {"mse", "mae"}}, plus "windows"."""
    forecasters = {BASELINES[0]: lambda x: repeat_last(x, horizon),
                   BASELINES[1]: lambda x: seasonal_naive(x, horizon, period),
                   BASELINES[2]: LinearBaseline(train, lookback, horizon)}
    if model is not None:
        forecasters = {"model": model.eval(), **forecasters}
    result = {}
    for name, forecast in forecasters.items():
        errors, count = score(forecast, part, lookback, horizon, batch_size)
        result[name] = {"mse": errors.mse, "mae": errors.mae}
    return result | {"windows": count}


class ForecastTask(Task):
    name = TASK

    def __init__(self, setup: ForecastSetup, scaler: Scaler, train: Series, valid: Series, meta: dict | None = None):
        self.setup, self.scaler, self.meta = setup, scaler, meta or {}
        self.columns, self.step = train.columns, train.step
        self.train, self.valid = scaler.apply(train.values), scaler.apply(valid.values)   # (T, C)
        m = setup.model
        self.windows = windows(self.train, m.lookback + m.horizon)                     # (N, L + H, C)
        self.baselines = scores(None, self.train, self.valid, m.lookback, m.horizon, setup.data.period,
                                setup.data.eval_batch_size)

    def batches(self, epoch: int) -> LazyBatches:
        """The training windows in a new order each epoch (the same order for the same epoch)."""
        order = torch.randperm(len(self.windows), generator=torch.Generator().manual_seed(self.setup.train.seed
                                                                                           + epoch))
        return LazyBatches(list(order.split(self.setup.train.batch_size)), self._batch)

    def _batch(self, index: Tensor) -> Batch:
        L = self.setup.model.lookback
        return Batch(self.windows[index, :L], self.windows[index, L:])

    def loss(self, model: nn.Module, batch: Batch):
        """MSE over every step and channel of the batch's windows; the trainer's "tokens" are windows."""
        loss = F.mse_loss(model(batch.x).float(), batch.y)
        count = batch.x.size(0)
        return loss, {"tokens": count, "nll": float(loss.detach()) * count}

    def validate(self, model: nn.Module) -> Validation:
        m, d = self.setup.model, self.setup.data
        errors, _ = score(model, self.valid, m.lookback, m.horizon, d.eval_batch_size)
        rows = [("model", f"{errors.mse:.4f}", f"{errors.mae:.4f}")]
        rows += [(name, f"{self.baselines[name]['mse']:.4f}", f"{self.baselines[name]['mae']:.4f}")
                 for name in BASELINES]
        return Validation({"valid_mse": errors.mse, "valid_mae": errors.mae}, -errors.mse, rows)

    def make_checkpoint(self, model: nn.Module) -> ckpt_io.Checkpoint:
        step = None if self.step is None else str(self.step)
        return self.checkpoint_of(model, model.config, {}, series={"columns": list(self.columns), "step": step,
                                                                   **self.scaler.to_dict()})


class Forecast(Runner):
    """A trained forecaster with the channels and z-scores of its training data."""
    task = TASK

    def __init__(self, model: nn.Module, setup: ForecastSetup, columns: list[str], scaler: Scaler, step=None):
        self.model, self.setup, self.columns, self.scaler, self.step = model, setup, columns, scaler, step

    @classmethod
    def from_checkpoint(cls, ckpt: ckpt_io.Checkpoint) -> Forecast:
        import pandas as pd
        series = ckpt.config["series"]
        step = pd.Timedelta(series["step"]) if series.get("step") else None
        return cls(model_weights(ckpt, Forecaster, ForecastConfig), from_dict(ForecastSetup, ckpt.config["setup"]),
                   list(series["columns"]), Scaler.from_dict(series), step)

    @property
    def lookback(self) -> int:
        return self.setup.model.lookback

    @property
    def horizon(self) -> int:
        return self.setup.model.horizon

    def check_columns(self, series: Series) -> None:
        """DataError unless `series` holds the model's channels in its order."""
        if series.columns != self.columns:
            missing = [c for c in self.columns if c not in series.columns]
            what = f"lacks {', '.join(missing)}" if missing else f"has {', '.join(series.columns)}"
            raise DataError(f"{series.source}: the model was trained on the columns {', '.join(self.columns)}; "
                            f"the data {what}")

    def read(self, path: str | Path, date_column: str | None = None, missing: str | None = None) -> Series:
        """The model's channels (by name) of a CSV file."""
        from nmt.timeseries import read_csv
        d = self.setup.data
        return read_csv(path, self.columns, "", d.date_column if date_column is None else date_column,
                        missing or d.missing, needed_by=f"the model was trained on {', '.join(self.columns)}")

    def forecast_at(self, series: Series, at=None) -> dict:
        """The H steps after the last row of `series`, or from date `at` on (the rows before it read, the rows
        from it on returned as the truth): {"history" (Series, the L rows read), "forecast" (H, C), "dates"
        (DatetimeIndex or None), "truth" (up to H rows, C) or None}."""
        import pandas as pd
        end = len(series)
        if at is not None:
            if series.dates is None:
                raise DataError(f"{series.source} has no date column, so --at cannot find a date in it")
            end = int(series.dates.searchsorted(at))
            if end == len(series) or series.dates[end] != at:
                raise DataError(f"{at} is not a date of {series.source} (its dates run from {series.dates[0]} "
                                f"to {series.dates[-1]})")
        if end < self.lookback:
            raise DataError(f"{series.source}: {end} rows before the forecast; the model reads {self.lookback}")
        history = series.rows(end - self.lookback, end)
        step = self.step if self.step is not None else series.step
        dates = None
        if series.dates is not None and step is not None:
            first = series.dates[end] if end < len(series) else series.dates[-1] + step
            dates = pd.date_range(first, periods=self.horizon, freq=step)
        truth = series.values[end:end + self.horizon] if end < len(series) else None
        return {"history": history, "forecast": self.forecast(history.values), "dates": dates, "truth": truth}

    @torch.inference_mode()
    def forecast(self, history: np.ndarray) -> np.ndarray:
        """The H steps after the last row of `history` (T >= L rows, C channels, the data's own units) -> (H, C)."""
        if len(history) < self.lookback:
            raise DataError(f"a forecast reads the last {self.lookback} rows; only {len(history)} given")
        x = self.scaler.apply(history[-self.lookback:]).unsqueeze(0)                    # (1, L, C)
        return self.scaler.invert(self.model.eval()(x)[0])                              # (H, C)

    def evaluate(self, parts: dict[str, Series], split: str = "test") -> dict:
        """MSE and MAE of the model and the baselines on every window of `parts[split]`, z-scored with
        `parts["train"]`'s own statistics (the protocol): {"model": {"mse", "mae"}, baseline: ..., "windows"}."""
        for part in parts.values():
            self.check_columns(part)
        scaler = Scaler.fit(parts["train"].values)
        d = self.setup.data
        return scores(self.model, scaler.apply(parts["train"].values), scaler.apply(parts[split].values),
                      self.lookback, self.horizon, d.period, d.eval_batch_size)


def epoch_batches(setup: ForecastSetup, train: Series) -> int:
    return math.ceil((len(train) - setup.model.lookback - setup.model.horizon + 1) / setup.train.batch_size)


def train(setup: ForecastSetup, train: Series, valid: Series, run_dir: str | Path, callbacks=(),
          meta: dict | None = None):
    """Train (or resume) on the rows of `train`, validating on every window of `valid` (its first L rows are
    context); returns (state, run_dir)."""
    from nmt.runs import fit_run, start_run
    setup.model.channels = len(train.columns)           # filled in before a resume compares settings
    if setup.data.eval_per_epoch:
        setup.train.eval_every = max(1, epoch_batches(setup, train) // setup.data.eval_per_epoch)
    check_setup(setup)
    setup, _ = start_run(setup, run_dir, TASK, SETUP, callbacks)
    task = ForecastTask(setup, Scaler.fit(train.values), train, valid, meta)
    return fit_run(Forecaster(setup.model), task, setup.train, run_dir, callbacks)


RUNNER = Forecast
