"""`train forecast`, `evaluate forecast` and `forecast` through the real command line: a short training run on a
synthetic CSV, JSON and table output, the plot, --at, and every bad input as one `error:` line."""
import json

import pytest

from nmt import checkpoint as ckpt_io
from tests.tasks.test_forecast import series_csv, write


@pytest.fixture(scope="module")
def run(cli, tmp_path_factory):
    """A tiny forecaster trained for 20 steps on 300 synthetic hourly rows (L = 24, H = 12)."""
    root = tmp_path_factory.mktemp("forecast")
    csv = series_csv(root / "series.csv", rows=300)
    result = cli.run("train", "forecast", "--csv", csv, "--preset", "tiny", "--max-steps", 20, "--out", root / "run",
                     "--set", "train.threads=1")
    assert result.exit_code == 0, result.output
    assert "best validation MSE" in result.stderr and "linear (least squares)" in result.output + result.stderr
    return root


def test_train_writes_a_run_and_resumes(cli, run, tmp_path):
    import shutil
    assert (run / "run" / "best.pt").is_file() and (run / "run" / "metrics.jsonl").is_file()
    ckpt = ckpt_io.load(run / "run" / "last.pt")
    assert ckpt.task == "forecast" and not ckpt.config["setup"]["data"]["split_rows"]
    assert ckpt.config["series"]["columns"] == ["load", "temp", "wind"]
    copy = shutil.copytree(run / "run", tmp_path / "run")
    result = cli.run("train", "forecast", "--csv", run / "series.csv", "--preset", "tiny", "--max-steps", 30,
                     "--out", copy, "--set", "train.threads=1")
    assert result.exit_code == 0, result.output
    assert ckpt_io.load(copy / "last.pt").train_state["trainer"]["step"] == 30


