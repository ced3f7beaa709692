"""Time series from CSV files: reading and checking them, splitting their rows, z-scores, windows, and the
baselines every forecast is compared with.

CSV files are read with pandas: its parser handles quoting, CRLF and type inference, `to_datetime` reads every
common date format, `to_numeric` finds the exact cells that are not numbers, and `interpolate` fills gaps. The
files here are small (ETTh1 is 17,420 rows), so polars' speed would not show; pandas is the better-known tool
and matplotlib's neighbour in most installs.

Shapes: T rows (time steps), C channels, N windows, L lookback, H horizon.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from nmt.config import ConfigError
from nmt.data import DataError

DATE_NAMES = ("date", "datetime", "time", "timestamp", "ds")
SPLITS = ("train", "val", "test")
MISSING = ("error", "interpolate", "drop")


@dataclass
class Series:
    """Rows of a multivariate series: float64 values (T, C), channel names, and dates (or None)."""
    values: np.ndarray
    columns: list[str]
    dates: object = None          # pandas DatetimeIndex of length T, or None when the file has no date column
    source: str = ""              # the file, for messages
    first_row: int = 0            # index of the first row in the file's data rows
    notes: list[str] = field(default_factory=list)   # how missing values were handled

    def __len__(self) -> int:
        return len(self.values)

    def rows(self, start: int, end: int) -> Series:
        """Rows start..end-1 as a Series of their own."""
        dates = None if self.dates is None else self.dates[start:end]
        return Series(self.values[start:end], self.columns, dates, self.source, self.first_row + start, self.notes)

    @property
    def step(self):
        """The spacing of the dates (their most common difference), or None."""
        if self.dates is None or len(self.dates) < 2:
            return None
        return self.dates.to_series().diff().mode().iloc[0]


# --- reading ------------------------------------------------------------------------------------------------

def read_csv(path: str | Path, columns=(), target: str = "", date_column: str = "", missing: str = "error",
             needed_by: str = "") -> Series:
    """A CSV file as a Series, checked: the channels exist and are numeric, the dates parse, are sorted and
    unique, and missing cells are refused (named by column and line) or interpolated or dropped (`missing`).
    `needed_by` words why the columns are asked for (e.g. "the model was trained on A, B"), for the error."""
    import pandas as pd
    if missing not in MISSING:
        raise ConfigError(f"missing values: expected one of {', '.join(MISSING)}, got {missing!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"{path}: not a readable CSV file ({reason})") from None
    if frame.empty:
        raise DataError(f"{path}: no data rows")
    frame.columns = [str(c).strip() for c in frame.columns]
    date = _date_column(frame, date_column, path)
    names = _channels(list(frame.columns), columns, target, date, path, needed_by)
    data = frame[names].apply(lambda col: _numeric(col, path))
    dates = _dates(frame[date], path) if date else None
    return _fill_missing(Series(data.to_numpy(np.float64), names, dates, str(path)), data.isna().to_numpy(),
                         missing)


def _date_column(frame, name: str, path: Path) -> str | None:
    if name:
        if name not in frame.columns:
            raise DataError(f"{path}: no date column '{name}' (columns: {', '.join(frame.columns)})")
        return name
    for column in frame.columns:
        if column.lower() in DATE_NAMES:
            return column
    import pandas as pd
    first = frame[frame.columns[0]]
    if not pd.api.types.is_numeric_dtype(first) and _parse_dates(first).notna().all():
        return frame.columns[0]
    return None


def _channels(available: list[str], columns, target: str, date: str | None, path: Path,
              needed_by: str = "") -> list[str]:
    names = [target] if target else list(columns) or [c for c in available if c != date]
    for name in names:
        if name not in available:
            why = f"; {needed_by}" if needed_by else ""
            raise DataError(f"{path}: unknown column '{name}'{why} (the file's columns: {', '.join(available)})")
        if name == date:
            raise DataError(f"{path}: '{name}' is the date column, not a channel to forecast")
    if not names:
        raise DataError(f"{path}: no columns to forecast besides the date")
    if len(set(names)) < len(names):
        raise DataError(f"{path}: a column is named twice in --columns ({', '.join(names)})")
    return names


def _numeric(column, path: Path):
    """The column as floats; DataError naming the first cell that is neither a number nor empty."""
    import pandas as pd
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.astype(np.float64)
    numbers = pd.to_numeric(column, errors="coerce")
    bad = numbers.isna() & column.notna() & (column.astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: column '{column.name}' is not numeric (line {row + 2}: {column.iloc[row]!r}); "
                        "choose the numeric channels with --columns")
    return numbers.astype(np.float64)


def _parse_dates(column):
    import pandas as pd
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # "could not infer format": each value is parsed on its own
        return pd.to_datetime(column, errors="coerce")


def _dates(column, path: Path):
    """Parsed dates as a DatetimeIndex; DataError for a cell that is not a date, and for dates that are not
    strictly increasing (naming the two lines)."""
    import pandas as pd
    parsed = _parse_dates(column)
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataError(f"{path}: line {row + 2}: {column.iloc[row]!r} in the date column '{column.name}' is not "
                        "a date")
    dates = pd.DatetimeIndex(parsed)
    gaps = np.asarray(dates[1:] - dates[:-1])
    order = np.flatnonzero(gaps <= np.timedelta64(0))
    if len(order):
        i = int(order[0]) + 1
        what = "duplicate date" if gaps[i - 1] == np.timedelta64(0) else "dates out of order:"
        raise DataError(f"{path}: {what} {dates[i]} at line {i + 2} after {dates[i - 1]} at line {i + 1} "
                        "(sort the file by date and remove repeated rows)")
    return dates


def _fill_missing(series: Series, nan: np.ndarray, missing: str) -> Series:
    """Refuse, interpolate (linearly along the rows, ends held) or drop the rows with missing values."""
    count = int(nan.sum())
    if not count:
        return series
    if missing == "error":
        where = []
        for c in np.flatnonzero(nan.any(axis=0)):
            rows = np.flatnonzero(nan[:, c])
            where.append(f"{series.columns[c]}: {len(rows)}, first at line {rows[0] + 2}")
        raise DataError(f"{series.source}: {count} missing values ({'; '.join(where)}); use --missing interpolate "
                        "(linear between neighbours) or --missing drop (drop those rows)")
    if missing == "drop":
        keep = ~nan.any(axis=1)
        series = Series(series.values[keep], series.columns, None if series.dates is None else series.dates[keep],
                        series.source, notes=[f"dropped {int((~keep).sum())} rows with missing values"])
        if not len(series):
            raise DataError(f"{series.source}: every row has a missing value")
        return series
    import pandas as pd
    filled = pd.DataFrame(series.values).interpolate(method="linear", limit_direction="both").to_numpy()
    if np.isnan(filled).any():
        empty = series.columns[int(np.flatnonzero(np.isnan(filled).all(axis=0))[0])]
        raise DataError(f"{series.source}: column '{empty}' has no values to interpolate from")
    return Series(filled, series.columns, series.dates, series.source,
                  notes=[f"interpolated {count} missing values"])


# --- splits and scaling -------------------------------------------------------------------------------------

def split_ends(rows: int, split_rows=(), ratios=(0.7, 0.1, 0.2)) -> tuple[int, int, int]:
    """The rows where train, val and test end: from row counts (ETT: 8640, 2880, 2880), else from shares (the
    general protocol: train int(0.7 T), test int(0.2 T), val the rest)."""
    if split_rows:
        if len(split_rows) != 3 or any(not isinstance(r, int) or r < 1 for r in split_rows):
            raise ConfigError(f"split rows must be three positive counts TRAIN,VAL,TEST, got {tuple(split_rows)}")
        if sum(split_rows) > rows:
            raise DataError(f"the split {','.join(map(str, split_rows))} needs {sum(split_rows)} rows; "
                            f"the data has {rows}")
        train, val, test = split_rows
        return train, train + val, train + val + test
    if len(ratios) != 3 or any(not 0 < r < 1 for r in ratios) or sum(ratios) > 1 + 1e-9:
        raise ConfigError(f"split ratios must be three shares in (0, 1) summing to at most 1, got {tuple(ratios)}")
    train, test = int(rows * ratios[0]), int(rows * ratios[2])
    val = rows - train - test if abs(sum(ratios) - 1) < 1e-9 else int(rows * ratios[1])
    return train, train + val, train + val + test


def split_series(series: Series, ends: tuple[int, int, int], lookback: int, horizon: int) -> dict[str, Series]:
    """{"train", "val", "test"}: each split's rows, val and test preceded by the L rows their first window reads.
    Every window of a part (stride 1) then has all its targets inside the split. DataError if a split is too
    short for one window."""
    starts = (0, ends[0] - lookback, ends[1] - lookback)
    parts = {}
    for name, start, end in zip(SPLITS, starts, ends):
        own = end - max(start + lookback, 0) if name != "train" else end
        need = horizon + (lookback if name == "train" else 0)
        if own < need or start < 0:
            raise DataError(f"{series.source}: the {name} split has {own} rows; one window needs "
                            f"{'L + H = ' + str(lookback + horizon) if name == 'train' else 'H = ' + str(horizon)}"
                            f" (L = {lookback}, H = {horizon})")
        parts[name] = series.rows(start, end)
    return parts


@dataclass
class Scaler:
    """z-scores per channel with the training rows' mean and (population) standard deviation."""
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> Scaler:
        std = values.std(axis=0)
        return cls(values.mean(axis=0), np.where(std > 0, std, 1.0))   # a constant channel is only shifted

    def apply(self, values: np.ndarray) -> Tensor:
        return torch.from_numpy((values - self.mean) / self.std).float()

    def invert(self, values: Tensor) -> np.ndarray:
        return values.double().numpy() * self.std + self.mean

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, state: dict) -> Scaler:
        return cls(np.asarray(state["mean"], np.float64), np.asarray(state["std"], np.float64))


