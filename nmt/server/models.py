"""The served models: loading them (off the event loop, so /health answers meanwhile), warming them up, and what
/v1/models says of each (its card's summary and the scores its checkpoint records)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmt.server.batching import Batcher

log = logging.getLogger("nmt.server")
PATHS = {"charlm": "/v1/generate"}        # tasks whose endpoint is not /v1/TASK


@dataclass
class Served:
    """One loaded model: its task, name and file, its runner (nmt.tasks) and its batcher (once serving)."""
    task: str
    name: str                     # the checkpoint's file name without .pt, e.g. "multi30k-de-en"
    path: str | None
    runner: Any
    batcher: Batcher | None = None

    def describe(self) -> dict:
        ckpt = getattr(self.runner, "checkpoint", None)
        return {"name": self.name, "task": self.task, "endpoint": endpoint_path(self.task), "path": self.path,
                "card": card_summary(self.path), "scores": dict(ckpt.scores) if ckpt else {},
                "parameters": ckpt.num_parameters() if ckpt else None, **shape(self.task, self.runner)}


def endpoint_path(task: str) -> str:
    return PATHS.get(task, f"/v1/{task}")


def shape(task: str, runner) -> dict:
    """What a client needs to know to build inputs: a forecaster's channels, lookback and horizon; a
    classifier's labels; a name generator's conditions."""
    if task == "forecast":
        return {"columns": list(runner.columns), "lookback": runner.lookback, "horizon": runner.horizon}
    if task == "classify":
        return {"labels": list(runner.labels), "pooling": runner.setup.model.pooling}
    if task == "namegen":
        return {"conditions": list(runner.conditions) if runner.conditional else []}
    return {}


def card_summary(path: str | None) -> str | None:
    """The first paragraph of the model card NAME.md beside NAME.pt (its title left out), or None."""
    card = Path(path).with_suffix(".md") if path else None
    if card is None or not card.is_file():
        return None
    paragraph: list[str] = []
    for line in card.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("#") or (not line.strip() and not paragraph):
            if paragraph:
                break
            continue
        if not line.strip():
            break
        paragraph.append(line.strip())
    return " ".join(paragraph) or None


def load(models: dict[str, str]) -> dict[str, Served]:
    """Load each task's checkpoint (nmt.tasks.load); a CheckpointError names the file at fault."""
    from nmt import tasks
    from nmt.checkpoint import CheckpointError
    served = {}
    for task, path in models.items():
        started = time.perf_counter()
        runner = tasks.load(path)
        if runner.task != task:
            raise CheckpointError(f"{path} is a '{runner.task}' checkpoint, not a '{task}' one")
        served[task] = Served(task, Path(path).stem, str(path), runner)
        log.info("loaded %s (%s) in %.2f s", Path(path).name, task, time.perf_counter() - started)
    return served


def given(runners: dict[str, Any]) -> dict[str, Served]:
    """Runners already loaded (tests, embedding programs), named by their checkpoint where they know it."""
    return {task: Served(task, task, None, runner) for task, runner in runners.items()}


def warm_up(served: dict[str, Served], endpoints: dict) -> None:
    """Run each model once on its endpoint's example, so the first request does not pay torch's first-call costs."""
    for task, s in served.items():
        ep = endpoints.get(task)
        if ep is None or ep.example is None:
            continue
        try:
            ep.run(s.runner, [ep.example], ep.prepare(ep.body().options()))
        except Exception as exc:  # noqa: BLE001 - a model that cannot run its example will say so on use
            log.warning("warm-up of %s failed: %s", task, exc)
