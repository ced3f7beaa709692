"""Forecasting speed of a shipped ETTh1 forecaster: training seconds per epoch (one epoch of its own setup,
measured here), minutes to the best validation (from a run folder, when given), the latency of one window warm
(model loaded; median of many) and from a cold start (`cli.py forecast` in a fresh process), and windows/s over
every test window in batches.

    python bench/forecast_speed.py [--model checkpoints/etth1-h96.pt] [--run runs/etth1-h96] [--train-steps 10]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def to_best(run: Path) -> dict:
    """Training minutes to the best validation and in all, from a run folder's metrics.jsonl."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    valid = [r for r in rows if r.get("type") == "valid"]
    best = max(valid, key=lambda r: r["score"])
    return {"minutes_to_best": round(best["train_minutes"], 2), "best_step": best["step"],
            "minutes_in_all": round(valid[-1]["train_minutes"], 2)}


def epoch_seconds(runner, parts, steps: int) -> dict:
    """Seconds per training epoch of the runner's own setup (timed over `steps` updates, validation apart)."""
    import torch
    from nmt.models.forecast import Forecaster
    from nmt.tasks.forecast import ForecastTask
    from nmt.timeseries import Scaler
    setup = runner.setup
    task = ForecastTask(setup, Scaler.fit(parts["train"].values), parts["train"], parts["val"])
    model = Forecaster(setup.model).train()
    optim = torch.optim.AdamW(model.parameters(), lr=setup.train.optim.lr)
    batches = task.batches(0)
    for i in range(steps + 1):
        if i == 1:
            start = time.perf_counter()                 # the first update warms up kernels and the allocator
        loss, _ = task.loss(model, batches[i])
        optim.zero_grad()
        loss.backward()
        optim.step()
    per_update = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    with torch.inference_mode():
        task.validate(model.eval())
    return {"updates_per_epoch": len(batches), "seconds_per_update": round(per_update, 3),
            "seconds_per_epoch": round(per_update * len(batches), 1),
            "validation_seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "etth1-h96.pt"))
    parser.add_argument("--run", default=None, help="Run folder whose metrics.jsonl gives minutes to the best.")
    parser.add_argument("--train-steps", type=int, default=10, help="Updates timed for the epoch estimate.")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=200, help="Single-window forecasts timed (warm).")
    args = parser.parse_args()
    import torch
    from bench.common import cold_start_seconds, machine, peak_rss_mb
    from nmt import allocator
    from nmt.corpora import corpus_files
    from nmt.tasks.forecast import Forecast
    from nmt.timeseries import Scaler, score, split_ends, split_series
    allocator.configure()                              # as the command line does
    files = corpus_files("etth1")
    path, rows = files["paths"][0], files["split_rows"]
    runner = Forecast.load(args.model)
    series = runner.read(path)
    parts = split_series(series, split_ends(len(series), rows), runner.lookback, runner.horizon)
    window = parts["test"].values[-runner.lookback:]
    runner.forecast(window)                            # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        runner.forecast(window)
        times.append(time.perf_counter() - start)
    scaler = Scaler.fit(parts["train"].values)
    test = scaler.apply(parts["test"].values)
    start = time.perf_counter()
    with torch.inference_mode():
        _, count = score(runner.model.eval(), test, runner.lookback, runner.horizon, args.batch_size)
    batched = time.perf_counter() - start
    result = {"machine": machine(), "model": args.model, "horizon": runner.horizon,
              "warm_ms_one_window": round(1000 * statistics.median(times), 2),
              "warm_ms_one_window_p90": round(1000 * statistics.quantiles(times, n=10)[-1], 2),
              "test_windows": count, "windows_per_s_batched": round(count / batched),
              "batch_size": args.batch_size}
    result |= epoch_seconds(runner, parts, args.train_steps)
    result["peak_rss_mb"] = round(peak_rss_mb())
    result["cold_start_s_one_window"] = round(cold_start_seconds(["forecast", "-m", args.model, "--csv", str(path),
                                                                  "--json"]), 2)
    if args.run:
        result |= to_best(Path(args.run))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
