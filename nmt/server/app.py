"""The HTTP app: one JSON endpoint per served task (endpoints.py; generate.py streams), /health, /v1/models,
/v1/stats, the page at /, and OpenAPI docs at /docs.

Requests for one model go through its Batcher (batching.py); a request is awaited together with its client's
connection and the timeout, so a client that leaves or a request that runs out of time drops its queued work.
Models load in a thread after the server starts: /health says "loading" (503) until they are all loaded and
warmed up, then "ready" (200).
"""
import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from nmt.server import errors
from nmt.server.batching import Batcher
from nmt.server.endpoints import ENDPOINTS, Endpoint
from nmt.server.errors import ApiError, guarded, user_error, user_errors
from nmt.server.limits import check_amounts, check_sizes
from nmt.server.models import Served, endpoint_path, given, load, warm_up
from nmt.server.settings import ServeSettings, shipped_models

log = logging.getLogger("nmt.server")
PAGE = Path(__file__).parent / "static" / "index.html"
ENVIRONMENT = "NMT_SERVE_SETTINGS"      # the settings as JSON, for worker processes (serve --workers N)


class State:
    """What the routes share: the settings, the served models once loaded, and the server's status."""

    def __init__(self, settings: ServeSettings, runners: dict | None = None,
                 on_ready: Callable | None = None, on_failure: Callable | None = None):
        self.settings, self.runners = settings, runners
        self.paths = {} if runners is not None else dict(settings.models or shipped_models())
        self.models: dict[str, Served] = {}
        self.status, self.error = "loading", None
        self.started, self.ready_s = time.monotonic(), None
        self.on_ready, self.on_failure = on_ready, on_failure

    @property
    def tasks(self) -> list[str]:
        return list(self.runners if self.runners is not None else self.paths)

    def ready(self) -> None:
        """A 503 while the models load (or after loading failed)."""
        if self.status != "ready":
            raise ApiError(503, self.status, "the models are still loading" if self.status == "loading" else
                           f"the models failed to load: {self.error}", headers={"Retry-After": "1"})

    def model(self, task: str) -> Served:
        """The served model of `task` (a 503 while loading)."""
        self.ready()
        return self.models[task]

    @asynccontextmanager
    async def lifespan(self, app: FastAPI):
        loader = asyncio.create_task(self._load())
        try:
            yield
        finally:
            loader.cancel()
            await asyncio.gather(loader, return_exceptions=True)
            for served in self.models.values():
                await served.batcher.stop()

    async def _load(self) -> None:
        try:
            if self.runners is not None:
                served = given(self.runners)
            else:
                served = await asyncio.to_thread(load, self.paths)
            await asyncio.to_thread(warm_up, served, ENDPOINTS)
        except Exception as exc:  # noqa: BLE001 - reported by /health and the command line
            self.status, self.error = "failed", str(exc)
            log.error("loading the models failed: %s", exc)
            if self.on_failure:
                self.on_failure(exc)
            return
        s = self.settings
        for task, model in served.items():
            run = partial(_run, ENDPOINTS[task], model.runner) if task in ENDPOINTS else _no_batches
            model.batcher = Batcher(task, run, s.max_batch, s.max_wait_ms / 1000, s.max_queue)
            model.batcher.start()
        self.models, self.status = served, "ready"
        self.ready_s = time.monotonic() - self.started
        if self.on_ready:
            self.on_ready(self)
        else:
            log.info("ready in %.1f s: %s", self.ready_s, ", ".join(served))


def _run(ep: Endpoint, runner, inputs: list, options) -> list:
    return ep.run(runner, inputs, options)


def _no_batches(inputs: list, options) -> list:
    raise RuntimeError("this model takes no batched requests")


