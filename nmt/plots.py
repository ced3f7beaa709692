"""Pictures as PNG files (matplotlib, headless): attention matrices, gradient flow, learning curves, cost against T."""
from __future__ import annotations

import json
import math
from pathlib import Path

from nmt.data import DataError


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: str | Path) -> None:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise DataError(f"{path}: plots are written as PNG files (give a name ending in .png)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    _pyplot().close(fig)


def plot_attention(weights, source: list[str], target: list[str], path: str | Path, title: str = "") -> None:
    """weights (T, S): one row per output token over the source tokens, with a colour bar."""
    plt = _pyplot()
    t, s = len(target), len(source)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.45 * s + 2), max(3.0, 0.4 * t + 1.5)))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(s), source, rotation=60, ha="right")
    ax.set_yticks(range(t), target)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    _save(fig, path)


def plot_flow(curves: dict, path: str | Path) -> None:
    """Gradient norms ||dL_T / da^t|| against distance T - t, log scale, one line per curve."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, norms in curves.items():
        values = [float(v) for v in norms]
        distance = list(range(len(values) - 1, -1, -1))
        ax.semilogy(distance, [max(v, 1e-300) for v in values], label=name)
    ax.set_xlabel("steps back from the last (T - t)")
    ax.set_ylabel("||dL_T / da^t||")
    ax.set_title("gradient flow through time")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    _save(fig, path)


def plot_cost(result: dict, path: str | Path) -> None:
    """`nmt.cost.measure`'s result: forward + backward time and saved memory against T on log-log axes, the
    measured points of each layer with its fitted line c T^k (labelled with k)."""
    from nmt.cost import fit_power
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, column, label, scale in ((axes[0], "train_ms", "forward + backward (ms)", 1.0),
                                     (axes[1], "saved_bytes", "saved for backward (MiB)", 2.0 ** -20)):
        for i, (name, fit) in enumerate(result["fits"].items()):
            rows = [r for r in result["rows"] if r["layer"] == name]
            ts, values = [r["T"] for r in rows], [r[column] * scale for r in rows]
            k, c = fit_power(fit["lengths"], [r[column] * scale for r in rows if r["T"] in fit["lengths"]])
            colour = f"C{i % 10}"
            ax.loglog(ts, values, "o", color=colour)
            ax.loglog(fit["lengths"], [c * t ** k for t in fit["lengths"]], "-", color=colour,
                      label=f"{name}: T^{k:.2f}")
        lengths = sorted({r["T"] for r in result["rows"]})
        ax.set_xticks(lengths, [str(t) for t in lengths])
        ax.minorticks_off()
        ax.set_xlabel("sequence length T")
        ax.set_ylabel(label)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small")
    axes[0].set_title("time (the course: O(T))")
    axes[1].set_title("memory (the course: O(T))")
    _save(fig, path)


def read_metrics(run: str | Path) -> list[dict]:
    """The records of a run folder's metrics.jsonl: those with a type and a step, every other value a finite
    number or NaN (nulls, strings and infinities read as NaN, so that a curve shows a gap, not an error)."""
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        raise DataError(f"{run}: no metrics.jsonl (not a run folder)")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise DataError(f"{path}: line {n} is not valid JSON") from None
            typed = isinstance(record, dict) and isinstance(record.get("type"), str)
            if typed and not math.isnan(_number(record.get("step"))):
                rows.append({k: v if k == "type" else _number(v) for k, v in record.items()})
    return rows


def _number(value) -> float | int:
    finite = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return value if finite else math.nan


def validation_rows(rows: list[dict]) -> tuple[list[str], list[dict]]:
    """The validation records of a run's metrics and the names of the scores they hold."""
    valid = [r for r in rows if r.get("type") == "valid"]
    skip = ("type", "step", "epoch", "time", "best", "score", "train_minutes")
    return [k for k in (valid[0] if valid else {}) if k not in skip], valid


def learning_curves(metrics: dict[str, list[dict]], path: str | Path) -> None:
    """Training and validation loss, and the validation score, against steps and training minutes."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    for name, rows in metrics.items():
        train = [r for r in rows if r.get("type") == "train"]
        valid = [r for r in rows if r.get("type") == "valid"]
        label = Path(name).name
        axes[0][0].plot([r["step"] for r in train], [r.get("loss", math.nan) for r in train], label=f"{label} train")
        loss_key = next((k for k in ("valid_loss", "valid_ppl") if valid and k in valid[0]), None)
        if loss_key:
            losses = [r.get(loss_key, math.nan) for r in valid]
            axes[0][0].plot([r["step"] for r in valid], losses, "o-", label=f"{label} {loss_key}")
            axes[0][1].plot([r.get("train_minutes", math.nan) for r in valid], losses, "o-", label=label)
        if valid and "score" in valid[0]:
            scores = [r.get("score", math.nan) for r in valid]
            axes[1][0].plot([r["step"] for r in valid], scores, "o-", label=label)
            axes[1][1].plot([r.get("train_minutes", math.nan) for r in valid], scores, "o-", label=label)
    titles = [["loss against steps", "validation loss against minutes"],
              ["validation score (BLEU / F1 / ROUGE-1 / -loss) against steps", "validation score against minutes"]]
    for i in range(2):
        for j in range(2):
            axes[i][j].set_title(titles[i][j], fontsize=10)
            axes[i][j].set_xlabel("step" if j == 0 else "training minutes")
            axes[i][j].grid(True, alpha=0.3)
            if axes[i][j].lines:
                axes[i][j].legend(fontsize=8)
    _save(fig, path)
