"""Forecasting (nmt/timeseries.py, nmt/models/forecast.py, nmt/tasks/forecast.py): reading and checking CSV files,
the split protocol, windows and baselines, the two recurrent forecasters (shapes, parallel decoding against the
plain recurrent step, channel independence, instance normalisation, impl parity), learning, checkpoints and an
exact resume."""
import math

import numpy as np
import pytest
import torch

from nmt.config import ConfigError, ForecastConfig, RNNConfig, override
from nmt.data import DataError
from nmt.models.forecast import Forecaster, SegmentForecaster
from nmt.tasks import make_setup
from nmt.tasks.forecast import Forecast, ForecastTask, check_setup, train
from nmt.timeseries import (LinearBaseline, Scaler, read_csv, repeat_last, seasonal_naive, split_ends, split_series,
                            windows)

COLUMNS = ("load", "temp", "wind")


def series_csv(path, rows: int = 200, start: str = "2020-01-01", freq: str = "h", columns=COLUMNS, seed: int = 0):
    """A CSV of daily cycles plus noise: a date column and one column per name."""
    import pandas as pd
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    data = {"date": pd.date_range(start, periods=rows, freq=freq).strftime("%Y-%m-%d %H:%M:%S")}
    for i, name in enumerate(columns):
        data[name] = np.sin(2 * np.pi * t / 24 + i) * (i + 1) + 0.1 * rng.standard_normal(rows) + 5 * i
    pd.DataFrame(data).to_csv(path, index=False)
    return path


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


# --- reading and checking CSV files -------------------------------------------------------------------------------

def test_read_csv_finds_dates_and_channels(tmp_path):
    s = read_csv(series_csv(tmp_path / "a.csv", rows=50))
    assert s.columns == list(COLUMNS) and s.values.shape == (50, 3) and s.values.dtype == np.float64
    assert str(s.dates[0]) == "2020-01-01 00:00:00" and s.step == np.timedelta64(1, "h")
    assert read_csv(tmp_path / "a.csv", columns=("wind", "load")).columns == ["wind", "load"]
    assert read_csv(tmp_path / "a.csv", target="temp").values.shape == (50, 1)


def test_a_first_column_of_dates_is_found_under_any_name_and_none_is_fine(tmp_path):
    write(tmp_path / "when.csv", "when,x\n2021-03-01,1\n2021-03-02,2\n2021-03-03,4\n")
    s = read_csv(tmp_path / "when.csv")
    assert s.columns == ["x"] and s.step == np.timedelta64(1, "D")
    write(tmp_path / "plain.csv", "x,y\n1,2\n3,4\n")
    s = read_csv(tmp_path / "plain.csv")
    assert s.dates is None and s.columns == ["x", "y"] and s.step is None
    s = read_csv(tmp_path / "when.csv", date_column="when")
    assert s.columns == ["x"]
    with pytest.raises(DataError, match="no date column 'day'"):
        read_csv(tmp_path / "when.csv", date_column="day")


@pytest.mark.parametrize("text, needles", [
    ("date,a,b\n2020-01-01 00:00,1,2\n2020-01-01 01:00,,2\n2020-01-01 02:00,3,nan\n2020-01-01 03:00,4,\n",
     ("3 missing values", "a: 1, first at line 3", "b: 2, first at line 4", "--missing interpolate")),
    ("date,a,b\n2020-01-01,1,x\n2020-01-02,2,3\n", ("column 'b' is not numeric", "line 2", "'x'", "--columns")),
    ("date,a\n2020-01-02,1\n2020-01-01,2\n", ("dates out of order", "line 3", "sort the file")),
    ("date,a\n2020-01-01,1\n2020-01-02,2\n2020-01-02,3\n", ("duplicate date 2020-01-02", "line 4 after",)),
    ("date,a\n2020-01-01,1\nyesterday,2\n", ("line 3", "'yesterday'", "is not a date")),
    ("", ("not a readable CSV file",)),
    ("date,a\n", ("no data rows",)),
])
def test_bad_csv_files_are_one_line_data_errors(tmp_path, text, needles):
    with pytest.raises(DataError) as err:
        read_csv(write(tmp_path / "bad.csv", text))
    message = str(err.value)
    assert "\n" not in message and "bad.csv" in message
    for needle in needles:
        assert needle in message, message


