"""Every error the server answers, as one JSON shape: {"error": {"type", "message", "field"?, "limit"?}}.

Bad JSON and bad options are 422 naming the field, too much input 413 naming the limit, a full queue 503 with
Retry-After, a timeout 504. Anything unexpected is a 500 whose body says only that (the traceback goes to the
server's log), so no response ever carries a traceback.
"""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from nmt.server.batching import QueueFull

log = logging.getLogger("nmt.server")


class ApiError(Exception):
    """An answer other than 200: status, a short type, a message for people, and the field or limit at fault."""

    def __init__(self, status: int, kind: str, message: str, field: str | None = None, limit: str | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message
        self.field, self.limit, self.headers = field, limit, headers

    def response(self) -> JSONResponse:
        body = {"type": self.kind, "message": self.message}
        body.update({k: v for k, v in (("field", self.field), ("limit", self.limit)) if v is not None})
        return JSONResponse({"error": body}, self.status, headers=self.headers)


def user_error(exc: Exception, fields: set[str]) -> ApiError:
    """A library error (a bad option value, bad data) as a 422 naming the option it concerns, where it names one."""
    message = str(exc).replace("config key ", "")
    named = re.findall(r"'([A-Za-z_]+)'|\b([a-z_]+)\b", str(exc))
    field = next((a or b for a, b in named if (a or b) in fields), None)
    return ApiError(422, "invalid_option" if field else "invalid_input", message, field=field)


def user_errors() -> tuple[type[Exception], ...]:
    """What the library raises for bad input (the CLI's one-line errors)."""
    from nmt.checkpoint import CheckpointError
    from nmt.config import ConfigError
    from nmt.data import DataError
    from nmt.tokenizers import TokenizerError
    return ConfigError, DataError, TokenizerError, CheckpointError


async def guarded(request: Request, work, timeout: float) -> Any:
    """The result of coroutine `work`, unless the client leaves first (the work is cancelled: its queued items
    never run) or `timeout` seconds pass (cancelled too, 504). Library errors become 422s, a full queue a 503."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({task, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
    if task in done:
        try:
            return task.result()
        except QueueFull as exc:
            raise ApiError(503, "busy", str(exc), limit="max_queue", headers={"Retry-After": str(exc.retry_after)})
        except user_errors() as exc:
            raise user_error(exc, set()) from None
    task.cancel()
    if gone in done:
        raise ApiError(499, "client_closed", "the client closed the request")
    raise ApiError(504, "timeout", f"no answer within {timeout:g} s", limit="timeout_s")


async def _disconnected(request: Request) -> None:
    """Returns when the client disconnects (the body has been read, so the next message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Pydantic's errors -> the first, worded for people, naming its field (dotted: 'texts.2')."""
    first = exc.errors()[0] if exc.errors() else {"type": "", "loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first["type"] == "json_invalid":
        where = f" at character {loc[-1]}" if loc else ""
        return ApiError(422, "invalid_json", f"the body is not valid JSON: {first.get('ctx', {}).get('error', '')}"
                        f"{where}").response()
    if not loc:                     # a list, a number, nothing at all
        return ApiError(422, "invalid_json", "the body must be a JSON object").response()
    field = ".".join(loc)
    if first["type"] == "extra_forbidden":
        return ApiError(422, "unknown_field", f"unknown field '{field}'", field=field).response()
    return ApiError(422, "invalid_option", f"{field}: {first['msg']}", field=field).response()


def _http(request: Request, exc: HTTPException) -> JSONResponse:
    if isinstance(exc.detail, dict):
        return ApiError(exc.status_code, **exc.detail).response()
    kinds = {404: "not_found", 405: "method_not_allowed"}
    return ApiError(exc.status_code, kinds.get(exc.status_code, "http_error"), str(exc.detail),
                    headers=getattr(exc, "headers", None)).response()


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error answering %s %s", request.method, request.url.path, exc_info=exc)
    return ApiError(500, "internal", "internal error: the server's log has the details").response()


def install(app: FastAPI, max_body: int) -> None:
    """The handlers of every error kind, and the body-size limit (413 naming max_body)."""
    app.add_exception_handler(ApiError, lambda request, exc: exc.response())
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(BodyLimit, max_body=max_body)


class BodyLimit:
    """Refuse request bodies over `max_body` bytes with 413, by their Content-Length or, for chunked bodies, as
    they arrive (an ASGI middleware: nothing is read twice). Bodies are read as JSON whatever their Content-Type
    says (`curl -d` sends form encoding)."""

    def __init__(self, app, max_body: int):
        self.app, self.max_body = app, max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = scope.get("headers", [])
        kind = next((v for k, v in headers if k == b"content-type"), b"").split(b";")[0].strip()
        if scope["method"] == "POST" and kind != b"application/json":
            headers = [(k, v) for k, v in headers if k != b"content-type"] + [(b"content-type", b"application/json")]
            scope = {**scope, "headers": headers}
        length = next((v for k, v in headers if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return await self._refuse().response()(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                error = self._refuse()
                raise HTTPException(413, detail={"kind": error.kind, "message": error.message, "limit": error.limit})
            return message
        await self.app(scope, counted, send)

    def _refuse(self) -> ApiError:
        return ApiError(413, "too_large", f"the request body is over {self.max_body:,} bytes", limit="max_body")