def test_evaluate_json_has_the_scores_and_baselines(cli, run):
    result = cli.run("evaluate", "forecast", "--model", run / "run" / "best.pt", "--csv", run / "series.csv",
                     "--json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert {"mse", "mae", "horizon", "windows"} <= set(scores) and scores["horizon"] == 12
    assert scores["windows"] == 60 - 12 + 1 and scores["split"] == "test"             # 70/10/20 of 300 rows
    assert set(scores["baselines"]) == {"repeat last value", "seasonal naive", "linear (least squares)"}
    # the same rows given explicitly; the val split; a table without --json
    rows = cli.run("evaluate", "forecast", "--model", run / "run" / "best.pt", "--csv", run / "series.csv",
                   "--split-rows", "210,30,60", "--json")
    assert json.loads(rows.stdout)["mse"] == pytest.approx(scores["mse"])
    table = cli.run("evaluate", "forecast", "--model", run / "run" / "best.pt", "--csv", run / "series.csv",
                    "--split", "val")
    assert table.exit_code == 0 and "seasonal naive" in table.stdout and "19 windows" in table.stdout


def test_forecast_table_json_plot_and_at(cli, run, tmp_path):
    model, csv = run / "run" / "best.pt", run / "series.csv"
    result = cli.run("forecast", "--model", model, "--csv", csv, "--steps", 3)
    assert result.exit_code == 0, result.output
    assert "first 3 of 12 steps" in result.stdout and "2020-01-13 12:00" in result.stdout    # the row after the last
    result = cli.run("forecast", "--model", model, "--csv", csv, "--at", "2020-01-10 00:00", "--json",
                     "--plot", tmp_path / "f.png")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["columns"] == ["load", "temp", "wind"] and len(data["forecast"]) == 12 and len(data["truth"]) == 12
    assert data["dates"][0].startswith("2020-01-10 00:00")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("content, needles", [
    ("date,load,temp,wind\n2020-01-01 00:00,1,,3\n", ("missing values", "temp: 1, first at line 2")),
    ("date,load,temp,wind\n2020-01-01 00:00,1,warm,3\n", ("column 'temp' is not numeric", "'warm'")),
    ("date,load,temp,wind\n2020-01-02,1,2,3\n2020-01-01,1,2,3\n", ("dates out of order",)),
    ("date,load,temp,wind\n2020-01-01,1,2,3\n2020-01-01,1,2,3\n", ("duplicate date",)),
    ("date,load,temp,wind\n2020-01-01,1,2,3\n", ("the train split has 0 rows",)),
    ("date,load,temp,rain\n2020-01-01,1,2,3\n", ("unknown column 'wind'", "the model was trained on load, temp, "
                                                                          "wind")),
])
def test_bad_csv_files_are_one_line_errors(cli, run, tmp_path, content, needles):
    bad = write(tmp_path / "bad.csv", content)
    result = cli.run("evaluate", "forecast", "--model", run / "run" / "best.pt", "--csv", bad)
    cli.one_line_error(result, "bad.csv", *needles)


def test_bad_options_and_checkpoints_are_one_line_errors(cli, run, tmp_path):
    model, csv = run / "run" / "best.pt", run / "series.csv"
    cli.one_line_error(cli.run("evaluate", "forecast", "--model", model, "--csv", csv, "--columns", "load,OT"),
                       "the model forecasts its own columns (load, temp, wind)")
    cli.one_line_error(cli.run("train", "forecast", "--csv", csv, "--columns", "load,OT", "--preset", "tiny",
                               "--out", tmp_path / "x"), "unknown column 'OT'")
    cli.one_line_error(cli.run("evaluate", "forecast", "--model", model, "--csv", csv, "--split-rows", "10,x,3"),
                       "--split-rows expects three comma-separated numbers")
    cli.one_line_error(cli.run("evaluate", "forecast", "--model", model, "--csv", csv, "--split-rows", "200,90,90"),
                       "needs 380 rows; the data has 300")
    cli.one_line_error(cli.run("evaluate", "forecast", "--model", model, "--csv", csv, "--split", "dev"),
                       "--split must be val or test")
    cli.one_line_error(cli.run("forecast", "--model", model, "--csv", csv, "--at", "2031-01-01"),
                       "is not a date of")
    cli.one_line_error(cli.run("forecast", "--model", model, "--csv", csv, "--at", "soon"), "--at expects a date")
    cli.one_line_error(cli.run("forecast", "--model", model, "--csv", csv, "--plot", tmp_path / "f.pdf"),
                       "PNG")
    cli.one_line_error(cli.run("forecast", "--model", model, "--csv", csv, "--missing", "guess"),
                       "expected one of error, interpolate, drop")
    cli.one_line_error(cli.run("train", "forecast", "--csv", csv, "--preset", "tiny", "--lookback", 25,
                               "--out", tmp_path / "y"), "multiple of model.segment")
    ckpt_io.save(tmp_path / "tagger.pt", ckpt_io.Checkpoint("tag", {}, {}))
    cli.one_line_error(cli.run("forecast", "--model", tmp_path / "tagger.pt", "--csv", csv),
                       "is a 'tag' checkpoint, not a 'forecast' one")
    cli.one_line_error(cli.run("forecast", "--model", tmp_path / "none.pt", "--csv", csv), "checkpoint not found")


@pytest.mark.slow
@pytest.mark.parametrize("horizon, dlinear", [(96, 0.386), (192, 0.437), (336, 0.481), (720, 0.519)])
def test_the_shipped_models_beat_dlinear_on_etth1(cli, shared_data, horizon, dlinear):
    """The README's scores: test MSE below DLinear's at every horizon (the card reports the exact numbers)."""
    from nmt.tasks import CHECKPOINTS, SHIPPED
    shared_data("ett", "ETTh1.csv")
    path = CHECKPOINTS / f"etth1-h{horizon}.pt"
    if not path.exists():
        pytest.skip(f"{path} not present")
    args = ["--model", path] if horizon != 96 else []          # H = 96 is the default model of the task
    assert horizon != 96 or SHIPPED["forecast"] == path
    result = cli.run("evaluate", "forecast", "--corpus", "etth1", "--split", "test", "--json", *args)
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["windows"] == 2785 - (horizon - 96) and scores["horizon"] == horizon and scores["mse"] < dlinear