def windows(values: Tensor, size: int) -> Tensor:
    """Every window of `size` consecutive rows, stride 1: (T, C) -> (N, size, C), a view (N = T - size + 1)."""
    return values.unfold(0, size, 1).transpose(1, 2)                                 # (N, size, C)


# --- baselines and scores -----------------------------------------------------------------------------------

def repeat_last(x: Tensor, horizon: int) -> Tensor:
    """The last value of each channel, held: x (B, L, C) -> (B, H, C)."""
    return x[:, -1:].expand(-1, horizon, -1)


def seasonal_naive(x: Tensor, horizon: int, period: int) -> Tensor:
    """The last `period` steps repeated (24 for hourly data: the same hour yesterday): (B, L, C) -> (B, H, C)."""
    index = x.size(1) - period + torch.arange(horizon) % period
    return x[:, index]


class LinearBaseline:
    """One linear map from the L past values of a channel to its H next ones, shared by the channels (DLinear's
    model without its split into trend and remainder, which a linear map absorbs), fitted by least squares with a
    small ridge on the training windows instead of by gradient descent."""

    def __init__(self, train: Tensor, lookback: int, horizon: int, ridge: float = 1e-4):
        L = lookback
        gram = torch.zeros(L + 1, L + 1, dtype=torch.float64)
        cross = torch.zeros(L + 1, horizon, dtype=torch.float64)
        for chunk in windows(train, L + horizon).split(4096):
            rows = chunk.transpose(1, 2).reshape(-1, L + horizon).double()            # (n C, L + H)
            x = torch.cat([rows[:, :L], rows.new_ones(len(rows), 1)], dim=1)           # (n C, L + 1)
            gram += x.T @ x
            cross += x.T @ rows[:, L:]
        # the ridge is relative to the number of rows, so it means the same for any amount of data
        self.weight = torch.linalg.solve(gram + ridge * gram[-1, -1] * torch.eye(L + 1, dtype=torch.float64),
                                         cross)                                        # (L + 1, H)

    def __call__(self, x: Tensor) -> Tensor:
        """x (B, L, C) -> (B, H, C)."""
        rows = x.transpose(1, 2).double()                                              # (B, C, L)
        return (rows @ self.weight[:-1] + self.weight[-1]).transpose(1, 2).float()     # (B, H, C)