def test_unknown_columns_are_named_with_the_files_columns(tmp_path):
    path = series_csv(tmp_path / "a.csv", rows=10)
    with pytest.raises(DataError, match="unknown column 'OT'.*the file's columns: date, load, temp, wind"):
        read_csv(path, columns=("load", "OT"))
    with pytest.raises(DataError, match="unknown column 'OT'"):
        read_csv(path, target="OT")
    with pytest.raises(DataError, match="'date' is the date column"):
        read_csv(path, columns=("date",))
    with pytest.raises(DataError, match="named twice"):
        read_csv(path, columns=("load", "load"))


def test_missing_values_interpolated_or_dropped(tmp_path):
    path = write(tmp_path / "gaps.csv", "date,a,b\n2020-01-01 00:00,1,2\n2020-01-01 01:00,,4\n"
                                        "2020-01-01 02:00,3,6\n2020-01-01 03:00,5,\n")
    s = read_csv(path, missing="interpolate")
    assert s.values.tolist() == [[1, 2], [2, 4], [3, 6], [5, 6]] and s.notes == ["interpolated 2 missing values"]
    s = read_csv(path, missing="drop")
    assert s.values.tolist() == [[1, 2], [3, 6]] and len(s.dates) == 2 and "dropped 2 rows" in s.notes[0]
    write(tmp_path / "empty.csv", "a,b\n,1\n,2\n")
    with pytest.raises(DataError, match="column 'a' has no values"):
        read_csv(tmp_path / "empty.csv", missing="interpolate")


# --- the protocol: splits, z-scores, windows ------------------------------------------------------------------------

def test_split_ends_by_rows_and_by_ratios():
    assert split_ends(17420, (8640, 2880, 2880)) == (8640, 11520, 14400)
    assert split_ends(1000) == (700, 800, 1000)                      # 70 / 10 / 20: val takes the rest
    assert split_ends(1001) == (700, 801, 1001)
    assert split_ends(1000, ratios=(0.5, 0.1, 0.1)) == (500, 600, 700)
    with pytest.raises(DataError, match="needs 300 rows; the data has 200"):
        split_ends(200, (100, 100, 100))
    for bad in [(1, 2), (0, 1, 1)]:
        with pytest.raises(ConfigError):
            split_ends(200, bad)
    with pytest.raises(ConfigError, match="shares"):
        split_ends(200, ratios=(0.8, 0.2, 0.2))


def test_split_series_reaches_back_lookback_rows_and_refuses_short_splits(tmp_path):
    s = read_csv(series_csv(tmp_path / "a.csv", rows=200))
    parts = split_series(s, (120, 160, 200), lookback=24, horizon=12)
    assert [len(p) for p in parts.values()] == [120, 64, 64]
    assert parts["val"].first_row == 96 and parts["test"].first_row == 136
    assert np.array_equal(parts["test"].values, s.values[136:200])
    # every window of the val part has its targets inside the val rows: 40 - 12 + 1 of them
    assert len(windows(torch.tensor(parts["val"].values), 36)) == 29
    with pytest.raises(DataError, match="the test split has 10 rows; one window needs H = 12"):
        split_series(s, (150, 190, 200), 24, 12)
    with pytest.raises(DataError, match="the train split has 30 rows; one window needs L \\+ H = 36"):
        split_series(s, (30, 100, 200), 24, 12)


def test_scaler_uses_the_training_rows_and_round_trips():
    values = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    scaler = Scaler.fit(values)
    z = scaler.apply(values)
    assert torch.allclose(z[:, 0], torch.tensor([-1.2247, 0.0, 1.2247]), atol=1e-4)    # population std
    assert torch.equal(z[:, 1], torch.zeros(3))                                          # constant: shifted only
    assert np.allclose(scaler.invert(z), values)
    assert Scaler.from_dict(scaler.to_dict()).to_dict() == scaler.to_dict()