def json_route(state: State, ep: Endpoint) -> Callable:
    """The route of a registered endpoint: check the request, queue its inputs, answer one result or a list."""
    Body = ep.body

    async def handle(request: Request, body: Body) -> JSONResponse:
        served = state.model(ep.task)
        inputs, single = body.inputs()
        if inputs is None:
            raise ApiError(422, "invalid_input", f"give '{Body.ITEM}' (one input) or '{Body.ITEMS}' (a list), "
                           "one of the two", field=Body.ITEM)
        check_sizes(state.settings, inputs, Body.ITEM if single else Body.ITEMS)
        options = body.options()
        check_amounts(state.settings, options)
        try:
            prepared = ep.prepare(options)
            if ep.check:
                ep.check(served.runner, inputs, options)
        except user_errors() as exc:
            raise user_error(exc, set(options)) from None
        key = json.dumps(options, sort_keys=True)
        results = await guarded(request, served.batcher.submit(inputs, prepared, key), state.settings.timeout_s)
        if single:
            return JSONResponse({**results[0], "model": served.name})
        answer = {"model": served.name, "results": results}
        if ep.results:
            answer[ep.results] = [r[ep.result] for r in results]
        return JSONResponse(answer)
    handle.__doc__ = ep.run.__doc__
    return handle


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            return int(next(line for line in f if line.startswith("VmRSS:")).split()[1]) / 1024
    except (OSError, StopIteration):
        return None


def add_routes(app: FastAPI, state: State) -> None:
    page = PAGE.read_bytes()

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/health", summary="Ready (200) once every model is loaded; 503 while loading or after a failure.")
    async def health() -> JSONResponse:
        body = {"status": state.status, "tasks": state.tasks, "ready_s": state.ready_s}
        if state.error:
            body["error"] = state.error
        return JSONResponse(body, 200 if state.status == "ready" else 503,
                            headers=None if state.status == "ready" else {"Retry-After": "1"})

    @app.get("/v1/models", summary="The served models: name, task, endpoint, card summary, scores.")
    async def models() -> JSONResponse:
        state.ready()
        return JSONResponse({"models": [m.describe() for m in state.models.values()],
                             "limits": {k: getattr(state.settings, k) for k in
                                        ("max_items", "max_chars", "max_generate", "max_rows", "timeout_s")}})

    @app.get("/v1/stats", summary="Per model: requests, batches, mean batch size, queue; the server's RSS.")
    async def stats() -> JSONResponse:
        return JSONResponse({"rss_mb": _rss_mb(), "status": state.status, "models": {
            task: {**m.batcher.stats.as_dict(), "pending": m.batcher.pending} for task, m in state.models.items()}})

    from nmt.server.generate import generate_route
    for task in state.tasks:
        if task == "charlm":
            app.add_api_route(endpoint_path(task), generate_route(state), methods=["POST"],
                              summary="Generate text character by character (stream: server-sent events).")
        elif task in ENDPOINTS:
            ep = ENDPOINTS[task]
            app.add_api_route(ep.path, json_route(state, ep), methods=["POST"], summary=ep.summary)


def create_app(settings: ServeSettings | None = None, runners: dict | None = None,
               on_ready: Callable | None = None, on_failure: Callable | None = None) -> FastAPI:
    """The app serving `settings.models` (default: every shipped model present), or `runners` already loaded
    ({task: runner}); `on_ready(state)` / `on_failure(exc)` are called once loading ends."""
    settings = settings or ServeSettings()
    state = State(settings, runners, on_ready, on_failure)
    app = FastAPI(title="nmt", summary="Recurrent sequence models: translate, generate, tag, summarise, ...",
                  lifespan=state.lifespan)
    app.state.nmt = state
    max_body = max(1 << 20, settings.max_items * settings.max_chars * 4 + (64 << 10))
    errors.install(app, max_body)
    add_routes(app, state)
    return app


def from_environment() -> FastAPI:
    """The app of the settings in $NMT_SERVE_SETTINGS (how each worker process of `serve --workers N` builds it)."""
    import torch
    settings = ServeSettings.from_json(os.environ[ENVIRONMENT])
    torch.set_num_threads(settings.torch_threads())
    return create_app(settings)
