"""POST /v1/generate: text from the character model, whole or as server-sent events.

Samples cannot share a batched call with other requests (each has its own prime and seed), so a sample runs as a
series of small jobs of `stream_chars` steps on the model's worker, in queue order with other requests' jobs.
Between jobs the request is checked: a client that has left, or a request past its timeout, runs no further step.

Stream format (`"stream": true`): `data: {"text": "..."}` events of a few characters each (`{"samples": [...]}`
when num_samples > 1), then `event: done` with the whole text and the seed, or `event: error` with the error.
"""
import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable, Iterator
from itertools import islice

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from nmt.config import SampleConfig, make
from nmt.server.batching import Batcher, QueueFull
from nmt.server.errors import ApiError, guarded, user_error, user_errors
from nmt.server.limits import check_amounts
from nmt.server.schemas import GenerateBody


def _take(steps: Iterator[list[str]], size: int) -> list[list[str]]:
    return list(islice(steps, size))


async def chunks(batcher: Batcher, steps: Iterator[list[str]], size: int) -> AsyncIterator[list[str]]:
    """Each sample's next characters, `size` steps at a time, until the generator ends."""
    while True:
        part = await batcher.call(lambda: _take(steps, size))
        if part:
            yield ["".join(chars) for chars in zip(*part)]         # (steps, samples) -> one string per sample
        if len(part) < size:
            return


def sample_options(settings, body: GenerateBody) -> SampleConfig:
    """The sampling config of a request; 413 past the server's limits, 422 naming a bad option."""
    if body.prime is not None and len(body.prime) > settings.max_chars:
        raise ApiError(413, "too_large", f"the prime has {len(body.prime):,} characters; the limit is "
                       f"{settings.max_chars:,}", field="prime", limit="max_chars")
    options = body.model_dump(exclude={"seed", "stream"})
    check_amounts(settings, options)
    try:
        return make(SampleConfig, **options)
    except user_errors() as exc:
        raise user_error(exc, set(options)) from None


def _event(data: dict, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _events(request: Request, batcher: Batcher, steps, options: SampleConfig, seed: int, size: int,
                  timeout: float) -> AsyncIterator[str]:
    """The event stream. It ends when the client leaves: Starlette cancels it (ASGI spec 2.3 servers), and it
    asks between events itself (servers whose `send` ignores a closed connection), so no further job queues."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    texts = [""] * options.num_samples
    parts = chunks(batcher, steps, size)
    try:
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError
            try:
                part = await asyncio.wait_for(parts.__anext__(), left)
            except StopAsyncIteration:
                break
            texts = [t + p for t, p in zip(texts, part)]
            yield _event({"text": part[0]} if len(part) == 1 else {"samples": part})
            if await request.is_disconnected():
                return
        yield _event({"text": texts[0], "samples": texts, "prime": options.prime, "seed": seed}, "done")
    except asyncio.TimeoutError:
        yield _event({"error": {"type": "timeout", "message": f"no end within {timeout:g} s",
                                "limit": "timeout_s"}}, "error")
    except QueueFull as exc:
        yield _event({"error": {"type": "busy", "message": str(exc), "limit": "max_queue"}}, "error")
    finally:
        await parts.aclose()


async def _whole(batcher: Batcher, steps, samples: int, size: int) -> list[str]:
    texts = [""] * samples
    async for part in chunks(batcher, steps, size):
        texts = [t + p for t, p in zip(texts, part)]
    return texts


def generate_route(state) -> Callable:
    async def generate(request: Request, body: GenerateBody):
        """Generate text character by character from a prime (temperature 0.8, 500 characters by default)."""
        served = state.model("charlm")
        settings = state.settings
        options = sample_options(settings, body)
        seed = body.seed if body.seed is not None else random.randrange(2 ** 31)
        steps = served.runner.sample(options, seed)
        if body.stream:
            if served.batcher.pending >= settings.max_queue:
                raise ApiError(503, "busy", "the queue of this model is full", limit="max_queue",
                               headers={"Retry-After": str(served.batcher.retry_after())})
            return StreamingResponse(_events(request, served.batcher, steps, options, seed, settings.stream_chars,
                                             settings.timeout_s), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        texts = await guarded(request, _whole(served.batcher, steps, options.num_samples, settings.stream_chars * 8),
                              settings.timeout_s)
        answer = {"text": texts[0], "prime": options.prime, "seed": seed, "model": served.name}
        if options.num_samples > 1:
            answer["samples"] = texts
        return JSONResponse(answer)
    return generate
