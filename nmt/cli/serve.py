"""serve: the models over HTTP (nmt/server/), JSON endpoints with request batching and a page at /."""
from __future__ import annotations

import copy
import os
import socket
import time
from typing import Annotated

import typer

from nmt.cli.common import UserError, app, err, fail, friendly

Host = Annotated[str | None, typer.Option("--host", help="Address to listen on (default 127.0.0.1: this machine "
                                                         "only).")]
Port = Annotated[int | None, typer.Option("--port", "-p", help="Port (default 8000; 0: any free port).")]
Models = Annotated[str | None, typer.Option("--models", help="Tasks to serve, comma-separated, each with its shipped "
                                                             "model or TASK=CHECKPOINT (default: every shipped "
                                                             "model).")]
Workers = Annotated[int | None, typer.Option("--workers", help="Server processes, each with its own copy of the "
                                                               "models and its own batching (default 1).")]
Threads = Annotated[int | None, typer.Option("--threads", help="torch threads per process (default: its share of "
                                                               "the cores less one for its HTTP side, at least 1).")]
MaxBatch = Annotated[int | None, typer.Option("--max-batch", help="Inputs run as one batched call (default 64; 1 "
                                                                  "turns batching off).")]
MaxWait = Annotated[float | None, typer.Option("--max-wait-ms", help="How long a batch waits for one more request "
                                                                     "(default 5; 8 times that at most).")]
MaxQueue = Annotated[int | None, typer.Option("--max-queue", help="Inputs waiting per model before 503 (default "
                                                                  "1024).")]
MaxItems = Annotated[int | None, typer.Option("--max-items", help="Inputs one request may hold (default 64).")]
MaxChars = Annotated[int | None, typer.Option("--max-chars", help="Characters of one input (default 10,000).")]
MaxGenerate = Annotated[int | None, typer.Option("--max-generate", help="Characters one generate request may ask "
                                                                        "for (default 10,000).")]
Timeout = Annotated[float | None, typer.Option("--timeout", help="Seconds before an unanswered request gets 504 "
                                                                 "(default 30).")]
AccessLog = Annotated[bool, typer.Option("--access-log", help="Log every request (costs time "
                                                                              "under load).")]


@app.command()
@friendly
def serve(
    host: Host = None,
    port: Port = None,
    models: Models = None,
    workers: Workers = None,
    threads: Threads = None,
    max_batch: MaxBatch = None,
    max_wait_ms: MaxWait = None,
    max_queue: MaxQueue = None,
    max_items: MaxItems = None,
    max_chars: MaxChars = None,
    max_generate: MaxGenerate = None,
    timeout: Timeout = None,
    access_log: AccessLog = False,
):
    """Serve the models over HTTP: a JSON endpoint per task (/v1/translate, /v1/generate, /v1/tag, ...), request
    batching, /health, /v1/models, a page at / and API docs at /docs.

    Example: nmt serve --models translate,tag --port 8000
    """
    from nmt.config import make
    from nmt.server.settings import ServeSettings, parse_models
    settings = make(ServeSettings, host=host, port=port, models=parse_models(models) or None, workers=workers,
                    threads=threads,
                    max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue, max_items=max_items,
                    max_chars=max_chars, max_generate=max_generate, timeout_s=timeout)
    if settings.public():
        err.print(f"[yellow]warning:[/yellow] listening on {settings.host}: anyone who can reach this machine can "
                  "use the models (no authentication, no TLS); use --host 127.0.0.1 to serve this machine only",
                  soft_wrap=True)
    sock = _listen(settings.host, settings.port)
    if settings.workers > 1:
        _serve_workers(settings, sock, access_log)
    else:
        _serve(settings, sock, access_log)


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, opened before any model loads so that a busy port fails at once, in one line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _log_config() -> dict:
    """uvicorn's logging, with the server's own messages (model loading, errors) on stderr too."""
    import uvicorn.config
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["nmt.server"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def _url(settings, sock: socket.socket) -> str:
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    return f"http://{host}:{sock.getsockname()[1]}/"


def _serve(settings, sock: socket.socket, access_log: bool) -> None:
    """One process: print a line once the models are ready; a model that fails to load stops the server (exit 1)."""
    import torch
    import uvicorn

    from nmt.server.app import create_app
    torch.set_num_threads(settings.torch_threads())
    started, failure = time.perf_counter(), []

    def ready(state) -> None:
        err.print(f"[green]ready[/green] in {time.perf_counter() - started:.1f} s: {', '.join(state.models)} on "
                  f"{_url(settings, sock)} (API docs at /docs)", soft_wrap=True)

    def failed(exc: Exception) -> None:
        failure.append(str(exc))
        server.should_exit = True

    config = uvicorn.Config(create_app(settings, on_ready=ready, on_failure=failed), log_config=_log_config(),
                            access_log=access_log, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:           # uvicorn shut down gracefully, then re-raised Ctrl-C: a normal end
        err.print("stopped")
    if failure:
        fail(failure[0])


def _serve_workers(settings, sock: socket.socket, access_log: bool) -> None:
    """Several processes sharing the socket, each building the app from the settings in the environment."""
    import uvicorn

    from nmt.server.app import ENVIRONMENT
    os.environ[ENVIRONMENT] = settings.to_json()
    err.print(f"starting {settings.workers} workers on {_url(settings, sock)}; each says when its models are ready",
              soft_wrap=True)
    uvicorn.run("nmt.server.app:from_environment", factory=True, fd=sock.fileno(), workers=settings.workers,
                log_config=_log_config(), access_log=access_log, timeout_graceful_shutdown=5)