class Errors:
    """Sums of squared and absolute errors over every window, step and channel, and their count."""

    def __init__(self):
        self.squared, self.absolute, self.count = 0.0, 0.0, 0

    def add(self, forecast: Tensor, truth: Tensor) -> None:
        diff = (forecast - truth).double()
        self.squared += float(diff.square().sum())
        self.absolute += float(diff.abs().sum())
        self.count += diff.numel()

    @property
    def mse(self) -> float:
        return self.squared / max(1, self.count)

    @property
    def mae(self) -> float:
        return self.absolute / max(1, self.count)


def score(forecast, values: Tensor, lookback: int, horizon: int, batch_size: int = 512) -> tuple[Errors, int]:
    """Errors of `forecast(x (B, L, C)) -> (B, H, C)` over every window of `values` (T, C), stride 1, and the
    number of windows."""
    every = windows(values, lookback + horizon)                                      # (N, L + H, C)
    errors = Errors()
    for start in range(0, every.size(0), batch_size):
        batch = every[start:start + batch_size]
        errors.add(forecast(batch[:, :lookback]), batch[:, lookback:])
    return errors, every.size(0)


def plot_forecast(history: Series, forecast: np.ndarray, dates, truth: np.ndarray | None, path: str | Path) -> None:
    """One panel per channel: the history read, the forecast and (where the file has it) the truth, as a PNG."""
    from nmt.plots import _pyplot, _save
    plt = _pyplot()
    C = len(history.columns)
    fig, axes = plt.subplots(C, 1, figsize=(10, 1.9 * C + 0.6), sharex=True, squeeze=False)
    past = history.dates if history.dates is not None else np.arange(len(history))
    future = dates if dates is not None else np.arange(len(history), len(history) + len(forecast))
    for c, ax in enumerate(axes[:, 0]):
        ax.plot(past, history.values[:, c], color="0.35", linewidth=1, label="history")
        if truth is not None and len(truth):
            ax.plot(future[: len(truth)], truth[:, c], color="tab:green", linewidth=1, label="truth")
        ax.plot(future, forecast[:, c], color="tab:red", linewidth=1.3, label="forecast")
        ax.set_ylabel(history.columns[c], fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="upper left", ncol=3)
    axes[0, 0].set_title(f"{Path(history.source).name}: {len(forecast)} steps forecast from {len(history)} read")
    fig.autofmt_xdate()
    _save(fig, path)