def test_windows_are_every_stride_one_window():
    values = torch.arange(20.0).view(10, 2)
    w = windows(values, 4)
    assert w.shape == (7, 4, 2) and torch.equal(w[3], values[3:7])


def test_etth1_follows_the_standard_protocol(shared_data):
    s = read_csv(shared_data("ett", "ETTh1.csv"))
    assert s.columns == ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"] and len(s) == 17420
    parts = split_series(s, split_ends(len(s), (8640, 2880, 2880)), 96, 96)
    counts = [len(p) - 96 - 96 + 1 for p in parts.values()]
    assert counts == [8449, 2785, 2785]              # the test windows every paper averages over
    z = Scaler.fit(parts["train"].values).apply(parts["train"].values)
    assert torch.allclose(z.mean(0), torch.zeros(7), atol=1e-5) and torch.allclose(z.std(0), torch.ones(7), atol=1e-3)


# --- baselines --------------------------------------------------------------------------------------------------------

def test_repeat_last_and_seasonal_naive():
    x = torch.arange(12.0).view(1, 6, 2)                                # (B, L, C)
    assert torch.equal(repeat_last(x, 3)[0, :, 0], torch.tensor([10.0, 10.0, 10.0]))
    # period 4: the last 4 steps (2, 3, 4, 5) repeated
    assert seasonal_naive(x, 6, 4)[0, :, 0].tolist() == [4.0, 6.0, 8.0, 10.0, 4.0, 6.0]


def test_linear_baseline_recovers_an_exact_linear_recurrence():
    # a sinusoid obeys x[t] = 2 cos(w) x[t-1] - x[t-2]: a linear map from the past gives the future exactly
    t = torch.arange(400.0)
    values = torch.stack([torch.sin(0.3 * t), 2 * torch.cos(0.17 * t + 1)], dim=1)     # (T, 2)
    fit = LinearBaseline(values[:300], lookback=8, horizon=5, ridge=0.0)
    w = windows(values[300:], 13)
    assert torch.allclose(fit(w[:, :8]), w[:, 8:], atol=1e-3)            # float32 inputs


# --- the models -------------------------------------------------------------------------------------------------

def config(**kw) -> ForecastConfig:
    base = dict(lookback=24, horizon=12, channels=3, segment=6, rnn=RNNConfig(cell="gru", hidden_size=16,
                                                                             bidirectional=False), dropout=0.0)
    rnn = kw.pop("rnn", {})
    cfg = ForecastConfig(**(base | kw))
    for key, value in rnn.items():
        cfg = override(cfg, f"rnn.{key}", value)
    return cfg


