"""What the server tests share: runners (the shipped models, and tiny untrained classify and forecast models),
apps in a TestClient, a real uvicorn server on a free port, and a fake tagger whose calls can be held, failed and
counted."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from nmt.server.app import create_app
from nmt.server.settings import ServeSettings

REPO = Path(__file__).resolve().parents[2]
SHIPPED_TASKS = ("translate", "tag", "charlm", "summarize")


def tiny_classifier():
    """An untrained word classifier over a toy vocabulary with labels neg / pos (attention pooling)."""
    from nmt.models.classifier import Classifier
    from nmt.tasks import make_setup
    from nmt.tasks.classify import TextClassifier, build_tokenizer
    pairs = [("pos", "a good film"), ("neg", "a bad film"), ("pos", "great acting"), ("neg", "dull plot")]
    setup = make_setup("classify", "tiny")
    tokenizer = build_tokenizer(setup, pairs)
    setup.model.char_vocab_size, setup.model.word_vocab_size = tokenizer.chars.vocab_size, tokenizer.vocab_size
    torch.manual_seed(0)
    return TextClassifier(Classifier(setup.model, 2).eval(), tokenizer, setup, ["neg", "pos"])


def tiny_forecaster():
    """An untrained forecaster of 3 channels: lookback 24, horizon 12."""
    from nmt.models.forecast import Forecaster
    from nmt.tasks import make_setup
    from nmt.tasks.forecast import Forecast
    from nmt.timeseries import Scaler
    setup = make_setup("forecast", "tiny")
    setup.model.channels = 3
    torch.manual_seed(0)
    return Forecast(Forecaster(setup.model).eval(), setup, ["a", "b", "c"], Scaler(np.zeros(3), np.ones(3)))


def tiny_namer():
    """An untrained name generator over a toy alphabet, conditioned on two languages."""
    from nmt.models.namegen import NameGenerator
    from nmt.tasks import make_setup
    from nmt.tasks.namegen import NameSampler
    from nmt.tokenizers import CharTokenizer
    setup = make_setup("namegen", "tiny")
    tokenizer = CharTokenizer.train(["Anna", "Bernd", "Carla", "Dario"])
    setup.model.vocab_size = tokenizer.vocab_size
    torch.manual_seed(0)
    return NameSampler(NameGenerator(setup.model, 2).eval(), tokenizer, setup, ["German", "Italian"])


@pytest.fixture(scope="session")
def runners() -> dict:
    """Every task's runner: the shipped translate, tag, charlm and summarize models (tests skip where absent)
    and tiny classify, forecast and namegen models."""
    from nmt import tasks
    found = {task: tasks.load(tasks.SHIPPED[task]) for task in SHIPPED_TASKS if tasks.SHIPPED[task].is_file()}
    return {**found, "classify": tiny_classifier(), "forecast": tiny_forecaster(), "namegen": tiny_namer()}


def pick(runners: dict, *names: str) -> dict:
    """The runners of `names`; the test is skipped when a shipped one is absent."""
    missing = [n for n in names if n not in runners]
    if missing:
        pytest.skip(f"shipped model(s) absent: {', '.join(missing)}")
    return {n: runners[n] for n in names}


@contextmanager
def served(runners: dict, **settings):
    """A TestClient of an app serving `runners`, entered (lifespan run) and ready."""
    app = create_app(ServeSettings(**settings), runners=runners)
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client.get)
        yield client


def wait_ready(get, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while get("/health").status_code != 200:
        assert time.monotonic() < deadline, "the server never became ready"
        time.sleep(0.02)


@contextmanager
def live_server(app):
    """A real uvicorn server for `app` on a free 127.0.0.1 port, in a thread: yields its base URL."""
    import httpx
    import uvicorn
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        wait_ready(lambda path: httpx.get(url + path))
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class FakeTagger:
    """Stands in for NERTagger: records the size of every call, can be held at a gate, and fails on 'boom'."""
    task = "tag"

    def __init__(self):
        self.calls: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def tag_text(self, lines: list[str]) -> list[dict]:
        self.entered.set()
        self.calls.append(len(lines))
        assert self.gate.wait(30)
        if any("boom" in line for line in lines):
            raise RuntimeError("boom: a secret path /srv/x.py line 3")
        return [{"entities": [], "words": line.split(), "tags": ["O"] * len(line.split())} for line in lines]


@pytest.fixture
def fake_tagger() -> FakeTagger:
    return FakeTagger()
