"""The server's settings: batching, limits and threads, with their defaults and ranges in one dataclass.

Built and checked like every other config (`nmt.config.make`), so `serve --max-batch 0` fails with one line naming
the key before anything loads.
"""
from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from nmt.config import ConfigError, Count, Positive, Range, Size, from_dict, to_dict

Port = Annotated[int, Range(0, 65535)]


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"       # address to bind; anything but loopback serves the network (a warning says so)
    port: Port = 8000             # 0: any free port
    max_batch: Count = 64         # items run as one batched call (1: batching off, one request at a time)
    max_wait_ms: Annotated[float, Range(0, 1000)] = 5.0   # a batch waits this long for one more request (and
    #                               GATHER_LIMIT times this at most, batching.py)
    max_queue: Count = 1024       # items waiting per model; beyond it requests get 503 with Retry-After
    max_items: Count = 64         # list size of one request (texts, histories, samples)
    max_chars: Count = 10_000     # characters of one text (a prime, a document)
    max_generate: Count = 10_000  # characters one generate request may ask for
    max_rows: Count = 10_000      # rows of one forecast history
    timeout_s: Positive = 30.0    # a request still unanswered after this gets 504 (its queued work is dropped)
    stream_chars: Count = 8       # characters per server-sent event when generating
    workers: Count = 1            # server processes, each with its own models and batching
    threads: Size = 0             # torch threads per process (0: its share of the cores less one for its HTTP side)
    models: dict = field(default_factory=dict)   # task -> checkpoint path ({}: every shipped model present)

    def public(self) -> bool:
        """Whether `host` reaches beyond this machine (anything but a loopback address or 'localhost')."""
        if self.host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:              # a host name: it may resolve to anything
            return True

    def torch_threads(self) -> int:
        """The torch threads of each process: `threads`, or its share of the cores less one for its event loop,
        at least 1 (on 2 cores under load, 1 torch thread served 1.3x the requests/s of 2: the event loop parsing
        requests while the model runs needs a core)."""
        return self.threads or max(1, (os.cpu_count() or 2) // self.workers - 1)

    def to_json(self) -> str:
        return json.dumps(to_dict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        return from_dict(cls, json.loads(text))


def parse_models(spec: str | None) -> dict[str, str]:
    """'translate,tag=runs/ner/best.pt' -> {task: checkpoint path}: a bare task takes its shipped model. None or
    '' gives {} (every shipped model that is present). Unknown tasks and missing files are ConfigErrors."""
    from nmt.tasks import SHIPPED, TASKS
    models: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        task, _, path = part.partition("=")
        task = task.strip()
        if task not in TASKS:
            raise ConfigError(f"--models: unknown task '{task}' (known: {', '.join(TASKS)})")
        if task in models:
            raise ConfigError(f"--models: task '{task}' is named twice (one model per task)")
        chosen = Path(path.strip()) if path.strip() else SHIPPED.get(task)
        if chosen is None or not chosen.is_file():
            raise ConfigError(f"--models: checkpoint not found for '{task}': {chosen}")
        models[task] = str(chosen)
    return models


def shipped_models() -> dict[str, str]:
    """Every shipped model that is present, by task."""
    from nmt.tasks import SHIPPED
    return {task: str(path) for task, path in SHIPPED.items() if path.is_file()}