@pytest.mark.parametrize("kind", ["segment", "seq2seq"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_forecasters_map_lookback_to_horizon(kind, cell):
    torch.manual_seed(0)
    for horizon, layers in ((12, 1), (10, 2)):                          # 10: not a multiple of the segment
        model = Forecaster(config(kind=kind, horizon=horizon, rnn={"cell": cell, "num_layers": layers}))
        y = model(torch.randn(5, 24, 3))
        assert y.shape == (5, horizon, 3)                                               # (B, H, C)
        y.sum().backward()
        assert all(p.grad is not None for p in model.parameters() if p.numel())


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_parallel_decoding_equals_one_recurrent_step_per_segment(cell):
    """SegRNN writes its decoder as the RNN over a batch of B*C*M rows, each from a copy of its channel's final
    state; the broadcast form must give the same outputs."""
    torch.manual_seed(0)
    model = SegmentForecaster(config(rnn={"cell": cell})).eval()
    B, C, M, D = 4, 3, model.outputs, 16
    x = torch.randn(B, 24, C)
    from nmt.models.forecast import normalise, segments
    _, state = model.rnn(model.embed(segments(normalise(x, "revin")[0], 6)))
    def copies(s):
        return s.repeat_interleave(M, dim=1)                                            # (1, B C M, D)
    hx = tuple(map(copies, state)) if cell == "lstm" else copies(state)
    queries = model.queries().unsqueeze(0).expand(B, C, M, D).reshape(B * C * M, 1, D)
    expected, _ = model.rnn.rnn(queries, hx)                                            # torch's own RNN
    assert torch.allclose(model.decode(state, B, C).reshape(-1, D), expected[:, 0], atol=1e-5)


@pytest.mark.parametrize("kind", ["segment", "seq2seq"])
def test_channels_are_forecast_independently(kind):
    torch.manual_seed(0)
    model = Forecaster(config(kind=kind)).eval()
    x = torch.randn(2, 24, 3)
    changed = x.clone()
    changed[:, :, 0] += torch.randn(2, 24)
    y, z = model(x), model(changed)
    assert not torch.allclose(y[:, :, 0], z[:, :, 0]) and torch.allclose(y[:, :, 1:], z[:, :, 1:])


def test_instance_normalisation_makes_forecasts_follow_shift_and_scale():
    torch.manual_seed(0)
    x = torch.randn(2, 24, 3)
    revin = Forecaster(config(norm="revin")).eval()
    assert torch.allclose(revin(3 * x + 7), 3 * revin(x) + 7, atol=1e-3)
    last = Forecaster(config(norm="last")).eval()
    assert torch.allclose(last(x + 7), last(x) + 7, atol=1e-4)
    plain = Forecaster(config(norm="none")).eval()
    assert not torch.allclose(plain(x + 7), plain(x) + 7, atol=1e-2)


@pytest.mark.parametrize("kind", ["segment", "seq2seq"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_impls_share_weights_and_outputs(kind, cell):
    torch.manual_seed(0)
    fused = Forecaster(config(kind=kind, rnn={"cell": cell}))
    scratch = Forecaster(config(kind=kind, rnn={"cell": cell, "impl": "scratch"}))
    scratch.load_state_dict(fused.state_dict())
    x = torch.randn(3, 24, 3)
    y_fused, y_scratch = fused(x), scratch(x)
    assert torch.allclose(y_fused, y_scratch, atol=1e-5)
    y_fused.square().sum().backward()
    y_scratch.square().sum().backward()
    for (name, a), b in zip(fused.named_parameters(), scratch.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-4), name


def test_byte_dropout_keeps_one_minus_p_and_the_mean():
    from nmt.models.forecast import ByteDropout
    torch.manual_seed(0)
    x = torch.ones(400, 500)
    for p in (0.5, 0.1):
        y = ByteDropout(p).train()(x)
        assert abs(float((y > 0).float().mean()) - (1 - p)) < 0.01 and abs(float(y.mean()) - 1) < 0.01
    assert ByteDropout(0.5).eval()(x) is x and torch.equal(ByteDropout(1.0).train()(x), torch.zeros_like(x))


def test_check_setup_refuses_what_the_model_cannot_do():
    setup = make_setup("forecast", "tiny")
    check_setup(setup)
    with pytest.raises(ConfigError, match="multiple of model.segment"):
        check_setup(override(setup, "model.segment", 5))
    with pytest.raises(ConfigError, match="data.period"):
        check_setup(override(setup, "data.period", 48))


# --- learning, the task, checkpoints -------------------------------------------------------------------------------

def test_a_segment_forecaster_learns_a_noisy_cycle():
    torch.manual_seed(0)
    t = torch.arange(600.0)
    values = torch.stack([torch.sin(2 * math.pi * t / 12), torch.cos(2 * math.pi * t / 8)], 1)
    values += 0.05 * torch.randn_like(values)
    w = windows(values, 36)
    model = Forecaster(config(channels=2))
    optim = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(150):
        batch = w[torch.randint(len(w), (32,))]
        loss = torch.nn.functional.mse_loss(model(batch[:, :24]), batch[:, 24:])
        optim.zero_grad()
        loss.backward()
        optim.step()
    with torch.no_grad():
        mse = torch.nn.functional.mse_loss(model.eval()(w[:, :24]), w[:, 24:])
        last = torch.nn.functional.mse_loss(repeat_last(w[:, :24], 12), w[:, 24:])
    assert mse < 0.1 * last


def tiny_setup(**sets):
    setup = make_setup("forecast", "tiny", overrides={"train.threads": 1, **sets})
    return setup


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    path = series_csv(tmp_path_factory.mktemp("series") / "s.csv", rows=300)
    return split_series(read_csv(path), split_ends(300), 24, 12)


def test_task_batches_validation_and_checkpoint(parts):
    setup = tiny_setup()
    setup.model.channels = 3
    task = ForecastTask(setup, Scaler.fit(parts["train"].values), parts["train"], parts["val"])
    batches = task.batches(0)
    assert len(batches) == math.ceil((210 - 36 + 1) / 16)
    assert batches[0].x.shape == (16, 24, 3) and batches[0].y.shape == (16, 12, 3)
    assert torch.equal(task.batches(0)[1].x, batches[1].x) and not torch.equal(task.batches(1)[0].x, batches[0].x)
    model = Forecaster(setup.model)
    loss, stats = task.loss(model, batches[0])
    assert loss.dim() == 0 and stats["tokens"] == 16
    with torch.inference_mode():
        result = task.validate(model.eval())
    assert result.score == -result.metrics["valid_mse"] and len(result.samples) == 4
    ckpt = task.make_checkpoint(model)
    assert ckpt.config["series"]["columns"] == list(COLUMNS) and ckpt.config["series"]["step"] == "0 days 01:00:00"
    runner = Forecast.build(ckpt)
    x = parts["val"].values[-24:]
    expected = task.scaler.invert(model.eval()(task.scaler.apply(x).unsqueeze(0))[0].detach())
    assert np.allclose(runner.forecast(x), expected, atol=1e-5)


def test_train_resumes_exactly(parts, tmp_path):
    """Twenty steps at once, or ten and then ten more from last.pt: the same weights."""
    def run(folder, steps):
        setup = tiny_setup(**{"train.max_steps": steps})
        return train(setup, parts["train"], parts["val"], folder)

    run(tmp_path / "once", 20)
    run(tmp_path / "twice", 10)
    state, _ = run(tmp_path / "twice", 20)
    assert state.step == 20
    from nmt import checkpoint as ckpt_io
    a, b = (ckpt_io.load(tmp_path / name / "last.pt").model for name in ("once", "twice"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_runner_forecasts_evaluates_and_checks_columns(parts, tmp_path):
    train(tiny_setup(**{"train.max_steps": 10}), parts["train"], parts["val"], tmp_path / "run")
    runner = Forecast.load(tmp_path / "run" / "best.pt")
    assert (runner.lookback, runner.horizon, runner.columns) == (24, 12, list(COLUMNS))
    result = runner.evaluate(parts, "test")
    assert result["windows"] == 84 - 36 + 1 and set(result) == {
        "model", "repeat last value", "seasonal naive", "linear (least squares)", "windows"}
    series = read_csv(parts["train"].source)
    at = series.dates[250]
    found = runner.forecast_at(series, at)
    assert found["forecast"].shape == (12, 3) and np.array_equal(found["truth"], series.values[250:262])
    assert found["dates"][0] == at and len(found["history"]) == 24
    after = runner.forecast_at(series)
    assert after["truth"] is None and after["dates"][0] == series.dates[-1] + series.step
    with pytest.raises(DataError, match="is not a date of"):
        runner.forecast_at(series, at + np.timedelta64(30, "m"))
    with pytest.raises(DataError, match="10 rows before the forecast; the model reads 24"):
        runner.forecast_at(series, series.dates[10])
    other = series_csv(tmp_path / "other.csv", rows=60, columns=("load", "temp", "rain"))
    with pytest.raises(DataError, match="unknown column 'wind'; the model was trained on load, temp, wind"):
        runner.read(other)
